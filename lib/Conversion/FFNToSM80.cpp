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
      StrategyAttr strategy = StrategyAttr::get(loop);
      int64_t chunks = m->wholeChunks() + (m->tail ? 1 : 0);
      std::optional<std::string> why;
      if (chunks > kMaxUnrolledChunks)
        why = llvm::formatv("{0} chunks of {1} rows; each is its own launch "
                            "sequence, and at most {2} are written",
                            chunks, m->chunkRows, kMaxUnrolledChunks)
                  .str();
      ChunkGemms whole, tail;
      if (!why)
        why = configure(*m, strategy, m->chunkRows, whole);
      if (!why && m->tail)
        why = configure(*m, strategy, m->tailRows(), tail);
      if (why) {
        loop.emitError() << "bpt-ffn-to-sm80: " << *why;
        return signalPassFailure();
      }
      rewrite(*m, whole, tail);
    }
  }

  /// The two GEMMs of a chunk.
  struct ChunkGemms {
    GemmConfig up{}, down{};
  };

  /// The two GEMMs of a chunk of `count` rows of the loop's FFN under
  /// `strategy` (x's rows into the [count, ffn] intermediate, and that into
  /// the output's rows), or why they cannot be built.
  std::optional<std::string> configure(FFNChunkLoop &m, StrategyAttr strategy,
                                       int64_t count, ChunkGemms &gemms) {
    FFNOp op = m.ffn;
    RankedTensorType xType = m.resultType();
    Type element = xType.getElementType();
    int64_t hidden = xType.getShape().back();
    int64_t rows = xType.getNumElements() / hidden;
    int64_t ffn = cast<RankedTensorType>(op.getWIn().getType()).getShape()[1];
    GemmConfig &up = gemms.up, &down = gemms.down;
    up = GemmConfig{/*aRows=*/rows,   /*cRows=*/count,
                    /*n=*/ffn,        /*k=*/hidden,
                    element.isBF16(), op.getActivation()};
    up.gated = op.getWGate() != nullptr;
    down =
        GemmConfig{/*aRows=*/count, /*cRows=*/rows,   /*n=*/hidden,
                   /*k=*/ffn,       element.isBF16(), std::nullopt};
    // f32 reaches this path only as TF32 (bpt-select-strategy's
    // allow-tf32).
    up.tf32 = down.tf32 = element.isF32();
    // A gated GEMM keeps its 128-wide tiles whatever block-n says.
    up.blockN = up.gated ? 0 : strategy.getGemmBlockN();
    down.blockN = strategy.getGemmBlockN();
    int64_t sharedMemory = sharedMemoryOf(strategy);
    for (GemmConfig *config : {&up, &down})
      if (std::optional<std::string> why = config->check(sharedMemory))
        return why;
    return std::nullopt;
  }

  /// Two GEMM launches per chunk of the loop, and two for its tail.
  void rewrite(FFNChunkLoop &m, const ChunkGemms &whole,
               const ChunkGemms &tail) {
    ModuleOp module = getOperation();
    FFNOp op = m.ffn;
    Location loc = m.loop.getLoc();
    RankedTensorType xType = m.resultType();
    Type element = xType.getElementType();
    int64_t ffn = whole.up.n, chunk = m.chunkRows;

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
    Value out = memref::AllocOp::create(
        b, loc, MemRefType::get(xType.getShape(), element));
    Value outRows = asRows(b, loc, out);

    // The up and down launches of the chunk at row `first` through `u` (the
    // intermediate, or its leading rows for the tail). The two GEMMs may
    // have different warps (a gated one keeps 8).
    auto launchChunk = [&](const ChunkGemms &gemms, Value u, int64_t first) {
      const GemmConfig &up = gemms.up, &down = gemms.down;
      gpu::GPUFuncOp upKernel = getOrBuildGemmKernel(module, up, element, loc);
      gpu::GPUFuncOp downKernel =
          getOrBuildGemmKernel(module, down, element, loc);
      SmallVector<Value> upArgs = {x, wIn};
      if (wGate)
        upArgs.push_back(wGate);
      upArgs.append({u, i32(first), i32(0)});
      gpu::LaunchFuncOp::create(
          b, loc, upKernel,
          gpu::KernelDim3{index(up.grid()[0]), index(up.grid()[1]), index(1)},
          gpu::KernelDim3{index(up.threads()), index(1), index(1)},
          i32(up.sharedMemoryBytes()), upArgs);
      gpu::LaunchFuncOp::create(
          b, loc, downKernel,
          gpu::KernelDim3{index(down.grid()[0]), index(down.grid()[1]),
                          index(1)},
          gpu::KernelDim3{index(down.threads()), index(1), index(1)},
          i32(down.sharedMemoryBytes()),
          ValueRange{u, wOut, outRows, i32(0), i32(first)});
    };
    for (int64_t c = 0; c < m.wholeChunks(); ++c)
      launchChunk(whole, uAlloc, c * chunk);
    if (m.tail)
      launchChunk(tail, codegen::leadingRows(b, loc, uAlloc, m.tailRows()),
                  whole.up.aRows - m.tailRows());
    m.replaceWith(bufferization::ToTensorOp::create(
        b, loc, xType, out, /*restrict=*/true, /*writable=*/true));
  }
};

} // namespace
