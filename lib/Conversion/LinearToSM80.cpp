//===- LinearToSM80.cpp - bpt.linear on mma.sync tensor cores ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces a bpt.linear whose strategy takes the mma.sync path by one
// launch of the mma.sync GEMM kernel (GemmSM80.cpp): the projections of a
// transformer block that bpt-decompose-block expanded, on chips without
// wgmma.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "SM80Kernels.h"
#include "LinearLaunch.h"
#include "StrategyOps.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "llvm/Support/FormatVariadic.h"

namespace bpt {
#define GEN_PASS_DEF_BPTLINEARTOSM80
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::sm80;

namespace {

struct BPTLinearToSM80Pass final
    : bpt::impl::BPTLinearToSM80Base<BPTLinearToSM80Pass> {
  using Base::Base;

  void runOnOperation() override {
    for (LinearOp op :
         opsTaking<LinearOp>(getOperation(), KernelPath::mma_sync)) {
      StrategyAttr strategy = StrategyAttr::get(op);
      auto xType = cast<RankedTensorType>(op.getInput().getType());
      int64_t k = xType.getShape().back();
      int64_t rows = xType.getNumElements() / k;
      int64_t n = op.getWeight().getType().getDimSize(1);
      GemmConfig config{/*aRows=*/rows, /*cRows=*/rows, n, k,
                        xType.getElementType().isBF16(), std::nullopt};
      config.blockN = strategy.getGemmBlockN();
      if (std::optional<std::string> why =
              config.check(sharedMemoryOf(strategy))) {
        op.emitError() << "bpt-linear-to-sm80: " << *why;
        return signalPassFailure();
      }
      rewrite(op, config);
    }
  }

  void rewrite(LinearOp op, const GemmConfig &config) {
    Location loc = op.getLoc();
    Type element = op.getInput().getType().getElementType();
    gpu::GPUFuncOp kernel =
        getOrBuildGemmKernel(getOperation(), config, element, loc);

    OpBuilder b(op);
    Value x = asRows(b, loc, readOnlyBuffer(b, loc, op.getInput()));
    Value w = readOnlyBuffer(b, loc, op.getWeight());
    codegen::replaceWithGemmLaunch(b, op, kernel, config, x, w);
  }
};

} // namespace
