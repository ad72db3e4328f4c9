//===- DecomposeBlock.cpp - expand bpt.transformer_block --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "BlockPieces.h"

#include "bpt/Dialect/BPTOps.h"
#include "bpt/Transforms/ChunkLoops.h"
#include "bpt/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace bpt {
#define GEN_PASS_DEF_BPTDECOMPOSEBLOCK
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::detail;

namespace {

/// Expands a pre-norm transformer block into norm, projections, attention,
/// FFN and residual additions; on the wgmma path, into its chunk loops.
struct DecomposeTransformerBlock final
    : OpRewritePattern<TransformerBlockOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(TransformerBlockOp op,
                                PatternRewriter &rewriter) const override {
    if (StrategyAttr strategy = StrategyAttr::get(op);
        strategy && strategy.getPath() == KernelPath::wgmma)
      buildBlockChunkLoops(rewriter, op, strategy);
    else
      decomposeTransformerBlock(rewriter, op);
    return success();
  }
};

struct BPTDecomposeBlockPass final
    : bpt::impl::BPTDecomposeBlockBase<BPTDecomposeBlockPass> {
  using Base::Base;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateDecomposeBlockPatterns(patterns);
    // One rewrite per op, nothing to iterate to a fixed point; unlike the
    // greedy driver, the walk neither folds nor erases the user's dead ops.
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};

} // namespace

void bpt::decomposeTransformerBlock(RewriterBase &rewriter,
                                    TransformerBlockOp op) {
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  Location loc = op.getLoc();
  auto inputType = op.getInput().getType();
  Type elementType = inputType.getElementType();
  int64_t batch = inputType.getDimSize(0), seq = inputType.getDimSize(1);
  int64_t headDim = op.getHeadDim();

  // The bpt ops the block becomes.
  SmallVector<Operation *> pieces;
  auto piece = [&](Operation *created) -> Value {
    pieces.push_back(created);
    return created->getResult(0);
  };
  auto norm = [&](Value x, Value weight, Value bias) -> Value {
    return piece(buildBlockNorm(rewriter, loc, op, x, weight, bias));
  };
  auto linear = [&](Value x, Value weight) -> Value {
    auto xType = cast<RankedTensorType>(x.getType());
    SmallVector<int64_t> shape(xType.getShape());
    shape.back() = cast<RankedTensorType>(weight.getType()).getDimSize(1);
    return piece(LinearOp::create(rewriter, loc,
                                  RankedTensorType::get(shape, elementType), x,
                                  weight, /*bias=*/Value()));
  };
  // [B, S, heads * D] -> [B, heads, S, D].
  auto splitHeads = [&](Value x, int64_t heads) -> Value {
    auto split =
        RankedTensorType::get({batch, seq, heads, headDim}, elementType);
    Value expanded = tensor::ExpandShapeOp::create(
        rewriter, loc, split, x,
        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
    Value init = tensor::EmptyOp::create(
        rewriter, loc, ArrayRef<int64_t>{batch, heads, seq, headDim},
        elementType);
    return linalg::TransposeOp::create(rewriter, loc, expanded, init,
                                       kSwapSeqAndHeads)
        .getResult()
        .front();
  };
  // [B, heads, S, D] -> [B, S, heads * D].
  auto mergeHeads = [&](Value x, int64_t heads) -> Value {
    Value init = tensor::EmptyOp::create(
        rewriter, loc, ArrayRef<int64_t>{batch, seq, heads, headDim},
        elementType);
    Value transposed =
        linalg::TransposeOp::create(rewriter, loc, x, init, kSwapSeqAndHeads)
            .getResult()
            .front();
    return tensor::CollapseShapeOp::create(
        rewriter, loc, transposed,
        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
  };

  Value x = op.getInput();
  Value h = norm(x, op.getNorm1Weight(), op.getNorm1Bias());
  Value q = splitHeads(linear(h, op.getWQ()), op.getHeads());
  Value k = splitHeads(linear(h, op.getWK()), op.getKvHeads());
  Value v = splitHeads(linear(h, op.getWV()), op.getKvHeads());
  Value attention =
      piece(AttentionOp::create(rewriter, loc, q.getType(), q, k, v,
                                op.getCausalAttr(), /*scale=*/FloatAttr()));
  Value projected =
      linear(mergeHeads(attention, op.getHeads()), op.getWO());
  Value residual = arith::AddFOp::create(rewriter, loc, x, projected);
  Value h2 = norm(residual, op.getNorm2Weight(), op.getNorm2Bias());
  Value ffn = piece(FFNOp::create(rewriter, loc, inputType, h2, op.getWIn(),
                                  op.getWOut(), op.getWGate(),
                                  op.getActivationAttr()));
  // The pieces of a portable block stay portable (and so are fused by
  // bpt-fuse-ffn-residual); those of a tensor-core block get strategies of
  // their own from bpt-select-strategy.
  if (StrategyAttr strategy = StrategyAttr::get(op);
      strategy && strategy.getPath() == KernelPath::portable)
    for (Operation *created : pieces)
      created->setAttr(StrategyAttr::kAttrName, strategy);
  rewriter.replaceOpWithNewOp<arith::AddFOp>(op, residual, ffn);
}

void bpt::populateDecomposeBlockPatterns(RewritePatternSet &patterns) {
  patterns.add<DecomposeTransformerBlock>(patterns.getContext());
}
