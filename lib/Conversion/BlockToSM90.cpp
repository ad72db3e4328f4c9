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
// bpt-attention-to-sm90 (wgmma, TMA, mbarriers); the norms are a kernel of
// this file: one warp per row, 16-byte loads, f32 statistics.
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

namespace bpt {
#define GEN_PASS_DEF_BPTBLOCKTOSM90
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::sm90;

namespace {

/// out[outRow0 + i, :] = norm(x[xRow0 + i, :]) for the rows of a launch.
struct NormConfig {
  int64_t xRows, outRows, hidden;
  bool layerNorm;
  double epsilon;
  bool bf16;
  static constexpr int64_t kRowsPerBlock = 8; // one warp per row

  std::string kernelName() const {
    return llvm::formatv("{0}_sm90_x{1}_o{2}_h{3}",
                         layerNorm ? "layer_norm" : "rms_norm", xRows, outRows,
                         hidden)
        .str();
  }
};

class NormEmitter : public SM90Emitter {
public:
  NormEmitter(OpBuilder &b, Location loc, const NormConfig &config)
      : SM90Emitter(b, loc, config.bf16), config(config) {}

  void emit(gpu::GPUFuncOp func) {
    b.setInsertionPointToStart(&func.getBody().front());
    const int64_t hidden = config.hidden, perLane = hidden / 32;
    const int64_t vectors = perLane / 8; // 8 elements = 16 bytes
    auto pointerOf = [&](Value memref) -> Value {
      Value index =
          memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref);
      return LLVM::IntToPtrOp::create(
          b, loc, ptr,
          Value(arith::IndexCastUIOp::create(b, loc, i64, index)));
    };
    unsigned next = 0;
    Value x = pointerOf(func.getArgument(next++));
    Value weight = pointerOf(func.getArgument(next++));
    Value bias = config.layerNorm ? pointerOf(func.getArgument(next++)) : Value();
    Value out = pointerOf(func.getArgument(next++));
    Value xRow0 = func.getArgument(next++);
    Value outRow0 = func.getArgument(next++);

    Value tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
    Value blockRow = mul(index32(gpu::BlockIdOp::create(b, loc,
                                                        gpu::Dimension::x)),
                         c32(NormConfig::kRowsPerBlock));
    Value row = add(blockRow, div(tid, c32(32)));
    Value lane = rem(tid, c32(32));
    Type half = bf16 ? Type(b.getBF16Type()) : Type(b.getF16Type());
    auto vec8 = [&](Type t) { return VectorType::get({8}, t); };
    auto rowBytes = [&](Value first) {
      return mul(arith::ExtUIOp::create(b, loc, i64, add(first, row)),
                 c64(hidden * 2));
    };
    // Lane l holds the 8-element vectors v * 32 + l: a warp's 16-byte
    // loads are contiguous.
    auto columnBytes = [&](int64_t v) {
      return mul(arith::ExtUIOp::create(b, loc, i64,
                                        add(c32(v * 32 * 8), mul(lane, c32(8)))),
                 c64(2));
    };
    auto load8 = [&](Value base, Value bytes) {
      Value address = LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), base,
                                          ValueRange{bytes});
      Value raw = LLVM::LoadOp::create(b, loc, vec8(half), address, 16);
      Value wide = LLVM::FPExtOp::create(b, loc, vec8(f32), raw);
      SmallVector<Value> values;
      for (int64_t e = 0; e < 8; ++e)
        values.push_back(LLVM::ExtractElementOp::create(b, loc, wide, c32(e)));
      return values;
    };
    auto warpSum = [&](Value v) {
      for (int64_t offset : {16, 8, 4, 2, 1})
        v = fadd(v, shuffleXor(v, offset));
      return v;
    };

    Value xBase = rowBytes(xRow0);
    SmallVector<Value> values;
    for (int64_t v = 0; v < vectors; ++v)
      llvm::append_range(values, load8(x, add(xBase, columnBytes(v))));
    Value mean = cf(0.0);
    if (config.layerNorm) {
      Value sum = cf(0.0);
      for (Value value : values)
        sum = fadd(sum, value);
      mean = fmul(warpSum(sum), cf(1.0 / hidden));
    }
    Value squares = cf(0.0);
    for (Value &value : values) {
      if (config.layerNorm)
        value = arith::SubFOp::create(b, loc, value, mean);
      squares = fma(value, value, squares);
    }
    Value variance = fadd(fmul(warpSum(squares), cf(1.0 / hidden)),
                          cf(config.epsilon));
    Value inverse = rsqrt(variance);

    Value outBase = rowBytes(outRow0);
    for (int64_t v = 0; v < vectors; ++v) {
      SmallVector<Value> w = load8(weight, columnBytes(v));
      SmallVector<Value> bb;
      if (bias)
        bb = load8(bias, columnBytes(v));
      Value packed = LLVM::UndefOp::create(b, loc, VectorType::get({4}, i32));
      for (int64_t e = 0; e < 8; e += 2) {
        Value pair[2];
        for (int64_t h = 0; h < 2; ++h) {
          pair[h] = fmul(fmul(values[v * 8 + e + h], inverse), w[e + h]);
          if (bias)
            pair[h] = fadd(pair[h], bb[e + h]);
        }
        packed = LLVM::InsertElementOp::create(
            b, loc, packed, packHalf2(pair[0], pair[1]), c32(e / 2));
      }
      Value address = LLVM::GEPOp::create(
          b, loc, ptr, b.getI8Type(), out,
          ValueRange{add(outBase, columnBytes(v))});
      LLVM::StoreOp::create(b, loc, packed, address, 16);
    }
    gpu::ReturnOp::create(b, loc);
  }

private:
  const NormConfig &config;
};

gpu::GPUFuncOp getOrBuildNormKernel(ModuleOp module, const NormConfig &config,
                                    Type element, Location loc) {
  gpu::GPUModuleOp kernels = getOrCreateSM90KernelModule(module);
  std::string name = config.kernelName();
  if (auto existing = kernels.lookupSymbol<gpu::GPUFuncOp>(name))
    return existing;
  MLIRContext *ctx = module.getContext();
  auto vector = MemRefType::get({config.hidden}, element);
  auto i32 = IntegerType::get(ctx, 32);
  SmallVector<Type> inputs = {
      MemRefType::get({config.xRows, config.hidden}, element), vector};
  if (config.layerNorm)
    inputs.push_back(vector);
  inputs.append({MemRefType::get({config.outRows, config.hidden}, element),
                 i32, i32});
  gpu::GPUFuncOp func = createKernel(kernels, name, inputs, std::nullopt, loc);
  OpBuilder b(ctx);
  NormEmitter(b, loc, config).emit(func);
  return func;
}

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
    epsilon = layerNorm
                  ? cast<LayerNormOp>(m.norm1).getEpsilon().convertToDouble()
                  : cast<RMSNormOp>(m.norm1).getEpsilon().convertToDouble();
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
    if (std::optional<std::string> why =
            chooseGemmTiling(config, strategy.getGemmBlockN(),
                             strategy.getGemmStages(), sharedMemoryOf(strategy)))
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
  k.norm1 = {s.rows, s.chunk, s.hidden, s.layerNorm, s.epsilon, s.bf16};
  k.norm2 = {s.chunk, s.chunk, s.hidden, s.layerNorm, s.epsilon, s.bf16};
  k.norm1Kernel = getOrBuildNormKernel(module, k.norm1, s.element, loc);
  k.norm2Kernel = getOrBuildNormKernel(module, k.norm2, s.element, loc);
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
  Value gemmThreads = index(kWarpgroup * 3);
  auto launchGemm = [&](gpu::GPUFuncOp kernel, const GemmConfig &config,
                        SmallVector<Value> args) {
    gpu::LaunchFuncOp::create(
        b, loc, kernel,
        gpu::KernelDim3{index(config.n / config.blockN),
                        index(s.chunk / config.blockM), index(1)},
        gpu::KernelDim3{gemmThreads, index(1), index(1)},
        i32(config.sharedMemoryBytes()), args);
  };
  auto launchNorm = [&](gpu::GPUFuncOp kernel, Value input, Value weight,
                        Value bias, Value output, int64_t inRow) {
    SmallVector<Value> args = {input, weight};
    if (bias)
      args.push_back(bias);
    args.append({output, i32(inRow), i32(0)});
    gpu::LaunchFuncOp::create(
        b, loc, kernel,
        gpu::KernelDim3{index(s.chunk / NormConfig::kRowsPerBlock), index(1),
                        index(1)},
        gpu::KernelDim3{index(32 * NormConfig::kRowsPerBlock), index(1),
                        index(1)},
        Value(), args);
  };

  int64_t numChunks = s.rows / s.chunk;
  // #bpt.chunk_loop<kv_projection>.
  for (int64_t c = 0; c < numChunks; ++c) {
    int64_t r0 = c * s.chunk;
    launchNorm(k.norm1Kernel, buf.x, buf.norm1Weight, buf.norm1Bias, buf.h1,
               r0);
    launchGemm(k.kvKernel, k.kv, {buf.h1Map, buf.wk, buf.k, i32(0), i32(r0)});
    launchGemm(k.kvKernel, k.kv, {buf.h1Map, buf.wv, buf.v, i32(0), i32(r0)});
  }
  // #bpt.chunk_loop<block>.
  const AttentionKernelConfig &attention = k.attention;
  for (int64_t c = 0; c < numChunks; ++c) {
    int64_t r0 = c * s.chunk;
    launchNorm(k.norm1Kernel, buf.x, buf.norm1Weight, buf.norm1Bias, buf.h1,
               r0);
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
    launchNorm(k.norm2Kernel, buf.y1, buf.norm2Weight, buf.norm2Bias, buf.h2,
               0);
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
