//===- LinearToSM80.cpp - bpt.linear on mma.sync tensor cores ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces an eligible bpt.linear (no bias) by one launch of the mma.sync
// GEMM kernel (GemmSM80.cpp): the projections of a transformer block that
// bpt-block-to-sm80 expanded, on chips without wgmma.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "SM80Kernels.h"

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
    if (blockN != 0 && blockN != 128 && blockN != 256) {
      getOperation().emitError()
          << "bpt-linear-to-sm80: block-n must be 0, 128 or 256, got "
          << static_cast<int64_t>(blockN);
      return signalPassFailure();
    }
    SmallVector<LinearOp> ops;
    getOperation().walk([&](LinearOp op) { ops.push_back(op); });
    for (LinearOp op : ops) {
      GemmConfig config{};
      if (std::optional<std::string> why = checkEligible(op, config)) {
        op.emitRemark() << "linear does not take the mma.sync path: " << *why;
        continue;
      }
      rewrite(op, config);
    }
  }

  std::optional<std::string> checkEligible(LinearOp op, GemmConfig &config) {
    auto xType = cast<RankedTensorType>(op.getInput().getType());
    Type element = xType.getElementType();
    if (!element.isBF16() && !element.isF16()) {
      std::string name;
      llvm::raw_string_ostream(name) << element;
      return "element type " + name + " (the mma.sync path takes bf16 and f16)";
    }
    if (op.getBias())
      return std::string("a bias (the GEMM kernel has no bias epilogue)");
    int64_t k = xType.getShape().back();
    int64_t rows = xType.getNumElements() / k;
    int64_t n = op.getWeight().getType().getDimSize(1);
    if (rows >= (int64_t(1) << 31))
      return std::string("more rows than a 32-bit row offset addresses");
    config = GemmConfig{/*aRows=*/rows, /*cRows=*/rows, n, k,
                        element.isBF16(), std::nullopt};
    config.blockN = blockN;
    return config.check(sharedMemory);
  }

  void rewrite(LinearOp op, const GemmConfig &config) {
    Location loc = op.getLoc();
    auto xType = cast<RankedTensorType>(op.getInput().getType());
    auto resultType = cast<RankedTensorType>(op.getType());
    Type element = xType.getElementType();
    gpu::GPUFuncOp kernel =
        getOrBuildGemmKernel(getOperation(), config, element, loc);

    OpBuilder b(op);
    auto index = [&](int64_t v) -> Value {
      return arith::ConstantIndexOp::create(b, loc, v);
    };
    auto i32 = [&](int64_t v) -> Value {
      return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
    };
    SmallVector<ReassociationIndices> toRows(1);
    for (int64_t d = 0; d + 1 < xType.getRank(); ++d)
      toRows[0].push_back(d);
    toRows.push_back({xType.getRank() - 1});
    Value x = memref::CollapseShapeOp::create(
        b, loc, readOnlyBuffer(b, loc, op.getInput()), toRows);
    Value w = readOnlyBuffer(b, loc, op.getWeight());
    Value out = memref::AllocOp::create(
        b, loc, MemRefType::get(resultType.getShape(), element));
    Value outRows = memref::CollapseShapeOp::create(b, loc, out, toRows);
    gpu::LaunchFuncOp::create(
        b, loc, kernel,
        gpu::KernelDim3{index(config.n / config.blockN),
                        index(config.aRows / config.blockM), index(1)},
        gpu::KernelDim3{index(config.threads()), index(1), index(1)},
        i32(config.sharedMemoryBytes()),
        ValueRange{x, w, outRows, i32(0), i32(0)});
    Value result = bufferization::ToTensorOp::create(
        b, loc, resultType, out, /*restrict=*/true, /*writable=*/true);
    op.replaceAllUsesWith(result);
    op.erase();
  }
};

} // namespace
