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

  /// Two GEMM launches per chunk of the loop, and two for its tail.
  LogicalResult rewrite(FFNChunkLoop &m, StrategyAttr strategy) {
    ModuleOp module = getOperation();
    FFNOp op = m.ffn;
    Location loc = m.loop.getLoc();
    RankedTensorType xType = m.resultType();
    Type element = xType.getElementType();
    int64_t hidden = xType.getShape().back();
    int64_t rows = xType.getNumElements() / hidden;
    int64_t ffn = cast<RankedTensorType>(op.getWIn().getType()).getShape()[1];
    int64_t chunk = m.chunkRows, tail = m.tailRows();
    int64_t chunks = m.wholeChunks() + (tail ? 1 : 0);
    if (chunks > kMaxUnrolledChunks)
      return m.loop.emitError()
             << "bpt-ffn-to-sm90: " << chunks << " chunks of " << chunk
             << " rows; each is its own launch sequence, and at most "
             << kMaxUnrolledChunks << " are written";

    // The two GEMMs of a chunk of `count` rows: x's rows into the [count,
    // ffn] intermediate, and that into the output's rows.
    auto configure = [&](int64_t count, GemmConfig &up,
                         GemmConfig &down) -> LogicalResult {
      up = GemmConfig{
          /*aRows=*/rows, /*cRows=*/count,  /*n=*/ffn,
          /*k=*/hidden,   element.isBF16(), op.getActivation()};
      up.gated = op.getWGate() != nullptr;
      down =
          GemmConfig{/*aRows=*/count, /*cRows=*/rows,   /*n=*/hidden,
                     /*k=*/ffn,       element.isBF16(), std::nullopt};
      const ChipInfo &chip = getChipInfo(strategy.getChip());
      for (GemmConfig *config : {&up, &down}) {
        if (std::optional<std::string> why =
                chooseGemmTiling(*config, strategy.getGemmBlockN(),
                                 strategy.getGemmStages(), chip))
          return m.loop.emitError() << "bpt-ffn-to-sm90: " << *why;
        config->splitLimit = strategy.getGemmSplit();
        planTailSplit(*config, chip);
      }
      return success();
    };
    GemmConfig up{}, down{}, upTail{}, downTail{};
    if (failed(configure(chunk, up, down)) ||
        (tail && failed(configure(tail, upTail, downTail))))
      return failure();

    OpBuilder b(m.loop);
    auto i32 = [&](int64_t v) -> Value {
      return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
    };
    auto descriptorOf = [&](Value matrix, int64_t boxRows) {
      return createTensorMap(b, loc, matrix, boxRows);
    };
    auto bufferOf = [&](Value tensor) {
      return readOnlyBuffer(b, loc, tensor);
    };

    // blockK is the same for every chunk's GEMMs: the weights' maps serve
    // the tail too; x's serves it where the tail's tiles have as many rows
    // (a tail of at most 128 rows takes 128-row tiles).
    Value x = asRows(b, loc, bufferOf(unflattened(m.inputRows)));
    Value xMap = descriptorOf(x, up.blockM);
    Value wInMap = descriptorOf(bufferOf(op.getWIn()), up.blockK);
    Value gateMap = op.getWGate()
                        ? descriptorOf(bufferOf(op.getWGate()), up.blockK)
                        : Value();
    auto uAlloc = memref::AllocOp::create(
        b, loc, MemRefType::get({chunk, ffn}, element));
    setBufferName(uAlloc, "ffn_hidden");
    Value uMap = descriptorOf(uAlloc, down.blockM);
    Value wOutMap = descriptorOf(bufferOf(op.getWOut()), down.blockK);
    Value out = memref::AllocOp::create(
        b, loc, MemRefType::get(xType.getShape(), element));
    Value outRows = asRows(b, loc, out);

    // The up and down launches of the chunk at row `first`, through `u`
    // (the intermediate, or its leading rows for the tail, as the up GEMM
    // writes it: gemmOutputOperand) and its map.
    auto launchChunk = [&](const GemmConfig &up, const GemmConfig &down,
                           Value xMap, Value uOut, Value uMap, Value out,
                           int64_t first) {
      emitGemmLaunches(
          b, loc, module, up, element,
          gateMap ? ValueRange{xMap, wInMap, gateMap, uOut, i32(first), i32(0)}
                  : ValueRange{xMap, wInMap, uOut, i32(first), i32(0)});
      emitGemmLaunches(b, loc, module, down, element,
                       ValueRange{uMap, wOutMap, out, i32(0), i32(first)});
    };
    if (m.wholeChunks()) {
      Value uOut = gemmOutputOperand(b, loc, up, uAlloc);
      Value out = gemmOutputOperand(b, loc, down, outRows);
      for (int64_t c = 0; c < m.wholeChunks(); ++c)
        launchChunk(up, down, xMap, uOut, uMap, out, c * chunk);
    }
    if (tail) {
      Value uTail = codegen::leadingRows(b, loc, uAlloc, tail);
      Value xTailMap =
          upTail.blockM == up.blockM ? xMap : descriptorOf(x, upTail.blockM);
      launchChunk(upTail, downTail, xTailMap,
                  gemmOutputOperand(b, loc, upTail, uTail),
                  descriptorOf(uTail, downTail.blockM),
                  gemmOutputOperand(b, loc, downTail, outRows), rows - tail);
    }
    m.replaceWith(bufferization::ToTensorOp::create(
        b, loc, xType, out, /*restrict=*/true, /*writable=*/true));
    return success();
  }
};

} // namespace
