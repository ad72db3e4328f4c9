//===- TileAttention.cpp - blockwise attention ------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "BlockwiseAttention.h"

#include "bpt/Dialect/BPTOps.h"
#include "bpt/Transforms/Blockwise.h"
#include "bpt/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace bpt {
#define GEN_PASS_DEF_BPTTILEATTENTION
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::detail;

LogicalResult bpt::verifyBlockSizes(Operation *anchor, StringRef pass,
                                    int64_t qBlock, int64_t kvBlock) {
  for (auto [name, size] : {std::make_pair("q-block", qBlock),
                            std::make_pair("kv-block", kvBlock)})
    if (size < 1 || size > INT32_MAX)
      return anchor->emitError()
             << pass << ": option " << name
             << (size < 1 ? " must be positive, got "
                          : " must be at most 2147483647, got ")
             << size;
  return success();
}

void bpt::remarkClampedBlockSizes(Location loc, StrategyAttr strategy,
                                  StringRef pass, int64_t qBlock,
                                  int64_t kvBlock, int64_t qSeq,
                                  int64_t kvSeq) {
  // A tensor-core kernel's tiles come from its strategy, not the options.
  if (strategy && strategy.getPath() != KernelPath::portable)
    return;
  for (auto [name, size, seq, what] :
       {std::make_tuple("q-block", qBlock, qSeq, "query"),
        std::make_tuple("kv-block", kvBlock, kvSeq, "key/value")})
    if (size > seq)
      emitRemark(loc) << pass << ": " << name << "=" << size
                       << " is larger than the " << seq << "-row " << what
                       << " sequence: clamped to " << seq
                       << " (one block covers it)";
}

std::pair<int64_t, int64_t> bpt::blockSizesOf(Operation *op, int64_t qBlock,
                                              int64_t kvBlock,
                                              bool portableOnly) {
  StrategyAttr strategy = StrategyAttr::get(op);
  if (!strategy)
    return {qBlock, kvBlock};
  // A split over the keys is two nests of its own, never fused.
  if (portableOnly && (strategy.getPath() != KernelPath::portable ||
                       strategy.getKvSplits() > 0))
    return {0, 0};
  return {strategy.getQBlock() ? strategy.getQBlock() : qBlock,
          strategy.getKvBlock() ? strategy.getKvBlock() : kvBlock};
}

void bpt::setBlockSizeAttrs(Operation *loop, int64_t qBlock, int64_t kvBlock) {
  Builder b(loop->getContext());
  loop->setAttr("bpt.q_block", b.getI64IntegerAttr(qBlock));
  loop->setAttr("bpt.kv_block", b.getI64IntegerAttr(kvBlock));
}

scf::ForallOp bpt::tileAttentionNest(OpBuilder &b, AttentionOp op,
                                     int64_t qBlock, int64_t kvBlock) {
  StrategyAttr strategy = StrategyAttr::get(op);
  if (strategy && strategy.getKvSplits() > 0) {
    // All query rows of a key/value group are one tile: the query block is
    // the whole query sequence.
    AttentionTiling tiling = AttentionTiling::get(
        op, op.getQuery().getType().getDimSize(2), kvBlock);
    tiling.packedHeads = tiling.qHeads / tiling.kvHeads;
    SplitKVNests nests =
        buildSplitKVAttention(b, op.getLoc(), tiling, strategy.getKvSplits(),
                              op.getQuery(), op.getKey(), op.getValue());
    nests.partials->setAttr(StrategyAttr::kAttrName, strategy);
    nests.combine->setAttr(StrategyAttr::kAttrName, strategy);
    return nests.combine;
  }
  scf::ForallOp nest = buildAttentionNest(
      b, op.getLoc(), AttentionTiling::get(op, qBlock, kvBlock),
      op.getQuery(), op.getKey(), op.getValue());
  if (StrategyAttr strategy = StrategyAttr::get(op))
    nest->setAttr(StrategyAttr::kAttrName, strategy);
  return nest;
}

Value bpt::tileAttention(OpBuilder &b, AttentionOp op, int64_t qBlock,
                         int64_t kvBlock) {
  return tileAttentionNest(b, op, qBlock, kvBlock).getResult(0);
}

namespace {

struct BPTTileAttentionPass final
    : bpt::impl::BPTTileAttentionBase<BPTTileAttentionPass> {
  using Base::Base;

  void runOnOperation() override {
    if (failed(verifyBlockSizes(getOperation(), getArgument(), qBlock,
                                kvBlock)))
      return signalPassFailure();
    // Only sizes the user gave are reported (a default larger than a short
    // sequence is no news).
    bool report = reportBlockSizes && (qBlock.hasValue() || kvBlock.hasValue());
    SmallVector<AttentionOp> ops;
    getOperation().walk([&](AttentionOp op) { ops.push_back(op); });
    OpBuilder b(&getContext());
    for (AttentionOp op : ops) {
      b.setInsertionPoint(op);
      if (StrategyAttr strategy = StrategyAttr::get(op);
          strategy && strategy.getKvSplits() > 0) {
        if (op.getLse()) {
          op.emitError() << getArgument()
                         << ": a split over the keys (kv_splits = "
                         << strategy.getKvSplits()
                         << ") does not return the log-sum-exp";
          return signalPassFailure();
        }
        if (strategy.getPath() == KernelPath::wgmma) {
          op.emitError() << getArgument()
                         << ": a split over the keys runs on the mma_sync "
                            "or portable path, not wgmma";
          return signalPassFailure();
        }
      }
      auto [q, kv] = blockSizesOf(op, qBlock, kvBlock, /*portableOnly=*/false);
      if (report)
        remarkClampedBlockSizes(op.getLoc(), StrategyAttr::get(op),
                                getArgument(), q, kv,
                                op.getQuery().getType().getDimSize(2),
                                op.getKey().getType().getDimSize(2));
      scf::ForallOp nest = tileAttentionNest(b, op, q, kv);
      op->replaceAllUsesWith(nest.getResults());
      op.erase();
    }
    SmallVector<AttentionGradOp> grads;
    getOperation().walk([&](AttentionGradOp op) { grads.push_back(op); });
    for (AttentionGradOp op : grads) {
      b.setInsertionPoint(op);
      auto [q, kv] = blockSizesOf(op, qBlock, kvBlock, /*portableOnly=*/false);
      if (report)
        remarkClampedBlockSizes(op.getLoc(), StrategyAttr::get(op),
                                getArgument(), q, kv,
                                op.getQuery().getType().getDimSize(2),
                                op.getKey().getType().getDimSize(2));
      AttentionGradResults r = tileAttentionGrad(b, op, q, kv);
      op->replaceAllUsesWith(ValueRange{r.dq, r.dk, r.dv});
      op.erase();
    }
  }
};

} // namespace
