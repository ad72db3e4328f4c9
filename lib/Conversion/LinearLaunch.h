//===- LinearLaunch.h - one GEMM launch for a bpt.linear --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// What bpt-linear-to-sm80 and bpt-linear-to-sm90 do alike: launch a GEMM
// kernel once over the input's rows into a fresh result buffer and replace
// the op (a bpt.linear, or on sm_90a a bpt.matmul) with it. Only the operands differ (raw buffers for mma.sync, TMA
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

#include <functional>
#include <optional>

namespace bpt::codegen {

/// Where a GEMM launch starts in its operands (the stored rows of A, B and
/// C; B's only with a kernel that takes it) and the buffer it writes: by
/// default a new one of the op's result type.
struct GemmLaunchPlace {
  int64_t aRow = 0, cRow = 0;
  std::optional<int64_t> bRow;
  mlir::Value out;
  /// C's launch argument from its rows (sm_90a: gemmOutputOperand, a store
  /// map where the kernel stores by TMA); the rows themselves when unset.
  std::function<mlir::Value(mlir::OpBuilder &, mlir::Value)> outputOperand;
};

/// Replaces `op` (a bpt.linear or bpt.matmul) by one launch of `kernel` (a
/// GEMM with `config`'s tiling: a grid of config.grid()) on `a`
/// and `b` (and `sum`, an f32 buffer to add, or the f32 pre-activation of
/// an activation-gradient epilogue, when given), writing `place.out` (or a
/// new buffer of the op's result type) viewed as rows. The op's result
/// becomes the new buffer; with `place.out` it must have no uses left (the
/// caller reads `place.out`). A second result (act(pre)) is a new buffer
/// the launch writes too.
template <typename GemmConfig>
void replaceWithGemmLaunch(mlir::OpBuilder &builder, mlir::Operation *op,
                           mlir::gpu::GPUFuncOp kernel,
                           const GemmConfig &config, mlir::Value a,
                           mlir::Value b, mlir::Value sum = {},
                           const GemmLaunchPlace &place = {}) {
  using namespace mlir;
  Location loc = op->getLoc();
  auto resultType = cast<RankedTensorType>(op->getResult(0).getType());
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(builder, loc, v);
  };
  auto i32 = [&](int64_t v) -> Value {
    return arith::ConstantOp::create(builder, loc, builder.getI32IntegerAttr(v));
  };
  Value out = place.out;
  if (!out)
    out = memref::AllocOp::create(
        builder, loc,
        MemRefType::get(resultType.getShape(), resultType.getElementType()));
  Value outRows = asRows(builder, loc, out);
  SmallVector<Value> arguments = {
      a, b,
      place.outputOperand ? place.outputOperand(builder, outRows) : outRows};
  if (sum)
    arguments.push_back(sum);
  Value second;
  if (op->getNumResults() == 2) {
    auto type = cast<RankedTensorType>(op->getResult(1).getType());
    second = memref::AllocOp::create(
        builder, loc, MemRefType::get(type.getShape(), type.getElementType()));
    arguments.push_back(second);
  }
  arguments.append({i32(place.aRow), i32(place.cRow)});
  if (place.bRow)
    arguments.push_back(i32(*place.bRow));
  gpu::LaunchFuncOp::create(
      builder, loc, kernel,
      gpu::KernelDim3{index(config.launchGrid()[0]),
                      index(config.launchGrid()[1]), index(1)},
      gpu::KernelDim3{index(config.threads()), index(1), index(1)},
      i32(config.sharedMemoryBytes()), arguments);
  if (second)
    op->getResult(1).replaceAllUsesWith(bufferization::ToTensorOp::create(
        builder, loc, op->getResult(1).getType(), second, /*restrict=*/true,
        /*writable=*/true));
  if (place.out) {
    assert(op->use_empty() && "the caller reads place.out");
    op->erase();
    return;
  }
  Value result = bufferization::ToTensorOp::create(
      builder, loc, resultType, out, /*restrict=*/true, /*writable=*/true);
  op->getResult(0).replaceAllUsesWith(result);
  op->erase();
}

} // namespace bpt::codegen

#endif // BPT_LIB_CONVERSION_LINEARLAUNCH_H
