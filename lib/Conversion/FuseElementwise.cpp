//===- FuseElementwise.cpp - bpt-fuse-elementwise ---------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Every linalg op at the function's top level is a portable launch through
// global memory; fusing a chain of elementwise ops into its last one saves a
// write and a read of each intermediate (the norm gradients' f32 results,
// their rounding and the residual adds of the training step).
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace bpt {
#define GEN_PASS_DEF_BPTFUSEELEMENTWISE
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

bool isTopLevel(Operation *op, Block *body) { return op->getBlock() == body; }

/// An all-parallel generic of one result used once, at the top level.
linalg::GenericOp singleUseElementwise(Value value, Block *body) {
  auto producer = value.getDefiningOp<linalg::GenericOp>();
  if (!producer || !isTopLevel(producer, body) || !producer->hasOneUse() ||
      producer->getNumResults() != 1 ||
      producer.getNumParallelLoops() != producer.getNumLoops())
    return {};
  return producer;
}

constexpr int kMaxRounds = 64;

/// Fuses an operand's producer into the generic that reads it, where
/// `control` allows. Upstream's pattern set also replaces the `outs` of
/// parallel generics by empty tensors, which loses the in-place residual
/// adds' buffer reuse: only the fusion is taken from it.
struct FuseProducer final : OpRewritePattern<linalg::GenericOp> {
  FuseProducer(MLIRContext *ctx, linalg::ControlFusionFn control)
      : OpRewritePattern(ctx), control(std::move(control)) {}

  LogicalResult matchAndRewrite(linalg::GenericOp consumer,
                                PatternRewriter &rewriter) const override {
    for (OpOperand &operand : consumer->getOpOperands()) {
      if (!linalg::areElementwiseOpsFusable(&operand) || !control(&operand))
        continue;
      FailureOr<linalg::ElementwiseOpFusionResult> fused =
          linalg::fuseElementwiseOps(rewriter, &operand);
      if (failed(fused))
        return rewriter.notifyMatchFailure(consumer, "fusion failed");
      // The producer had this one use: only the consumer's results remain.
      for (auto [original, replacement] : fused->replacements)
        if (original.getDefiningOp() == consumer)
          rewriter.replaceAllUsesWith(original, replacement);
      rewriter.eraseOp(consumer);
      return success();
    }
    return failure();
  }

  linalg::ControlFusionFn control;
};

/// A parallel generic whose `outs` is another generic's result that it
/// never reads (an in-place add into the sum before it) takes that
/// generic's own `outs` instead: the same buffer after bufferization, and
/// the producer is left with the one use that lets it fuse (only then).
struct ForwardUnreadInit final : OpRewritePattern<linalg::GenericOp> {
  ForwardUnreadInit(MLIRContext *ctx, Block *body)
      : OpRewritePattern(ctx), body(body) {}

  LogicalResult matchAndRewrite(linalg::GenericOp consumer,
                                PatternRewriter &rewriter) const override {
    if (!isTopLevel(consumer, body) ||
        consumer.getNumParallelLoops() != consumer.getNumLoops())
      return failure();
    for (OpOperand &init : consumer.getDpsInitsMutable()) {
      if (consumer.payloadUsesValueFromOperand(&init))
        continue;
      auto producer = init.get().getDefiningOp<linalg::GenericOp>();
      if (!producer || !isTopLevel(producer, body) ||
          producer.getNumParallelLoops() != producer.getNumLoops())
        continue;
      // Only where it enables a fusion: the producer's other use is an
      // input of this consumer.
      auto result = cast<OpResult>(init.get());
      if (producer->getNumResults() != 1 ||
          !llvm::all_of(result.getUses(), [&](OpOperand &use) {
            return use.getOwner() == consumer;
          }) ||
          !llvm::any_of(consumer.getDpsInputOperands(), [&](OpOperand *in) {
            return in->get() == result &&
                   consumer.getMatchingIndexingMap(in).isPermutation();
          }))
        continue;
      Value producerInit = producer.getDpsInits()[result.getResultNumber()];
      if (producerInit.getType() != init.get().getType() ||
          !producer.getMatchingIndexingMap(
                      producer.getDpsInitOperand(result.getResultNumber()))
               .isIdentity() ||
          !consumer.getMatchingIndexingMap(&init).isIdentity())
        continue;
      rewriter.modifyOpInPlace(consumer, [&] { init.set(producerInit); });
      return success();
    }
    return failure();
  }

  Block *body;
};

struct BPTFuseElementwisePass final
    : bpt::impl::BPTFuseElementwiseBase<BPTFuseElementwisePass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    Block *body = &func.getBody().front();

    // Producer into consumer: both at the top level, the producer's only
    // use, read without broadcast (else the producer's math would run once
    // per broadcast element).
    linalg::ControlFusionFn fuse = [body](OpOperand *operand) {
      Operation *consumer = operand->getOwner();
      auto generic = dyn_cast<linalg::GenericOp>(consumer);
      if (!generic || !isTopLevel(consumer, body) ||
          !singleUseElementwise(operand->get(), body))
        return false;
      return generic.getMatchingIndexingMap(operand).isPermutation();
    };
    // An expand_shape between an elementwise producer and generic users
    // moves above the producer (its loops expanded), so that they can fuse.
    linalg::ControlFusionFn expand = [body](OpOperand *operand) {
      auto reshape = dyn_cast<tensor::ExpandShapeOp>(operand->getOwner());
      if (!reshape || !isTopLevel(reshape, body) ||
          !singleUseElementwise(operand->get(), body))
        return false;
      return llvm::all_of(reshape->getUsers(), [&](Operation *user) {
        return isa<linalg::GenericOp>(user) && isTopLevel(user, body);
      });
    };

    RewritePatternSet patterns(&getContext());
    patterns.add<FuseProducer>(&getContext(), fuse);
    patterns.add<ForwardUnreadInit>(&getContext(), body);
    linalg::populateFoldReshapeOpsByExpansionPatterns(patterns, expand);
    tensor::ExpandShapeOp::getCanonicalizationPatterns(patterns, &getContext());
    tensor::CollapseShapeOp::getCanonicalizationPatterns(patterns,
                                                         &getContext());
    FrozenRewritePatternSet frozen(std::move(patterns));

    // The top level's ops only (the fusion patterns come with rewrites of
    // any generic's operands, which loop bodies are not to get); a rewrite
    // does not requeue the ops it enables, so collect again until nothing
    // changes: each round fuses at least one pair, chains are short.
    GreedyRewriteConfig config;
    config.setStrictness(GreedyRewriteStrictness::ExistingAndNewOps);
    for (int round = 0; round < kMaxRounds; ++round) {
      SmallVector<Operation *> ops;
      for (Operation &op : *body)
        if (isa<linalg::GenericOp, tensor::ExpandShapeOp,
                tensor::CollapseShapeOp>(op))
          ops.push_back(&op);
      bool changed = false;
      if (failed(applyOpPatternsGreedily(ops, frozen, config, &changed)))
        changed = true;
      if (!changed)
        return;
    }
    func.emitWarning() << "bpt-fuse-elementwise: still fusing after "
                       << kMaxRounds << " rounds; left as is";
  }
};

} // namespace
