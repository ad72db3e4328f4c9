//===- NormKernel.h - the row-wise norm kernel ------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// layer_norm and rms_norm of 16-bit rows as one kernel: one warp a row, the
// row held in registers (16-byte loads), f32 statistics by warp shuffles, one
// pass over global memory each way. Written with the chip-independent
// NVVMEmitter: nothing in it needs tensor cores. The wgmma block's chunk
// loops (bpt-block-to-sm90) launch it per chunk; bpt-norm-to-rowwise
// launches it for the norms whose strategy takes the `rowwise` path.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_NORMKERNEL_H
#define BPT_LIB_CONVERSION_NORMKERNEL_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

#include <optional>
#include <string>

namespace bpt::codegen {

/// out[outRow0 + i, :] = norm(x[xRow0 + i, :]) for i in [0, rows): x has
/// `xRows` rows and out `outRows`, each of `hidden` elements; the launch's
/// grid is blocks() of threads() (kRowsPerBlock warps, a row each), and rows
/// past `rows` in the last block are skipped.
struct NormConfig {
  int64_t xRows, outRows, hidden;
  bool layerNorm;
  double epsilon;
  bool bf16;
  int64_t rows;
  static constexpr int64_t kRowsPerBlock = 8;
  /// Elements a row may have: a lane holds hidden / 32 f32 values in
  /// registers (128 at 4096).
  static constexpr int64_t kMaxHidden = 4096;

  std::string kernelName() const;
  int64_t blocks() const { return (rows + kRowsPerBlock - 1) / kRowsPerBlock; }
  static constexpr int64_t threads() { return 32 * kRowsPerBlock; }

  /// Why `rows` rows of `hidden` elements of `element` cannot take the
  /// kernel (a warp's 16-byte loads tile the row: a multiple of 256 16-bit
  /// elements, at most kMaxHidden; rows a 32-bit index addresses), or
  /// nothing.
  static std::optional<std::string> check(int64_t rows, int64_t hidden,
                                          mlir::Type element);
};

/// The epsilon of a bpt.layer_norm or bpt.rms_norm `norm`.
double normEpsilon(mlir::Operation *norm);

/// The kernel for `config` in `kernels` (built on first use; the name says
/// everything the code depends on).
mlir::gpu::GPUFuncOp getOrBuildNormKernel(mlir::gpu::GPUModuleOp kernels,
                                          const NormConfig &config,
                                          mlir::Type element,
                                          mlir::Location loc);

} // namespace bpt::codegen

#endif // BPT_LIB_CONVERSION_NORMKERNEL_H
