//===- StrategyOps.h - what a conversion takes, by strategy -----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The kernel conversions do not choose: each takes the ops whose recorded
// strategy names its path, and builds them with the recorded tiling.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_STRATEGYOPS_H
#define BPT_LIB_CONVERSION_STRATEGYOPS_H

#include "bpt/Conversion/Strategy.h"
#include "bpt/Dialect/BPTOps.h"
#include "bpt/Target/Chip.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/FormatVariadic.h"

namespace bpt {

/// The tensor-core FFN and block conversions write one launch sequence per
/// chunk of rows (the manifest is a flat list of launches). Above this many
/// chunks compile time and the kernel set would grow with the sequence:
/// bpt-select-strategy sends such ops to the portable path, whose launches
/// loop over the rows, and the conversions refuse them.
constexpr int64_t kMaxUnrolledChunks = 1024;

/// The ops of type `OpTy` in `module` whose strategy takes `path`, in
/// order; ops inside a blockwise nest are tiles of it and are not taken.
template <typename OpTy>
llvm::SmallVector<OpTy> opsTaking(mlir::ModuleOp module, KernelPath path) {
  llvm::SmallVector<OpTy> ops;
  module.walk([&](OpTy op) {
    StrategyAttr strategy = StrategyAttr::get(op);
    if (strategy && strategy.getPath() == path && !StrategyAttr::getEnclosing(op))
      ops.push_back(op);
  });
  return ops;
}

/// The `#bpt.chunk_loop<kind>` loops in `module` whose strategy takes
/// `path`, in order.
inline llvm::SmallVector<mlir::scf::ForallOp>
chunkLoopsTaking(mlir::ModuleOp module, ChunkLoopKind kind, KernelPath path) {
  llvm::SmallVector<mlir::scf::ForallOp> loops;
  module.walk([&](mlir::scf::ForallOp loop) {
    auto tag = loop->getAttrOfType<ChunkLoopAttr>(AttentionNestAttr::kAttrName);
    StrategyAttr strategy = StrategyAttr::get(loop);
    if (tag && tag.getKind() == kind && strategy &&
        strategy.getPath() == path)
      loops.push_back(loop);
  });
  return loops;
}

/// The dynamic shared memory a block of the strategy's chip may use.
inline int64_t sharedMemoryOf(StrategyAttr strategy) {
  return getChipInfo(strategy.getChip()).sharedMemoryPerBlock;
}

/// Checks the tiling an attention nest's strategy records (perhaps written
/// by hand) against what `pass`'s kernel takes before building it:
/// `keyBlockWhy` (the kernel's own key-block rule, or nothing), then
/// bpt-select-strategy's 2 to 4 stages and the chip's shared memory. Fails
/// with an error on `loop` naming the rule.
template <typename Config>
mlir::LogicalResult
checkRecordedTiling(mlir::Operation *loop, llvm::StringRef pass,
                    StrategyAttr strategy, const Config &config,
                    std::optional<std::string> keyBlockWhy) {
  std::optional<std::string> why = std::move(keyBlockWhy);
  if (!why && (config.stages < 2 || config.stages > 4))
    why = llvm::formatv("{0} stages (2 to 4)", config.stages).str();
  if (!why && config.sharedMemoryBytes() > sharedMemoryOf(strategy))
    why = llvm::formatv("{0} bytes of shared memory, {1} available",
                        config.sharedMemoryBytes(), sharedMemoryOf(strategy))
              .str();
  if (!why)
    return mlir::success();
  return loop->emitError() << pass << ": the strategy's tiling " << strategy
                           << " is not one the kernel takes: " << *why;
}

} // namespace bpt

#endif // BPT_LIB_CONVERSION_STRATEGYOPS_H
