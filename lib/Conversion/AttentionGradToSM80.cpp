//===- AttentionGradToSM80.cpp - attention backward on mma.sync -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Lowers the blockwise backward of one bpt.attention_grad whose strategy is
// mma_sync (the key/value and query nests bpt-tile-attention tagged
// #bpt.attention_grad_nest) to, in `gpu.module @bpt_sm80`:
//
//   - the pre-pass kernel: D = rowsum(dO ∘ O) (replacing the linalg
//     pre-pass bpt-tile-attention built) and a zero-filled f32 dQ
//     accumulator;
//   - one launch of the mma.sync backward kernel (AttentionGradSM80Kernel.cpp),
//     a thread block per iteration of the key/value nest, which writes dK
//     and dV and adds every dS·K product into the accumulator: the query
//     nest's dQ, folded into the key/value nest, whose dS tiles it
//     recomputed (red.global.add.f32: dQ is not bitwise reproducible);
//   - dQ = scale · accumulator, rounded to the element type (the post-pass
//     kernel).
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"
#include "bpt/Dialect/BPTDialect.h"

#include "AttentionGradKernels.h"
#include "AttentionNest.h"
#include "SM80Kernels.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace bpt {
#define GEN_PASS_DEF_BPTATTENTIONGRADTOSM80
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::codegen;
using namespace bpt::sm80;

namespace {

/// The host side of one backward: replaces both nests.
void lowerNests(ModuleOp module, AttentionGradNests &n) {
  AttentionGradKernelConfig config{};
  n.fillConfig(config);
  Type element = n.q.getType().getElementType();
  Location loc = n.keyValue.getLoc();
  gpu::GPUModuleOp kernels = getOrCreateSM80KernelModule(module);
  AttentionGradRows rows = paddedGradRowsOf(config);
  OpBuilder b(n.keyValue);
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  auto launch = [&](gpu::GPUFuncOp func, int64_t grid, int64_t threads,
                    Value sharedBytes, ValueRange args, int64_t gridY = 1,
                    int64_t gridZ = 1) {
    return gpu::LaunchFuncOp::create(
        b, loc, func, gpu::KernelDim3{index(grid), index(gridY), index(gridZ)},
        gpu::KernelDim3{index(threads), index(1), index(1)}, sharedBytes, args);
  };
  Value q = readOnlyBuffer(b, loc, n.q);
  Value k = readOnlyBuffer(b, loc, n.k);
  Value v = readOnlyBuffer(b, loc, n.v);
  Value outputGrad = readOnlyBuffer(b, loc, n.outputGrad);

  // D and the zeroed dQ accumulator (padded to whole query blocks where Sq
  // is ragged, with lse's padded copy, which the kernel reads instead).
  AttentionGradNests::Workspaces w =
      n.emitPrepare(b, rows.paddedSeqQ, [&](PrepareWork work) {
        return buildAttentionGradPrepareKernel(kernels, rows, element, loc,
                                               work);
      });
  gpu::GPUFuncOp kernel =
      getOrBuildAttentionGradKernel(module, config, element, loc);
  gpu::GPUFuncOp finish =
      buildAttentionGradFinishKernel(kernels, rows, element, loc);
  auto kvType = cast<MemRefType>(kernel.getArgumentTypes().back());
  Value dK = memref::AllocOp::create(b, loc, kvType);
  Value dV = memref::AllocOp::create(b, loc, kvType);
  gpu::LaunchFuncOp main =
      launch(kernel, config.keyBlocks(), config.threads(),
             arith::ConstantOp::create(
                 b, loc, b.getI32IntegerAttr(config.sharedMemoryBytes())),
             {q, k, v, outputGrad, w.lse, w.rowDots, w.accumulator, dK, dV},
             config.kvHeads, config.batch);
  // A block copies its K and V rows once, before it writes the same rows
  // of dK and dV: where K and V die here, dK and dV may take their bytes.
  main->setAttr(kWritesOverAttrName, b.getDenseI64ArrayAttr({7, 1, 8, 2}));

  Value dQ = memref::AllocOp::create(
      b, loc, MemRefType::get(n.q.getType().getShape(), element));
  launch(finish, finishBlocks(rows), kFinishThreads, /*sharedBytes=*/Value(),
         {w.accumulator, dQ});
  n.replaceWith(b, dQ, dK, dV);
}

struct BPTAttentionGradToSM80Pass final
    : bpt::impl::BPTAttentionGradToSM80Base<BPTAttentionGradToSM80Pass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (scf::ForallOp loop :
         collectAttentionGradNests(module, KernelPath::mma_sync)) {
      FailureOr<AttentionGradNests> n = AttentionGradNests::match(loop);
      if (failed(n))
        return signalPassFailure();
      lowerNests(module, *n);
    }
  }
};

} // namespace
