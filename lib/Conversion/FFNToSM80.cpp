//===- FFNToSM80.cpp - bpt.ffn on mma.sync tensor cores ---------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces an eligible bpt.ffn by mma.sync GEMM launches (GemmSM80.cpp), per
// chunk of rows: U = act(X_chunk · W_in) into a [chunk, ffn] buffer, then
// Y_chunk = U · W_out. Only one chunk of the [rows, ffn] intermediate
// exists, as on the Hopper path (bpt-ffn-to-sm90).
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "SM80Kernels.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "llvm/Support/FormatVariadic.h"

namespace bpt {
#define GEN_PASS_DEF_BPTFFNTOSM80
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::sm80;

namespace {

struct BPTFFNToSM80Pass final : bpt::impl::BPTFFNToSM80Base<BPTFFNToSM80Pass> {
  using Base::Base;

  void runOnOperation() override {
    if (chunkRows < 128 || chunkRows % 128 != 0) {
      getOperation().emitError()
          << "bpt-ffn-to-sm80: chunk-rows must be a positive multiple of 128, "
             "got "
          << static_cast<int64_t>(chunkRows);
      return signalPassFailure();
    }
    if (blockN != 0 && blockN != 128 && blockN != 256) {
      getOperation().emitError()
          << "bpt-ffn-to-sm80: block-n must be 0, 128 or 256, got "
          << static_cast<int64_t>(blockN);
      return signalPassFailure();
    }
    SmallVector<FFNOp> ops;
    getOperation().walk([&](FFNOp op) { ops.push_back(op); });
    for (FFNOp op : ops) {
      GemmConfig up{}, down{};
      if (std::optional<std::string> why = checkEligible(op, up, down)) {
        op.emitRemark() << "ffn does not take the mma.sync path: " << *why;
        continue;
      }
      rewrite(op, up, down);
    }
  }

  /// Why `op` cannot take the mma.sync path, or nothing; fills the two
  /// GEMMs' configurations.
  std::optional<std::string> checkEligible(FFNOp op, GemmConfig &up,
                                           GemmConfig &down) {
    auto xType = cast<RankedTensorType>(op.getInput().getType());
    Type element = xType.getElementType();
    if (!element.isBF16() && !element.isF16()) {
      std::string name;
      llvm::raw_string_ostream(name) << element;
      return "element type " + name + " (the mma.sync path takes bf16 and f16)";
    }
    int64_t hidden = xType.getShape().back();
    int64_t rows = xType.getNumElements() / hidden;
    int64_t ffn = cast<RankedTensorType>(op.getWIn().getType()).getShape()[1];
    if (rows % 128 != 0)
      return llvm::formatv("{0} rows are not a multiple of 128", rows).str();
    if (hidden % 128 != 0 || ffn % 128 != 0)
      return llvm::formatv("hidden {0} and ffn {1} must be multiples of 128",
                           hidden, ffn)
          .str();
    if (rows >= (int64_t(1) << 31))
      return std::string("more rows than a 32-bit row offset addresses");
    // The largest multiple of 128 up to chunk-rows that divides the rows.
    int64_t chunk = std::min<int64_t>(chunkRows, rows);
    while (rows % chunk != 0)
      chunk -= 128;
    up = GemmConfig{/*aRows=*/rows, /*cRows=*/chunk, /*n=*/ffn, /*k=*/hidden,
                    element.isBF16(), op.getActivation()};
    up.gated = op.getWGate() != nullptr;
    down = GemmConfig{/*aRows=*/chunk, /*cRows=*/rows, /*n=*/hidden,
                      /*k=*/ffn, element.isBF16(), std::nullopt};
    // A gated GEMM keeps its 128-wide tiles whatever block-n says.
    up.blockN = up.gated ? 0 : blockN;
    down.blockN = blockN;
    for (GemmConfig *config : {&up, &down})
      if (std::optional<std::string> why = config->check(sharedMemory))
        return why;
    return std::nullopt;
  }

  void rewrite(FFNOp op, const GemmConfig &up, const GemmConfig &down) {
    ModuleOp module = getOperation();
    Location loc = op.getLoc();
    auto xType = cast<RankedTensorType>(op.getInput().getType());
    Type element = xType.getElementType();
    int64_t hidden = up.k, ffn = up.n, rows = up.aRows, chunk = up.cRows;
    gpu::GPUFuncOp upKernel = getOrBuildGemmKernel(module, up, element, loc);
    gpu::GPUFuncOp downKernel =
        getOrBuildGemmKernel(module, down, element, loc);

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
    Value wIn = readOnlyBuffer(b, loc, op.getWIn());
    Value wGate = op.getWGate() ? readOnlyBuffer(b, loc, op.getWGate()) : Value();
    Value wOut = readOnlyBuffer(b, loc, op.getWOut());
    Value u =
        memref::AllocOp::create(b, loc, MemRefType::get({chunk, ffn}, element));
    Value out = memref::AllocOp::create(
        b, loc, MemRefType::get(xType.getShape(), element));
    Value outRows = memref::CollapseShapeOp::create(b, loc, out, toRows);

    // The two GEMMs may have different warps (a gated one keeps 8).
    gpu::KernelDim3 upBlock{index(up.threads()), index(1), index(1)};
    gpu::KernelDim3 downBlock{index(down.threads()), index(1), index(1)};
    Value sharedUp = i32(up.sharedMemoryBytes());
    Value sharedDown = i32(down.sharedMemoryBytes());
    for (int64_t c = 0; c < rows / chunk; ++c) {
      SmallVector<Value> upArgs = {x, wIn};
      if (wGate)
        upArgs.push_back(wGate);
      upArgs.append({u, i32(c * chunk), i32(0)});
      gpu::LaunchFuncOp::create(
          b, loc, upKernel,
          gpu::KernelDim3{index(ffn / up.blockN), index(chunk / up.blockM),
                          index(1)},
          upBlock, sharedUp, upArgs);
      gpu::LaunchFuncOp::create(
          b, loc, downKernel,
          gpu::KernelDim3{index(hidden / down.blockN),
                          index(chunk / down.blockM), index(1)},
          downBlock, sharedDown,
          ValueRange{u, wOut, outRows, i32(0), i32(c * chunk)});
    }
    Value result = bufferization::ToTensorOp::create(
        b, loc, xType, out, /*restrict=*/true, /*writable=*/true);
    op.replaceAllUsesWith(result);
    op.erase();
  }
};

} // namespace
