//===- SM80Kernels.h - the mma.sync kernels bpt builds ----------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Kernels of bpt's mma.sync path (sm_80 and later) shared between passes,
// built once per configuration into `gpu.module @bpt_sm80`, and the
// attention kernel's configuration (its emitter lives with its pass,
// bpt-attention-to-sm80).
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_SM80KERNELS_H
#define BPT_LIB_CONVERSION_SM80KERNELS_H

#include "AttentionGradKernels.h"
#include "GemmProblem.h"
#include "SM80Emitter.h"

#include "bpt/Dialect/BPTOps.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <optional>
#include <string>

namespace bpt::sm80 {

/// Rows of one mma.sync m16n8k16 tile, and so of one warp's query rows.
constexpr int64_t kWarpRows = 16;

/// What one kernel computes and how it is blocked.
struct AttentionKernelConfig {
  int64_t batch, heads, kvHeads, seqQ, seqKV, headDim;
  bool causal;
  double scale;
  bool bf16; // else f16
  int64_t blockM = 64, blockN = 64, stages = 2;
  /// Also writes each query row's log-sum-exp (natural log of the row sum
  /// of exp(scale · q·kᵀ), -inf for a row that sees no key) to a [B, H, S]
  /// f32 argument after the output: the state a backward pass needs.
  bool lse = false;
  /// Split over the keys (decode and short queries): the kernel computes
  /// one split of `kvSplits` of the key blocks for the `packedHeads` query
  /// heads of one key/value group, whose seqQ rows each are the tile's
  /// packedRows() rows (row r: head r / seqQ of the group, query r %
  /// seqQ; blockM covers them); it writes the rows normalised in f32 and
  /// their log-sum-exp into [B, Hkv, kvSplits, packedRows] partials for
  /// the combine. 0: not split.
  int64_t kvSplits = 0, packedHeads = 1;

  bool split() const { return kvSplits > 0; }
  int64_t packedRows() const { return packedHeads * seqQ; }
  int64_t keyBlocksPerSplit() const {
    return (keyBlocks() + kvSplits - 1) / kvSplits;
  }
  int64_t warps() const { return blockM / kWarpRows; }
  int64_t queryBlocks() const { return (seqQ + blockM - 1) / blockM; }
  int64_t keyBlocks() const { return (seqKV + blockN - 1) / blockN; }
  /// Sequences that are not multiples of the blocks: the last blocks are
  /// partly zero-filled, their keys masked and their rows not stored.
  bool raggedQ() const { return seqQ % blockM != 0; }
  bool raggedKV() const { return seqKV % blockN != 0; }
  int64_t threads() const { return kWarp * warps(); }
  int64_t rowBytes() const { return headDim * 2; }
  int64_t chunksPerRow() const { return rowBytes() / kChunkBytes; }
  int64_t qTileBytes() const { return blockM * rowBytes(); }
  int64_t kvTileBytes() const { return blockN * rowBytes(); }
  int64_t kOffset() const { return qTileBytes(); }
  int64_t vOffset() const { return qTileBytes() + stages * kvTileBytes(); }
  int64_t sharedMemoryBytes() const {
    return kTileAlignment + qTileBytes() + 2 * stages * kvTileBytes();
  }
  std::string kernelName() const {
    std::string name = llvm::formatv("attention_sm80_d{0}{1}{2}", headDim,
                                     causal ? "_causal" : "", lse ? "_lse" : "")
                           .str();
    if (split())
      name = llvm::formatv("attention_split_kv_sm80_d{0}{1}_g{2}", headDim,
                           causal ? "_causal" : "", packedHeads)
                 .str();
    // The tiling differs per problem (cost model): always in the name.
    return name + llvm::formatv("_t{0}x{1}x{2}", blockM, blockN, stages).str();
  }
};

/// The mma.sync attention backward (bpt-attention-grad-to-sm80): a thread
/// block owns `blockN` key/value rows of one kv head, 16 a warp, and loops
/// over the group's query heads and their `blockM`-row query blocks that
/// see them, with Q, dO and their lse and D rows in a ring of `stages`
/// shared-memory stages; each step's dQ = dS·K is added into an f32
/// accumulator in global memory (red.global.add.f32).
struct AttentionGradKernelConfig
    : codegen::GradBlocks<AttentionGradKernelConfig> {
  int64_t batch, heads, kvHeads, seqQ, seqKV, headDim;
  bool causal;
  double scale;
  bool bf16; // else f16
  int64_t blockM = 64, blockN = 128, stages = 2;

  // Ragged sequences (GradBlocks): a last block's rows past the sequence
  // are zero-filled by the copies (cp.async reading 0 bytes); the query
  // side's f32 arrays (lse, D, the dQ accumulator) are padded to whole
  // query blocks, [B, Hq, paddedSeqQ()], a padded row with lse = +inf
  // (its P, dS and dQ piece are zeros). Keys past Skv are masked; their dK
  // and dV rows are not stored.

  int64_t warps() const { return blockN / kWarpRows; }
  int64_t threads() const { return kWarp * warps(); }
  /// Warps along a step's query columns: with 64-row query blocks, pairs
  /// of warps share 32 key rows, each the scores (Sᵀ, dPᵀ) of half the
  /// query columns, so that each reads half of Q and dO for them instead
  /// of all. At head dim 64 each keeps partial dK and dV over its half and
  /// the pair sums them once at the end; at head dim 128 (whose [32, D]
  /// partials would not fit) Pᵀ and dSᵀ go through shared memory
  /// (`sharedScores`).
  int64_t querySplit() const {
    return blockM == 64 && (headDim == 64 || sharedScores()) ? 2 : 1;
  }
  int64_t warpKeyRows() const { return kWarpRows * querySplit(); }
  int64_t warpQueryColumns() const { return blockM / querySplit(); }
  /// Head dim 128, 64-row query blocks: each step stores Pᵀ and dSᵀ into
  /// shared tiles; then a warp of a pair computes dV and dK for its half of
  /// the head columns over all the step's queries (A from the tiles), and
  /// the step's dQ piece follows after the same barrier (one dSᵀ tile: the
  /// other of the two is Pᵀ's).
  bool sharedScores() const { return headDim == 128 && blockM == 64; }
  /// Non-causal `sharedScores` kernels: key block n walks the query blocks
  /// from block n (mod their count) on, so that the blocks of a head in
  /// flight together add into different dQ rows. Measured (H100, sm_80
  /// PTX, session 36): −4% at D 128, S 4k and 16k; +1.7% on the D 64
  /// kernel and ±1% on the sm_90a ones, which keep the plain order.
  bool rotatesQueryBlocks() const { return !causal && sharedScores(); }
  /// The head columns of a warp's dK and dV.
  int64_t warpGradColumns() const {
    return sharedScores() ? headDim / 2 : headDim;
  }
  /// Split warps that keep partial dK and dV sums over their query
  /// columns (`_qs2`), summed by the pair after the last step.
  bool sumsPartials() const { return querySplit() > 1 && !sharedScores(); }
  /// Those partial sums ([blockN, D] f32 each), exchanged in shared memory
  /// (from offset 0) after the last step.
  int64_t partialsBytes() const {
    return sumsPartials() ? 2 * blockN * headDim * 4 : 0;
  }
  /// Why the kernel cannot take this tiling, or nothing: 32- or 64-row
  /// query blocks, 64- or 128-row key blocks (one warp for each 16 key rows),
  /// 2 to 4 stages, and a dQ piece a warp of whole 16-column steps.
  std::optional<std::string> tilingError() const {
    if (blockM != 32 && blockM != 64)
      return llvm::formatv("query blocks of {0} rows (32 or 64)", blockM).str();
    if (blockN != 64 && blockN != 128)
      return llvm::formatv("key blocks of {0} rows (64 or 128)", blockN).str();
    if (stages < 2 || stages > 4)
      return llvm::formatv("{0} stages (2 to 4)", stages).str();
    int64_t pieceColumns = headDim * (blockM / (kWarpRows * dQRowTiles()));
    if (pieceColumns % warps() != 0 || dQColumns() % 16 != 0)
      return llvm::formatv("a {0} x {1} tiling splits dQ's {0} x {2} tile "
                           "into pieces of {3} columns a warp (whole 16-column "
                           "steps needed)",
                           blockM, blockN, headDim,
                           double(pieceColumns) / warps())
          .str();
    return std::nullopt;
  }
  int64_t rowBytes() const { return headDim * 2; }
  int64_t kvTileBytes() const { return blockN * rowBytes(); }
  int64_t qTileBytes() const { return blockM * rowBytes(); }
  /// A stage's lse and D values (f32, blockM each).
  int64_t rowsBytes() const { return 2 * blockM * 4; }
  /// dQ's [blockM, D] tile of a step is shared out in [16·dQRowTiles(),
  /// dQColumns()] pieces, one a warp: with sharedScores 32-row pieces
  /// (their ldmatrix loads cover 8 mma where 16-row ones cover 6.4).
  int64_t dQRowTiles() const { return sharedScores() ? 2 : 1; }
  int64_t dQColumns() const {
    return headDim * (blockM / (kWarpRows * dQRowTiles())) / warps();
  }
  // Shared memory: K, V, Q and dO per stage, two dSᵀ tiles ([blockN,
  // blockM], 16-bit; by step parity: a step's dQ is computed during the
  // next step, while that one writes the other tile; with sharedScores
  // the step's dSᵀ and Pᵀ), lse and D per stage.
  int64_t kOffset() const { return 0; }
  int64_t vOffset() const { return kvTileBytes(); }
  int64_t qOffset(int64_t stage) const {
    return 2 * kvTileBytes() + 2 * stage * qTileBytes();
  }
  int64_t dOOffset(int64_t stage) const { return qOffset(stage) + qTileBytes(); }
  int64_t dSRowBytes() const { return blockM * 2; }
  int64_t dSTileBytes() const { return blockN * dSRowBytes(); }
  int64_t dSOffset(int64_t parity) const {
    return qOffset(stages) + parity * dSTileBytes();
  }
  int64_t rowsOffset(int64_t stage) const {
    return dSOffset(2) + stage * rowsBytes();
  }
  int64_t sharedMemoryBytes() const {
    return kTileAlignment + std::max(rowsOffset(stages), partialsBytes());
  }
  std::string kernelName() const {
    return llvm::formatv("attention_grad_sm80_d{0}{1}_t{2}x{3}x{4}{5}{6}",
                         headDim, causal ? "_causal" : "", blockM, blockN,
                         stages,
                         sharedScores()   ? "_ps"
                         : sumsPartials() ? "_qs2"
                                          : "",
                         ragged() ? "_ragged" : "")
        .str();
  }
};

/// The combine of an attention split over its keys (the combine nest of
/// #bpt.split_kv_nest): one thread block per 16-column slice of an output
/// row (batch, query head, query row), its lanes sharing the splits (with
/// few splits, four slices a block, a warp each); each
/// lane keeps an online (max, sum, accumulator) over its splits'
/// log-sum-exps and f32 columns, the lanes' states are merged by shuffles
/// and the warps' through shared memory, and the slice is stored in the
/// 16-bit element type (0 where no split saw a key). Plain loads and FMAs:
/// its work is splits × rows × D multiply-adds, small beside K and V, but
/// a chain of dependent loads if few threads share it.
struct SplitKVCombineConfig {
  int64_t batch, heads, kvHeads, seqQ, headDim, splits;
  bool bf16; // else f16

  /// A thread block combines one slice of 16 columns of one output row;
  /// a warp's lanes are 8 splits × 4 groups of 4 columns, so that one
  /// 16-byte load a lane reads the slice of 8 splits.
  static constexpr int64_t kSliceColumns = 16;
  static constexpr int64_t kColumnLanes = kSliceColumns / 4;
  static constexpr int64_t kSplitLanes = kWarp / kColumnLanes;
  /// Splits a lane loads before combining them.
  static constexpr int64_t kUnroll = 4;

  int64_t packedHeads() const { return heads / kvHeads; }
  int64_t packedRows() const { return packedHeads() * seqQ; }
  int64_t outputRows() const { return batch * heads * seqQ; }
  /// Head dimensions are multiples of 16 on mma.sync.
  int64_t slices() const { return headDim / kSliceColumns; }
  /// Warps sharing one slice's splits: enough that a lane has at most
  /// kUnroll splits (one round of loads), 1 to 16.
  int64_t splitWarps() const {
    return std::clamp<int64_t>(
        (splits + kSplitLanes * kUnroll - 1) / (kSplitLanes * kUnroll), 1, 16);
  }
  /// Slices a thread block takes, a warp each, where one warp takes all of
  /// a slice's splits (few splits: fewer, larger blocks, and no merge
  /// through shared memory).
  int64_t sliceWarps() const { return splitWarps() == 1 ? 4 : 1; }
  int64_t warps() const { return splitWarps() * sliceWarps(); }
  int64_t threads() const { return kWarp * warps(); }
  /// (Output row, slice) pairs, and the thread blocks that take them.
  int64_t items() const { return outputRows() * slices(); }
  int64_t blocks() const { return (items() + sliceWarps() - 1) / sliceWarps(); }
  /// Shared memory (several split warps): each warp's max and sum, then
  /// its 16 accumulators.
  int64_t stateBytes() const { return 8 * splitWarps(); }
  int64_t accOffset() const { return (stateBytes() + 15) / 16 * 16; }
  int64_t sharedMemoryBytes() const {
    return kTileAlignment + accOffset() + 4 * kSliceColumns * splitWarps();
  }
  std::string kernelName() const {
    return llvm::formatv("attention_split_kv_combine_d{0}_s{1}_w{2}{3}",
                         headDim, splits, splitWarps(),
                         sliceWarps() > 1 ? "x" + std::to_string(sliceWarps())
                                          : "")
        .str();
  }
};

/// The combine kernel for `config` (arguments: the partial rows
/// [B, Hkv, splits, rows, D] and their log-sum-exp [B, Hkv, splits, rows]
/// in f32, the output [B, Hq, Sq, D]).
gpu::GPUFuncOp buildSplitKVCombineKernel(ModuleOp module,
                                         const SplitKVCombineConfig &config,
                                         Type element, Location loc);

/// The attention backward kernel for `config` (arguments: Q, K, V, dO,
/// lse and D ([B, Hq, Sq] f32), the f32 dQ accumulator ([B, Hq, Sq, D],
/// added to), dK and dV ([B, Hkv, Skv, D], written)).
gpu::GPUFuncOp getOrBuildAttentionGradKernel(
    ModuleOp module, const AttentionGradKernelConfig &config, Type element,
    Location loc);

/// An mma.sync GEMM kernel (see GemmProblem); its name ends in its tile
/// width, stages and warps, `_t<blockN>x<stages>w<warps>`.
struct GemmConfig : codegen::GemmProblem {
  /// Warps along N (2 along M); set by check().
  int64_t warpsN = 4;

  int64_t threads() const { return 32 * 2 * warpsN; }
  int64_t warpTileN() const { return blockN / warpsN; }
  int64_t sharedMemoryBytes() const {
    return kTileAlignment + stages * stageBytes();
  }
  /// Chooses the tile (`blockN` when 0: 256 columns where N allows and the
  /// GEMM is not gated, else 128) and its warps, checks the shapes against
  /// it, and sets `stages` to as many as fit `sharedMemory` (2 to 4).
  /// Returns why the GEMM cannot be built, or nothing.
  std::optional<std::string> check(int64_t sharedMemory);

  std::string kernelName() const {
    return kernelNamePrefix("sm80") +
           llvm::formatv("_t{0}x{1}w{2}", blockN, stages, threads() / 32)
               .str();
  }
};

/// The GEMM kernel for `config` (arguments: A, B, [the gate weight], C, A's
/// and C's first rows as i32).
gpu::GPUFuncOp getOrBuildGemmKernel(ModuleOp module, const GemmConfig &config,
                                    Type element, Location loc);

} // namespace bpt::sm80

#endif // BPT_LIB_CONVERSION_SM80KERNELS_H
