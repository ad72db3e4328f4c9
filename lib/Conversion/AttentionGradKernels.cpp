//===- AttentionGradKernels.cpp - the backward's pre- and post-pass -------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "AttentionGradKernels.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace bpt::codegen;

namespace {

/// The pre-pass: thread t of a row's D/8 reads 8 elements of dO and O (16
/// bytes each), the row's threads sum their dot products by shuffles, and
/// each zeroes its 8 elements of the accumulator (`work` may take either
/// half alone: the arguments are then that half's).
class PrepareEmitter : public NVVMEmitter {
public:
  PrepareEmitter(OpBuilder &b, Location loc, const AttentionGradRows &config,
                 PrepareWork work)
      : NVVMEmitter(b, loc, config.bf16), config(config), work(work) {}

  void emit(gpu::GPUFuncOp func) {
    b.setInsertionPointToStart(&func.getBody().front());
    bool dots = work != PrepareWork::Zero, zero = work != PrepareWork::Dots;
    unsigned next = 0;
    auto argument = [&] { return pointerOf(func.getArgument(next++)); };
    Value dO, o, rowDots, acc;
    if (dots) {
      dO = argument();
      o = argument();
      rowDots = argument();
    }
    if (zero)
      acc = argument();
    const int64_t d = config.headDim, threadsPerRow = d / 8;
    Value tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
    Value block = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
    Value row = add(mul(block, c32(prepareRowsPerBlock(d))),
                    div(tid, c32(threadsPerRow)));
    Value part = rem(tid, c32(threadsPerRow));
    // Padded: `row` counts the padded rows; dO, O and lse are read at the
    // real row (the head's last for a padding row, whose results are
    // replaced).
    Value realRow = row, real;
    if (config.padded()) {
      Value head = div(row, c32(config.paddedSeqQ));
      Value inHead = rem(row, c32(config.paddedSeqQ));
      real = cmp(arith::CmpIPredicate::ult, inHead, c32(config.seqQ));
      realRow =
          add(mul(head, c32(config.seqQ)),
              arith::MinUIOp::create(b, loc, inHead, c32(config.seqQ - 1)));
    }
    // Element index of this thread's 8 elements (64-bit: B·H·S·D may not
    // fit 32 bits).
    auto elementOf = [&](Value r) -> Value {
      return add(mul(arith::ExtUIOp::create(b, loc, i64, r), c64(d)),
                 arith::ExtUIOp::create(b, loc, i64, mul(part, c32(8))));
    };
    Value element = elementOf(realRow);
    if (dots)
      emitDots(func, dO, o, rowDots, row, realRow, real, part, element);
    if (zero) {
      Type v4f32 = VectorType::get({4}, f32);
      Value zeros = LLVM::ZeroOp::create(b, loc, v4f32);
      Value accElement = real ? elementOf(row) : element;
      for (int64_t half = 0; half < 2; ++half) {
        Value address = LLVM::GEPOp::create(
            b, loc, ptr, b.getI8Type(), acc,
            ValueRange{add(mul(accElement, c64(4)), c64(16 * half))});
        LLVM::StoreOp::create(b, loc, zeros, address, 16);
      }
    }
    gpu::ReturnOp::create(b, loc);
  }

private:
  /// D's row (and lse's padded copy) from this thread's 8 elements.
  void emitDots(gpu::GPUFuncOp func, Value dO, Value o, Value rowDots,
                Value row, Value realRow, Value real, Value part,
                Value element) {
    const int64_t threadsPerRow = config.headDim / 8;
    Type v8 = VectorType::get({8}, config.bf16 ? Type(b.getBF16Type())
                                               : Type(b.getF16Type()));
    Type v8f32 = VectorType::get({8}, f32);
    auto load = [&](Value base) -> Value {
      Value address = LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), base,
                                          ValueRange{mul(element, c64(2))});
      Value raw = LLVM::LoadOp::create(b, loc, v8, address, 16);
      return LLVM::FPExtOp::create(b, loc, v8f32, raw);
    };
    Value x = load(dO), y = load(o);
    Value sum = cf(0.0);
    for (int64_t i = 0; i < 8; ++i)
      sum = fma(LLVM::ExtractElementOp::create(b, loc, x, c64(i)),
                LLVM::ExtractElementOp::create(b, loc, y, c64(i)), sum);
    for (int64_t offset = 1; offset < threadsPerRow; offset *= 2)
      sum = fadd(sum, shuffleXor(sum, offset));
    if (real)
      sum = select(real, sum, cf(0.0));
    emitIf(cmp(arith::CmpIPredicate::eq, part, c32(0)), [&] {
      Value address = LLVM::GEPOp::create(
          b, loc, ptr, f32, rowDots,
          ValueRange{arith::ExtUIOp::create(b, loc, i64, row)});
      LLVM::StoreOp::create(b, loc, sum, address, 4);
      if (real) {
        // lse's padded copy: +inf past the head's rows.
        // lse and its copy follow the other arguments.
        unsigned first = func.getNumArguments() - 2;
        Value lse = pointerOf(func.getArgument(first));
        Value paddedLse = pointerOf(func.getArgument(first + 1));
        Value value = LLVM::LoadOp::create(
            b, loc, f32,
            LLVM::GEPOp::create(
                b, loc, ptr, f32, lse,
                ValueRange{arith::ExtUIOp::create(b, loc, i64, realRow)}),
            4);
        value = select(real, value, cf(INFINITY));
        LLVM::StoreOp::create(
            b, loc, value,
            LLVM::GEPOp::create(
                b, loc, ptr, f32, paddedLse,
                ValueRange{arith::ExtUIOp::create(b, loc, i64, row)}),
            4);
      }
    });
  }

  const AttentionGradRows &config;
  PrepareWork work;
};

/// The post-pass: dQ = scale · accumulator in the element type, 8 elements
/// a thread (two 16-byte loads, one 16-byte store).
class FinishEmitter : public NVVMEmitter {
public:
  FinishEmitter(OpBuilder &b, Location loc, const AttentionGradRows &config)
      : NVVMEmitter(b, loc, config.bf16), config(config) {}

  void emit(gpu::GPUFuncOp func) {
    b.setInsertionPointToStart(&func.getBody().front());
    Value acc = pointerOf(func.getArgument(0));
    Value dQ = pointerOf(func.getArgument(1));
    Value tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
    Value block = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
    Value chunk = add(mul(block, c32(kFinishThreads)), tid);
    Value element = mul(arith::ExtUIOp::create(b, loc, i64, chunk), c64(8));
    Value accElement = element;
    if (config.padded()) {
      // The grid's last threads may lie past dQ; each thread's 8 elements
      // lie in one row (D is a multiple of 8), at its padded row in the
      // accumulator.
      const int64_t d = config.headDim;
      int64_t elements = config.batch * config.heads * config.seqQ * d;
      auto inside = scf::IfOp::create(
          b, loc, cmp(arith::CmpIPredicate::ult, element, c64(elements)),
          /*withElse=*/false);
      b.setInsertionPointToStart(inside.thenBlock());
      Value row = arith::DivUIOp::create(b, loc, element, c64(d));
      Value head = arith::DivUIOp::create(b, loc, row, c64(config.seqQ));
      Value inHead = arith::RemUIOp::create(b, loc, row, c64(config.seqQ));
      Value paddedRow = add(mul(head, c64(config.paddedSeqQ)), inHead);
      accElement = add(mul(paddedRow, c64(d)),
                       arith::RemUIOp::create(b, loc, element, c64(d)));
    }
    Type v4f32 = VectorType::get({4}, f32);
    SmallVector<Value> scaled;
    for (int64_t half = 0; half < 2; ++half) {
      Value address = LLVM::GEPOp::create(
          b, loc, ptr, b.getI8Type(), acc,
          ValueRange{add(mul(accElement, c64(4)), c64(16 * half))});
      Value four = LLVM::LoadOp::create(b, loc, v4f32, address, 16);
      for (int64_t i = 0; i < 4; ++i)
        scaled.push_back(
            fmul(LLVM::ExtractElementOp::create(b, loc, four, c64(i)),
                 cf(config.scale)));
    }
    Value packed = packHalves(scaled);
    Value address = LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), dQ,
                                        ValueRange{mul(element, c64(2))});
    LLVM::StoreOp::create(b, loc, packed, address, 16);
    b.setInsertionPointToEnd(&func.getBody().front());
    gpu::ReturnOp::create(b, loc);
  }

private:
  const AttentionGradRows &config;
};

} // namespace

gpu::GPUFuncOp bpt::codegen::buildAttentionGradFinishKernel(
    gpu::GPUModuleOp kernels, const AttentionGradRows &config, Type element,
    Location loc) {
  MLIRContext *ctx = kernels.getContext();
  SmallVector<int64_t> shape = {config.batch, config.heads, config.seqQ,
                                config.headDim};
  SmallVector<int64_t> accShape = {config.batch, config.heads,
                                   config.accumulatorRows(), config.headDim};
  SmallVector<Type> inputs = {MemRefType::get(accShape, Float32Type::get(ctx)),
                              MemRefType::get(shape, element)};
  std::string name =
      llvm::formatv("attention_grad_finish_d{0}{1}", config.headDim,
                    config.padded() ? "_padded" : "")
          .str();
  gpu::GPUFuncOp func =
      createKernel(kernels, name, inputs, kFinishThreads, loc);
  OpBuilder b(ctx);
  FinishEmitter(b, loc, config).emit(func);
  return func;
}

gpu::GPUFuncOp bpt::codegen::buildAttentionGradPrepareKernel(
    gpu::GPUModuleOp kernels, const AttentionGradRows &config, Type element,
    Location loc, PrepareWork work) {
  MLIRContext *ctx = kernels.getContext();
  Type f32 = Float32Type::get(ctx);
  SmallVector<int64_t> shape = {config.batch, config.heads, config.seqQ,
                                config.headDim};
  auto tile = MemRefType::get(shape, element);
  int64_t rows = config.accumulatorRows();
  auto paddedRows = MemRefType::get({config.batch, config.heads, rows}, f32);
  SmallVector<Type> inputs;
  if (work != PrepareWork::Zero)
    inputs.append({tile, tile, paddedRows});
  if (work != PrepareWork::Dots)
    inputs.push_back(MemRefType::get(
        {config.batch, config.heads, rows, config.headDim}, f32));
  if (config.padded() && work != PrepareWork::Zero)
    inputs.append(
        {MemRefType::get({config.batch, config.heads, config.seqQ}, f32),
         paddedRows});
  StringRef what = work == PrepareWork::DotsAndZero ? "prepare"
                   : work == PrepareWork::Dots      ? "dots"
                                                    : "zero";
  std::string name =
      llvm::formatv("attention_grad_{0}_d{1}{2}", what, config.headDim,
                    config.padded() ? "_padded" : "")
          .str();
  gpu::GPUFuncOp func =
      createKernel(kernels, name, inputs, kPrepareThreads, loc);
  OpBuilder b(ctx);
  PrepareEmitter(b, loc, config, work).emit(func);
  return func;
}
