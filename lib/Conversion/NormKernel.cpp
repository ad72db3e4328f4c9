//===- NormKernel.cpp - the row-wise norm kernel ----------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "NormKernel.h"
#include "NVVMEmitter.h"

#include "bpt/Dialect/BPTOps.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace bpt::codegen;

std::string NormConfig::kernelName() const {
  // The epsilon is compiled in: spelled as an identifier (1e-05 -> 1em05).
  std::string eps = llvm::formatv("{0}", llvm::format("%g", epsilon)).str();
  for (char &c : eps)
    c = c == '.' ? 'p' : c == '-' ? 'm' : c == '+' ? 'p' : c;
  std::string name =
      llvm::formatv("{0}_{1}_x{2}_o{3}_h{4}_eps{5}",
                    layerNorm ? "layer_norm" : "rms_norm",
                    bf16 ? "bf16" : "f16", xRows, outRows, hidden, eps)
          .str();
  // Whole blocks of rows need no guard; a guarded kernel names its rows.
  if (rows % kRowsPerBlock != 0)
    name += llvm::formatv("_r{0}", rows).str();
  return name;
}

std::optional<std::string> NormConfig::check(int64_t rows, int64_t hidden,
                                             Type element) {
  if (!element.isBF16() && !element.isF16())
    return "the row kernel takes bf16 and f16 rows";
  if (hidden % 256 != 0 || hidden > kMaxHidden)
    return llvm::formatv("rows of {0} elements: the row kernel takes "
                         "multiples of 256 up to {1}",
                         hidden, kMaxHidden)
        .str();
  if (rows > INT32_MAX)
    return "more rows than the kernel's 32-bit row index addresses";
  return std::nullopt;
}

namespace {

class NormEmitter : public NVVMEmitter {
public:
  NormEmitter(OpBuilder &b, Location loc, const NormConfig &config)
      : NVVMEmitter(b, loc, config.bf16), config(config) {}

  void emit(gpu::GPUFuncOp func) {
    b.setInsertionPointToStart(&func.getBody().front());
    const int64_t hidden = config.hidden, perLane = hidden / 32;
    const int64_t vectors = perLane / 8; // 8 elements = 16 bytes
    auto pointerOf = [&](Value memref) -> Value {
      Value index =
          memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref);
      return LLVM::IntToPtrOp::create(
          b, loc, ptr, Value(arith::IndexCastUIOp::create(b, loc, i64, index)));
    };
    unsigned next = 0;
    Value x = pointerOf(func.getArgument(next++));
    Value weight = pointerOf(func.getArgument(next++));
    Value bias =
        config.layerNorm ? pointerOf(func.getArgument(next++)) : Value();
    Value out = pointerOf(func.getArgument(next++));
    Value xRow0 = func.getArgument(next++);
    Value outRow0 = func.getArgument(next++);

    Value tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
    Value blockRow =
        mul(index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x)),
            c32(NormConfig::kRowsPerBlock));
    Value row = add(blockRow, div(tid, c32(32)));
    Value lane = rem(tid, c32(32));
    // A last block past the rows: its spare warps skip their rows whole
    // (no shuffle crosses warps).
    scf::IfOp guard;
    if (config.rows % NormConfig::kRowsPerBlock != 0) {
      guard = scf::IfOp::create(
          b, loc, cmp(arith::CmpIPredicate::ult, row, c32(config.rows)),
          /*withElseRegion=*/false);
      b.setInsertionPointToStart(&guard.getThenRegion().front());
    }
    Type half = bf16 ? Type(b.getBF16Type()) : Type(b.getF16Type());
    auto vec8 = [&](Type t) { return VectorType::get({8}, t); };
    auto rowBytes = [&](Value first) {
      return mul(arith::ExtUIOp::create(b, loc, i64, add(first, row)),
                 c64(hidden * 2));
    };
    // Lane l holds the 8-element vectors v * 32 + l: a warp's 16-byte
    // loads are contiguous.
    auto columnBytes = [&](int64_t v) {
      return mul(arith::ExtUIOp::create(
                     b, loc, i64, add(c32(v * 32 * 8), mul(lane, c32(8)))),
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
    Value variance =
        fadd(fmul(warpSum(squares), cf(1.0 / hidden)), cf(config.epsilon));
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
      Value address =
          LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), out,
                              ValueRange{add(outBase, columnBytes(v))});
      LLVM::StoreOp::create(b, loc, packed, address, 16);
    }
    if (guard)
      b.setInsertionPointAfter(guard);
    gpu::ReturnOp::create(b, loc);
  }

private:
  const NormConfig &config;
};

} // namespace

gpu::GPUFuncOp bpt::codegen::getOrBuildNormKernel(gpu::GPUModuleOp kernels,
                                                  const NormConfig &config,
                                                  Type element, Location loc) {
  std::string name = config.kernelName();
  if (auto existing = kernels.lookupSymbol<gpu::GPUFuncOp>(name))
    return existing;
  MLIRContext *ctx = kernels.getContext();
  auto vector = MemRefType::get({config.hidden}, element);
  auto i32 = IntegerType::get(ctx, 32);
  SmallVector<Type> inputs = {
      MemRefType::get({config.xRows, config.hidden}, element), vector};
  if (config.layerNorm)
    inputs.push_back(vector);
  inputs.append(
      {MemRefType::get({config.outRows, config.hidden}, element), i32, i32});
  gpu::GPUFuncOp func = createKernel(kernels, name, inputs, std::nullopt, loc);
  OpBuilder b(ctx);
  NormEmitter(b, loc, config).emit(func);
  return func;
}

double bpt::codegen::normEpsilon(mlir::Operation *norm) {
  if (auto layerNorm = llvm::dyn_cast<LayerNormOp>(norm))
    return layerNorm.getEpsilon().convertToDouble();
  return llvm::cast<RMSNormOp>(norm).getEpsilon().convertToDouble();
}
