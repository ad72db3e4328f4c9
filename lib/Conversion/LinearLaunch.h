//===- LinearLaunch.h - one GEMM launch for a bpt.linear --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// What bpt-linear-to-sm80 and bpt-linear-to-sm90 do alike: launch a GEMM
// kernel once over the input's rows into a fresh result buffer and replace
// the op with it. Only the operands differ (raw buffers for mma.sync, TMA
// tensor maps for wgmma).
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_LINEARLAUNCH_H
#define BPT_LIB_CONVERSION_LINEARLAUNCH_H

#include "NVVMEmitter.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace bpt::codegen {

/// Replaces `op` by one launch of `kernel` (a GEMM with `config`'s tiling:
/// a grid of [n / blockN, rowTiles()]) on `a` and `b`, writing a new buffer
/// of the op's result type viewed as rows.
template <typename GemmConfig>
void replaceLinearWithGemmLaunch(mlir::OpBuilder &builder, LinearOp op,
                                 mlir::gpu::GPUFuncOp kernel,
                                 const GemmConfig &config, mlir::Value a,
                                 mlir::Value b) {
  using namespace mlir;
  Location loc = op.getLoc();
  auto resultType = cast<RankedTensorType>(op.getType());
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(builder, loc, v);
  };
  auto i32 = [&](int64_t v) -> Value {
    return arith::ConstantOp::create(builder, loc, builder.getI32IntegerAttr(v));
  };
  Value out = memref::AllocOp::create(
      builder, loc,
      MemRefType::get(resultType.getShape(), resultType.getElementType()));
  Value outRows = asRows(builder, loc, out);
  gpu::LaunchFuncOp::create(
      builder, loc, kernel,
      gpu::KernelDim3{index(config.n / config.blockN), index(config.rowTiles()),
                      index(1)},
      gpu::KernelDim3{index(config.threads()), index(1), index(1)},
      i32(config.sharedMemoryBytes()),
      ValueRange{a, b, outRows, i32(0), i32(0)});
  Value result = bufferization::ToTensorOp::create(
      builder, loc, resultType, out, /*restrict=*/true, /*writable=*/true);
  op.replaceAllUsesWith(result);
  op.erase();
}

} // namespace bpt::codegen

#endif // BPT_LIB_CONVERSION_LINEARLAUNCH_H
