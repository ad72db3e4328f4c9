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
#include "bpt/Transforms/ChunkLoops.h"

#include "SM80Kernels.h"
#include "StrategyOps.h"

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
    for (scf::ForallOp loop : chunkLoopsTaking(
             getOperation(), ChunkLoopKind::ffn, KernelPath::mma_sync)) {
      FailureOr<FFNChunkLoop> m = FFNChunkLoop::match(loop);
      if (failed(m))
        return signalPassFailure();
      GemmConfig up{}, down{};
      if (std::optional<std::string> why =
              configure(*m, StrategyAttr::get(loop), up, down)) {
        loop.emitError() << "bpt-ffn-to-sm80: " << *why;
        return signalPassFailure();
      }
      rewrite(*m, up, down);
    }
  }

  /// The two GEMMs' configurations of the loop's FFN under `strategy`, or
  /// why they cannot be built.
  std::optional<std::string> configure(FFNChunkLoop &m, StrategyAttr strategy,
                                       GemmConfig &up, GemmConfig &down) {
    FFNOp op = m.ffn;
    RankedTensorType xType = m.resultType();
    Type element = xType.getElementType();
    int64_t hidden = xType.getShape().back();
    int64_t rows = xType.getNumElements() / hidden;
    int64_t ffn = cast<RankedTensorType>(op.getWIn().getType()).getShape()[1];
    int64_t chunk = m.chunkRows;
    if (rows / chunk > kMaxUnrolledChunks)
      return llvm::formatv("{0} chunks of {1} rows; each is its own launch "
                           "sequence, and at most {2} are written",
                           rows / chunk, chunk, kMaxUnrolledChunks)
          .str();
    up = GemmConfig{/*aRows=*/rows, /*cRows=*/chunk, /*n=*/ffn, /*k=*/hidden,
                    element.isBF16(), op.getActivation()};
    up.gated = op.getWGate() != nullptr;
    down = GemmConfig{/*aRows=*/chunk, /*cRows=*/rows, /*n=*/hidden,
                      /*k=*/ffn, element.isBF16(), std::nullopt};
    // A gated GEMM keeps its 128-wide tiles whatever block-n says.
    up.blockN = up.gated ? 0 : strategy.getGemmBlockN();
    down.blockN = strategy.getGemmBlockN();
    int64_t sharedMemory = sharedMemoryOf(strategy);
    for (GemmConfig *config : {&up, &down})
      if (std::optional<std::string> why = config->check(sharedMemory))
        return why;
    return std::nullopt;
  }

  /// Two GEMM launches per chunk of the loop.
  void rewrite(FFNChunkLoop &m, const GemmConfig &up, const GemmConfig &down) {
    ModuleOp module = getOperation();
    FFNOp op = m.ffn;
    Location loc = m.loop.getLoc();
    RankedTensorType xType = m.resultType();
    Type element = xType.getElementType();
    int64_t hidden = up.k, ffn = up.n, rows = up.aRows, chunk = up.cRows;
    gpu::GPUFuncOp upKernel = getOrBuildGemmKernel(module, up, element, loc);
    gpu::GPUFuncOp downKernel =
        getOrBuildGemmKernel(module, down, element, loc);

    OpBuilder b(m.loop);
    auto index = [&](int64_t v) -> Value {
      return arith::ConstantIndexOp::create(b, loc, v);
    };
    auto i32 = [&](int64_t v) -> Value {
      return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
    };
    Value x = asRows(b, loc, readOnlyBuffer(b, loc, unflattened(m.inputRows)));
    Value wIn = readOnlyBuffer(b, loc, op.getWIn());
    Value wGate = op.getWGate() ? readOnlyBuffer(b, loc, op.getWGate()) : Value();
    Value wOut = readOnlyBuffer(b, loc, op.getWOut());
    auto uAlloc =
        memref::AllocOp::create(b, loc, MemRefType::get({chunk, ffn}, element));
    setBufferName(uAlloc, "ffn_hidden");
    Value u = uAlloc;
    Value out = memref::AllocOp::create(
        b, loc, MemRefType::get(xType.getShape(), element));
    Value outRows = asRows(b, loc, out);

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
          gpu::KernelDim3{index(ffn / up.blockN), index(up.rowTiles()),
                          index(1)},
          upBlock, sharedUp, upArgs);
      gpu::LaunchFuncOp::create(
          b, loc, downKernel,
          gpu::KernelDim3{index(hidden / down.blockN),
                          index(down.rowTiles()), index(1)},
          downBlock, sharedDown,
          ValueRange{u, wOut, outRows, i32(0), i32(c * chunk)});
    }
    m.replaceWith(bufferization::ToTensorOp::create(
        b, loc, xType, out, /*restrict=*/true, /*writable=*/true));
  }
};

} // namespace
