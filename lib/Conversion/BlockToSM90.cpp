//===- BlockToSM90.cpp - bpt.transformer_block on Hopper --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Maps the chunk loops of a transformer block on the wgmma path
// (#bpt.chunk_loop, built by bpt-decompose-block) to host sequences of
// sm_90a kernel launches, so that no buffer has an S × ffn or S × S term.
// The loops' iterations are independent (scf.forall), so the launches
// need not follow them one iteration at a time; they run in four phases:
//
//   A, per chunk:     h1 = norm1(x[chunk]);  Q[chunk] = h1 Wq;
//                     K[chunk] = h1 Wk;      V[chunk] = h1 Wv
//   B, once:          Q = attention(Q, K, V)  (token-major, in place)
//   C, once:          out = x + Q Wo
//   D, per chunk:     h2 = norm2(out[chunk]); u = act(h2 W_in);
//                     out[chunk] += u W_out
//
// Phase A is the kv_projection loop's iteration fused with the first
// ops of the block loop's (both normalise the same rows: norm1 runs once);
// B and C are the block loop's attention nests and output projections of
// every chunk, each as one launch: a causal attention launched per chunk
// leaves most of a wave idle behind its few heavy query blocks, and the
// whole sequence's fills the waves. Q, K and V span the rows (Q's buffer
// then holds the attention's output, and the attention residual lives in
// out's rows); K, V and Q are dead before phase D, whose FFN chunk buffers
// share their bytes in the kernel set's workspace arena. The set's peak is
// 3 · S · hidden plus a chunk (or one FFN chunk, if larger), against
// eager's S × ffn intermediates.
//
// The GEMMs and the attention are the kernels of bpt-ffn-to-sm90 and
// bpt-attention-to-sm90 (wgmma, TMA, mbarriers); the norms are the row
// kernel of NormKernel.h: one warp per row, 16-byte loads, f32 statistics.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"
#include "bpt/Transforms/ChunkLoops.h"

#include "NormKernel.h"
#include "SM90Emitter.h"
#include "SM90Kernels.h"
#include "StrategyOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/IR/SymbolTable.h"

namespace bpt {
#define GEN_PASS_DEF_BPTBLOCKTOSM90
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::sm90;

using codegen::NormConfig;

namespace {

/// The kernels of one block's chunk loops, with their configurations.
struct BlockKernels {
  GemmConfig kv, q, o, up, down;
  /// Both norms read a chunk of [rows, hidden] rows (x, out) into a chunk.
  NormConfig norm;
  AttentionKernelConfig attention;
  gpu::GPUFuncOp kvKernel, qKernel, oKernel, upKernel, downKernel, normKernel,
      attentionKernel;
};

/// The shapes of a block read from its chunk loops.
struct BlockShape {
  Type element;
  bool bf16, layerNorm, gated;
  double epsilon;
  int64_t rows, seq, hidden, chunk, heads, kvHeads, headDim, ffn;

  explicit BlockShape(BlockChunkLoops &m) {
    auto rowsType = cast<RankedTensorType>(m.inputRows.getType());
    element = rowsType.getElementType();
    bf16 = element.isBF16();
    rows = rowsType.getDimSize(0);
    hidden = rowsType.getDimSize(1);
    seq = m.seq;
    chunk = m.chunkRows;
    heads = m.heads;
    kvHeads = m.kvHeads;
    headDim = m.headDim;
    ffn = m.ffn.getWIn().getType().getDimSize(1);
    gated = m.ffn.getWGate() != nullptr;
    layerNorm = isa<LayerNormOp>(m.norm1);
    epsilon = codegen::normEpsilon(m.norm1);
  }
};

/// Builds (or finds) the kernels; fails with the GEMM tiling's reason.
FailureOr<BlockKernels> buildKernels(ModuleOp module,
                                     BlockChunkLoops &m,
                                     const BlockShape &s,
                                     StrategyAttr strategy) {
  BlockKernels k;
  std::optional<std::string> tilingError;
  auto gemm = [&](int64_t aRows, int64_t cRows, int64_t n, int64_t kDim,
                  std::optional<Activation> act, int64_t residualRows,
                  bool gated = false) {
    GemmConfig config{aRows, cRows, n, kDim, s.bf16, act};
    config.residual = residualRows > 0;
    config.rRows = residualRows;
    config.gated = gated;
    if (std::optional<std::string> why = chooseGemmTiling(
            config, strategy.getGemmBlockN(), strategy.getGemmStages(),
            getChipInfo(strategy.getChip())))
      tilingError = why;
    return config;
  };
  int64_t qWidth = s.heads * s.headDim, kvWidth = s.kvHeads * s.headDim;
  k.kv = gemm(s.chunk, s.rows, kvWidth, s.hidden, {}, 0);
  k.q = gemm(s.chunk, s.rows, qWidth, s.hidden, {}, 0);
  k.o = gemm(s.rows, s.rows, s.hidden, qWidth, {}, s.rows);
  k.up = gemm(s.chunk, s.chunk, s.ffn, s.hidden, m.ffn.getActivation(), 0,
              s.gated);
  // The residual is C's own rows (out[chunk], read before it is written).
  k.down = gemm(s.chunk, s.rows, s.hidden, s.ffn, {}, s.rows);
  if (tilingError)
    return m.blockLoop.emitError() << "bpt-block-to-sm90: " << *tilingError;
  Location loc = m.blockLoop.getLoc();
  auto build = [&](const GemmConfig &config) {
    return getOrBuildGemmKernel(module, config, s.element, loc);
  };
  k.kvKernel = build(k.kv);
  k.qKernel = build(k.q);
  k.oKernel = build(k.o);
  k.upKernel = build(k.up);
  k.downKernel = build(k.down);
  k.norm = {s.rows, s.chunk, s.hidden, s.layerNorm, s.epsilon, s.bf16, s.chunk};
  gpu::GPUModuleOp kernels = getOrCreateSM90KernelModule(module);
  k.normKernel = getOrBuildNormKernel(kernels, k.norm, s.element, loc);
  auto nest = m.attention->getAttrOfType<AttentionNestAttr>(
      AttentionNestAttr::kAttrName);
  AttentionKernelConfig &a = k.attention;
  a = {};
  a.batch = s.rows / s.seq;
  a.heads = s.heads;
  a.kvHeads = s.kvHeads;
  a.seqQ = s.seq;
  a.seqKV = s.seq;
  a.headDim = s.headDim;
  a.causal = nest.getCausal();
  a.scale = nest.getScale().convertToDouble();
  a.bf16 = s.bf16;
  a.tokenMajor = true;
  a.blockN = strategy.getKvBlock();
  a.stages = strategy.getStages();
  k.attentionKernel = getOrBuildAttentionKernel(module, a, s.element, loc);
  return k;
}

/// Host buffers of the launches: Q (then the attention), K and V span the
/// rows; h1, h2 and u are one chunk.
struct BlockBuffers {
  Value x, norm1Weight, norm1Bias, norm2Weight, norm2Bias;
  Value wq, wk, wv, wo, wIn, wGate, wOut;
  Value k, v, kMap, vMap, h1, h1Map, h1KVMap, q, qMap, aMap, h2, h2Map, u, uMap;
  Value out, outRows;
  /// What each GEMM writes, as its launch takes it (gemmOutputOperand: the
  /// buffer, or its store map).
  Value qOut, kOut, vOut, oOut, uOut, downOut;
};

BlockBuffers allocateBuffers(OpBuilder &b, Location loc,
                             BlockChunkLoops &m, const BlockShape &s,
                             const BlockKernels &k) {
  auto bufferOf = [&](Value tensor) -> Value {
    return tensor ? readOnlyBuffer(b, loc, tensor) : Value();
  };
  auto mapOf = [&](Value matrix, int64_t boxRows) {
    return createTensorMap(b, loc, matrix, boxRows);
  };
  auto alloc = [&](int64_t r, int64_t c, StringRef name) -> Value {
    auto buffer = memref::AllocOp::create(b, loc,
                                          MemRefType::get({r, c}, s.element));
    setBufferName(buffer, name);
    return buffer;
  };
  BlockBuffers buf;
  buf.x = asRows(b, loc, bufferOf(unflattened(m.inputRows)));
  auto normOperand = [&](Operation *norm, unsigned i) {
    return i < norm->getNumOperands() ? norm->getOperand(i) : Value();
  };
  buf.norm1Weight = bufferOf(normOperand(m.norm1, 1));
  buf.norm1Bias = bufferOf(normOperand(m.norm1, 2));
  buf.norm2Weight = bufferOf(normOperand(m.norm2, 1));
  buf.norm2Bias = bufferOf(normOperand(m.norm2, 2));
  buf.wq = mapOf(bufferOf(m.queryProjection.getWeight()), 64);
  buf.wk = mapOf(bufferOf(m.keyProjection.getWeight()), 64);
  buf.wv = mapOf(bufferOf(m.valueProjection.getWeight()), 64);
  buf.wo = mapOf(bufferOf(m.outputProjection.getWeight()), 64);
  buf.wIn = mapOf(bufferOf(m.ffn.getWIn()), 64);
  buf.wGate = s.gated ? mapOf(bufferOf(m.ffn.getWGate()), 64) : Value();
  buf.wOut = mapOf(bufferOf(m.ffn.getWOut()), 64);

  int64_t qWidth = s.heads * s.headDim, kvWidth = s.kvHeads * s.headDim;
  buf.h1 = alloc(s.chunk, s.hidden, "attention_norm");
  // Each GEMM's A map has its tile's rows (GemmConfig::aBoxRows).
  buf.h1Map = mapOf(buf.h1, k.q.aBoxRows());
  buf.h1KVMap = k.kv.aBoxRows() == k.q.aBoxRows()
                    ? buf.h1Map
                    : mapOf(buf.h1, k.kv.aBoxRows());
  buf.q = alloc(s.rows, qWidth, "query_then_attention");
  // The attention's Q tiles and the output projection's A tiles.
  buf.qMap = mapOf(buf.q, k.attention.blockM);
  buf.aMap = k.o.aBoxRows() == k.attention.blockM
                 ? buf.qMap
                 : mapOf(buf.q, k.o.aBoxRows());
  buf.k = alloc(s.rows, kvWidth, "key");
  buf.v = alloc(s.rows, kvWidth, "value");
  buf.kMap = mapOf(buf.k, k.attention.blockN);
  buf.vMap = mapOf(buf.v, k.attention.blockN);
  buf.h2 = alloc(s.chunk, s.hidden, "ffn_norm");
  buf.h2Map = mapOf(buf.h2, k.up.aBoxRows());
  buf.u = alloc(s.chunk, s.ffn, "ffn_hidden");
  buf.uMap = mapOf(buf.u, k.down.aBoxRows());
  auto outType = m.output ? cast<ShapedType>(m.output.getType())
                          : cast<ShapedType>(m.inputRows.getType());
  buf.out = memref::AllocOp::create(
      b, loc, MemRefType::get(outType.getShape(), s.element));
  buf.outRows = asRows(b, loc, buf.out);
  buf.qOut = gemmOutputOperand(b, loc, k.q, buf.q);
  buf.kOut = gemmOutputOperand(b, loc, k.kv, buf.k);
  buf.vOut = gemmOutputOperand(b, loc, k.kv, buf.v);
  buf.oOut = gemmOutputOperand(b, loc, k.o, buf.outRows);
  buf.uOut = gemmOutputOperand(b, loc, k.up, buf.u);
  buf.downOut = gemmOutputOperand(b, loc, k.down, buf.outRows);
  return buf;
}

/// The launches of the four phases (see the file's header), unrolled over
/// the chunks (the manifest is a flat list of launches).
void emitLaunches(OpBuilder &b, Location loc, const BlockShape &s,
                  const BlockKernels &k, const BlockBuffers &buf) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  auto i32 = [&](int64_t v) -> Value {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  };
  auto launchGemm = [&](gpu::GPUFuncOp kernel, const GemmConfig &config,
                        SmallVector<Value> args) {
    gpu::LaunchFuncOp::create(
        b, loc, kernel,
        gpu::KernelDim3{index(config.launchGrid()[0]),
                        index(config.launchGrid()[1]), index(1)},
        gpu::KernelDim3{index(config.threads()), index(1), index(1)},
        i32(config.sharedMemoryBytes()), args);
  };
  auto launchNorm = [&](Value input, Value weight, Value bias, Value output,
                        int64_t inRow) {
    SmallVector<Value> args = {input, weight};
    if (bias)
      args.push_back(bias);
    args.append({output, i32(inRow), i32(0)});
    gpu::LaunchFuncOp::create(
        b, loc, k.normKernel,
        gpu::KernelDim3{index(k.norm.blocks()), index(1), index(1)},
        gpu::KernelDim3{index(NormConfig::threads()), index(1), index(1)},
        Value(), args);
  };

  int64_t numChunks = s.rows / s.chunk;
  // A: #bpt.chunk_loop<kv_projection> and the block loop's Q projection.
  for (int64_t c = 0; c < numChunks; ++c) {
    int64_t r0 = c * s.chunk;
    launchNorm(buf.x, buf.norm1Weight, buf.norm1Bias, buf.h1, r0);
    launchGemm(k.qKernel, k.q, {buf.h1Map, buf.wq, buf.qOut, i32(0), i32(r0)});
    launchGemm(k.kvKernel, k.kv,
               {buf.h1KVMap, buf.wk, buf.kOut, i32(0), i32(r0)});
    launchGemm(k.kvKernel, k.kv,
               {buf.h1KVMap, buf.wv, buf.vOut, i32(0), i32(r0)});
  }
  // B: every chunk's attention nest, written over its queries.
  const AttentionKernelConfig &attention = k.attention;
  std::array<int64_t, 3> grid = attention.grid();
  gpu::LaunchFuncOp::create(
      b, loc, k.attentionKernel,
      gpu::KernelDim3{index(grid[0]), index(grid[1]), index(grid[2])},
      gpu::KernelDim3{index(attention.threads()), index(1), index(1)},
      i32(attention.sharedMemoryBytes()),
      ValueRange{buf.qMap, buf.kMap, buf.vMap, buf.q});
  // C: every chunk's output projection and attention residual.
  launchGemm(k.oKernel, k.o,
             {buf.aMap, buf.wo, buf.oOut, buf.x, i32(0), i32(0), i32(0)});
  // D: the rest of the block loop, per chunk; out[chunk] is the FFN's
  // residual and its result.
  for (int64_t c = 0; c < numChunks; ++c) {
    int64_t r0 = c * s.chunk;
    launchNorm(buf.outRows, buf.norm2Weight, buf.norm2Bias, buf.h2, r0);
    if (s.gated)
      launchGemm(k.upKernel, k.up,
                 {buf.h2Map, buf.wIn, buf.wGate, buf.uOut, i32(0), i32(0)});
    else
      launchGemm(k.upKernel, k.up,
                 {buf.h2Map, buf.wIn, buf.uOut, i32(0), i32(0)});
    launchGemm(k.downKernel, k.down,
               {buf.uMap, buf.wOut, buf.downOut, buf.outRows, i32(0), i32(r0),
                i32(r0)});
  }
}

struct BPTBlockToSM90Pass final
    : bpt::impl::BPTBlockToSM90Base<BPTBlockToSM90Pass> {
  using Base::Base;

  void runOnOperation() override {
    for (scf::ForallOp loop : chunkLoopsTaking(
             getOperation(), ChunkLoopKind::block, KernelPath::wgmma)) {
      FailureOr<BlockChunkLoops> m = BlockChunkLoops::match(loop);
      if (failed(m) || failed(rewrite(*m, StrategyAttr::get(loop))))
        return signalPassFailure();
    }
  }

  LogicalResult rewrite(BlockChunkLoops &m, StrategyAttr strategy) {
    for (Operation *user : m.kvLoop->getUsers())
      if (!m.blockLoop->isAncestor(user))
        return m.kvLoop.emitError()
               << "bpt-block-to-sm90: its keys and values are used outside "
                  "the block's chunk loop";
    BlockShape shape(m);
    if (shape.rows / shape.chunk > kMaxUnrolledChunks)
      return m.blockLoop.emitError()
             << "bpt-block-to-sm90: " << shape.rows / shape.chunk
             << " chunks of " << shape.chunk
             << " rows; each is its own launch sequence, and at most "
             << kMaxUnrolledChunks
             << " are written (raise the strategy's chunk_rows, or take the "
                "portable path)";
    FailureOr<BlockKernels> kernels =
        buildKernels(getOperation(), m, shape, strategy);
    if (failed(kernels))
      return failure();
    Location loc = m.blockLoop.getLoc();
    OpBuilder b(m.blockLoop);
    BlockBuffers buffers = allocateBuffers(b, loc, m, shape, *kernels);
    emitLaunches(b, loc, shape, *kernels, buffers);
    Operation *replaced =
        m.output ? m.output.getOperation() : m.blockLoop.getOperation();
    Value result = bufferization::ToTensorOp::create(
        b, loc, replaced->getResult(0).getType(), buffers.out,
        /*restrict=*/true, /*writable=*/true);
    replaced->getResult(0).replaceAllUsesWith(result);
    if (m.output)
      m.output.erase();
    m.blockLoop.erase();
    m.kvLoop.erase();
    return success();
  }
};

} // namespace
