//===- BlockToSM90.cpp - bpt.transformer_block on Hopper --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces an eligible bpt.transformer_block by a sequence of sm_90a kernels
// run chunk by chunk over the rows, so that no buffer has an S × ffn or
// S × S term and only K and V span the sequence:
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
    Value inverse = asmOp(f32, variance, "rsqrt.approx.ftz.f32 $0, $1;",
                          "=f,f", /*sideEffects=*/false);

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

struct BPTBlockToSM90Pass final
    : bpt::impl::BPTBlockToSM90Base<BPTBlockToSM90Pass> {
  using Base::Base;

  void runOnOperation() override {
    for (TransformerBlockOp op :
         opsTaking<TransformerBlockOp>(getOperation(), KernelPath::wgmma))
      if (failed(rewrite(op, StrategyAttr::get(op))))
        return signalPassFailure();
  }

  LogicalResult rewrite(TransformerBlockOp op, StrategyAttr strategy) {
    ModuleOp module = getOperation();
    Location loc = op.getLoc();
    auto xType = op.getInput().getType();
    Type element = xType.getElementType();
    bool bf16 = element.isBF16();
    int64_t batch = xType.getDimSize(0), seq = xType.getDimSize(1),
            hidden = xType.getDimSize(2), rows = batch * seq;
    int64_t headDim = op.getHeadDim();
    int64_t heads = op.getHeadsAttr().getInt();
    int64_t kvHeads = op.getKvHeadsAttr().getInt();
    int64_t qWidth = heads * headDim, kvWidth = kvHeads * headDim;
    int64_t ffn = op.getWIn().getType().getDimSize(1);
    bool layerNorm = op.getNorm() == NormKind::layer_norm;
    double epsilon = op.getEpsilon().convertToDouble();
    // A chunk lies in one sequence.
    int64_t chunk = strategy.getChunkRows();
    int64_t blockN = strategy.getGemmBlockN();
    int64_t gemmStages = strategy.getGemmStages();

    std::optional<std::string> tilingError;
    auto gemm = [&](int64_t aRows, int64_t cRows, int64_t n, int64_t k,
                    std::optional<Activation> act, int64_t residualRows) {
      GemmConfig config{aRows, cRows, n, k, bf16, act};
      config.residual = residualRows > 0;
      config.rRows = residualRows;
      if (std::optional<std::string> why =
              chooseGemmTiling(config, blockN, gemmStages, sharedMemoryOf(strategy)))
        tilingError = why;
      return config;
    };
    GemmConfig kvConfig = gemm(chunk, rows, kvWidth, hidden, {}, 0);
    GemmConfig qConfig = gemm(chunk, chunk, qWidth, hidden, {}, 0);
    GemmConfig oConfig = gemm(chunk, chunk, hidden, qWidth, {}, rows);
    bool gated = op.getWGate() != nullptr;
    GemmConfig upConfig = gemm(chunk, chunk, ffn, hidden, op.getActivation(), 0);
    if (gated) {
      upConfig.gated = true;
      // Re-choose for the gated stage size (two B tiles a stage).
      if (std::optional<std::string> why =
              chooseGemmTiling(upConfig, blockN, gemmStages,
                               sharedMemoryOf(strategy)))
        tilingError = why;
    }
    GemmConfig downConfig = gemm(chunk, rows, hidden, ffn, {}, chunk);
    if (tilingError)
      return op.emitError() << "bpt-block-to-sm90: " << *tilingError;
    auto build = [&](const GemmConfig &config) {
      return getOrBuildGemmKernel(module, config, element, loc);
    };
    gpu::GPUFuncOp kvKernel = build(kvConfig), qKernel = build(qConfig),
                   oKernel = build(oConfig), upKernel = build(upConfig),
                   downKernel = build(downConfig);
    NormConfig norm1{rows, chunk, hidden, layerNorm, epsilon, bf16};
    NormConfig norm2{chunk, chunk, hidden, layerNorm, epsilon, bf16};
    gpu::GPUFuncOp norm1Kernel = getOrBuildNormKernel(module, norm1, element, loc);
    gpu::GPUFuncOp norm2Kernel = getOrBuildNormKernel(module, norm2, element, loc);
    AttentionKernelConfig attention{};
    attention.batch = batch;
    attention.heads = heads;
    attention.kvHeads = kvHeads;
    attention.seqQ = seq;
    attention.seqKV = seq;
    attention.headDim = headDim;
    attention.causal = op.getCausal();
    attention.scale = 1.0 / std::sqrt(static_cast<double>(headDim));
    attention.bf16 = bf16;
    attention.tokenMajor = true;
    attention.chunkRows = chunk;
    attention.blockN = strategy.getKvBlock();
    attention.stages = strategy.getStages();
    gpu::GPUFuncOp attentionKernel =
        getOrBuildAttentionKernel(module, attention, element, loc);

    OpBuilder b(op);
    auto index = [&](int64_t v) -> Value {
      return arith::ConstantIndexOp::create(b, loc, v);
    };
    auto i32 = [&](int64_t v) -> Value {
      return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
    };
    auto bufferOf = [&](Value tensor) -> Value {
      return tensor ? readOnlyBuffer(b, loc, tensor) : Value();
    };
    auto mapOf = [&](Value matrix, int64_t boxRows) {
      return createTensorMap(b, loc, matrix, boxRows);
    };
    auto alloc = [&](int64_t r, int64_t c) -> Value {
      return memref::AllocOp::create(b, loc, MemRefType::get({r, c}, element));
    };
    SmallVector<ReassociationIndices> toRows = {{0, 1}, {2}};

    Value x = memref::CollapseShapeOp::create(b, loc, bufferOf(op.getInput()),
                                              toRows);
    Value norm1Weight = bufferOf(op.getNorm1Weight());
    Value norm1Bias = bufferOf(op.getNorm1Bias());
    Value norm2Weight = bufferOf(op.getNorm2Weight());
    Value norm2Bias = bufferOf(op.getNorm2Bias());
    Value wq = mapOf(bufferOf(op.getWQ()), 64);
    Value wk = mapOf(bufferOf(op.getWK()), 64);
    Value wv = mapOf(bufferOf(op.getWV()), 64);
    Value wo = mapOf(bufferOf(op.getWO()), 64);
    Value wIn = mapOf(bufferOf(op.getWIn()), 64);
    Value wGate = gated ? mapOf(bufferOf(op.getWGate()), 64) : Value();
    Value wOut = mapOf(bufferOf(op.getWOut()), 64);

    Value k = alloc(rows, kvWidth), v = alloc(rows, kvWidth);
    Value kMap = mapOf(k, attention.blockN), vMap = mapOf(v, attention.blockN);
    Value h1 = alloc(chunk, hidden), h1Map = mapOf(h1, 128);
    Value q = alloc(chunk, qWidth), qMap = mapOf(q, 128);
    Value a = alloc(chunk, qWidth), aMap = mapOf(a, 128);
    Value y1 = alloc(chunk, hidden);
    Value h2 = alloc(chunk, hidden), h2Map = mapOf(h2, 128);
    Value u = alloc(chunk, ffn), uMap = mapOf(u, 128);
    Value out = memref::AllocOp::create(
        b, loc, MemRefType::get(xType.getShape(), element));
    Value outRows = memref::CollapseShapeOp::create(b, loc, out, toRows);

    Value gemmThreads = index(kWarpgroup * 3);
    auto launchGemm = [&](gpu::GPUFuncOp kernel, const GemmConfig &config,
                          SmallVector<Value> args) {
      gpu::LaunchFuncOp::create(
          b, loc, kernel,
          gpu::KernelDim3{index(config.n / config.blockN),
                          index(chunk / config.blockM), index(1)},
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
          gpu::KernelDim3{index(chunk / NormConfig::kRowsPerBlock), index(1),
                          index(1)},
          gpu::KernelDim3{index(32 * NormConfig::kRowsPerBlock), index(1),
                          index(1)},
          Value(), args);
    };

    int64_t numChunks = rows / chunk;
    for (int64_t c = 0; c < numChunks; ++c) {
      int64_t r0 = c * chunk;
      launchNorm(norm1Kernel, x, norm1Weight, norm1Bias, h1, r0);
      launchGemm(kvKernel, kvConfig, {h1Map, wk, k, i32(0), i32(r0)});
      launchGemm(kvKernel, kvConfig, {h1Map, wv, v, i32(0), i32(r0)});
    }
    for (int64_t c = 0; c < numChunks; ++c) {
      int64_t r0 = c * chunk;
      launchNorm(norm1Kernel, x, norm1Weight, norm1Bias, h1, r0);
      launchGemm(qKernel, qConfig, {h1Map, wq, q, i32(0), i32(0)});
      gpu::LaunchFuncOp::create(
          b, loc, attentionKernel,
          gpu::KernelDim3{index(chunk / attention.blockM), index(heads),
                          index(1)},
          gpu::KernelDim3{index(attention.threads()), index(1), index(1)},
          i32(attention.sharedMemoryBytes()),
          ValueRange{qMap, kMap, vMap, a, i32(r0 % seq),
                     i32(r0 / seq * seq)});
      launchGemm(oKernel, oConfig, {aMap, wo, y1, x, i32(0), i32(0), i32(r0)});
      launchNorm(norm2Kernel, y1, norm2Weight, norm2Bias, h2, 0);
      if (gated)
        launchGemm(upKernel, upConfig, {h2Map, wIn, wGate, u, i32(0), i32(0)});
      else
        launchGemm(upKernel, upConfig, {h2Map, wIn, u, i32(0), i32(0)});
      launchGemm(downKernel, downConfig,
                 {uMap, wOut, outRows, y1, i32(0), i32(r0), i32(0)});
    }
    Value result = bufferization::ToTensorOp::create(
        b, loc, xType, out, /*restrict=*/true, /*writable=*/true);
    op.replaceAllUsesWith(result);
    op.erase();
    return success();
  }
};

} // namespace
