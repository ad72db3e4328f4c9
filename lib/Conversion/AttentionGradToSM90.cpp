//===- AttentionGradToSM90.cpp - attention backward on Hopper ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Lowers the blockwise backward of one bpt.attention_grad whose strategy is
// wgmma (the key/value and query nests bpt-tile-attention tagged
// #bpt.attention_grad_nest) to:
//
//   - a zero-filled f32 dQ accumulator;
//   - one launch of the sm_90a backward kernel (AttentionGradSM90Kernel.cpp),
//     a thread block per iteration of the key/value nest, which writes dK
//     and dV and adds every dS·K product into the accumulator: the query
//     nest's dQ, folded into the key/value nest, whose dS tiles it
//     recomputed;
//   - dQ = scale · accumulator, rounded to the element type (a post-pass
//     kernel).
//
// A pre-pass kernel computes the row sums D = rowsum(dO ∘ O) (replacing
// the linalg pre-pass bpt-tile-attention built) and zeroes the
// accumulator.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"
#include "bpt/Dialect/BPTDialect.h"

#include "AttentionNest.h"
#include "SM90Kernels.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace bpt {
#define GEN_PASS_DEF_BPTATTENTIONGRADTOSM90
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::sm90;

namespace {

/// The host side of one backward: replaces both nests.
LogicalResult lowerNests(ModuleOp module, AttentionGradNests &n) {
  AttentionGradKernelConfig config{};
  n.fillConfig(config);
  // A strategy written by hand, not chosen by bpt-select-strategy.
  if (std::optional<std::string> why = config.tilingError())
    return n.keyValue.emitError()
           << "bpt-attention-grad-to-sm90: the kernel does not take " << *why;
  Type element = n.q.getType().getElementType();
  Location loc = n.keyValue.getLoc();
  gpu::GPUFuncOp kernel =
      getOrBuildAttentionGradKernel(module, config, element, loc);
  OpBuilder b(n.keyValue);
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  // A launch on a 1-D (or `gridY` × `gridZ`) grid of `threads`-thread
  // blocks.
  auto launch = [&](gpu::GPUFuncOp func, int64_t grid, int64_t threads,
                    Value sharedBytes, ValueRange args, int64_t gridY = 1,
                    int64_t gridZ = 1) {
    return gpu::LaunchFuncOp::create(
        b, loc, func, gpu::KernelDim3{index(grid), index(gridY), index(gridZ)},
        gpu::KernelDim3{index(threads), index(1), index(1)}, sharedBytes, args);
  };
  // Per head where the sequence is ragged (createHeadsTensorMap).
  Value mapK = createHeadsTensorMap(b, loc, readOnlyBuffer(b, loc, n.k),
                                    config.blockN, config.raggedKV());
  Value mapV = createHeadsTensorMap(b, loc, readOnlyBuffer(b, loc, n.v),
                                    config.blockN, config.raggedKV());
  Value mapQ = createHeadsTensorMap(b, loc, readOnlyBuffer(b, loc, n.q),
                                    config.blockM, config.raggedQ());
  Value outputGrad = readOnlyBuffer(b, loc, n.outputGrad);
  Value mapDO =
      createHeadsTensorMap(b, loc, outputGrad, config.blockM, config.raggedQ());

  // The pre-pass kernel writes D and zeroes the f32 dQ accumulator (both
  // padded to whole query blocks where Sq is ragged, with lse's padded
  // copy, which the kernel then reads instead of lse).
  codegen::AttentionGradRows rows = codegen::paddedGradRowsOf(config);
  AttentionGradNests::Workspaces w =
      n.emitPrepare(b, rows.paddedSeqQ, [&](codegen::PrepareWork work) {
        return getOrBuildAttentionGradPrepareKernel(module, config, element,
                                                    loc, work);
      });
  auto kvType = cast<MemRefType>(kernel.getArgumentTypes().back());
  Value dK = memref::AllocOp::create(b, loc, kvType);
  Value dV = memref::AllocOp::create(b, loc, kvType);
  std::array<int64_t, 3> grid = config.grid();
  // Transposed dQ pieces are added by TMA reductions through a map of the
  // accumulator's rows.
  Value accumulator =
      config.transposedQueryGrad()
          ? createHeadsTensorMap(b, loc, w.accumulator, config.blockM,
                                 /*perHead=*/false)
          : w.accumulator;
  gpu::LaunchFuncOp main =
      launch(kernel, grid[0], config.threads(),
             arith::ConstantOp::create(
                 b, loc, b.getI32IntegerAttr(config.sharedMemoryBytes())),
             {mapK, mapV, mapQ, mapDO, w.lse, w.rowDots, accumulator, dK, dV},
             grid[1], grid[2]);
  // A block loads its K and V rows once, before it writes the same rows of
  // dK and dV: where K and V die here, dK and dV may take their bytes.
  main->setAttr(kWritesOverAttrName, b.getDenseI64ArrayAttr({7, 0, 8, 1}));

  Value dQ = memref::AllocOp::create(
      b, loc, MemRefType::get(n.q.getType().getShape(), element));
  launch(getOrBuildAttentionGradFinishKernel(module, config, element, loc),
         codegen::finishBlocks(rows), kFinishThreads,
         /*sharedBytes=*/Value(), {w.accumulator, dQ});
  n.replaceWith(b, dQ, dK, dV);
  return success();
}

struct BPTAttentionGradToSM90Pass final
    : bpt::impl::BPTAttentionGradToSM90Base<BPTAttentionGradToSM90Pass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (scf::ForallOp loop :
         collectAttentionGradNests(module, KernelPath::wgmma)) {
      FailureOr<AttentionGradNests> n = AttentionGradNests::match(loop);
      if (failed(n) || failed(lowerNests(module, *n)))
        return signalPassFailure();
    }
  }
};

} // namespace
