//===- SM90Kernels.h - the sm_90a kernels bpt builds ------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The kernels of bpt's Hopper path, each built once per configuration into
// the module's `gpu.module @bpt_sm90` and shared by the passes that launch
// them (bpt-attention-to-sm90, bpt-ffn-to-sm90, bpt-block-to-sm90).
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_SM90KERNELS_H
#define BPT_LIB_CONVERSION_SM90KERNELS_H

#include "AttentionGradKernels.h"
#include "GemmProblem.h"
#include "SM90Emitter.h"

#include "bpt/Dialect/BPTOps.h"
#include "bpt/Target/Chip.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <array>
#include <optional>

namespace bpt::sm90 {

/// Bytes of L2 a group of causal attention blocks may keep hot (a third of
/// the H100's and H200's 50 MiB).
constexpr int64_t kCausalGroupL2Bytes = 16 << 20;

/// The largest divisor of `pairs` whose pairs' `bytesPerPair` together fit
/// in kCausalGroupL2Bytes; at least 1.
inline int64_t causalGroupSize(int64_t pairs, int64_t bytesPerPair) {
  // A pair holds at least a byte (the forward's per-head share is an
  // integer division).
  bytesPerPair = std::max<int64_t>(1, bytesPerPair);
  int64_t group = 1;
  for (int64_t g = 1; g <= pairs && g * bytesPerPair <= kCausalGroupL2Bytes;
       ++g)
    if (pairs % g == 0)
      group = g;
  return group;
}

/// What one attention kernel computes and how it is blocked.
struct AttentionKernelConfig {
  int64_t batch, heads, kvHeads, seqQ, seqKV, headDim;
  bool causal;
  double scale;
  bool bf16; // else f16
  /// Token-major (the fused block's layout): Q and the output are
  /// [B * S, H * D], K and V [B * S, Hkv * D] (self-attention, Sq = Skv:
  /// sequence b's queries and keys start at the same row). Else head-major
  /// [B, H, S, D] tensors, as bpt.attention's operands. Each block reads
  /// its Q tile once before it writes the same rows and columns of the
  /// output, so a token-major output may be Q's own buffer.
  bool tokenMajor = false;
  /// Also writes each query row's log-sum-exp (natural log of the row sum
  /// of exp(scale · q·kᵀ), -inf for a row that sees no key) to a [B, H, S]
  /// f32 argument after the output: the state a backward pass needs.
  /// Head-major only.
  bool lse = false;
  int64_t blockM = 128, blockN = 128, stages = 2, consumerGroups = 2;

  /// Query and key/value blocks, the last one partial where the sequence
  /// is not a multiple of the block (head-major only: the token-major
  /// kernel takes whole blocks).
  int64_t queryBlocks() const { return (seqQ + blockM - 1) / blockM; }
  int64_t keyBlocks() const { return (seqKV + blockN - 1) / blockN; }
  /// Causal blocks run in groups of causalGroup() heads (of all
  /// sequences, head fastest), and within a group by query block, the
  /// heaviest first, head fastest: every head's heavy blocks start before
  /// the group's light ones, so the last wave is light work (one head at a
  /// time, heaviest first, started the last head's heavy blocks last: a
  /// tail as long as one of them; H100, S 4k, 16 heads, batch 1: 178 ->
  /// 153 µs in groups of 8), while the group's K and V stay in L2 (all
  /// heads in one group thrashed it: S 1k, batch 16, -28%). A group's K
  /// and V fit in kCausalGroupL2Bytes; the group size divides heads ×
  /// batch.
  int64_t causalGroup() const {
    // K and V bytes per query head (a GQA group's heads share theirs).
    return causalGroupSize(heads * batch,
                           seqKV * paddedHeadDim() * 4 / (heads / kvHeads));
  }
  bool groupsHeads() const { return causal && causalGroup() > 1; }
  /// Groups of several heads: one dimension of queryBlocks() × heads ×
  /// batch blocks in the order above. Else the query block is x (the
  /// heaviest first when causal), the head y and the sequence z: a head's
  /// blocks run together and share its K and V in L2. (The same order as
  /// groups of one head, but not the same code: decoded from one
  /// dimension, LLVM bounds the query position and drops the key loop's
  /// zero-trip guard, and ptxas schedules the loop worse: a 64k causal
  /// attention 28.7-29.1 -> 30.3-30.9 ms, tensor pipe 78 -> 71%.)
  std::array<int64_t, 3> grid() const {
    if (groupsHeads())
      return {queryBlocks() * heads * batch, 1, 1};
    return {queryBlocks(), heads, batch};
  }
  /// Ragged sequences: Q (or K and V) are read through 3-D tensor maps of
  /// [B · heads, S, D], so that TMA zero-fills the rows of a block past its
  /// head's end; the last key block masks the keys past Skv, and query rows
  /// past Sq are not stored.
  bool raggedQ() const { return !tokenMajor && seqQ % blockM != 0; }
  bool raggedKV() const { return !tokenMajor && seqKV % blockN != 0; }
  bool ragged() const { return raggedQ() || raggedKV(); }

  /// The head dimensions the kernel takes (head-major; token-major: 64 and
  /// 128). Tiles hold whole 64-column blocks of the 128-byte swizzle: D 32,
  /// 80 and 96 are padded to 64, 128 and 128 columns with TMA's zero fill;
  /// Q·Kᵀ reads only the D columns (k16 steps), P·V computes the padded
  /// columns too (its N is the padded width) and the epilogue drops them.
  static bool takesHeadDim(int64_t d) {
    return d == 32 || d == 64 || d == 80 || d == 96 || d == 128 || d == 192 ||
           d == 256;
  }
  int64_t paddedHeadDim() const {
    return (headDim + kSwizzleElements - 1) / kSwizzleElements *
           kSwizzleElements;
  }

  int64_t threads() const { return kWarpgroup * (1 + consumerGroups); }
  int64_t qTileBytes() const { return blockM * paddedHeadDim() * 2; }
  int64_t kvTileBytes() const { return blockN * paddedHeadDim() * 2; }
  int64_t kOffset(int64_t stage) const {
    return qTileBytes() + stage * kvTileBytes();
  }
  int64_t vOffset(int64_t stage) const {
    return qTileBytes() + (stages + stage) * kvTileBytes();
  }
  // Barriers: Q full, K full per stage, V full per stage, empty per stage.
  int64_t barrierOffset(int64_t index) const {
    return qTileBytes() + 2 * stages * kvTileBytes() + 8 * index;
  }
  int64_t numBarriers() const { return 1 + 3 * stages; }
  /// 1 KiB of slack aligns the base to the 128-byte swizzle's 1 KiB pattern.
  int64_t sharedMemoryBytes() const { return 1024 + barrierOffset(numBarriers()); }
  std::string kernelName() const {
    std::string name = llvm::formatv("attention_sm90_d{0}{1}{2}", headDim,
                                     causal ? "_causal" : "", lse ? "_lse" : "")
                           .str();
    if (tokenMajor)
      name += llvm::formatv("_tokens_h{0}_kv{1}_s{2}_b{3}", heads, kvHeads,
                            seqKV, batch)
                  .str();
    if (blockN != 128 || stages != 2)
      name += llvm::formatv("_t{0}x{1}", blockN, stages).str();
    if (ragged())
      name += "_ragged";
    return name;
  }
};

/// The attention kernel for `config` (arguments: Q, K, V tensor maps, the
/// output; head-major with `lse` adds the log-sum-exp), launched on
/// `config.grid()`.
gpu::GPUFuncOp getOrBuildAttentionKernel(ModuleOp module,
                                         const AttentionKernelConfig &config,
                                         Type element, Location loc);

/// Rows of C's store map's boxes (GemmConfig::tmaStore): the 64 rows a
/// consumer stages at a time; 64 columns (128 bytes, the swizzle's width).
constexpr int64_t kStoreBoxRows = 64;

/// A wgmma GEMM kernel (see GemmProblem): a producer warpgroup and
/// `consumerGroups` consumers of 64 rows each.
struct GemmConfig : codegen::GemmProblem {
  /// C += R[rRow0 + i, :] in the epilogue, R of rRows rows.
  bool residual = false;
  int64_t rRows = 0;
  /// bpt.matmul's operand layouts: A stored [K, M] (M-major in shared
  /// memory) rather than [M, K], B stored [N, K] (K-major) rather than
  /// [K, N]. Neither with `gated`.
  bool transposeA = false, transposeB = false;
  /// C = S + A·B with S an f32 [launch rows, N] argument after C, in place
  /// of R (S's row i is C's row cRow0 + i).
  bool accumulate = false;
  /// B's first stored row is a kernel argument (B a chunk of a larger
  /// matrix: rows of K, or of N when transposed); else row 0.
  bool bRowOffset = false;
  /// bpt.matmul's activation-gradient epilogue: with P an f32
  /// [launch rows, N] argument after C (in place of R and S), C = (A·B) ⊙
  /// act'(P) and a second output H = act(P) of C's type and P's shape
  /// (P's row i and H's row i are C's row cRow0 + i). Not with
  /// `activation`, `gated`, `residual` or `accumulate`.
  std::optional<Activation> activationGrad;
  /// C is f32 rather than A's 16-bit type.
  bool f32Output = false;
  int64_t consumerGroups = 2;
  /// Thread blocks a multiprocessor holds (chooseGemmTiling): 2 where two
  /// blocks' stages fit its shared memory and the epilogue fits 112
  /// registers a thread (fitsTwoBlocks), so that one block's epilogue and
  /// prologue overlap the other's main loop.
  int64_t blocksPerMultiprocessor = 1;

  /// Split-K of a mostly idle last wave (planTailSplit; hopper.md version
  /// 21): the last `tailTiles` tiles (row-major) are each split along K
  /// into `kSplits` parts of kStepsPerSplit() steps, run by blocks after
  /// the whole tiles', which store their f32 partial sums in a workspace
  /// (the kernel's last argument); a second launch of the kernel built
  /// with `reduceTail` sums each of those tiles' parts in split order and
  /// runs the epilogue, so results do not depend on timing. 0 and 1: no
  /// split.
  int64_t tailTiles = 0, kSplits = 1;
  bool reduceTail = false;
  /// The most parts planTailSplit may split a tile into (the strategy's
  /// `gemm_split`): 1 none, 0 the model's limit (8).
  int64_t splitLimit = 0;
  /// The reduce kernel: the parts' tile width where it is wider than
  /// blockN (0: the same); each of its blocks then sums a blockN-wide
  /// column slice of a split tile, so that more multiprocessors share the
  /// reads (a 256-wide tile's 8 parts are 1 MiB).
  int64_t partsBlockN = 0;
  bool splitsTail() const { return tailTiles > 0 && kSplits > 1; }
  /// C's rows a consumer warpgroup computes: 64, or 128 with 256-row
  /// tiles (two m64 wgmmas a k16 step, `mHalves()` accumulators).
  int64_t consumerRows() const { return blockM / consumerGroups; }
  int64_t mHalves() const { return consumerRows() / 64; }
  /// 256-row tiles (hopper.md version 25: cuBLAS's 256 × 128 on the FFN's
  /// shapes) take plain, activation and residual epilogues on untransposed
  /// 16-bit operands.
  bool allowsTallTiles() const {
    return !gated && !accumulate && !activationGrad && !transposeA &&
           !f32Output;
  }
  /// A persistent grid of this many thread blocks (0: a block a tile):
  /// block b takes tiles b, b + grid, ... (row-major, column tiles
  /// fastest); its producer's K steps run on across them through one
  /// ring, so the next tile's first stages load while the consumers run
  /// this tile's epilogue, which stages C in an area of its own, 64 rows a
  /// consumer at a time (the ring's A rows hold the next tile by then).
  int64_t persistentBlocks = 0;
  bool persistent() const { return persistentBlocks != 0; }
  /// The persistent kernel stores C by TMA (hopper.md version 28): C's
  /// argument is a tensor map of C with [64, 64] boxes (gemmOutputOperand),
  /// and one consumer thread stores each staged 64-row box while its
  /// warpgroup goes back to the main loop.
  bool tmaStore() const { return persistent(); }
  /// 256-row tiles with a staged epilogue, unsplit, of whole launches or
  /// of ragged ones whose rows past the launch the TMA store drops.
  bool canRunPersistent() const {
    return blockM == 256 && !splitsTail() &&
           (launchRows() % blockM == 0 || clipsRaggedRows()) && !f32Output &&
           !activationGrad;
  }
  /// Whether a ragged launch's last tile may compute rows past its end and
  /// store them by TMA (which drops rows past C's tensor map): C's buffer
  /// is the launch's rows, and nothing else is read by row in the epilogue
  /// (A's rows past the launch are zeros or the next chunk's).
  bool clipsRaggedRows() const {
    return cRows == launchRows() && !residual && !accumulate && !activationGrad;
  }
  /// The persistent kernel's staging area (after the ring): blockN / 64
  /// column blocks of [consumers × 64 rows, 128 bytes].
  int64_t stagingOffset() const { return stages * stageBytes(); }
  int64_t stagingBytes() const {
    return persistent() ? consumerGroups * 64 * blockN * 2 : 0;
  }
  int64_t partsWidth() const { return partsBlockN ? partsBlockN : blockN; }
  /// A split tile's column slices in the reduce kernel.
  int64_t reduceSlices() const { return partsWidth() / blockN; }
  /// Tiles of the parts' width, and those of them not split.
  int64_t tiles() const { return rowTiles() * (n / partsWidth()); }
  int64_t wholeTiles() const { return tiles() - tailTiles; }
  int64_t kStepsPerSplit() const { return (kSteps() + kSplits - 1) / kSplits; }
  /// f32 elements of one part's partial sums (each accumulator's).
  int64_t partialFloats() const { return blockM * partsWidth() * bOperands(); }
  int64_t workspaceFloats() const {
    return tailTiles * kSplits * partialFloats();
  }
  /// The grid of this kernel's launch: a block a tile (grid()), or with a
  /// split tail a row of blocks, the whole tiles' then the parts' (or,
  /// `reduceTail`, the split tiles').
  std::array<int64_t, 2> launchGrid() const {
    if (persistent())
      return {std::min(tiles(), persistentBlocks), 1};
    if (!splitsTail())
      return grid();
    if (reduceTail)
      return {tailTiles * reduceSlices(), 1};
    return {wholeTiles() + tailTiles * kSplits, 1};
  }

  /// C's tile goes through shared memory (this consumer's A rows of the
  /// first blockN / 64 stages, free once its main loop is done: a block
  /// computes one tile) and out in 16-byte stores, whole rows a warp,
  /// instead of 4-byte stores of the accumulator fragments (8 rows of 16
  /// bytes a warp instruction, half a 32-byte sector each). Wherever it
  /// applies (canStageEpilogue): 16-bit C without the activation
  /// gradient, enough stages to hold the tile's columns.
  bool stagedEpilogue = false;
  bool canStageEpilogue() const {
    return !f32Output && !activationGrad && stages * 64 >= blockN;
  }

  /// Whether the epilogue fits 112 registers a thread: one 64-register
  /// accumulator and no f32 fragment held across the main loop.
  bool fitsTwoBlocks() const {
    return blockM == 128 && blockN == 128 && !gated && !accumulate &&
           !activationGrad;
  }

  /// The stages chooseGemmTiling gives `blockN`-wide tiles when none are
  /// asked for: three (two blocks a multiprocessor) where the epilogue
  /// allows two, else as many as measured best with one block.
  int64_t defaultStages() const {
    return blockN == 256 || blockM == 256 ? 4 : fitsTwoBlocks() ? 3 : 6;
  }

  /// A's tensor map box rows: M rows of [M, K], or K rows of [K, M].
  int64_t aBoxRows() const { return transposeA ? blockK : blockM; }
  /// B's: K rows of [K, N], or N rows of [N, K].
  int64_t bBoxRows() const { return transposeB ? blockN : blockK; }
  /// Bytes of one element of C.
  int64_t cElementBytes() const { return f32Output ? 4 : 2; }
  /// K in blockK steps; a ragged last step reads TMA's zero fill.
  int64_t kSteps() const { return (k + blockK - 1) / blockK; }
  /// Whether P's fragment (blockN / 2 f32 a thread, as the accumulator's)
  /// is loaded before the main loop, its latency hidden behind the first
  /// TMA loads, or pair by pair in the epilogue. With 128-wide tiles the
  /// two fragments are 128 of the consumers' 240 registers (setmaxnreg);
  /// with 256-wide ones they would be 256 (ptxas spilled even with the
  /// whole fragment loaded after the main loop).
  bool preloadsPre() const { return blockN <= 128; }

  /// A producer warpgroup (setmaxnreg gives its registers to the
  /// consumers) and the consumers; with two blocks a multiprocessor, the
  /// consumers and one producer warp after them (2 × 288 threads × 112
  /// registers fit the register file, where ptxas would hold 384-thread
  /// blocks to 80 registers throughout: it sizes every role by the entry
  /// limit, too few for a wgmma of 64 accumulators).
  int64_t threads() const {
    return kWarpgroup * consumerGroups +
           (blocksPerMultiprocessor == 2 ? 32 : kWarpgroup);
  }
  // Barriers: full per stage, then empty per stage.
  int64_t barrierOffset(int64_t index) const {
    return stagingOffset() + stagingBytes() + 8 * index;
  }
  int64_t sharedMemoryBytes() const {
    return kSwizzleAtomBytes + barrierOffset(2 * stages);
  }
  std::string kernelName() const {
    std::string name = kernelNamePrefix("sm90");
    if (residual)
      name += llvm::formatv("_residual{0}", rRows).str();
    if (transposeA)
      name += "_at";
    if (transposeB)
      name += "_bt";
    if (accumulate)
      name += "_acc";
    if (activationGrad)
      name += "_actgrad_" + stringifyActivation(*activationGrad).str();
    if (f32Output)
      name += "_f32";
    if (bRowOffset)
      name += "_brow";
    if (splitsTail())
      name += llvm::formatv("_split{0}x{1}", tailTiles, kSplits).str();
    if (reduceTail)
      name += partsBlockN ? llvm::formatv("_reduce{0}", partsBlockN).str()
                          : std::string("_reduce");
    // Tilings other than the default (see chooseGemmTiling) are named.
    if (blockM != 128)
      name += llvm::formatv("_m{0}", blockM).str();
    if (persistent())
      name += "_p";
    if (blockN != 128 || stages != defaultStages()) {
      name += llvm::formatv("_t{0}x{1}", blockN, stages).str();
      if (blocksPerMultiprocessor != 1)
        name += llvm::formatv("_b{0}", blocksPerMultiprocessor).str();
    }
    return name;
  }
};

/// The GEMM kernel for `config` (arguments: A and B tensor maps, [the gate
/// weight's tensor map], C (its store map where config.tmaStore()), [the
/// residual, the f32 sum to add or the f32 pre-activation], [act(pre)], A's
/// and C's first rows, [the residual's first row], [B's first row]).
gpu::GPUFuncOp getOrBuildGemmKernel(ModuleOp module, const GemmConfig &config,
                                    Type element, Location loc);

/// C's launch argument for `config`: `c` (C's rows), or where
/// config.tmaStore() a tensor map of `c` with [64, 64] boxes (one map
/// serves every launch into `c` with that config: make it once).
Value gemmOutputOperand(OpBuilder &b, Location loc, const GemmConfig &config,
                        Value c);

/// Emits `config`'s launch at `b` with `args` (getOrBuildGemmKernel's
/// arguments up to the workspace): one launch, or with a split tail the
/// main one and the reduce one, both given a new f32 workspace for the
/// partial sums.
void emitGemmLaunches(OpBuilder &b, Location loc, ModuleOp module,
                      const GemmConfig &config, Type element, ValueRange args);

/// Sets `config`'s tail split (GemmConfig::tailTiles, kSplits) for a
/// launch over its launchRows() on `chip`: where the last wave of tiles
/// would be at most half full, its tiles split along K into the parts
/// predicted fastest, if that beats the second launch's cost. Not for
/// `accumulate` or `activationGrad` GEMMs (their f32 operand is read before
/// the main loop).
void planTailSplit(GemmConfig &config, const ChipInfo &chip);

/// The widest N tile (256 or 128 columns) that divides `n`, or 0.
int64_t pickBlockN(int64_t n);

/// Sets `config`'s tile width and stages: `blockN` and `stages` when given
/// (non-zero), else 256-wide tiles for an ungated GEMM of K >= 4096 whose N
/// they divide and 128-wide ones otherwise (hopper.md version 19/20), with
/// the width's default stages (GemmConfig::defaultStages) or as many as fit
/// a block's shared memory on `chip`; then the blocks a multiprocessor
/// holds. Returns why the request cannot be met, or nothing.
std::optional<std::string> chooseGemmTiling(GemmConfig &config, int64_t blockN,
                                            int64_t stages,
                                            const ChipInfo &chip);

/// Predicted time of one launch of `config` over `rows` rows of C on
/// `chip`, by waves: its tiles go out to the multiprocessors'
/// `blocksPerMultiprocessor` slots each, a wave of them taking its tile's
/// K steps (times blockN / 128 and the B operands) on a multiprocessor
/// shared by that many blocks, plus a launch's fixed cost. Units: one
/// 64-deep K step of a 128 × 128 tile on a whole multiprocessor (about
/// 0.45 µs on an H100). A model for choosing between chunkings of the same
/// work, not a clock: the constant is hopper.md version 13's T_0. A
/// launch whose last wave planTailSplit would split is predicted so.
double predictGemmLaunch(const GemmConfig &config, int64_t rows,
                         const ChipInfo &chip);

/// A lone FFN's chunk rows on the wgmma GEMMs whose tilings `up` and
/// `down` are chosen: the chunking of `rows` (chunks of whole 128-row
/// tiles, evened out, the last one holding the rest) whose launches
/// predictGemmLaunch predicts fastest, among chunks of at most
/// largestFFNChunkRows rows unless more than kMaxUnrolledChunks of them
/// would be needed. Of chunkings within 3% of the fastest it takes the one
/// of most chunks (the least intermediate memory). `rows` itself means one
/// chunk.
int64_t chooseFFNChunkRows(const GemmConfig &up, const GemmConfig &down,
                           int64_t rows, const ChipInfo &chip);

/// The largest chunk chooseFFNChunkRows considers: 32 rows a
/// multiprocessor (4224 on 132: its row tiles times a multiple of 8 column
/// tiles fill whole waves of two blocks a multiprocessor), or 2048 rows if
/// that is more.
int64_t largestFFNChunkRows(const ChipInfo &chip);

/// Checks the user-facing GEMM tiling options of a pass; the message names
/// the option.
std::optional<std::string> checkGemmTilingOptions(int64_t blockN,
                                                  int64_t stages);

/// What one attention backward kernel computes and how it is blocked
/// (bpt-attention-grad-to-sm90): a thread block owns `blockN` key/value
/// rows of one key/value head; each of its two consumer warpgroups holds
/// the dK and dV accumulators of 64 of them. It runs over the query heads
/// of the group and their query blocks of `blockM` rows that see the key
/// block, with Q, dO and their lse and D rows in a ring of `stages`
/// shared-memory stages, and adds each step's dQ = dS·K into an f32
/// accumulator in global memory (bulk reductions from shared memory).
/// Query blocks of 80 rows (D = 128, FlashAttention-3's tiling) compute dQ
/// transposed (transposedQueryGrad).
struct AttentionGradKernelConfig
    : codegen::GradBlocks<AttentionGradKernelConfig> {
  int64_t batch, heads, kvHeads, seqQ, seqKV, headDim;
  bool causal;
  double scale;
  bool bf16; // else f16
  /// Query blocks of 128 rows at D = 64 and 80 at D = 128 (the strategy's
  /// q_block): a step's dQ is then two [64, 64] pieces, or two [64, 80]
  /// pieces of dQᵀ, one a consumer.
  int64_t blockM = 128, blockN = 128, stages = 2, consumerGroups = 2;

  // Ragged sequences (GradBlocks): Q and dO (K and V) are read through
  // 3-D tensor maps of [B · heads, S, D], so that TMA zero-fills a last
  // block's rows past its head's end. The query side's f32 arrays (lse, D,
  // the dQ accumulator) are padded to whole query blocks, [B, Hq,
  // paddedSeqQ()]: a padded row has lse = +inf, so its P, dS and dQ piece
  // are zeros. Keys past Skv are masked; their dK and dV rows are not
  // stored.

  int64_t threads() const { return kWarpgroup * (1 + consumerGroups); }
  /// Query blocks that wgmma's 64-row M does not tile (80 rows at D = 128):
  /// each consumer computes dQᵀ = Kᵀ·dSᵀ for its 64 head columns instead
  /// (M = 64 head columns, N = blockM query rows), from a query-major dS
  /// tile ([blockM, blockN], stored transposed by stmatrix), and stages the
  /// piece as [blockM, 64] f32 in two 128-byte-swizzled boxes of 32
  /// columns, which its writer warp adds to the accumulator by TMA
  /// reductions (cp.reduce.async.bulk.tensor).
  bool transposedQueryGrad() const { return blockM % 64 != 0; }
  /// Why the kernel cannot take this tiling, or nothing.
  std::optional<std::string> tilingError() const {
    if ((headDim == 64 && blockM == 128) || (headDim == 128 && blockM == 80))
      return std::nullopt;
    return llvm::formatv("query blocks of {0} rows at D = {1} (128 rows at "
                         "D = 64, 80 at D = 128)",
                         blockM, headDim)
        .str();
  }
  int64_t kvTileBytes() const { return blockN * headDim * 2; }
  int64_t qTileBytes() const { return blockM * headDim * 2; }
  /// The lse or D values of one query block (f32).
  int64_t rowBytes() const { return blockM * 4; }
  // Shared memory: K, V, then Q and dO per stage, two dSᵀ tiles ([blockN,
  // blockM], each consumer its 64 rows; transposed dQ: dS tiles [blockM,
  // blockN], each consumer its 64 columns), lse and D per stage and the dQ
  // staging tiles (transposed dQ: the staging tiles first, 1 KiB aligned
  // for their swizzle), barriers.
  int64_t kOffset() const { return 0; }
  int64_t vOffset() const { return kvTileBytes(); }
  int64_t qOffset(int64_t stage) const {
    return 2 * kvTileBytes() + 2 * stage * qTileBytes();
  }
  int64_t dOOffset(int64_t stage) const {
    return qOffset(stage) + qTileBytes();
  }
  /// The dS tiles (dSᵀ [blockN, blockM], or [blockM, blockN] for
  /// transposed dQ; 16-bit), two: a step writes one while the other
  /// consumer may still read the last step's.
  int64_t dSBytes() const { return blockN * blockM * 2; }
  int64_t dSOffset() const { return qOffset(stages); }
  int64_t lseOffset(int64_t stage) const {
    int64_t first = transposedQueryGrad() ? stagingOffset(consumerGroups)
                                          : dSOffset() + 2 * dSBytes();
    return first + 2 * stage * rowBytes();
  }
  int64_t dOffset(int64_t stage) const {
    return lseOffset(stage) + rowBytes();
  }
  /// Bytes a stage's full barrier expects: Q, dO, lse and D.
  int64_t stageBytes() const { return 2 * qTileBytes() + 2 * rowBytes(); }
  /// Each consumer's f32 [64, 64] piece of a step's dQ before its bulk
  /// reduction into global memory: rows padded by 32 bytes, so that the
  /// accumulator fragments' stores conflict at most two ways on banks.
  /// Transposed dQ: [blockM, 64] as two [blockM, 32] boxes in the 128-byte
  /// swizzle (its 16-byte chunks permuted by the row: the fragments'
  /// transposed stores do not conflict).
  int64_t stagingRowBytes() const { return 64 * 4 + 32; }
  int64_t stagingBoxBytes() const { return blockM * kSwizzleBytes; }
  int64_t stagingBytes() const {
    return transposedQueryGrad() ? 2 * stagingBoxBytes()
                                 : 64 * stagingRowBytes();
  }
  int64_t stagingOffset(int64_t consumer) const {
    int64_t first =
        transposedQueryGrad() ? dSOffset() + 2 * dSBytes() : lseOffset(stages);
    return first + consumer * stagingBytes();
  }
  // Barriers: K/V full, full per stage, empty per stage, then per
  // consumer its staging tile's full and empty.
  int64_t barrierOffset(int64_t index) const {
    return (transposedQueryGrad() ? lseOffset(stages)
                                  : stagingOffset(consumerGroups)) +
           8 * index;
  }
  int64_t stagingFullBarrier(int64_t consumer) const {
    return 1 + 2 * stages + consumer;
  }
  int64_t stagingEmptyBarrier(int64_t consumer) const {
    return 1 + 2 * stages + consumerGroups + consumer;
  }
  int64_t numBarriers() const { return 1 + 2 * stages + 2 * consumerGroups; }
  int64_t sharedMemoryBytes() const {
    return kSwizzleAtomBytes + barrierOffset(numBarriers());
  }
  /// Causal key blocks start heaviest first (the first key blocks see the
  /// most query blocks) across groups of (K/V head, sequence) pairs whose
  /// query side (Q, dO, lse, D and the f32 dQ accumulator of the group's
  /// query heads) fits in kCausalGroupL2Bytes, as the forward's query
  /// blocks do; the group size divides kvHeads × batch.
  int64_t causalGroup() const {
    return causalGroupSize(kvHeads * batch,
                           (heads / kvHeads) * seqQ * (8 * headDim + 8));
  }
  bool groupsHeads() const { return causal && causalGroup() > 1; }
  /// Groups of several pairs: one dimension in that order. Else the key
  /// block is x, the K/V head y and the sequence z (a group of one in the
  /// same order, and the code that was measured).
  std::array<int64_t, 3> grid() const {
    if (groupsHeads())
      return {keyBlocks() * kvHeads * batch, 1, 1};
    return {keyBlocks(), kvHeads, batch};
  }
  std::string kernelName() const {
    return llvm::formatv("attention_grad_sm90_d{0}{1}{2}{3}", headDim,
                         causal ? "_causal" : "",
                         transposedQueryGrad()
                             ? llvm::formatv("_q{0}", blockM).str()
                             : "",
                         ragged() ? "_ragged" : "")
        .str();
  }
};

/// The attention backward kernel for `config` (arguments: K, V, Q and dO
/// tensor maps, lse and D ([B, Hq, Sq] f32; ragged Sq: the prepare
/// kernel's padded copy of lse and D, [B, Hq, paddedSeqQ()]), the f32 dQ
/// accumulator ([B, Hq, paddedSeqQ(), D], added to; transposed dQ: its
/// tensor map as [B·Hq·paddedSeqQ(), D] rows, [blockM, 32] boxes), dK and
/// dV ([B, Hkv, Skv, D], written)).
gpu::GPUFuncOp getOrBuildAttentionGradKernel(
    ModuleOp module, const AttentionGradKernelConfig &config, Type element,
    Location loc);

/// The backward's pre-pass and post-pass kernels (AttentionGradKernels.h)
/// for `config`, in the sm_90a kernel module.
inline gpu::GPUFuncOp getOrBuildAttentionGradPrepareKernel(
    ModuleOp module, const AttentionGradKernelConfig &config, Type element,
    Location loc, codegen::PrepareWork work) {
  return codegen::buildAttentionGradPrepareKernel(
      getOrCreateSM90KernelModule(module), codegen::paddedGradRowsOf(config),
      element, loc, work);
}
inline gpu::GPUFuncOp getOrBuildAttentionGradFinishKernel(
    ModuleOp module, const AttentionGradKernelConfig &config, Type element,
    Location loc) {
  return codegen::buildAttentionGradFinishKernel(
      getOrCreateSM90KernelModule(module), codegen::paddedGradRowsOf(config),
      element, loc);
}
using codegen::kFinishThreads;
using codegen::kPrepareThreads;
using codegen::prepareRowsPerBlock;

} // namespace bpt::sm90

#endif // BPT_LIB_CONVERSION_SM90KERNELS_H
