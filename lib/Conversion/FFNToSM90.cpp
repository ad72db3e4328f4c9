//===- FFNToSM90.cpp - bpt.ffn on Hopper tensor cores -----------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces an eligible bpt.ffn by two GEMM kernels for sm_90a per chunk of
// rows, so that the [rows, ffn] intermediate is one chunk, never the whole
// sequence (the memory claim of the blockwise FFN):
//
//   u = act(x[chunk] · W_in)      (activation fused in the epilogue)
//   y[chunk] = u · W_out
//
// The GEMM kernel is in GemmSM90.cpp; row offsets of A and C are its
// arguments, so one kernel serves every chunk.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"
#include "bpt/Transforms/ChunkLoops.h"

#include "SM90Emitter.h"
#include "StrategyOps.h"
#include "SM90Kernels.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/Support/FormatVariadic.h"

namespace bpt {
#define GEN_PASS_DEF_BPTFFNTOSM90
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::sm90;

namespace {

struct BPTFFNToSM90Pass final : bpt::impl::BPTFFNToSM90Base<BPTFFNToSM90Pass> {
  using Base::Base;

  void runOnOperation() override {
    for (scf::ForallOp loop : chunkLoopsTaking(
             getOperation(), ChunkLoopKind::ffn, KernelPath::wgmma)) {
      FailureOr<FFNChunkLoop> m = FFNChunkLoop::match(loop);
      if (failed(m) || failed(rewrite(*m, StrategyAttr::get(loop))))
        return signalPassFailure();
    }
  }

  /// Two GEMM launches per chunk of the loop.
  LogicalResult rewrite(FFNChunkLoop &m, StrategyAttr strategy) {
    ModuleOp module = getOperation();
    FFNOp op = m.ffn;
    Location loc = m.loop.getLoc();
    RankedTensorType xType = m.resultType();
    Type element = xType.getElementType();
    int64_t hidden = xType.getShape().back();
    int64_t rows = xType.getNumElements() / hidden;
    int64_t ffn = cast<RankedTensorType>(op.getWIn().getType()).getShape()[1];
    int64_t chunk = m.chunkRows;
    if (rows / chunk > kMaxUnrolledChunks)
      return m.loop.emitError()
             << "bpt-ffn-to-sm90: " << rows / chunk << " chunks of " << chunk
             << " rows; each is its own launch sequence, and at most "
             << kMaxUnrolledChunks << " are written";

    GemmConfig up{/*aRows=*/rows, /*cRows=*/chunk, /*n=*/ffn, /*k=*/hidden,
                  element.isBF16(), op.getActivation()};
    up.gated = op.getWGate() != nullptr;
    GemmConfig down{/*aRows=*/chunk, /*cRows=*/rows, /*n=*/hidden,
                    /*k=*/ffn, element.isBF16(), std::nullopt};
    for (GemmConfig *config : {&up, &down})
      if (std::optional<std::string> why =
              chooseGemmTiling(*config, strategy.getGemmBlockN(),
                               strategy.getGemmStages(),
                               sharedMemoryOf(strategy))) {
        return m.loop.emitError() << "bpt-ffn-to-sm90: " << *why;
      }
    gpu::GPUFuncOp upKernel = getOrBuildGemmKernel(module, up, element, loc);
    gpu::GPUFuncOp downKernel = getOrBuildGemmKernel(module, down, element, loc);

    OpBuilder b(m.loop);
    auto index = [&](int64_t v) -> Value {
      return arith::ConstantIndexOp::create(b, loc, v);
    };
    auto i32 = [&](int64_t v) -> Value {
      return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
    };
    auto descriptorOf = [&](Value matrix, int64_t boxRows) {
      return createTensorMap(b, loc, matrix, boxRows);
    };
    auto bufferOf = [&](Value tensor) {
      return readOnlyBuffer(b, loc, tensor);
    };

    Value x = asRows(b, loc, bufferOf(unflattened(m.inputRows)));
    Value xMap = descriptorOf(x, up.blockM);
    Value wInMap = descriptorOf(bufferOf(op.getWIn()), up.blockK);
    Value gateMap = op.getWGate()
                        ? descriptorOf(bufferOf(op.getWGate()), up.blockK)
                        : Value();
    auto uAlloc = memref::AllocOp::create(
        b, loc, MemRefType::get({chunk, ffn}, element));
    setBufferName(uAlloc, "ffn_hidden");
    Value u = uAlloc;
    Value uMap = descriptorOf(u, down.blockM);
    Value wOutMap = descriptorOf(bufferOf(op.getWOut()), down.blockK);
    Value out = memref::AllocOp::create(
        b, loc, MemRefType::get(xType.getShape(), element));
    Value outRows = asRows(b, loc, out);

    Value shared = i32(up.sharedMemoryBytes());
    Value sharedDown = i32(down.sharedMemoryBytes());
    gpu::KernelDim3 block{index(up.threads()), index(1), index(1)};
    for (int64_t c = 0; c < rows / chunk; ++c) {
      gpu::LaunchFuncOp::create(
          b, loc, upKernel,
          gpu::KernelDim3{index(ffn / up.blockN), index(up.rowTiles()),
                          index(1)},
          block, shared,
          gateMap ? ValueRange{xMap, wInMap, gateMap, u, i32(c * chunk),
                               i32(0)}
                  : ValueRange{xMap, wInMap, u, i32(c * chunk), i32(0)});
      gpu::LaunchFuncOp::create(
          b, loc, downKernel,
          gpu::KernelDim3{index(hidden / down.blockN), index(down.rowTiles()),
                          index(1)},
          block, sharedDown,
          ValueRange{uMap, wOutMap, outRows, i32(0), i32(c * chunk)});
    }
    m.replaceWith(bufferization::ToTensorOp::create(
        b, loc, xType, out, /*restrict=*/true, /*writable=*/true));
    return success();
  }
};

} // namespace
