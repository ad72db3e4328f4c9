//===- BlockToSM90.cpp - bpt.transformer_block on Hopper --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Maps the chunk loops of a transformer block on the wgmma path
// (#bpt.chunk_loop, built by bpt-decompose-block) to host loops of sm_90a
// kernel launches, one launch per op of the loop's body, so that no buffer
// has an S × ffn or S × S term and only K and V span the sequence:
//
//   phase A, per chunk:  h1 = norm1(x[chunk]);  K[chunk] = h1 Wk;
//                        V[chunk] = h1 Wv
//   phase B, per chunk:  h1 = norm1(x[chunk]);  Q = h1 Wq;
//                        a = attention(Q, K[seq], V[seq])   (token-major)
//                        y1 = x[chunk] + a Wo;  h2 = norm2(y1)
//                        u = act(h2 W_in);      out[chunk] = y1 + u W_out
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
  NormConfig norm1, norm2;
  AttentionKernelConfig attention;
  gpu::GPUFuncOp kvKernel, qKernel, oKernel, upKernel, downKernel,
      norm1Kernel, norm2Kernel, attentionKernel;
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
  k.q = gemm(s.chunk, s.chunk, qWidth, s.hidden, {}, 0);
  k.o = gemm(s.chunk, s.chunk, s.hidden, qWidth, {}, s.rows);
  k.up = gemm(s.chunk, s.chunk, s.ffn, s.hidden, m.ffn.getActivation(), 0,
              s.gated);
  k.down = gemm(s.chunk, s.rows, s.hidden, s.ffn, {}, s.chunk);
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
  k.norm1 = {s.rows,    s.chunk, s.hidden, s.layerNorm,
             s.epsilon, s.bf16,  s.chunk};
  k.norm2 = {s.chunk,   s.chunk, s.hidden, s.layerNorm,
             s.epsilon, s.bf16,  s.chunk};
  gpu::GPUModuleOp kernels = getOrCreateSM90KernelModule(module);
  k.norm1Kernel = getOrBuildNormKernel(kernels, k.norm1, s.element, loc);
  k.norm2Kernel = getOrBuildNormKernel(kernels, k.norm2, s.element, loc);
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
  a.chunkRows = s.chunk;
  a.blockN = strategy.getKvBlock();
  a.stages = strategy.getStages();
  k.attentionKernel = getOrBuildAttentionKernel(module, a, s.element, loc);
  return k;
}

/// Host buffers of the launches: only K and V span the rows.
struct BlockBuffers {
  Value x, norm1Weight, norm1Bias, norm2Weight, norm2Bias;
  Value wq, wk, wv, wo, wIn, wGate, wOut;
  Value k, v, kMap, vMap, h1, h1Map, q, qMap, a, aMap, y1, h2, h2Map, u, uMap;
  Value out, outRows;
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
  buf.k = alloc(s.rows, kvWidth, "key");
  buf.v = alloc(s.rows, kvWidth, "value");
  buf.kMap = mapOf(buf.k, k.attention.blockN);
  buf.vMap = mapOf(buf.v, k.attention.blockN);
  buf.h1 = alloc(s.chunk, s.hidden, "attention_norm");
  buf.h1Map = mapOf(buf.h1, 128);
  buf.q = alloc(s.chunk, qWidth, "query");
  buf.qMap = mapOf(buf.q, 128);
  buf.a = alloc(s.chunk, qWidth, "attention");
  buf.aMap = mapOf(buf.a, 128);
  buf.y1 = alloc(s.chunk, s.hidden, "attention_residual");
  buf.h2 = alloc(s.chunk, s.hidden, "ffn_norm");
  buf.h2Map = mapOf(buf.h2, 128);
  buf.u = alloc(s.chunk, s.ffn, "ffn_hidden");
  buf.uMap = mapOf(buf.u, 128);
  auto outType = m.output ? cast<ShapedType>(m.output.getType())
                          : cast<ShapedType>(m.inputRows.getType());
  buf.out = memref::AllocOp::create(
      b, loc, MemRefType::get(outType.getShape(), s.element));
  buf.outRows = asRows(b, loc, buf.out);
  return buf;
}

/// The launches of the two loops, one host loop each, unrolled over the
/// chunks (the manifest is a flat list of launches).
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
        gpu::KernelDim3{index(config.grid()[0]), index(config.grid()[1]),
                        index(1)},
        gpu::KernelDim3{index(config.threads()), index(1), index(1)},
        i32(config.sharedMemoryBytes()), args);
  };
  auto launchNorm = [&](const NormConfig &config, gpu::GPUFuncOp kernel,
                        Value input, Value weight, Value bias, Value output,
                        int64_t inRow) {
    SmallVector<Value> args = {input, weight};
    if (bias)
      args.push_back(bias);
    args.append({output, i32(inRow), i32(0)});
    gpu::LaunchFuncOp::create(
        b, loc, kernel,
        gpu::KernelDim3{index(config.blocks()), index(1), index(1)},
        gpu::KernelDim3{index(NormConfig::threads()), index(1), index(1)},
        Value(), args);
  };

  int64_t numChunks = s.rows / s.chunk;
  // #bpt.chunk_loop<kv_projection>.
  for (int64_t c = 0; c < numChunks; ++c) {
    int64_t r0 = c * s.chunk;
    launchNorm(k.norm1, k.norm1Kernel, buf.x, buf.norm1Weight, buf.norm1Bias,
               buf.h1, r0);
    launchGemm(k.kvKernel, k.kv, {buf.h1Map, buf.wk, buf.k, i32(0), i32(r0)});
    launchGemm(k.kvKernel, k.kv, {buf.h1Map, buf.wv, buf.v, i32(0), i32(r0)});
  }
  // #bpt.chunk_loop<block>.
  const AttentionKernelConfig &attention = k.attention;
  for (int64_t c = 0; c < numChunks; ++c) {
    int64_t r0 = c * s.chunk;
    launchNorm(k.norm1, k.norm1Kernel, buf.x, buf.norm1Weight, buf.norm1Bias,
               buf.h1, r0);
    launchGemm(k.qKernel, k.q, {buf.h1Map, buf.wq, buf.q, i32(0), i32(0)});
    gpu::LaunchFuncOp::create(
        b, loc, k.attentionKernel,
        gpu::KernelDim3{index(s.chunk / attention.blockM), index(s.heads),
                        index(1)},
        gpu::KernelDim3{index(attention.threads()), index(1), index(1)},
        i32(attention.sharedMemoryBytes()),
        ValueRange{buf.qMap, buf.kMap, buf.vMap, buf.a, i32(r0 % s.seq),
                   i32(r0 / s.seq * s.seq)});
    launchGemm(k.oKernel, k.o,
               {buf.aMap, buf.wo, buf.y1, buf.x, i32(0), i32(0), i32(r0)});
    launchNorm(k.norm2, k.norm2Kernel, buf.y1, buf.norm2Weight, buf.norm2Bias,
               buf.h2, 0);
    if (s.gated)
      launchGemm(k.upKernel, k.up,
                 {buf.h2Map, buf.wIn, buf.wGate, buf.u, i32(0), i32(0)});
    else
      launchGemm(k.upKernel, k.up, {buf.h2Map, buf.wIn, buf.u, i32(0), i32(0)});
    launchGemm(k.downKernel, k.down,
               {buf.uMap, buf.wOut, buf.outRows, buf.y1, i32(0), i32(r0),
                i32(0)});
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
