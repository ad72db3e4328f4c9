//===- GemmProblem.h - what a tensor-core GEMM kernel computes --*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// What the GEMM kernels of both tensor-core paths have in common: the
// problem (shapes, element type, epilogue), the tile sizes and the bytes of
// a pipeline stage, the start of the kernel's name, and the activation
// epilogue on the f32 accumulators. sm80::GemmConfig and sm90::GemmConfig
// derive from GemmProblem and add their chip's tiling; both are still built
// as `{aRows, cRows, n, k, bf16, activation}`.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_GEMMPROBLEM_H
#define BPT_LIB_CONVERSION_GEMMPROBLEM_H

#include "bpt/Conversion/Passes.h"
#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string>

namespace bpt::codegen {

using namespace mlir;

/// One GEMM kernel: C[cRow0 + i, :] = epilogue(A[aRow0 + i, :] · B) for the
/// rows i of the launch (a grid of [n / blockN, rowTiles()]), with A
/// [aRows, k], B [k, n] and C [cRows, n], row-major.
struct GemmProblem {
  int64_t aRows, cRows, n, k;
  bool bf16; // else f16
  std::optional<Activation> activation;
  /// C = act(A · G) ⊙ (A · B) with a second B operand G (SwiGLU, GeGLU):
  /// two accumulators, so 128-wide tiles only.
  bool gated = false;
  /// A thread block's tile of C is blockM × blockN, a pipeline stage one
  /// blockK-deep slice of A and B. `blockN` 0 is for the chip's tiling to
  /// choose; `stages` is always the tiling's.
  int64_t blockM = 128, blockN = 0, blockK = 64, stages = 0;
  /// f32 operands multiplied as TF32 (mma.sync only; `bf16` unused): 4-byte
  /// elements, so a 128-byte slice row holds blockK = 32 of them, and C is
  /// f32.
  bool tf32 = false;

  int64_t elementBytes() const { return tf32 ? 4 : 2; }

  /// The rows one launch computes: every launch of bpt's GEMMs covers one
  /// chunk (or all) of the rows, which is the whole of the smaller of A
  /// and C.
  int64_t launchRows() const { return std::min(aRows, cRows); }
  /// A launch's last row tile is partly past its rows (any row count is
  /// taken): A's rows there read as zeros (TMA's out-of-bounds fill,
  /// zero-filling cp.async) or are the next chunk's, and C's are not
  /// stored.
  bool raggedRows() const { return launchRows() % blockM != 0; }
  int64_t rowTiles() const { return (launchRows() + blockM - 1) / blockM; }
  /// The launch grid (x, y): a thread block a tile of C, column tiles
  /// along x.
  std::array<int64_t, 2> grid() const { return {n / blockN, rowTiles()}; }
  /// The grid a launch takes (kernels whose blocks are not a tile each
  /// hide this).
  std::array<int64_t, 2> launchGrid() const { return grid(); }

  /// B, and G when gated.
  int64_t bOperands() const { return gated ? 2 : 1; }
  int64_t aTileBytes() const { return blockM * blockK * elementBytes(); }
  int64_t bTileBytes() const { return blockK * blockN * elementBytes(); }
  /// A's tile of a stage, then B's (and G's).
  int64_t stageBytes() const {
    return aTileBytes() + bTileBytes() * bOperands();
  }

  /// `gemm_<chip>_a<aRows>_c<cRows>_n<n>_k<k>[_<activation>][_gated]
  /// [_ragged]`, the start of a kernel name that each chip's configuration
  /// completes.
  std::string kernelNamePrefix(StringRef chip) const {
    std::string name =
        llvm::formatv("gemm_{0}_a{1}_c{2}_n{3}_k{4}", chip, aRows, cRows, n, k)
            .str();
    if (activation)
      name += "_" + stringifyActivation(*activation).str();
    if (gated)
      name += "_gated";
    if (tf32)
      name += "_tf32";
    if (raggedRows())
      name += "_ragged";
    return name;
  }

  /// The epilogue's activation on an f32 accumulator element `value`: for a
  /// gated GEMM act(`gate`) · value, with `gate` the element of G's
  /// accumulator; else act(value), or `value` without an activation. The
  /// epilogue's forms (buildEpilogueActivation): C is 16-bit, or f32 of
  /// TF32 products, whose rounding (~1e-3) is further still from the
  /// forms' few ulps.
  Value activate(OpBuilder &b, Location loc, Value value, Value gate) const {
    if (gated)
      return arith::MulFOp::create(
          b, loc, buildEpilogueActivation(b, loc, *activation, gate), value);
    if (activation)
      return buildEpilogueActivation(b, loc, *activation, value);
    return value;
  }
};

} // namespace bpt::codegen

#endif // BPT_LIB_CONVERSION_GEMMPROBLEM_H
