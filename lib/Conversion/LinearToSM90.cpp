//===- LinearToSM90.cpp - bpt.linear on Hopper tensor cores -----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces a bpt.linear whose strategy takes the wgmma path by one launch of
// the sm_90a GEMM kernel (GemmSM90.cpp) over its input viewed as [rows, K]:
// a lone projection, or one of a block that bpt-decompose-block expanded
// (a block the wgmma block kernels do not take, such as a ragged sequence).
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "SM90Kernels.h"
#include "LinearLaunch.h"
#include "StrategyOps.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"

namespace bpt {
#define GEN_PASS_DEF_BPTLINEARTOSM90
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::sm90;

namespace {

struct BPTLinearToSM90Pass final
    : bpt::impl::BPTLinearToSM90Base<BPTLinearToSM90Pass> {
  using Base::Base;

  void runOnOperation() override {
    for (LinearOp op : opsTaking<LinearOp>(getOperation(), KernelPath::wgmma)) {
      StrategyAttr strategy = StrategyAttr::get(op);
      auto xType = cast<RankedTensorType>(op.getInput().getType());
      int64_t k = xType.getShape().back();
      int64_t rows = xType.getNumElements() / k;
      int64_t n = op.getWeight().getType().getDimSize(1);
      GemmConfig config{/*aRows=*/rows, /*cRows=*/rows, n, k,
                        xType.getElementType().isBF16(), std::nullopt};
      if (std::optional<std::string> why = chooseGemmTiling(
              config, strategy.getGemmBlockN(), strategy.getGemmStages(),
              sharedMemoryOf(strategy))) {
        op.emitError() << "bpt-linear-to-sm90: " << *why;
        return signalPassFailure();
      }
      rewrite(op, config);
    }
  }

  void rewrite(LinearOp op, const GemmConfig &config) {
    Location loc = op.getLoc();
    auto resultType = cast<RankedTensorType>(op.getType());
    Type element = resultType.getElementType();
    gpu::GPUFuncOp kernel =
        getOrBuildGemmKernel(getOperation(), config, element, loc);

    OpBuilder b(op);
    Value x = asRows(b, loc, readOnlyBuffer(b, loc, op.getInput()));
    Value xMap = createTensorMap(b, loc, x, config.blockM);
    Value wMap = createTensorMap(b, loc, readOnlyBuffer(b, loc, op.getWeight()),
                                 config.blockK);
    codegen::replaceLinearWithGemmLaunch(b, op, kernel, config, xMap, wMap);
  }
};

} // namespace
