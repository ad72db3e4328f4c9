//===- Strategy.h - the kernel strategy of each op ---------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The one place that decides how an op is lowered: which kernel path
// (wgmma, mma.sync or the portable blockwise loops) and with what tiling.
// bpt-select-strategy records the decision as a #bpt.strategy attribute;
// the blockwise passes tile by it and the conversions read it. Decisions
// come from the chip's facts (bpt/Target/Chip.h), the attention cost model,
// and the options a user pinned (bpt-compile flags or a --tuning file).
//
//===----------------------------------------------------------------------===//

#ifndef BPT_CONVERSION_STRATEGY_H
#define BPT_CONVERSION_STRATEGY_H

#include "bpt/Dialect/BPTOps.h"

#include "mlir/IR/Operation.h"
#include "mlir/Support/LLVM.h"

#include <optional>
#include <string>

namespace bpt {

/// The target and the tilings a user pinned; a zero tiling field is chosen
/// per op (cost model or kernel rule).
struct StrategyOptions {
  std::string chip = "sm_90a";
  /// Allow the tensor-core paths; off, everything is portable.
  bool tensorCores = true;
  /// f32 FFNs on tensor cores as TF32 (off by default, as PyTorch's
  /// allow_tf32): the mma.sync GEMMs with m16n8k8 TF32.
  bool allowTF32 = false;
  /// Offer the wgmma path where the chip has it (off: mma.sync first).
  bool allowWgmma = true;
  /// The portable path's blockwise loops: query and key/value rows a block.
  int64_t qBlock = 64, kvBlock = 64;
  /// Rows per chunk of the chunked FFN and block (a multiple of 128); 0:
  /// chosen per op (a lone FFN's on wgmma by its GEMMs' waves, else
  /// kDefaultChunkRows; see chunkRowsOrDefault).
  int64_t chunkRows = 0;
  /// sm_90a: the attention's key/value block and K/V stages, the GEMMs'
  /// tile columns and stages, and the most parts a mostly idle last wave's
  /// tiles are split into along K (1: none; 0: the model's, at most 8).
  int64_t sm90KvBlock = 0, sm90Stages = 0, gemmBlockN = 0, gemmStages = 0,
          gemmSplit = 0;
  /// mma.sync: the attention's query block, key/value block and stages,
  /// the GEMMs' tile columns.
  int64_t sm80QBlock = 0, sm80KvBlock = 0, sm80Stages = 0, sm80GemmBlockN = 0;
  /// mma.sync: the attention backward's query block, key/value block and
  /// stages (0: its default, 64 × 128 × 2, or 32 × 64 × 2 where that does
  /// not fit the chip's shared memory).
  int64_t sm80GradQBlock = 0, sm80GradKvBlock = 0, sm80GradStages = 0;
  /// Attention with short queries: key/value splits (0: the cost rule's
  /// choice; 1: never split).
  int64_t kvSplits = 0;
  /// The user gave qBlock / kvBlock: an attention whose tensor-core kernel
  /// picks its own tiling gets a remark that they were ignored, and a block
  /// larger than the sequence it tiles one that it was clamped. Not copied
  /// by copyStrategyFields: each entry point says whether its own options
  /// were given (bpt-compile warns itself and leaves it off).
  bool reportBlockSizes = false;
  /// chunkRows is the chunk recorded on the op being checked (not an
  /// option): an FFN takes it as it is, up to its rows, rather than
  /// evening out its chunks. Not copied by copyStrategyFields.
  bool chunkRowsRecorded = false;

  /// The chunk rows of the ops that take no per-op choice: the block's
  /// (measured: hopper.md version 9), the gradient GEMMs', the mma.sync
  /// FFN's.
  static constexpr int64_t kDefaultChunkRows = 2048;
  int64_t chunkRowsOrDefault() const {
    return chunkRows ? chunkRows : kDefaultChunkRows;
  }
};

/// Copies the strategy options that `from` and `to` share by name (the
/// fields of StrategyOptions but `allowWgmma`): between StrategyOptions,
/// bpt-select-strategy's pass options and the pipelines' options, so that
/// the list is written once.
template <typename From, typename To>
void copyStrategyFields(const From &from, To &to) {
  to.chip = from.chip;
  to.tensorCores = from.tensorCores;
  to.allowTF32 = from.allowTF32;
  to.qBlock = from.qBlock;
  to.kvBlock = from.kvBlock;
  to.chunkRows = from.chunkRows;
  to.sm90KvBlock = from.sm90KvBlock;
  to.sm90Stages = from.sm90Stages;
  to.gemmBlockN = from.gemmBlockN;
  to.gemmStages = from.gemmStages;
  to.gemmSplit = from.gemmSplit;
  to.sm80QBlock = from.sm80QBlock;
  to.sm80KvBlock = from.sm80KvBlock;
  to.sm80Stages = from.sm80Stages;
  to.sm80GemmBlockN = from.sm80GemmBlockN;
  to.sm80GradQBlock = from.sm80GradQBlock;
  to.sm80GradKvBlock = from.sm80GradKvBlock;
  to.sm80GradStages = from.sm80GradStages;
  to.kvSplits = from.kvSplits;
}

/// Why `options` are out of range (the message names the option), or
/// nothing.
std::optional<std::string> checkStrategyOptions(const StrategyOptions &options);

/// The strategy of `op` (bpt.attention, bpt.attention_grad, bpt.ffn,
/// bpt.linear, bpt.transformer_block, or a gradient op: linear_grad,
/// ffn_grad, layer_norm_grad, rms_norm_grad, which take the portable loops;
/// null for other ops). With `remarks`, says on `op`
/// why each faster path was not taken. Fails, with an error on `op`, when
/// a pinned tiling cannot be honoured by the path the op takes.
mlir::FailureOr<StrategyAttr> selectStrategy(mlir::Operation *op,
                                             const StrategyOptions &options,
                                             bool remarks = true);

} // namespace bpt

#endif // BPT_CONVERSION_STRATEGY_H
