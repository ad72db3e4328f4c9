//===- FuseFFNResidual.cpp - fuse consumers into query blocks ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// BPT's second half: once attention is computed one query block at a time,
// everything after it that works position by position (output projection,
// residual, norm, FFN, residual) can run on that query block too, so no
// S x ffn_width intermediate is ever built.
//
//===----------------------------------------------------------------------===//

#include "BlockwiseAttention.h"

#include "bpt/Dialect/BPTOps.h"
#include "bpt/Transforms/Blockwise.h"
#include "bpt/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/SetVector.h"

namespace bpt {
#define GEN_PASS_DEF_BPTFUSEFFNRESIDUAL
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::detail;

namespace {

/// The operand positions of `op` that index positions (rows) of the
/// sequence, if `op` is position-wise: the input of bpt's row-wise ops, every
/// operand of an elementwise op on equally shaped tensors. Other operands
/// (weights, norm vectors) are shared by all positions.
std::optional<SmallVector<unsigned>> rowOperands(Operation *op) {
  if (isa<LinearOp, FFNOp, LayerNormOp, RMSNormOp>(op))
    return SmallVector<unsigned>{0};
  if (!op->hasTrait<OpTrait::Elementwise>() || op->getNumResults() != 1)
    return std::nullopt;
  Type type = op->getResult(0).getType();
  if (!isa<RankedTensorType>(type) ||
      llvm::any_of(op->getOperandTypes(), [&](Type operand) {
        return cast<ShapedType>(type).getShape() !=
               cast<ShapedType>(operand).getShape();
      }))
    return std::nullopt;
  return llvm::to_vector(llvm::seq<unsigned>(0, op->getNumOperands()));
}

/// What fusing one attention op involves.
struct FusionPlan {
  linalg::TransposeOp transpose;
  tensor::CollapseShapeOp collapse;
  /// The fused consumers, in block order.
  SmallVector<Operation *> consumers;
  /// Values (the merged heads or consumer results) used after the fused
  /// region; each becomes a result of the loop.
  SmallVector<Value> outputs;
};

/// Returns the ancestor of `op` in `block`, or null.
Operation *ancestorIn(Block *block, Operation *op) {
  return block->findAncestorOpInBlock(*op);
}

/// Builds the fusion plan, or returns the reason there is none.
FailureOr<FusionPlan> planFusion(AttentionOp op, std::string &reason) {
  FusionPlan plan;
  // The heads must be merged back into [B, S, heads * D] exactly as
  // bpt-decompose-block does it: each head's tile then lands at its columns.
  auto fail = [&](const Twine &why) {
    reason = why.str();
    return failure();
  };
  // An attention whose result is not head-merged is no block: nothing to
  // fuse, and nothing to remark on.
  auto isHeadMerge = [](Operation *user) {
    auto transpose = dyn_cast<linalg::TransposeOp>(user);
    return transpose &&
           transpose.getPermutation() == ArrayRef<int64_t>{0, 2, 1, 3};
  };
  if (llvm::none_of(op->getUsers(), isHeadMerge))
    return failure();
  if (!op->hasOneUse())
    return fail("the attention result has uses besides the head merge");
  plan.transpose = cast<linalg::TransposeOp>(*op->user_begin());
  if (!plan.transpose->getResult(0).hasOneUse())
    return fail("the transposed attention result has several uses");
  plan.collapse =
      dyn_cast<tensor::CollapseShapeOp>(*plan.transpose->user_begin());
  if (!plan.collapse || plan.collapse.getReassociationIndices() !=
                            SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}})
    return fail("the attention result is not merged back into [batch, seq, "
                "heads * head_dim] by linalg.transpose [0, 2, 1, 3] + "
                "tensor.collapse_shape");

  // The fused loop does not export the log-sum-exp a backward pass needs.
  if (op.getLse())
    return fail("it also returns its log-sum-exp");
  Block *block = op->getBlock();
  RankedTensorType queryType = op.getQuery().getType();
  int64_t batch = queryType.getDimSize(0), seq = queryType.getDimSize(2);
  auto isRowAligned = [&](Value v) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    return type && type.getRank() == 3 && type.getDimSize(0) == batch &&
           type.getDimSize(1) == seq;
  };

  // Grow the set of position-wise consumers to a fixed point: an op joins
  // when it reads a value of the set through a row operand only, every row
  // operand is in the set or row-aligned, and it sits in the same block.
  llvm::SetVector<Value> fused;
  fused.insert(plan.collapse.getResult());
  llvm::SetVector<Operation *> consumers;
  bool changed = true;
  while (changed) {
    changed = false;
    for (Value v : llvm::to_vector(fused)) {
      for (Operation *user : v.getUsers()) {
        if (consumers.contains(user) || user->getBlock() != block)
          continue;
        std::optional<SmallVector<unsigned>> rows = rowOperands(user);
        if (!rows)
          continue;
        bool ok = llvm::all_of(
            llvm::enumerate(user->getOperands()), [&](auto indexed) {
              bool isRow = llvm::is_contained(*rows, indexed.index());
              Value operand = indexed.value();
              if (fused.contains(operand))
                return isRow;
              return !isRow || isRowAligned(operand);
            });
        if (!ok || !isRowAligned(user->getResult(0)))
          continue;
        consumers.insert(user);
        fused.insert(user->getResult(0));
        changed = true;
      }
    }
  }
  if (consumers.empty())
    return fail("no position-wise consumer (projection, residual, norm, FFN) "
                "of the merged heads to fuse");

  plan.consumers.assign(consumers.begin(), consumers.end());
  llvm::sort(plan.consumers,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  Operation *last = plan.consumers.back();
  for (Value v : fused) {
    bool escapes = false;
    for (OpOperand &use : v.getUses()) {
      Operation *user = ancestorIn(block, use.getOwner());
      if (user && consumers.contains(user))
        continue;
      escapes = true;
      // The loop replaces the consumers where the last of them stands.
      if (!user || user->isBeforeInBlock(last) || user == last)
        return fail("an intermediate result of the fused chain is used "
                    "before the chain ends");
    }
    if (escapes)
      plan.outputs.push_back(v);
  }
  return plan;
}

} // namespace

LogicalResult bpt::fuseAttentionConsumers(OpBuilder &b, AttentionOp op,
                                          int64_t qBlock, int64_t kvBlock) {
  std::string reason;
  FailureOr<FusionPlan> maybePlan = planFusion(op, reason);
  if (failed(maybePlan)) {
    if (!reason.empty())
      op.emitRemark() << "bpt-fuse-ffn-residual: not fused: " << reason;
    return failure();
  }
  FusionPlan &plan = *maybePlan;
  AttentionTiling t = AttentionTiling::get(op, qBlock, kvBlock);
  Location loc = op.getLoc();

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(plan.consumers.back());
  SmallVector<Value> inits;
  for (Value output : plan.outputs) {
    auto type = cast<RankedTensorType>(output.getType());
    inits.push_back(tensor::EmptyOp::create(b, loc, type.getShape(),
                                            type.getElementType()));
  }
  SmallVector<OpFoldResult> bounds = {b.getIndexAttr(t.batch),
                                      b.getIndexAttr(t.numQueryBlocks())};
  auto forall = scf::ForallOp::create(b, loc, bounds, inits, std::nullopt);
  setBlockSizeAttrs(forall, t.qBlock, t.kvBlock);
  if (StrategyAttr strategy = StrategyAttr::get(op))
    forall->setAttr(StrategyAttr::kAttrName, strategy);

  b.setInsertionPoint(forall.getTerminator());
  SmallVector<Value> ivs = forall.getInductionVars();
  Value batch = ivs[0];
  Value q0 = arith::MulIOp::create(
      b, loc, ivs[1], arith::ConstantIndexOp::create(b, loc, t.qBlock));

  // All heads of this query block, each written at its columns of the
  // merged [qBlock, heads * D] tile.
  int64_t mergedWidth = t.qHeads * t.headDim;
  Value mergedInit = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{t.qBlock, mergedWidth}, t.elementType);
  auto heads = scf::ForOp::create(
      b, loc, arith::ConstantIndexOp::create(b, loc, 0),
      arith::ConstantIndexOp::create(b, loc, t.qHeads),
      arith::ConstantIndexOp::create(b, loc, 1), ValueRange{mergedInit},
      [&](OpBuilder &nb, Location nl, Value head, ValueRange iterArgs) {
        Value tile = buildAttentionQueryBlock(nb, nl, t, op.getQuery(),
                                              op.getKey(), op.getValue(),
                                              batch, head, q0)
                         .out;
        Value column = arith::MulIOp::create(
            nb, nl, head, arith::ConstantIndexOp::create(nb, nl, t.headDim));
        SmallVector<OpFoldResult> offsets = {nb.getIndexAttr(0), column};
        SmallVector<OpFoldResult> sizes = {nb.getIndexAttr(t.qBlock),
                                           nb.getIndexAttr(t.headDim)};
        SmallVector<OpFoldResult> strides(2, nb.getIndexAttr(1));
        Value merged = tensor::InsertSliceOp::create(
            nb, nl, tile, iterArgs[0], offsets, sizes, strides);
        scf::YieldOp::create(nb, nl, merged);
      });

  // The consumers, cloned onto [qBlock, N] tiles.
  IRMapping tiles;
  tiles.map(plan.collapse.getResult(), heads.getResult(0));
  for (Operation *consumer : plan.consumers) {
    // Planned consumers are position-wise: rowOperands has a value. Keep it
    // alive for the loop (iterating *rowOperands(...) would dangle).
    SmallVector<unsigned> rows = *rowOperands(consumer);
    for (unsigned index : rows) {
      Value operand = consumer->getOperand(index);
      if (!tiles.contains(operand))
        tiles.map(operand, extractRowBlock(b, loc, operand, {batch}, q0,
                                           t.qBlock, t.raggedQuery()));
    }
    Operation *clone = b.clone(*consumer, tiles);
    // A tile of the nest, lowered with it.
    clone->removeAttr(StrategyAttr::kAttrName);
    auto type = cast<RankedTensorType>(consumer->getResult(0).getType());
    clone->getResult(0).setType(RankedTensorType::get(
        {t.qBlock, type.getDimSize(2)}, type.getElementType()));
  }

  // Write the valid rows of each output tile.
  OpFoldResult rows = b.getIndexAttr(t.qBlock);
  if (t.raggedQuery())
    rows = validRows(b, loc, q0, t.qBlock, t.qSeq);
  SmallVector<Value> results;
  for (Value output : plan.outputs) {
    Value tile = tiles.lookup(output);
    int64_t width = cast<RankedTensorType>(output.getType()).getDimSize(2);
    if (t.raggedQuery())
      tile = tensor::ExtractSliceOp::create(
          b, loc, tile,
          SmallVector<OpFoldResult>{b.getIndexAttr(0), b.getIndexAttr(0)},
          SmallVector<OpFoldResult>{rows, b.getIndexAttr(width)},
          SmallVector<OpFoldResult>(2, b.getIndexAttr(1)));
    results.push_back(tile);
  }
  b.setInsertionPointToEnd(forall.getTerminator().getBody());
  OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
  for (auto [index, tile] : llvm::enumerate(results)) {
    int64_t width =
        cast<RankedTensorType>(plan.outputs[index].getType()).getDimSize(2);
    tensor::ParallelInsertSliceOp::create(
        b, loc, tile, forall.getRegionIterArgs()[index],
        SmallVector<OpFoldResult>{batch, q0, zero},
        SmallVector<OpFoldResult>{one, rows, b.getIndexAttr(width)},
        SmallVector<OpFoldResult>(3, one));
  }

  for (auto [output, result] : llvm::zip(plan.outputs, forall.getResults()))
    output.replaceUsesWithIf(result, [&](OpOperand &use) {
      return use.getOwner() != forall &&
             !forall->isProperAncestor(use.getOwner()) &&
             !llvm::is_contained(plan.consumers, use.getOwner());
    });
  for (Operation *consumer : llvm::reverse(plan.consumers))
    consumer->erase();
  plan.collapse->erase();
  plan.transpose->erase();
  op->erase();
  return success();
}

namespace {

struct BPTFuseFFNResidualPass final
    : bpt::impl::BPTFuseFFNResidualBase<BPTFuseFFNResidualPass> {
  using Base::Base;

  void runOnOperation() override {
    if (failed(verifyBlockSizes(getOperation(), getArgument(), qBlock,
                                kvBlock)))
      return signalPassFailure();
    // Only sizes the user gave are reported (see bpt-tile-attention).
    bool report = reportBlockSizes && (qBlock.hasValue() || kvBlock.hasValue());
    SmallVector<AttentionOp> ops;
    getOperation().walk([&](AttentionOp op) { ops.push_back(op); });
    OpBuilder b(&getContext());
    // Ops that cannot be fused stay as they are; the remark says why.
    for (AttentionOp op : ops) {
      auto [q, kv] = blockSizesOf(op, qBlock, kvBlock);
      // Only the portable path fuses; a tensor-core attention is tiled as a
      // nest of its own.
      if (q <= 0)
        continue;
      // An op that is not fused is tiled (and reported) by
      // bpt-tile-attention; a fused one is gone afterwards.
      Location loc = op.getLoc();
      StrategyAttr strategy = StrategyAttr::get(op);
      int64_t qSeq = op.getQuery().getType().getDimSize(2);
      int64_t kvSeq = op.getKey().getType().getDimSize(2);
      if (succeeded(fuseAttentionConsumers(b, op, q, kv)) && report)
        remarkClampedBlockSizes(loc, strategy, getArgument(), q, kv, qSeq,
                                kvSeq);
    }
  }
};

} // namespace
