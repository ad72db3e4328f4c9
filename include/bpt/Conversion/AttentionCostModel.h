//===- AttentionCostModel.h - tilings of the tensor-core attention -*- C++ -*-//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// A small analytic model of the two tensor-core attention kernels
// (bpt-attention-to-sm80: mma.sync; bpt-attention-to-sm90: wgmma), used to
// choose their query block, key/value block and ring stages per problem
// (head dimension, causality, sequence lengths; bf16 and f16 cost the same)
// when the user does not pin them. `bpt-compile --tune` measures the
// candidates instead; docs/notes/cost-model.md compares the two.
//
// Per key/value block, a thread block spends
//   tensor time   max(4·M·N·D / R, the shared-memory reads of the K/V
//                 fragments at 128 B per clock)
//   + softmax     E lane operations per score and one per output element,
//                 at 128 lanes per clock
//   + sync        a fixed number of clocks per 4 warps (barrier, copy wait)
// Thread blocks resident on a multiprocessor together (limited by shared
// memory and registers) share its issue slots but overlap each other's
// synchronisation; they run in waves. The mma.sync kernel's registers grow
// with D and N (fitted to ptxas); a tiling whose estimate exceeds 300
// spills and is not considered.
//===----------------------------------------------------------------------===//

#ifndef BPT_CONVERSION_ATTENTIONCOSTMODEL_H
#define BPT_CONVERSION_ATTENTIONCOSTMODEL_H

#include "bpt/Dialect/BPTDialect.h"

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace bpt {

/// The problem an attention kernel solves.
struct AttentionProblem {
  int64_t batch, heads, seqQ, seqKV, headDim;
  bool causal;
};

/// A tiling: query rows per thread block, key/value rows per block, ring
/// stages.
struct AttentionTiling {
  int64_t blockM, blockN, stages;
};

/// What the model knows of a chip.
struct ChipModel {
  int64_t multiprocessors;
  int64_t sharedMemoryPerSM; ///< bytes, all resident blocks together
  double clockGHz;

  /// The figures of bpt/Target/Chip.h's table for `chip`.
  static ChipModel forChip(llvm::StringRef chip);
};

/// Which kernel.
enum class AttentionKernelKind { MmaSync, Wgmma };

/// Predicted milliseconds of `tiling` for `problem`, or nothing when the
/// tiling does not apply (it does not fit `sharedMemory` bytes per block;
/// it would spill registers; for wgmma, the output and score accumulators
/// would not fit a consumer's registers). Ragged sequences count their partial
/// last blocks whole.
std::optional<double> predictAttentionMs(AttentionKernelKind kind,
                                         const AttentionProblem &problem,
                                         const AttentionTiling &tiling,
                                         const ChipModel &chip,
                                         int64_t sharedMemory);

/// The candidate tilings of each kernel for a head dimension (0: any at
/// most 128), in the order --tune lists them.
std::vector<AttentionTiling> attentionTilingCandidates(AttentionKernelKind kind,
                                                       int64_t headDim = 0);

/// The candidate with the lowest prediction (ties: fewer stages, then the
/// earlier candidate) among those that agree with the non-zero fields of
/// `pinned`, or nothing if none applies.
std::optional<AttentionTiling>
chooseAttentionTiling(AttentionKernelKind kind, const AttentionProblem &problem,
                      const ChipModel &chip, int64_t sharedMemory,
                      AttentionTiling pinned = {0, 0, 0});

/// Decode and short queries (split-K/V, FlashDecoding's schedule): the
/// query rows up to which an attention is split over its keys, and the
/// most splits.
/// (The most splits, kMaxKVSplits, is the dialect's bound.)
constexpr int64_t kMaxSplitKVQueryRows = 64;

/// The number of key/value splits for `groups` thread blocks per split
/// (batch × key/value heads) over `keyBlocks` key blocks, when
/// `blocksPerSM` such thread blocks fit on one of the chip's
/// multiprocessors. Short queries read every key once per group and are
/// bound by memory: what matters is that the grid fills the chip. The
/// rule (FlashAttention's num_splits_heuristic, with the residency of
/// these small blocks as the wave) takes the fewest splits whose last
/// wave is at least 85% as full as the best count's, counting splits as
/// they cover the keys (ceil(keyBlocks / per split), none empty), up to
/// kMaxKVSplits, the key blocks and `maxSplits` (the caller's bound on the
/// partials' traffic). 1 means: do not split (the grid is full already,
/// or there is one key block).
int64_t chooseKVSplits(int64_t groups, int64_t keyBlocks, int64_t blocksPerSM,
                       const ChipModel &chip,
                       int64_t maxSplits = kMaxKVSplits);

/// The most splits whose partials (written and read: 8 bytes a packed row
/// and column per split) cost at most 1/8 of the K and V bytes they
/// summarise (4 bytes a key and column): seqKV / (16 · packedRows), at
/// least 1.
int64_t maxKVSplitsForTraffic(int64_t seqKV, int64_t packedRows);

/// `splits` as the key blocks take it: each split covers ceil(keyBlocks /
/// splits) blocks, and only the splits that have a block count.
int64_t coveringKVSplits(int64_t keyBlocks, int64_t splits);

} // namespace bpt

#endif // BPT_CONVERSION_ATTENTIONCOSTMODEL_H
