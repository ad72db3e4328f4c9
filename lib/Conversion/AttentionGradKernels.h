//===- AttentionGradKernels.h - the backward's pre- and post-pass -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The two small kernels around every tensor-core attention backward (the
// sm_90a and the mma.sync one): the pre-pass D = rowsum(dO ∘ O) with the
// f32 dQ accumulator zeroed, and the post-pass dQ = scale · accumulator.
// They use no chip-specific instruction; each backward pass builds them
// into its own kernel module.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_ATTENTIONGRADKERNELS_H
#define BPT_LIB_CONVERSION_ATTENTIONGRADKERNELS_H

#include "NVVMEmitter.h"

#include <cassert>

namespace bpt::codegen {

/// The block counts of a tensor-core backward's configuration `Config`
/// (its seqQ, seqKV, blockM and blockN), which both kernels share: any
/// sequence lengths, the last blocks partial where they are ragged, and
/// the query side's f32 arrays padded to whole query blocks.
template <typename Config> struct GradBlocks {
  int64_t queryBlocks() const {
    return (self().seqQ + self().blockM - 1) / self().blockM;
  }
  int64_t keyBlocks() const {
    return (self().seqKV + self().blockN - 1) / self().blockN;
  }
  int64_t paddedSeqQ() const { return queryBlocks() * self().blockM; }
  bool raggedQ() const { return self().seqQ % self().blockM != 0; }
  bool raggedKV() const { return self().seqKV % self().blockN != 0; }
  bool ragged() const { return raggedQ() || raggedKV(); }

private:
  const Config &self() const { return static_cast<const Config &>(*this); }
};

/// What the pre- and post-pass kernels need of a backward: the query
/// side's shape [B, Hq, Sq, D], the scale and the element type.
struct AttentionGradRows {
  int64_t batch, heads, seqQ, headDim;
  double scale;
  bool bf16; // else f16
  /// Nonzero where the backward kernel reads the query side's f32 arrays
  /// (D, the dQ accumulator and a copy of lse) padded to this many rows a
  /// head (whole query blocks of a ragged Sq).
  int64_t paddedSeqQ = 0;
  bool padded() const { return paddedSeqQ != 0; }
  /// Rows a head of the f32 arrays.
  int64_t accumulatorRows() const { return padded() ? paddedSeqQ : seqQ; }
};

/// The rows of a backward kernel's configuration.
template <typename Config>
AttentionGradRows gradRowsOf(const Config &config) {
  return {config.batch, config.heads, config.seqQ, config.headDim,
          config.scale, config.bf16};
}

/// The rows of a backward kernel's configuration, the query side padded
/// to whole query blocks where Sq is ragged.
template <typename Config>
AttentionGradRows paddedGradRowsOf(const Config &config) {
  AttentionGradRows rows = gradRowsOf(config);
  if (config.raggedQ())
    rows.paddedSeqQ = config.paddedSeqQ();
  return rows;
}

/// What a pre-pass kernel does: both halves, or one of them (the block
/// step's backward computes D early, so that O dies before q, k and v are
/// recomputed, and zeroes the accumulator just before the main kernel).
enum class PrepareWork { DotsAndZero, Dots, Zero };

/// The backward's pre-pass: D = rowsum(dO ∘ O) ([B·Hq·Sq] f32) and the f32
/// dQ accumulator zeroed, one row of D elements per D/8 threads with
/// 16-byte accesses, built into `kernels` as `attention_grad_prepare_dD`
/// (`_dots_` or `_zero_` for one half). Arguments: dO, O and D for the
/// dots, then the accumulator for the zero. Padded rows: D and the
/// accumulator have `accumulatorRows()` rows a head, and the dots take two
/// more arguments, lse ([B, Hq, Sq] f32) and its padded copy, which the
/// kernel writes (+inf in the padding: those rows' probabilities are
/// zeros); D is 0 there. Suffix `_padded`.
gpu::GPUFuncOp buildAttentionGradPrepareKernel(
    gpu::GPUModuleOp kernels, const AttentionGradRows &rows, Type element,
    Location loc, PrepareWork work = PrepareWork::DotsAndZero);
/// Threads a block of that kernel, and rows a block.
constexpr int64_t kPrepareThreads = 256;
inline int64_t prepareRowsPerBlock(int64_t headDim) {
  return kPrepareThreads / (headDim / 8);
}

/// The backward's post-pass: dQ = scale · the f32 accumulator, rounded to
/// the element type, 8 elements a thread (arguments: the accumulator, dQ),
/// built into `kernels`. Padded rows: the accumulator's padding is
/// skipped, and a grid of whole blocks may run past dQ's end (its last
/// threads do nothing).
gpu::GPUFuncOp buildAttentionGradFinishKernel(gpu::GPUModuleOp kernels,
                                              const AttentionGradRows &rows,
                                              Type element, Location loc);
/// Threads a block of that kernel (8 elements each).
constexpr int64_t kFinishThreads = 256;
/// Blocks of that kernel for `rows`. Unpadded, the kernel has no bounds
/// check: Sq (a multiple of the 32- or 64-row query block) and D (64 or
/// 128) make whole blocks; padded, its last threads do nothing.
inline int64_t finishBlocks(const AttentionGradRows &rows) {
  int64_t elements = rows.batch * rows.heads * rows.seqQ * rows.headDim;
  assert((rows.padded() || elements % (8 * kFinishThreads) == 0) &&
         "partial finish block");
  return (elements + 8 * kFinishThreads - 1) / (8 * kFinishThreads);
}

} // namespace bpt::codegen

#endif // BPT_LIB_CONVERSION_ATTENTIONGRADKERNELS_H
