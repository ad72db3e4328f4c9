//===- BPTToLinalg.cpp - lower bpt ops to linalg ----------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/EpilogueActivation.h"
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

/// d/dx of `buildActivation(act, x)` for an f32 scalar, with the
/// reference's formulas (relu'(0) = 0).
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

/// The FFN of `op` on the rows `x` ([..., hidden]), rounded to the result's
/// element type: [rows, ffn] f32 intermediates (two when gated).
Value lowerFFN(PatternRewriter &rewriter, Location loc, FFNOp op, Value x) {
  Activation act = op.getActivation();
  Value up = contract(rewriter, loc, x, op.getWIn());
  RowMaps maps(rewriter.getContext(),
               cast<RankedTensorType>(up.getType()).getRank());
  Value hidden;
  if (Value gateWeight = op.getWGate()) {
    Value gate = contract(rewriter, loc, x, gateWeight);
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
    hidden =
        buildGeneric(rewriter, loc, {}, up, {maps.identity()}, maps.rank, {},
                     [&](OpBuilder &nb, Location nl, ValueRange args) {
                       return SmallVector<Value>{
                           buildActivation(nb, nl, act, args[0])};
                     })
            .front();
  }
  Value out = contract(rewriter, loc, hidden, op.getWOut());
  return roundTo(rewriter, loc, out, op.getResult().getType().getElementType());
}

/// A portable FFN whose strategy gives chunk rows fewer than its rows runs
/// chunk by chunk of rows (unrolled; rows are independent), each chunk's
/// result inserted into the output: its [rows, ffn] intermediates exist
/// one chunk at a time.
struct FFNToLinalg final : OpRewritePattern<FFNOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(FFNOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = op.getResult().getType();
    int64_t rows = type.getNumElements() / type.getShape().back();
    StrategyAttr strategy = StrategyAttr::get(op);
    int64_t chunk = strategy ? strategy.getChunkRows() : 0;
    if (chunk <= 0 || chunk >= rows) {
      rewriter.replaceOp(op, lowerFFN(rewriter, loc, op, op.getInput()));
      return success();
    }
    Value x = asMatrix(rewriter, loc, op.getInput());
    Value out = tensor::EmptyOp::create(
        rewriter, loc, ArrayRef<int64_t>{rows, type.getShape().back()},
        type.getElementType());
    for (int64_t first = 0; first < rows; first += chunk) {
      int64_t count = std::min(chunk, rows - first);
      Value part = lowerFFN(rewriter, loc, op,
                            sliceAlong(rewriter, loc, x, 0, first, count));
      out = insertRows(rewriter, loc, part, out, first);
    }
    rewriter.replaceOp(op, fromMatrix(rewriter, loc, out, type));
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Gradients
//===----------------------------------------------------------------------===//





/// `a [R, M]ᵀ · c [R, N]` in f32: the weight gradient of a product, summed
/// over the rows.
Value transposedProduct(OpBuilder &b, Location loc, Value a, Value c) {
  return buildMatmulTransposedA(b, loc, a, c,
                                zeros(b, loc, dimOf(a, 1), dimOf(c, 1)));
}


/// Replaces `op` by `values`, each rounded to its result's element type
/// (and reshaped from [rows, N] to it where `op`'s result is not a matrix).
void replaceWithGradients(PatternRewriter &rewriter, Operation *op,
                          ArrayRef<Value> values) {
  SmallVector<Value> results;
  for (auto [value, result] : llvm::zip_equal(values, op->getResults())) {
    auto type = cast<RankedTensorType>(result.getType());
    Value rounded =
        roundTo(rewriter, op->getLoc(), value, type.getElementType());
    if (cast<RankedTensorType>(rounded.getType()).getRank() != type.getRank())
      rounded = fromMatrix(rewriter, op->getLoc(), rounded, type);
    results.push_back(rounded);
  }
  rewriter.replaceOp(op, results);
}

/// acc + op(lhs)·op(rhs) in f32 as one linalg.matmul (transposes are its
/// indexing maps), rounded to the result's type.
struct MatmulToLinalg final : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MatmulOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value acc = op.getAccumulator();
    if (!acc)
      acc = zeros(rewriter, loc, op.getM(), op.getN());
    Value product = buildMatmul(rewriter, loc, op.getLhs(), op.getRhs(), acc,
                                op.getTransposeLhs(), op.getTransposeRhs());
    Type element = op.getResult().getType().getElementType();
    std::optional<Activation> act = op.getActivation();
    if (!act) {
      rewriter.replaceOp(op, roundTo(rewriter, loc, product, element));
      return success();
    }
    // The activation-gradient epilogue: one elementwise pass over the
    // product and the pre-activation, each output rounded once.
    int64_t m = op.getM(), n = op.getN();
    SmallVector<Value> inits;
    for (int i = 0; i < 2; ++i)
      inits.push_back(tensor::EmptyOp::create(rewriter, loc, {m, n}, element));
    SmallVector<AffineMap> maps(
        4, AffineMap::getMultiDimIdentityMap(2, getContext()));
    rewriter.replaceOp(
        op, buildGeneric(rewriter, loc, {product, op.getPre()}, inits, maps, 2,
                         {}, [&](OpBuilder &nb, Location nl, ValueRange args) {
                           auto [scaled, activated] = buildActivationGradient(
                               nb, nl, *act, args[0], args[1]);
                           return SmallVector<Value>{
                               convertFloat(nb, nl, scaled, element),
                               convertFloat(nb, nl, activated, element)};
                         }));
    return success();
  }
};

/// dx = dy·wᵀ, dw = xᵀ·dy, db = Σ_rows dy; the transposes are indexing
/// maps of the matmuls.
struct LinearGradToLinalg final : OpRewritePattern<LinearGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearGradOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = asMatrix(rewriter, loc, op.getInput());
    Value dy = asMatrix(rewriter, loc, op.getResultGrad());
    Value w = op.getWeight();
    Value dx = buildMatmul(rewriter, loc, dy, w,
                           zeros(rewriter, loc, dimOf(dy, 0), dimOf(w, 0)),
                           /*transposeB=*/true);
    SmallVector<Value> grads = {dx, transposedProduct(rewriter, loc, x, dy)};
    if (op.getBiasGrad())
      grads.push_back(columnSums(rewriter, loc, dy));
    replaceWithGradients(rewriter, op, grads);
    return success();
  }
};

/// u = x·w_in (g = x·w_gate), dh = dy·w_outᵀ; one elementwise pass gives
/// the hidden activation h and du (dg); then the weight gradients are
/// transposed products and dx accumulates du·w_inᵀ (+ dg·w_gateᵀ).
struct FFNGradToLinalg final : OpRewritePattern<FFNGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(FFNGradOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Activation act = op.getActivation();
    Value x = asMatrix(rewriter, loc, op.getInput());
    Value dy = asMatrix(rewriter, loc, op.getResultGrad());
    Value wIn = op.getWIn(), wOut = op.getWOut(), wGate = op.getWGate();
    int64_t rows = dimOf(x, 0), hidden = dimOf(x, 1), width = dimOf(wIn, 1);
    auto product = [&](Value a, Value bMatrix, bool transposeB) {
      return buildMatmul(rewriter, loc, a, bMatrix,
                         zeros(rewriter, loc, rows,
                               dimOf(bMatrix, transposeB ? 0 : 1)),
                         transposeB);
    };
    Value up = product(x, wIn, false);
    Value dHidden = product(dy, wOut, true);
    Value gate = wGate ? product(x, wGate, false) : Value();

    // Outputs: h, du (and dg), each [rows, F] in f32.
    MLIRContext *ctx = getContext();
    AffineMap id = AffineMap::getMultiDimIdentityMap(2, ctx);
    SmallVector<Value> inputs = {up, dHidden};
    if (gate)
      inputs.push_back(gate);
    SmallVector<Value> inits;
    for (int i = 0, e = gate ? 3 : 2; i < e; ++i)
      inits.push_back(tensor::EmptyOp::create(rewriter, loc, {rows, width},
                                              rewriter.getF32Type()));
    SmallVector<AffineMap> maps(inputs.size() + inits.size(), id);
    SmallVector<Value> pieces = buildGeneric(
        rewriter, loc, inputs, inits, maps, 2, {},
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value u = args[0], dh = args[1];
          if (!gate) {
            auto [du, h] = buildActivationGradient(nb, nl, act, dh, u);
            return SmallVector<Value>{h, du};
          }
          Value g = args[2];
          Value actG = buildActivation(nb, nl, act, g);
          Value dhU = arith::MulFOp::create(nb, nl, dh, u);
          return SmallVector<Value>{
              arith::MulFOp::create(nb, nl, actG, u),
              arith::MulFOp::create(nb, nl, dh, actG),
              arith::MulFOp::create(
                  nb, nl, dhU, buildActivationDerivative(nb, nl, act, g))};
        });
    Value h = pieces[0], du = pieces[1];

    Value dx = buildMatmul(rewriter, loc, du, wIn,
                           zeros(rewriter, loc, rows, hidden),
                           /*transposeB=*/true);
    SmallVector<Value> grads = {Value(), transposedProduct(rewriter, loc, x, du),
                                transposedProduct(rewriter, loc, h, dy)};
    if (gate) {
      Value dg = pieces[2];
      dx = buildMatmul(rewriter, loc, dg, wGate, dx, /*transposeB=*/true);
      grads.push_back(transposedProduct(rewriter, loc, x, dg));
    }
    grads[0] = dx;
    replaceWithGradients(rewriter, op, grads);
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

/// The per-row statistics of a norm, in f32: the mean (layer_norm only,
/// else null) and 1 / sqrt(mean of squares around it + epsilon).
struct NormStatistics {
  Value mean, invStd;
};

NormStatistics normStatistics(OpBuilder &b, Location loc, Value x,
                              const RowMaps &maps, bool withMean,
                              double epsilon) {
  auto type = cast<RankedTensorType>(x.getType());
  Type f32 = b.getF32Type();
  double width = static_cast<double>(type.getShape().back());
  auto cst = [&](OpBuilder &nb, Location nl, double v) {
    return floatConstant(nb, nl, f32, v);
  };
  auto identity = [](OpBuilder &, Location, Value v) { return v; };

  // mean (layer norm only), then the mean of squares around it.
  Value mean;
  if (withMean)
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
  return {mean, invStd};
}

/// Lowers layer_norm (with `bias`) or rms_norm (without): statistics per
/// row in f32, then one pass that normalises, scales, shifts and rounds.
Value lowerNorm(OpBuilder &b, Location loc, Value x, Value weight, Value bias,
                double epsilon) {
  auto type = cast<RankedTensorType>(x.getType());
  RowMaps maps(b.getContext(), type.getRank());
  Type f32 = b.getF32Type();
  auto [mean, invStd] =
      normStatistics(b, loc, x, maps, /*withMean=*/bool(bias), epsilon);

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

/// Whether a norm is left for its row kernel (bpt-norm-to-rowwise).
bool keptForRowKernel(Operation *norm, bool keepRowwise) {
  StrategyAttr strategy = StrategyAttr::get(norm);
  return keepRowwise && strategy && strategy.getPath() == KernelPath::rowwise;
}

struct LayerNormToLinalg final : OpRewritePattern<LayerNormOp> {
  LayerNormToLinalg(MLIRContext *ctx, bool keepRowwise)
      : OpRewritePattern(ctx), keepRowwise(keepRowwise) {}
  bool keepRowwise;
  LogicalResult matchAndRewrite(LayerNormOp op,
                                PatternRewriter &rewriter) const override {
    if (keptForRowKernel(op, keepRowwise))
      return failure();
    rewriter.replaceOp(op, lowerNorm(rewriter, op.getLoc(), op.getInput(),
                                     op.getWeight(), op.getBias(),
                                     op.getEpsilon().convertToDouble()));
    return success();
  }
};

struct RMSNormToLinalg final : OpRewritePattern<RMSNormOp> {
  RMSNormToLinalg(MLIRContext *ctx, bool keepRowwise)
      : OpRewritePattern(ctx), keepRowwise(keepRowwise) {}
  bool keepRowwise;
  LogicalResult matchAndRewrite(RMSNormOp op,
                                PatternRewriter &rewriter) const override {
    if (keptForRowKernel(op, keepRowwise))
      return failure();
    rewriter.replaceOp(op, lowerNorm(rewriter, op.getLoc(), op.getInput(),
                                     op.getWeight(), /*bias=*/Value(),
                                     op.getEpsilon().convertToDouble()));
    return success();
  }
};

/// x̂ = (x − mean)·inv (mean null for rms_norm), in f32.
Value normalised(OpBuilder &b, Location loc, Value x, Value mean,
                 Value invStd) {
  Value v = convertFloat(b, loc, x, b.getF32Type());
  if (mean)
    v = arith::SubFOp::create(b, loc, v, mean);
  return arith::MulFOp::create(b, loc, v, invStd);
}

/// Builds the gradients of layer_norm (with the mean) or rms_norm (without),
/// per row with x̂ = (x − mean)·inv and g = dy ⊙ w: dx = inv·(g − mean(g) −
/// x̂·mean(g ⊙ x̂)) (no mean(g) term for rms_norm); dw = Σ_rows dy ⊙ x̂ and,
/// for layer_norm, db = Σ_rows dy. On x and dy viewed as [rows, N]
/// matrices, generics after the statistics: per-row sums, dx, per-channel
/// sums, each sum a generic of its own (one reduction dimension and one
/// output: the form bpt-split-reductions splits for the GPU).
class NormGradBuilder {
public:
  NormGradBuilder(OpBuilder &b, Location loc, Value x, Value weight, Value dy,
                  bool withMean, double epsilon)
      : b(b), loc(loc), x(asMatrix(b, loc, x)), weight(weight),
        dy(asMatrix(b, loc, dy)), withMean(withMean),
        type(cast<RankedTensorType>(this->x.getType())),
        maps(b.getContext(), type.getRank()), f32(b.getF32Type()) {
    auto [mean, invStd] =
        normStatistics(b, loc, this->x, maps, withMean, epsilon);
    stats.push_back(invStd);
    if (mean)
      stats.push_back(mean);
  }

  /// dx, dw[, db] in f32.
  SmallVector<Value> build() {
    SmallVector<Value> grads = {inputGrad(rowSums())};
    grads.append(channelSums());
    return grads;
  }

private:
  Value f32Of(OpBuilder &nb, Location nl, Value v) {
    return convertFloat(nb, nl, v, f32);
  }
  /// x̂ from the block arguments of `x` and of the statistics.
  Value xHat(OpBuilder &nb, Location nl, Value xv, ValueRange statArgs) {
    return normalised(nb, nl, xv, withMean ? statArgs[1] : Value(),
                      statArgs[0]);
  }
  /// The sums of the per-row and per-channel reductions: Σ ... ⊙ x̂, and
  /// Σ ... for layer_norm.
  int64_t numSums() const { return withMean ? 2 : 1; }
  /// x, dy, w, then the statistics: the operands of the per-row generics.
  SmallVector<Value> rowInputs() {
    SmallVector<Value> inputs = {x, dy, weight};
    inputs.append(stats);
    return inputs;
  }
  SmallVector<AffineMap> rowInputMaps() {
    SmallVector<AffineMap> indexing = {maps.identity(), maps.identity(),
                                       maps.perChannel()};
    indexing.append(stats.size(), maps.perRow());
    return indexing;
  }

  /// One generic per sum: Σ t ⊙ x̂, then Σ t for layer_norm, of the term t
  /// that `term` builds from the block arguments, over the dimension
  /// `reduced` of [rows, N], into f32 zeros of `shape`. `inputs` start with
  /// x and hold the statistics from `statsAt` on; `indexing` has their
  /// maps and the result's.
  SmallVector<Value>
  sums(ArrayRef<Value> inputs, ArrayRef<AffineMap> indexing,
       ArrayRef<int64_t> shape, unsigned reduced, size_t statsAt,
       function_ref<Value(OpBuilder &, Location, ValueRange)> term) {
    SmallVector<Value> results;
    for (int64_t which = 0; which < numSums(); ++which)
      results.push_back(
          buildGeneric(
              b, loc, inputs, filledTensor(b, loc, shape, f32, 0.0),
              indexing, maps.rank, {reduced},
              [&](OpBuilder &nb, Location nl, ValueRange args) {
                Value t = term(nb, nl, args);
                if (which == 0)
                  t = arith::MulFOp::create(
                      nb, nl, t,
                      xHat(nb, nl, args[0],
                           args.slice(statsAt, stats.size())));
                return SmallVector<Value>{
                    arith::AddFOp::create(nb, nl, t, args.back())};
              })
              .front());
    return results;
  }

  /// Per row: Σ g ⊙ x̂, and Σ g for layer_norm.
  SmallVector<Value> rowSums() {
    SmallVector<AffineMap> indexing = rowInputMaps();
    indexing.push_back(maps.perRow());
    return sums(rowInputs(), indexing, type.getShape().drop_back(),
                maps.rank - 1, /*statsAt=*/3,
                [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                  return arith::MulFOp::create(nb, nl, f32Of(nb, nl, args[1]),
                                               f32Of(nb, nl, args[2]));
                });
  }

  /// dx = inv·(g − x̂·mean(g ⊙ x̂) [− mean(g)]), elementwise.
  Value inputGrad(ArrayRef<Value> sums) {
    SmallVector<Value> inputs = rowInputs();
    inputs.append(sums.begin(), sums.end());
    SmallVector<AffineMap> indexing = rowInputMaps();
    indexing.append(sums.size(), maps.perRow());
    indexing.push_back(maps.identity());
    Value init = tensor::EmptyOp::create(b, loc, type.getShape(), f32);
    double invWidth = 1.0 / static_cast<double>(type.getShape().back());
    size_t numStats = stats.size();
    return buildGeneric(
               b, loc, inputs, init, indexing, maps.rank, {},
               [&](OpBuilder &nb, Location nl, ValueRange args) {
                 ValueRange statArgs = args.slice(3, numStats);
                 ValueRange sumArgs = args.slice(3 + numStats, sums.size());
                 Value scale = floatConstant(nb, nl, f32, invWidth);
                 Value g = arith::MulFOp::create(
                     nb, nl, f32Of(nb, nl, args[1]), f32Of(nb, nl, args[2]));
                 Value meanGX = arith::MulFOp::create(nb, nl, sumArgs[0], scale);
                 Value v = arith::SubFOp::create(
                     nb, nl, g,
                     arith::MulFOp::create(
                         nb, nl, xHat(nb, nl, args[0], statArgs), meanGX));
                 if (withMean)
                   v = arith::SubFOp::create(
                       nb, nl, v,
                       arith::MulFOp::create(nb, nl, sumArgs[1], scale));
                 return SmallVector<Value>{
                     arith::MulFOp::create(nb, nl, v, statArgs[0])};
               })
        .front();
  }

  /// dw = Σ dy ⊙ x̂ (and db = Σ dy) over the rows.
  SmallVector<Value> channelSums() {
    SmallVector<Value> inputs = {x, dy};
    inputs.append(stats);
    SmallVector<AffineMap> indexing = {maps.identity(), maps.identity()};
    indexing.append(stats.size(), maps.perRow());
    indexing.push_back(maps.perChannel());
    return sums(inputs, indexing, type.getShape().back(), /*reduced=*/0,
                /*statsAt=*/2,
                [&](OpBuilder &nb, Location nl, ValueRange args) {
                  return f32Of(nb, nl, args[1]);
                });
  }

  OpBuilder &b;
  Location loc;
  Value x, weight, dy;
  bool withMean;
  RankedTensorType type;
  RowMaps maps;
  Type f32;
  /// The per-row statistics the generics read: inv, then the mean for
  /// layer_norm.
  SmallVector<Value, 2> stats;
};

struct LayerNormGradToLinalg final : OpRewritePattern<LayerNormGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormGradOp op,
                                PatternRewriter &rewriter) const override {
    replaceWithGradients(
        rewriter, op,
        NormGradBuilder(rewriter, op.getLoc(), op.getInput(), op.getWeight(),
                        op.getResultGrad(), /*withMean=*/true,
                        op.getEpsilon().convertToDouble())
            .build());
    return success();
  }
};

struct RMSNormGradToLinalg final : OpRewritePattern<RMSNormGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RMSNormGradOp op,
                                PatternRewriter &rewriter) const override {
    replaceWithGradients(
        rewriter, op,
        NormGradBuilder(rewriter, op.getLoc(), op.getInput(), op.getWeight(),
                        op.getResultGrad(), /*withMean=*/false,
                        op.getEpsilon().convertToDouble())
            .build());
    return success();
  }
};

struct BPTConvertToLinalgPass final
    : bpt::impl::BPTConvertToLinalgBase<BPTConvertToLinalgPass> {
  using Base::Base;
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
    populateBPTToLinalgPatterns(patterns, keepRowwise);
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

Value bpt::buildEpilogueActivation(OpBuilder &b, Location loc, Activation act,
                                   Value x) {
  Type f32 = x.getType();
  auto cst = [&](double v) { return floatConstant(b, loc, f32, v); };
  auto fma = [&](Value a, Value m, Value acc) -> Value {
    return math::FmaOp::create(b, loc, a, m, acc);
  };
  // Approximate functions allowed (`afn`): ex2 flushes a subnormal result
  // to 0 (bpt-math-to-intrinsics), far below the outputs' rounding.
  auto fast =
      arith::FastMathFlagsAttr::get(b.getContext(), arith::FastMathFlags::afn);
  auto exp2 = [&](Value v) -> Value {
    return math::Exp2Op::create(b, loc, v, fast);
  };
  using namespace epilogue;
  switch (act) {
  case Activation::gelu:
  case Activation::geglu: {
    // max(x, 0) − min(u, U)·2^(u²·(−log2 e / 2) + R(min(u, U))), u = |x|.
    Value u = math::AbsFOp::create(b, loc, x);
    Value clamped = arith::MinimumFOp::create(b, loc, u, cst(kGeluClamp));
    Value s = fma(clamped, cst(kGeluScale), cst(-1.0));
    Value r = cst(kGeluR.back());
    for (int i = int(kGeluR.size()) - 2; i >= 0; --i)
      r = fma(r, s, cst(kGeluR[i]));
    Value square = arith::MulFOp::create(b, loc, u, u);
    Value tail = exp2(fma(square, cst(kGeluGaussian), r));
    Value relu = arith::MaximumFOp::create(b, loc, x, cst(0.0));
    return fma(arith::NegFOp::create(b, loc, clamped), tail, relu);
  }
  case Activation::silu:
  case Activation::swiglu:
  case Activation::gelu_tanh: {
    // x·σ(v) = x / (1 + 2^(−v·log2 e)): v = x, or for GELU-tanh
    // 2·√(2/π)·(x + 0.044715·x³) (0.5·(1 + tanh(y)) = σ(2y)).
    Value v = x;
    if (act == Activation::gelu_tanh) {
      Value square = arith::MulFOp::create(b, loc, x, x);
      Value inner =
          fma(arith::MulFOp::create(b, loc, cst(kGeluTanhCubic), x), square, x);
      v = arith::MulFOp::create(b, loc, cst(kGeluTanhScale), inner);
    }
    Value negExp = exp2(arith::MulFOp::create(b, loc, v, cst(-kLog2E)));
    return arith::DivFOp::create(
        b, loc, x, arith::AddFOp::create(b, loc, cst(1.0), negExp), fast);
  }
  case Activation::relu:
    return buildActivation(b, loc, act, x);
  }
  llvm_unreachable("unknown activation");
}

Value bpt::buildActivationDerivative(OpBuilder &b, Location loc,
                                     Activation act, Value x) {
  Type f32 = x.getType();
  auto cst = [&](double v) { return floatConstant(b, loc, f32, v); };
  auto mul = [&](Value l, Value r) {
    return arith::MulFOp::create(b, loc, l, r).getResult();
  };
  auto add = [&](Value l, Value r) {
    return arith::AddFOp::create(b, loc, l, r).getResult();
  };
  switch (act) {
  case Activation::gelu:
  case Activation::geglu: {
    // Φ(x) + x·φ(x), φ(x) = exp(−z²)/√(2π) with z = x/√2, the Gaussian
    // written as bpt-approximate-math writes erf(z)'s (2^(|z|²·−log2 e)),
    // so that an epilogue computing both shares one ex2.
    Value z = mul(x, cst(M_SQRT1_2));
    Value cdf = mul(cst(0.5), add(cst(1.0), math::ErfOp::create(b, loc, z)));
    Value az = math::AbsFOp::create(b, loc, z);
    Value gauss =
        math::Exp2Op::create(b, loc, mul(mul(az, az), cst(-M_LOG2E)));
    Value pdf = mul(cst(1.0 / std::sqrt(2.0 * M_PI)), gauss);
    return add(cdf, mul(x, pdf));
  }
  case Activation::gelu_tanh: {
    // 0.5·(1 + t) + 0.5·x·(1 − t²)·c·(1 + 3·0.044715·x²).
    double c = std::sqrt(2.0 / M_PI);
    Value square = mul(x, x);
    Value t = math::TanhOp::create(
        b, loc, mul(cst(c), add(x, mul(cst(0.044715), mul(x, square)))));
    Value oneMinusT2 = arith::SubFOp::create(b, loc, cst(1.0), mul(t, t));
    Value inner = add(cst(1.0), mul(cst(3.0 * 0.044715), square));
    return add(mul(cst(0.5), add(cst(1.0), t)),
               mul(mul(cst(0.5 * c), x), mul(oneMinusT2, inner)));
  }
  case Activation::relu: {
    // relu'(0) = 0, as the reference.
    Value positive =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, x, cst(0.0));
    return arith::SelectOp::create(b, loc, positive, cst(1.0), cst(0.0));
  }
  case Activation::silu:
  case Activation::swiglu: {
    // σ(x)·(1 + x·(1 − σ(x))).
    Value sigmoid = arith::DivFOp::create(
        b, loc, cst(1.0),
        add(cst(1.0),
            math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x))));
    Value oneMinus = arith::SubFOp::create(b, loc, cst(1.0), sigmoid);
    return mul(sigmoid, add(cst(1.0), mul(x, oneMinus)));
  }
  }
  llvm_unreachable("unknown activation");
}

std::pair<Value, Value> bpt::buildActivationGradient(OpBuilder &b, Location loc,
                                                     Activation act,
                                                     Value product, Value pre) {
  Value activated = buildActivation(b, loc, act, pre);
  Value scaled = arith::MulFOp::create(
      b, loc, product, buildActivationDerivative(b, loc, act, pre));
  return {scaled, activated};
}

void bpt::populateBPTToLinalgPatterns(RewritePatternSet &patterns,
                                      bool keepRowwiseNorms) {
  patterns.add<FFNGradToLinalg, FFNToLinalg, LayerNormGradToLinalg,
               LinearGradToLinalg, LinearToLinalg, MatmulToLinalg,
               RMSNormGradToLinalg>(patterns.getContext());
  patterns.add<LayerNormToLinalg, RMSNormToLinalg>(patterns.getContext(),
                                                   keepRowwiseNorms);
}
