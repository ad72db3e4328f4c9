//===- DecomposeBlock.cpp - expand bpt.transformer_block --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "BlockPieces.h"

#include "bpt/Dialect/BPTOps.h"
#include "bpt/Transforms/ChunkLoops.h"
#include "bpt/Transforms/Passes.h"
#include "bpt/Utils/Builders.h"

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

namespace {

/// Builds the pieces of one block (norms, projections, head splits and
/// merges, attention, FFN) before it, remembering them so that a portable
/// block's strategy can be handed on. Shapes come from the values, so the
/// same builder makes the whole sequence's pieces and a query chunk's.
class BlockPieceBuilder {
public:
  BlockPieceBuilder(RewriterBase &b, TransformerBlockOp op)
      : b(b), op(op), loc(op.getLoc()),
        element(op.getInput().getType().getElementType()),
        headDim(op.getHeadDim()) {}

  Value norm(Value x, Value weight, Value bias) {
    return piece(buildBlockNorm(b, loc, op, x, weight, bias));
  }
  Value linear(Value x, Value weight) {
    auto xType = cast<RankedTensorType>(x.getType());
    SmallVector<int64_t> shape(xType.getShape());
    shape.back() = cast<RankedTensorType>(weight.getType()).getDimSize(1);
    return piece(LinearOp::create(b, loc, RankedTensorType::get(shape, element),
                                  x, weight, /*bias=*/Value()));
  }
  /// [B, S, heads * D] -> [B, heads, S, D].
  Value splitHeads(Value x, int64_t heads) {
    auto type = cast<RankedTensorType>(x.getType());
    int64_t batch = type.getDimSize(0), seq = type.getDimSize(1);
    auto split = RankedTensorType::get({batch, seq, heads, headDim}, element);
    Value expanded = tensor::ExpandShapeOp::create(
        b, loc, split, x, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
    Value init = tensor::EmptyOp::create(
        b, loc, ArrayRef<int64_t>{batch, heads, seq, headDim}, element);
    return linalg::TransposeOp::create(b, loc, expanded, init, kSwapSeqAndHeads)
        .getResult()
        .front();
  }
  /// [B, heads, S, D] -> [B, S, heads * D].
  Value mergeHeads(Value x, int64_t heads) {
    auto type = cast<RankedTensorType>(x.getType());
    int64_t batch = type.getDimSize(0), seq = type.getDimSize(2);
    Value init = tensor::EmptyOp::create(
        b, loc, ArrayRef<int64_t>{batch, seq, heads, headDim}, element);
    Value transposed =
        linalg::TransposeOp::create(b, loc, x, init, kSwapSeqAndHeads)
            .getResult()
            .front();
    return tensor::CollapseShapeOp::create(
        b, loc, transposed, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
  }
  AttentionOp attention(Value q, Value k, Value v) {
    auto a = AttentionOp::create(b, loc, q.getType(), q, k, v,
                                 op.getCausalAttr(), /*scale=*/FloatAttr());
    pieces.push_back(a);
    return a;
  }
  /// The part of the block after attention: the output projection, both
  /// residuals, the second norm and the FFN, on the rows of `x` (the
  /// block's input) that `attended` ([B, heads, rows, D]) belongs to.
  Value afterAttention(Value x, Value attended) {
    Value projected = linear(mergeHeads(attended, op.getHeads()), op.getWO());
    Value residual = arith::AddFOp::create(b, loc, x, projected);
    Value h2 = norm(residual, op.getNorm2Weight(), op.getNorm2Bias());
    Value ffn =
        piece(FFNOp::create(b, loc, x.getType(), h2, op.getWIn(), op.getWOut(),
                            op.getWGate(), op.getActivationAttr()));
    return arith::AddFOp::create(b, loc, residual, ffn);
  }

  /// The pieces of a portable block stay portable (and so are fused by
  /// bpt-fuse-ffn-residual); those of a tensor-core block get strategies
  /// of their own from bpt-select-strategy.
  void handOnStrategy() {
    if (StrategyAttr strategy = StrategyAttr::get(op);
        strategy && strategy.getPath() == KernelPath::portable)
      for (Operation *created : pieces)
        created->setAttr(StrategyAttr::kAttrName, strategy);
  }

private:
  Value piece(Operation *created) {
    pieces.push_back(created);
    return created->getResult(0);
  }

  RewriterBase &b;
  TransformerBlockOp op;
  Location loc;
  Type element;
  int64_t headDim;
  SmallVector<Operation *> pieces;
};

} // namespace

void bpt::decomposeTransformerBlock(RewriterBase &rewriter,
                                    TransformerBlockOp op) {
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  BlockPieceBuilder p(rewriter, op);
  Value x = op.getInput();
  Value h = p.norm(x, op.getNorm1Weight(), op.getNorm1Bias());
  Value q = p.splitHeads(p.linear(h, op.getWQ()), op.getHeads());
  Value k = p.splitHeads(p.linear(h, op.getWK()), op.getKvHeads());
  Value v = p.splitHeads(p.linear(h, op.getWV()), op.getKvHeads());
  Value y = p.afterAttention(x, p.attention(q, k, v).getResult());
  p.handOnStrategy();
  rewriter.replaceOp(op, y);
}

SmallVector<QueryChunkAttention> bpt::decomposeTransformerBlockInQueryChunks(
    RewriterBase &rewriter, TransformerBlockOp op, int64_t chunkRows) {
  assert(chunkRows > 0 && "a chunk has rows");
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  Location loc = op.getLoc();
  BlockPieceBuilder p(rewriter, op);
  int64_t seq = op.getInput().getType().getDimSize(1);

  // The whole sequence's first norm, keys and values: every chunk reads
  // them.
  Value x = op.getInput();
  Value h = p.norm(x, op.getNorm1Weight(), op.getNorm1Bias());
  Value k = p.splitHeads(p.linear(h, op.getWK()), op.getKvHeads());
  Value v = p.splitHeads(p.linear(h, op.getWV()), op.getKvHeads());

  SmallVector<QueryChunkAttention> attentions;
  SmallVector<Value> outputs;
  for (int64_t first = 0; first < seq; first += chunkRows) {
    int64_t count = std::min(chunkRows, seq - first);
    Value xChunk = sliceAlong(rewriter, loc, x, 1, first, count);
    Value hChunk = sliceAlong(rewriter, loc, h, 1, first, count);
    Value q = p.splitHeads(p.linear(hChunk, op.getWQ()), op.getHeads());
    // Causal: the chunk's queries see keys [0, first + count); with those
    // keys, the op's bottom-right diagonal (key j for query i iff
    // j <= i + first) is the whole sequence's. (The last chunk's slice is
    // all keys; it stays a slice so that the keys' gradient is gathered
    // from slices alone.)
    Value kChunk = k, vChunk = v;
    if (op.getCausal()) {
      kChunk = sliceAlong(rewriter, loc, k, 2, 0, first + count);
      vChunk = sliceAlong(rewriter, loc, v, 2, 0, first + count);
    }
    AttentionOp a = p.attention(q, kChunk, vChunk);
    attentions.push_back({a, first});
    outputs.push_back(p.afterAttention(xChunk, a.getResult()));
  }
  p.handOnStrategy();
  rewriter.replaceOp(op, outputs.size() == 1
                             ? outputs.front()
                             : tensor::ConcatOp::create(rewriter, loc,
                                                        /*dim=*/1, outputs)
                                   .getResult());
  return attentions;
}

void bpt::populateDecomposeBlockPatterns(RewritePatternSet &patterns) {
  patterns.add<DecomposeTransformerBlock>(patterns.getContext());
}
