//===- SelectStrategy.cpp - record each op's kernel strategy ----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"
#include "bpt/Conversion/Strategy.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "llvm/Support/FormatVariadic.h"

namespace bpt {
#define GEN_PASS_DEF_BPTSELECTSTRATEGY
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;

namespace {

/// `options` with the tiling of `recorded` pinned (and its path the only
/// one allowed to win over the portable one). A recorded tensor-core path
/// is checked even where tensor cores are off (the CPU runs its loops).
/// An attention backward's tiling is pinned through its own options on
/// mma.sync; its wgmma kernel's follows from the shape.
StrategyOptions pinnedTo(StrategyOptions options, StrategyAttr recorded,
                         Operation *op) {
  options.tensorCores = recorded.getPath() != KernelPath::portable;
  // An mma.sync strategy on a chip with wgmma: the path is pinned too; on
  // f32 operands it is TF32, which the strategy's author chose.
  if (recorded.getPath() == KernelPath::mma_sync) {
    options.allowWgmma = false;
    options.allowTF32 = true;
  }
  if (isa<AttentionGradOp>(op)) {
    if (recorded.getPath() == KernelPath::mma_sync) {
      options.sm80GradQBlock = recorded.getQBlock();
      options.sm80GradKvBlock = recorded.getKvBlock();
      options.sm80GradStages = recorded.getStages();
    }
    return options;
  }
  switch (recorded.getPath()) {
  case KernelPath::portable:
    if (recorded.getQBlock())
      options.qBlock = recorded.getQBlock();
    if (recorded.getKvBlock())
      options.kvBlock = recorded.getKvBlock();
    break;
  case KernelPath::wgmma:
    options.sm90KvBlock = recorded.getKvBlock();
    options.sm90Stages = recorded.getStages();
    options.gemmBlockN = recorded.getGemmBlockN();
    options.gemmStages = recorded.getGemmStages();
    options.gemmSplit = recorded.getGemmSplit();
    break;
  case KernelPath::rowwise:
    break;
  case KernelPath::mma_sync:
    // A split kernel's rows follow from the shape (packed query heads).
    if (!recorded.getKvSplits())
      options.sm80QBlock = recorded.getQBlock();
    options.sm80KvBlock = recorded.getKvBlock();
    options.sm80Stages = recorded.getStages();
    options.sm80GemmBlockN = recorded.getGemmBlockN();
    break;
  }
  if (recorded.getChunkRows()) {
    options.chunkRows = recorded.getChunkRows();
    options.chunkRowsRecorded = true;
  }
  // A strategy that does not split pins "never split".
  options.kvSplits = recorded.getKvSplits() ? recorded.getKvSplits() : 1;
  return options;
}

/// Checks a strategy recorded on `op` (by an earlier run or by hand): the
/// conversions build what it says, so it must be what this pass would
/// choose with its tiling pinned.
LogicalResult verifyRecorded(Operation *op, StrategyAttr recorded,
                             const StrategyOptions &options) {
  // The portable loops take any op; zero block sizes are the options'.
  if (recorded.getPath() == KernelPath::portable)
    return success();
  StrategyOptions pinned = pinnedTo(options, recorded, op);
  // A recorded chunk need not be a multiple of 128 as the option is (the
  // chunk of a ragged FFN divides its rows): the selection below checks it
  // against the rows.
  StrategyOptions ranges = pinned;
  ranges.chunkRows = options.chunkRows;
  std::optional<std::string> why = checkStrategyOptions(ranges);
  if (!why && pinned.chunkRows > INT32_MAX)
    why = llvm::formatv("chunk-rows must be at most {0}, got {1}", INT32_MAX,
                        pinned.chunkRows)
              .str();
  if (why)
    return op->emitError() << "bpt-select-strategy: recorded strategy "
                           << recorded << " is out of range: " << *why;
  FailureOr<StrategyAttr> expected =
      selectStrategy(op, pinned, /*remarks=*/false);
  if (failed(expected))
    return failure();
  if (*expected != recorded)
    return op->emitError() << "bpt-select-strategy: recorded strategy "
                           << recorded << " is not one its kernel takes for "
                           << "this op; with its tiling pinned the choice is "
                           << *expected;
  return success();
}

struct BPTSelectStrategyPass final
    : bpt::impl::BPTSelectStrategyBase<BPTSelectStrategyPass> {
  using Base::Base;
  // Reads the (protected) options by name.
  template <typename From, typename To>
  friend void bpt::copyStrategyFields(const From &, To &);

  void runOnOperation() override {
    StrategyOptions options;
    copyStrategyFields(*this, options);
    options.reportBlockSizes =
        reportBlockSizes && (qBlock.hasValue() || kvBlock.hasValue());
    if (std::optional<std::string> why = checkStrategyOptions(options)) {
      getOperation().emitError() << "bpt-select-strategy: " << *why;
      return signalPassFailure();
    }
    // A nest was tiled for its kernel's blocks: it cannot be re-targeted.
    WalkResult mismatch = getOperation().walk([&](scf::ForallOp loop) {
      StrategyAttr recorded = StrategyAttr::get(loop);
      if (!recorded || recorded.getPath() == KernelPath::portable ||
          recorded.getChip() == options.chip)
        return WalkResult::advance();
      loop.emitError() << "bpt-select-strategy: this loop nest was tiled for "
                          "the "
                       << stringifyKernelPath(recorded.getPath())
                       << " kernel of " << recorded.getChip()
                       << ", not for " << options.chip
                       << "; run bpt-blockwise with chip=" << options.chip;
      return WalkResult::interrupt();
    });
    if (mismatch.wasInterrupted())
      return signalPassFailure();
    SmallVector<Operation *> ops, kept;
    getOperation().walk([&](Operation *op) {
      if (!isa<AttentionOp, AttentionGradOp, FFNOp, FFNGradOp, LinearOp,
               LinearGradOp, MatmulOp, LayerNormOp, LayerNormGradOp, RMSNormOp,
               RMSNormGradOp, TransformerBlockOp>(op) ||
          StrategyAttr::getEnclosing(op))
        return;
      StrategyAttr recorded = StrategyAttr::get(op);
      if (!recorded || recorded.getChip() != options.chip)
        ops.push_back(op);
      else
        kept.push_back(op);
    });
    for (Operation *op : kept)
      if (failed(verifyRecorded(op, StrategyAttr::get(op), options)))
        return signalPassFailure();
    for (Operation *op : ops) {
      FailureOr<StrategyAttr> strategy = selectStrategy(op, options);
      if (failed(strategy))
        return signalPassFailure();
      op->setAttr(StrategyAttr::kAttrName, *strategy);
    }
  }
};

} // namespace
