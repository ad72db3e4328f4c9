//===- BPTToLinalg.cpp - lower bpt ops to linalg ----------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"
#include "bpt/Dialect/BPTOps.h"
#include "bpt/Utils/Builders.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

#include <cmath>

namespace bpt {
#define GEN_PASS_DEF_BPTCONVERTTOLINALG
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;

namespace {

/// Maps over a rank-`rank` iteration space whose last dimension is the
/// channel (hidden) dimension of a position-wise op.
struct RowMaps {
  explicit RowMaps(MLIRContext *ctx, unsigned rank) : ctx(ctx), rank(rank) {}

  AffineMap identity() const {
    return AffineMap::getMultiDimIdentityMap(rank, ctx);
  }
  /// (lead..., c) -> (lead...): one value per position.
  AffineMap perRow() const {
    return AffineMap::getMultiDimIdentityMap(rank, ctx).dropResult(rank - 1);
  }
  /// (lead..., c) -> (c): one value per channel.
  AffineMap perChannel() const {
    return AffineMap::get(rank, 0, {getAffineDimExpr(rank - 1, ctx)}, ctx);
  }

  MLIRContext *ctx;
  unsigned rank;
};

/// `x [..., K] · w [K, N]` accumulated in f32, as a linalg.generic with the
/// contraction innermost: `[..., N]` of f32.
Value contract(OpBuilder &b, Location loc, Value x, Value w) {
  auto xType = cast<RankedTensorType>(x.getType());
  auto wType = cast<RankedTensorType>(w.getType());
  unsigned rank = xType.getRank();
  SmallVector<int64_t> shape(xType.getShape());
  shape.back() = wType.getDimSize(1);
  Type f32 = b.getF32Type();
  Value init = filledTensor(b, loc, shape, f32, 0.0);

  // Loops: (lead..., n, k).
  MLIRContext *ctx = b.getContext();
  unsigned numLoops = rank + 1;
  SmallVector<AffineExpr> xExprs, outExprs;
  for (unsigned d = 0; d + 1 < rank; ++d) {
    xExprs.push_back(getAffineDimExpr(d, ctx));
    outExprs.push_back(getAffineDimExpr(d, ctx));
  }
  AffineExpr n = getAffineDimExpr(rank - 1, ctx), k = getAffineDimExpr(rank, ctx);
  xExprs.push_back(k);
  outExprs.push_back(n);
  SmallVector<AffineMap> maps = {AffineMap::get(numLoops, 0, xExprs, ctx),
                                 AffineMap::get(numLoops, 0, {k, n}, ctx),
                                 AffineMap::get(numLoops, 0, outExprs, ctx)};
  return buildGeneric(b, loc, {x, w}, init, maps, numLoops, {rank},
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Value lhs = convertFloat(nb, nl, args[0], f32);
                        Value rhs = convertFloat(nb, nl, args[1], f32);
                        Value product = arith::MulFOp::create(nb, nl, lhs, rhs);
                        return SmallVector<Value>{
                            arith::AddFOp::create(nb, nl, product, args[2])};
                      })
      .front();
}

/// Rounds an f32 tensor to `elementType`.
Value roundTo(OpBuilder &b, Location loc, Value x, Type elementType) {
  if (cast<RankedTensorType>(x.getType()).getElementType() == elementType)
    return x;
  return buildMap(b, loc, x, elementType,
                  [&](OpBuilder &nb, Location nl, Value v) {
                    return convertFloat(nb, nl, v, elementType);
                  });
}

struct LinearToLinalg final : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value acc = contract(rewriter, loc, op.getInput(), op.getWeight());
    Type elementType = op.getResult().getType().getElementType();
    if (Value bias = op.getBias()) {
      RowMaps maps(getContext(), op.getResult().getType().getRank());
      Value init = tensor::EmptyOp::create(
          rewriter, loc, op.getResult().getType().getShape(), elementType);
      acc = buildGeneric(rewriter, loc, {acc, bias}, init,
                         {maps.identity(), maps.perChannel(), maps.identity()},
                         maps.rank, {},
                         [&](OpBuilder &nb, Location nl, ValueRange args) {
                           Value biasF32 =
                               convertFloat(nb, nl, args[1], nb.getF32Type());
                           Value sum = arith::AddFOp::create(nb, nl, args[0],
                                                             biasF32);
                           return SmallVector<Value>{
                               convertFloat(nb, nl, sum, elementType)};
                         })
                .front();
    }
    rewriter.replaceOp(op, roundTo(rewriter, loc, acc, elementType));
    return success();
  }
};

struct FFNToLinalg final : OpRewritePattern<FFNOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(FFNOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Activation act = op.getActivation();
    Value up = contract(rewriter, loc, op.getInput(), op.getWIn());
    Value hidden;
    if (Value gateWeight = op.getWGate()) {
      Value gate = contract(rewriter, loc, op.getInput(), gateWeight);
      RowMaps maps(getContext(), cast<RankedTensorType>(up.getType()).getRank());
      hidden = buildGeneric(rewriter, loc, {gate}, up,
                            {maps.identity(), maps.identity()}, maps.rank, {},
                            [&](OpBuilder &nb, Location nl, ValueRange args) {
                              Value g = buildActivation(nb, nl, act, args[0]);
                              return SmallVector<Value>{
                                  arith::MulFOp::create(nb, nl, g, args[1])};
                            })
                   .front();
    } else {
      // In place of the up-projection: one [rows, F] tile, not two.
      RowMaps maps(getContext(), cast<RankedTensorType>(up.getType()).getRank());
      hidden = buildGeneric(rewriter, loc, {}, up, {maps.identity()},
                            maps.rank, {},
                            [&](OpBuilder &nb, Location nl, ValueRange args) {
                              return SmallVector<Value>{
                                  buildActivation(nb, nl, act, args[0])};
                            })
                   .front();
    }
    Value out = contract(rewriter, loc, hidden, op.getWOut());
    rewriter.replaceOp(
        op, roundTo(rewriter, loc, out,
                    op.getResult().getType().getElementType()));
    return success();
  }
};

/// Sum over the channel dimension of `f(x)`, in f32: one value per row.
Value rowSum(OpBuilder &b, Location loc, Value x, const RowMaps &maps,
             function_ref<Value(OpBuilder &, Location, Value)> f) {
  auto type = cast<RankedTensorType>(x.getType());
  Value init = filledTensor(b, loc, type.getShape().drop_back(),
                            b.getF32Type(), 0.0);
  return buildGeneric(b, loc, x, init, {maps.identity(), maps.perRow()},
                      maps.rank, {maps.rank - 1},
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Value v = f(nb, nl,
                                    convertFloat(nb, nl, args[0],
                                                 nb.getF32Type()));
                        return SmallVector<Value>{
                            arith::AddFOp::create(nb, nl, v, args[1])};
                      })
      .front();
}

/// Lowers layer_norm (with `bias`) or rms_norm (without): statistics per
/// row in f32, then one pass that normalises, scales, shifts and rounds.
Value lowerNorm(OpBuilder &b, Location loc, Value x, Value weight, Value bias,
                double epsilon) {
  auto type = cast<RankedTensorType>(x.getType());
  RowMaps maps(b.getContext(), type.getRank());
  Type f32 = b.getF32Type();
  double width = static_cast<double>(type.getShape().back());
  auto cst = [&](OpBuilder &nb, Location nl, double v) {
    return floatConstant(nb, nl, f32, v);
  };
  auto identity = [](OpBuilder &, Location, Value v) { return v; };

  // mean (layer norm only), then the mean of squares around it.
  Value mean;
  if (bias)
    mean = buildMap(b, loc, rowSum(b, loc, x, maps, identity), f32,
                    [&](OpBuilder &nb, Location nl, Value s) {
                      return arith::DivFOp::create(nb, nl, s,
                                                   cst(nb, nl, width))
                          .getResult();
                    });
  Value squares;
  if (mean) {
    Value zeros = filledTensor(b, loc, type.getShape().drop_back(), f32, 0.0);
    squares =
        buildGeneric(b, loc, {x, mean}, zeros,
                     {maps.identity(), maps.perRow(), maps.perRow()},
                     maps.rank, {maps.rank - 1},
                     [&](OpBuilder &nb, Location nl, ValueRange args) {
                       Value d = arith::SubFOp::create(
                           nb, nl, convertFloat(nb, nl, args[0], f32), args[1]);
                       Value sq = arith::MulFOp::create(nb, nl, d, d);
                       return SmallVector<Value>{
                           arith::AddFOp::create(nb, nl, sq, args[2])};
                     })
            .front();
  } else {
    squares = rowSum(b, loc, x, maps, [](OpBuilder &nb, Location nl, Value v) {
      return arith::MulFOp::create(nb, nl, v, v).getResult();
    });
  }
  // 1 / sqrt(mean of squares + epsilon).
  Value invStd = buildMap(
      b, loc, squares, f32, [&](OpBuilder &nb, Location nl, Value s) {
        Value variance = arith::DivFOp::create(nb, nl, s, cst(nb, nl, width));
        Value shifted =
            arith::AddFOp::create(nb, nl, variance, cst(nb, nl, epsilon));
        return arith::DivFOp::create(nb, nl, cst(nb, nl, 1.0),
                                     math::SqrtOp::create(nb, nl, shifted))
            .getResult();
      });

  Type elementType = type.getElementType();
  SmallVector<Value> inputs = {x, invStd, weight};
  SmallVector<AffineMap> indexing = {maps.identity(), maps.perRow(),
                                     maps.perChannel()};
  if (mean) {
    inputs.append({mean, bias});
    indexing.append({maps.perRow(), maps.perChannel()});
  }
  indexing.push_back(maps.identity());
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(), elementType);
  return buildGeneric(
             b, loc, inputs, init, indexing, maps.rank, {},
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value v = convertFloat(nb, nl, args[0], f32);
               if (mean)
                 v = arith::SubFOp::create(nb, nl, v, args[3]);
               v = arith::MulFOp::create(nb, nl, v, args[1]);
               v = arith::MulFOp::create(nb, nl, v,
                                         convertFloat(nb, nl, args[2], f32));
               if (mean)
                 v = arith::AddFOp::create(nb, nl, v,
                                           convertFloat(nb, nl, args[4], f32));
               return SmallVector<Value>{convertFloat(nb, nl, v, elementType)};
             })
      .front();
}

struct LayerNormToLinalg final : OpRewritePattern<LayerNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, lowerNorm(rewriter, op.getLoc(), op.getInput(),
                                     op.getWeight(), op.getBias(),
                                     op.getEpsilon().convertToDouble()));
    return success();
  }
};

struct RMSNormToLinalg final : OpRewritePattern<RMSNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RMSNormOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, lowerNorm(rewriter, op.getLoc(), op.getInput(),
                                     op.getWeight(), /*bias=*/Value(),
                                     op.getEpsilon().convertToDouble()));
    return success();
  }
};

struct BPTConvertToLinalgPass final
    : bpt::impl::BPTConvertToLinalgBase<BPTConvertToLinalgPass> {
  void runOnOperation() override {
    WalkResult unlowerable = getOperation().walk([](Operation *op) {
      if (isa<AttentionOp>(op)) {
        op->emitError() << "bpt.attention must be tiled before it is "
                           "lowered: run bpt-tile-attention (or the "
                           "bpt-blockwise pipeline) first";
        return WalkResult::interrupt();
      }
      if (isa<AttentionGradOp>(op)) {
        op->emitError() << "bpt.attention_grad must be tiled before it is "
                           "lowered: run bpt-tile-attention (or the "
                           "bpt-blockwise pipeline) first";
        return WalkResult::interrupt();
      }
      if (isa<TransformerBlockOp>(op)) {
        op->emitError() << "bpt.transformer_block must be decomposed before "
                           "it is lowered: run bpt-decompose-block (or the "
                           "bpt-blockwise pipeline) first";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (unlowerable.wasInterrupted())
      return signalPassFailure();
    RewritePatternSet patterns(&getContext());
    populateBPTToLinalgPatterns(patterns);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};

} // namespace

Value bpt::buildActivation(OpBuilder &b, Location loc, Activation act,
                           Value x) {
  Type f32 = x.getType();
  auto cst = [&](double v) { return floatConstant(b, loc, f32, v); };
  auto half = [&](Value inner) {
    // 0.5 · x · (1 + inner)
    Value onePlus = arith::AddFOp::create(b, loc, cst(1.0), inner);
    Value halfX = arith::MulFOp::create(b, loc, cst(0.5), x);
    return arith::MulFOp::create(b, loc, halfX, onePlus).getResult();
  };
  switch (act) {
  case Activation::gelu:
  case Activation::geglu:
    return half(math::ErfOp::create(
        b, loc, arith::MulFOp::create(b, loc, x, cst(M_SQRT1_2))));
  case Activation::gelu_tanh: {
    Value cube = arith::MulFOp::create(
        b, loc, x, arith::MulFOp::create(b, loc, x, x));
    Value inner = arith::AddFOp::create(
        b, loc, x, arith::MulFOp::create(b, loc, cst(0.044715), cube));
    Value scaled = arith::MulFOp::create(
        b, loc, cst(std::sqrt(2.0 / M_PI)), inner);
    return half(math::TanhOp::create(b, loc, scaled));
  }
  case Activation::relu:
    return arith::MaximumFOp::create(b, loc, x, cst(0.0));
  case Activation::silu:
  case Activation::swiglu: {
    Value negExp = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x));
    return arith::DivFOp::create(b, loc, x,
                                 arith::AddFOp::create(b, loc, cst(1.0), negExp));
  }
  }
  llvm_unreachable("unknown activation");
}


void bpt::populateBPTToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<FFNToLinalg, LayerNormToLinalg, LinearToLinalg, RMSNormToLinalg>(
      patterns.getContext());
}
