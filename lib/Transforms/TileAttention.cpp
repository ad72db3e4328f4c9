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
    if (size < 1)
      return anchor->emitError()
             << pass << ": option " << name << " must be positive, got "
             << size;
  return success();
}

std::pair<int64_t, int64_t> bpt::blockSizesOf(AttentionOp op, int64_t qBlock,
                                              int64_t kvBlock,
                                              bool portableOnly) {
  StrategyAttr strategy = StrategyAttr::get(op);
  if (!strategy)
    return {qBlock, kvBlock};
  if (portableOnly && strategy.getPath() != KernelPath::portable)
    return {0, 0};
  return {strategy.getQBlock() ? strategy.getQBlock() : qBlock,
          strategy.getKvBlock() ? strategy.getKvBlock() : kvBlock};
}

void bpt::setBlockSizeAttrs(Operation *loop, int64_t qBlock, int64_t kvBlock) {
  Builder b(loop->getContext());
  loop->setAttr("bpt.q_block", b.getI64IntegerAttr(qBlock));
  loop->setAttr("bpt.kv_block", b.getI64IntegerAttr(kvBlock));
}

Value bpt::tileAttention(OpBuilder &b, AttentionOp op, int64_t qBlock,
                         int64_t kvBlock) {
  AttentionTiling t = AttentionTiling::get(op, qBlock, kvBlock);
  Location loc = op.getLoc();
  RankedTensorType resultType = op.getResult().getType();
  Value init = tensor::EmptyOp::create(b, loc, resultType.getShape(),
                                       resultType.getElementType());
  SmallVector<OpFoldResult> bounds = {b.getIndexAttr(t.batch),
                                      b.getIndexAttr(t.qHeads),
                                      b.getIndexAttr(t.numQueryBlocks())};
  auto forall =
      scf::ForallOp::create(b, loc, bounds, ValueRange{init}, std::nullopt);
  setBlockSizeAttrs(forall, t.qBlock, t.kvBlock);
  forall->setAttr(AttentionNestAttr::kAttrName,
                  AttentionNestAttr::get(b.getContext(), t.causal,
                                        llvm::APFloat(t.scale)));
  if (StrategyAttr strategy = StrategyAttr::get(op))
    forall->setAttr(StrategyAttr::kAttrName, strategy);

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(forall.getTerminator());
  SmallVector<Value> ivs = forall.getInductionVars();
  Value batch = ivs[0], head = ivs[1];
  Value q0 = arith::MulIOp::create(b, loc, ivs[2],
                                   arith::ConstantIndexOp::create(b, loc, t.qBlock));
  Value tile = buildAttentionQueryBlock(b, loc, t, op.getQuery(), op.getKey(),
                                        op.getValue(), batch, head, q0);
  OpFoldResult rows = b.getIndexAttr(t.qBlock);
  if (t.raggedQuery()) {
    rows = validRows(b, loc, q0, t.qBlock, t.qSeq);
    tile = tensor::ExtractSliceOp::create(
        b, loc, tile, {b.getIndexAttr(0), b.getIndexAttr(0)},
        {rows, b.getIndexAttr(t.headDim)},
        {b.getIndexAttr(1), b.getIndexAttr(1)});
  }
  b.setInsertionPointToEnd(forall.getTerminator().getBody());
  OpFoldResult one = b.getIndexAttr(1), zero = b.getIndexAttr(0);
  tensor::ParallelInsertSliceOp::create(
      b, loc, tile, forall.getRegionIterArgs()[0],
      {batch, head, q0, zero}, {one, one, rows, b.getIndexAttr(t.headDim)},
      {one, one, one, one});
  return forall.getResult(0);
}

namespace {

struct BPTTileAttentionPass final
    : bpt::impl::BPTTileAttentionBase<BPTTileAttentionPass> {
  using Base::Base;

  void runOnOperation() override {
    if (failed(verifyBlockSizes(getOperation(), getArgument(), qBlock,
                                kvBlock)))
      return signalPassFailure();
    SmallVector<AttentionOp> ops;
    getOperation().walk([&](AttentionOp op) { ops.push_back(op); });
    OpBuilder b(&getContext());
    for (AttentionOp op : ops) {
      b.setInsertionPoint(op);
      auto [q, kv] = blockSizesOf(op, qBlock, kvBlock, /*portableOnly=*/false);
      op.getResult().replaceAllUsesWith(tileAttention(b, op, q, kv));
      op.erase();
    }
  }
};

} // namespace
