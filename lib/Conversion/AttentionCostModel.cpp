//===- AttentionCostModel.cpp - tilings of the tensor-core attention ------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The constants were fitted to `bpt-run --tune` measurements on an H200
// (docs/notes/cost-model.md): with them the model picks the measured winner,
// or a tiling within 3% of it, for D 64 / 128, causal or not, on both
// kernels.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/AttentionCostModel.h"

#include "bpt/Target/Chip.h"

#include "llvm/ADT/StringExtras.h"

#include <algorithm>
#include <cmath>

using namespace bpt;

namespace {

/// Dense bf16 tensor-core flops per clock and multiprocessor.
constexpr double kMmaSyncRate = 2048, kWgmmaRate = 4096;
/// Lane operations per clock and multiprocessor (4 schedulers x 32 lanes),
/// and shared-memory bytes per clock.
constexpr double kLanesPerClock = 128, kSharedBytesPerClock = 128;
/// Lane operations per score (scale, max, exp2, sum, convert, mask).
constexpr double kOpsPerScore = 8;
/// Clocks of synchronisation per key/value block and 4 warps.
constexpr double kSyncClocks = 100;
constexpr int64_t kRegistersPerSM = 65536;
/// Above this estimate the mma.sync kernel spills (ptxas caps it at 255).
constexpr double kSpillRegisters = 300;
/// The wgmma kernel's consumers (setmaxnreg 240) hold the output
/// accumulators (D/2 f32 a thread, D padded to 64-column blocks), the
/// scores (N/2) and their packed probabilities (N/4) besides ~50 others:
/// FlashAttention-3's tiles stay at or below this sum (D 128 × 128 keys:
/// 160; D 192 × 112: 180; D 256 × 80: 188), which D 256 × 96 (200) exceeds.
constexpr double kWgmmaAccumulatorRegisters = 192;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// The wgmma kernel's tile width for head dim `d`: whole 64-column blocks
/// of the 128-byte swizzle (D 32, 80, 96 padded with TMA's zero fill, as
/// sm90::AttentionKernelConfig::paddedHeadDim).
int64_t wgmmaTileColumns(int64_t d) { return ceilDiv(d, 64) * 64; }

/// Key/value blocks all thread blocks of one head iterate over together
/// (ragged sequences: the last, partial blocks count whole). Above
/// kExactQueryBlocks query blocks, every step-th block stands for its
/// step neighbours (the count is monotone in the block): an estimate in
/// bounded time for any sequence length.
double keyBlocksPerHead(const AttentionProblem &p, const AttentionTiling &t) {
  constexpr int64_t kExactQueryBlocks = int64_t(1) << 16;
  int64_t perQueryBlock = ceilDiv(p.seqKV, t.blockN);
  int64_t queryBlocks = ceilDiv(p.seqQ, t.blockM);
  if (!p.causal)
    return double(perQueryBlock) * queryBlocks;
  int64_t step = std::max<int64_t>(1, queryBlocks / kExactQueryBlocks);
  double total = 0;
  for (int64_t i = 0; i < queryBlocks; i += step) {
    // Key j is visible to query i when j <= i + (Skv - Sq).
    int64_t last = (i + 1) * t.blockM + p.seqKV - p.seqQ;
    int64_t visible = std::clamp<int64_t>(
        ceilDiv(std::max<int64_t>(last, 0), t.blockN), 0, perQueryBlock);
    total += double(visible) * std::min(step, queryBlocks - i);
  }
  return total;
}

} // namespace

ChipModel ChipModel::forChip(llvm::StringRef chip) {
  ChipInfo info = getChipInfo(chip);
  return {info.multiprocessors, info.sharedMemoryPerSM, info.clockGHz};
}

std::vector<AttentionTiling>
bpt::attentionTilingCandidates(AttentionKernelKind kind, int64_t headDim) {
  std::vector<AttentionTiling> candidates;
  if (kind == AttentionKernelKind::Wgmma) {
    // Above D 128, two stages of 128 keys exceed shared memory and their
    // scores the registers beside the wider output: key blocks in steps of
    // 16 between 64 and 128 (FlashAttention-3 takes 112 at D 192, 80 at
    // D 256).
    std::vector<int64_t> widths = {64, 128};
    if (headDim > 128)
      widths = {64, 80, 96, 112, 128};
    for (int64_t n : widths)
      for (int64_t stages : {2, 3, 4})
        candidates.push_back({128, n, stages});
    return candidates;
  }
  for (int64_t m : {64, 128})
    for (int64_t n : {32, 64, 128})
      for (int64_t stages : {2, 3})
        candidates.push_back({m, n, stages});
  return candidates;
}

std::optional<double> bpt::predictAttentionMs(AttentionKernelKind kind,
                                              const AttentionProblem &p,
                                              const AttentionTiling &t,
                                              const ChipModel &chip,
                                              int64_t sharedMemory) {
  // Both kernels take ragged sequences (a partial last block costs as
  // much as a whole one: keyBlocksPerHead).
  const double m = t.blockM, n = t.blockN, d = p.headDim;
  int64_t shared, threads, registers;
  double tensor, syncWarps;
  if (kind == AttentionKernelKind::Wgmma) {
    // Tiles of whole 64-column blocks (D 32, 80, 96 padded with zeros):
    // Q·Kᵀ over D, P·V over the padded width.
    int64_t padded = wgmmaTileColumns(p.headDim);
    if (padded / 2 + 0.75 * n > kWgmmaAccumulatorRegisters)
      return std::nullopt;
    // Q, a ring of K and V, 1 KiB of alignment, the mbarriers.
    shared = 1024 + t.blockM * padded * 2 +
             2 * t.stages * t.blockN * padded * 2 + 8 * (1 + 3 * t.stages);
    // Three warpgroups with setmaxnreg: the whole register file.
    threads = 384;
    registers = kRegistersPerSM / threads;
    tensor = 2 * m * n * (d + padded) / kWgmmaRate;
    syncWarps = 8; // two consumer warpgroups
  } else {
    shared = 128 + t.blockM * p.headDim * 2 +
             2 * t.stages * t.blockN * p.headDim * 2;
    threads = 32 * t.blockM / 16;
    double estimate = 17 + 1.34 * d + 1.28 * n;
    if (estimate > kSpillRegisters)
      return std::nullopt;
    registers = std::min<int64_t>(255, ceilDiv(int64_t(estimate), 8) * 8);
    // Every warp reads all K and V fragments of the block.
    double fragmentBytes = (threads / 32) * 2 * n * d * 2;
    tensor = std::max(4 * m * n * d / kMmaSyncRate,
                      fragmentBytes / kSharedBytesPerClock);
    syncWarps = threads / 32;
  }
  if (shared > sharedMemory)
    return std::nullopt;
  int64_t resident =
      std::min({chip.sharedMemoryPerSM / shared,
                kRegistersPerSM / (threads * registers), 64 / (threads / 32)});
  if (resident < 1)
    return std::nullopt;
  // The output's rescale covers the padded columns on wgmma.
  double outputColumns = kind == AttentionKernelKind::Wgmma
                             ? double(wgmmaTileColumns(p.headDim))
                             : d;
  double softmax = (kOpsPerScore * m * n + m * outputColumns) / kLanesPerClock;
  double sync = kSyncClocks * syncWarps / 4;

  // Thread blocks resident together share a multiprocessor's issue slots
  // and hide each other's synchronisation; they run in waves.
  // In doubles: batch × heads × query blocks may exceed int64 on shapes
  // the kernels refuse anyway; the estimate must still be finite.
  double threadBlocks =
      double(p.batch) * double(p.heads) * double(ceilDiv(p.seqQ, t.blockM));
  double together = std::min(
      double(resident), std::ceil(threadBlocks / chip.multiprocessors));
  double waves = std::ceil(threadBlocks / (chip.multiprocessors * together));
  double blocksPerThreadBlock = keyBlocksPerHead(p, t) * double(p.batch) *
                                double(p.heads) / threadBlocks;
  double clocks = waves * blocksPerThreadBlock *
                  (together * (tensor + softmax) + sync);
  return clocks / (chip.clockGHz * 1e6);
}

std::optional<AttentionTiling>
bpt::chooseAttentionTiling(AttentionKernelKind kind,
                           const AttentionProblem &problem,
                           const ChipModel &chip, int64_t sharedMemory,
                           AttentionTiling pinned) {
  std::optional<AttentionTiling> best;
  double bestMs = 0;
  for (const AttentionTiling &t :
       attentionTilingCandidates(kind, problem.headDim)) {
    if ((pinned.blockM && pinned.blockM != t.blockM) ||
        (pinned.blockN && pinned.blockN != t.blockN) ||
        (pinned.stages && pinned.stages != t.stages))
      continue;
    std::optional<double> ms =
        predictAttentionMs(kind, problem, t, chip, sharedMemory);
    if (!ms)
      continue;
    // Within 0.5% the model cannot tell: keep the smaller ring.
    bool better = !best || *ms < bestMs * 0.995 ||
                  (*ms <= bestMs * 1.005 && t.stages < best->stages);
    if (better) {
      best = t;
      bestMs = *ms;
    }
  }
  return best;
}

int64_t bpt::coveringKVSplits(int64_t keyBlocks, int64_t splits) {
  int64_t perSplit = (keyBlocks + splits - 1) / splits;
  return (keyBlocks + perSplit - 1) / perSplit;
}

int64_t bpt::maxKVSplitsForTraffic(int64_t seqKV, int64_t packedRows) {
  return std::max<int64_t>(1, seqKV / (16 * packedRows));
}

int64_t bpt::chooseKVSplits(int64_t groups, int64_t keyBlocks,
                            int64_t blocksPerSM, const ChipModel &chip,
                            int64_t maxSplits) {
  int64_t slots = chip.multiprocessors * std::max<int64_t>(1, blocksPerSM);
  // A grid that nearly fills a wave already gains nothing from splitting.
  if (keyBlocks <= 1 || 5 * groups >= 4 * slots)
    return 1;
  auto efficiency = [&](int64_t splits) {
    int64_t blocks = groups * splits;
    int64_t waves = (blocks + slots - 1) / slots;
    return double(blocks) / double(waves * slots);
  };
  int64_t most = std::min({kMaxKVSplits, keyBlocks, maxSplits});
  double best = 0;
  for (int64_t s = 1; s <= most; ++s)
    best = std::max(best, efficiency(coveringKVSplits(keyBlocks, s)));
  for (int64_t s = 1; s <= most; ++s) {
    int64_t splits = coveringKVSplits(keyBlocks, s);
    if (efficiency(splits) >= 0.85 * best)
      return splits;
  }
  return 1;
}
