//===- NVVMEmitter.h - building blocks of bpt's tensor-core kernels -*- C++ -*-//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// What every kernel bpt writes by hand in the NVVM dialect needs, whatever
// the chip: scalar arithmetic, inline PTX, packing two floats into one
// register of 16-bit floats, shared-memory addresses, and the gpu.module
// that holds the kernels. The chip-specific emitters (SM80Emitter for
// mma.sync, SM90Emitter for wgmma and TMA) derive from NVVMEmitter.
//
// Conventions: shared memory is addressed with 32-bit offsets in the shared
// window; 16-bit elements are bf16 or f16, chosen per kernel.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_NVVMEMITTER_H
#define BPT_LIB_CONVERSION_NVVMEMITTER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <optional>

namespace bpt::codegen {

using namespace mlir;

class NVVMEmitter {
public:
  NVVMEmitter(OpBuilder &b, Location loc, bool bf16)
      : b(b), loc(loc), ctx(b.getContext()), bf16(bf16), i1(b.getI1Type()),
        i32(b.getI32Type()), i64(b.getI64Type()), f32(b.getF32Type()),
        ptr(LLVM::LLVMPointerType::get(ctx)),
        sharedPtr(LLVM::LLVMPointerType::get(ctx, 3)),
        clusterPtr(LLVM::LLVMPointerType::get(ctx, 7)) {}

protected:
  // Scalars.
  Value c32(int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  }
  Value c64(int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(v));
  }
  Value cf(double v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivUIOp::create(b, loc, x, y); }
  Value rem(Value x, Value y) { return arith::RemUIOp::create(b, loc, x, y); }
  Value xori(Value x, Value y) { return arith::XOrIOp::create(b, loc, x, y); }
  Value cmp(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, loc, p, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y);
  }
  Value fmax(Value x, Value y) {
    return arith::MaxNumFOp::create(b, loc, x, y);
  }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value fma(Value x, Value y, Value z) {
    return LLVM::FMAOp::create(b, loc, x, y, z);
  }
  /// 2^x and 1/sqrt(x) in f32 through the NVVM intrinsics (ex2.approx.ftz,
  /// rsqrt.approx.ftz): one SFU instruction each, which LLVM can schedule,
  /// unlike inline assembly.
  Value exp2(Value x) { return intrinsic(f32, "llvm.nvvm.ex2.approx.ftz.f32", x); }
  Value rsqrt(Value x) { return intrinsic(f32, "llvm.nvvm.rsqrt.approx.ftz.f", x); }
  /// log2(x) in f32 (lg2.approx: error about 2^-22, far below what the
  /// attention's log-sum-exp needs).
  Value log2(Value x) { return intrinsic(f32, "llvm.nvvm.lg2.approx.f", x); }
  Value intrinsic(Type result, StringRef name, ValueRange operands) {
    return LLVM::CallIntrinsicOp::create(b, loc, result,
                                         b.getStringAttr(name), operands)
        .getResult(0);
  }
  Value shuffleXor(Value x, int64_t offset) {
    return NVVM::ShflOp::create(b, loc, f32, c32(-1), x, c32(offset),
                                c32(0x1f), NVVM::ShflKind::bfly,
                                UnitAttr());
  }
  Value index32(Value v) {
    return arith::IndexCastUIOp::create(b, loc, i32, v);
  }
  /// `body`'s ops under `scf.if when`; the insertion point is back after
  /// the `scf.if` when it returns.
  void emitIf(Value when, llvm::function_ref<void()> body) {
    auto op = scf::IfOp::create(b, loc, when, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(op.thenBlock());
    body();
  }
  /// With `limit`, moves the insertion point into a new `scf.if (row <
  /// limit)` (i32, signed), so that what follows runs only for rows inside
  /// a ragged tile; the caller's InsertionGuard restores it. Without, does
  /// nothing: whole tiles build no test.
  void onlyRowsBelow(Value row, Value limit) {
    if (!limit)
      return;
    auto inside = scf::IfOp::create(
        b, loc, cmp(arith::CmpIPredicate::slt, row, limit), false);
    b.setInsertionPointToStart(inside.thenBlock());
  }

  Value asmOp(Type result, ValueRange operands, StringRef text,
              StringRef constraints, bool sideEffects) {
    auto op = LLVM::InlineAsmOp::create(
        b, loc, result, operands, text, constraints, sideEffects,
        /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
        LLVM::AsmDialectAttr::get(ctx, LLVM::AsmDialect::AD_ATT),
        /*operand_attrs=*/ArrayAttr());
    return op.getNumResults() ? op.getResult(0) : Value();
  }

  /// `value` (i32 or i64) as an opaque copy made where it is called,
  /// which LLVM can neither hoist out of a loop nor fold into its uses: in
  /// a loop body, what is derived from it is computed there, not held in
  /// registers across the loop (a kernel's loop-invariant addresses spill).
  Value opaqueCopy(Value value) {
    bool wide = value.getType().getIntOrFloatBitWidth() == 64;
    return asmOp(value.getType(), value,
                 wide ? "mov.b64 $0, $1;" : "mov.b32 $0, $1;",
                 wide ? "=l,l" : "=r,r", /*sideEffects=*/true);
  }

  SmallVector<Value> unpack(Value aggregate, int64_t count) {
    SmallVector<Value> values;
    for (int64_t i = 0; i < count; ++i)
      values.push_back(LLVM::ExtractValueOp::create(b, loc, aggregate, i));
    return values;
  }
  Value packStruct(Type type, ArrayRef<Value> values) {
    Value aggregate = LLVM::UndefOp::create(b, loc, type);
    for (auto [i, v] : llvm::enumerate(values))
      aggregate = LLVM::InsertValueOp::create(b, loc, aggregate, v, i);
    return aggregate;
  }
  /// Two f32 -> one 32-bit register of two 16-bit floats, the first in the
  /// low half (the lower column, as the matrix instructions and memory
  /// expect).
  Value packHalf2(Value lo, Value hi) {
    Type half = bf16 ? Type(b.getBF16Type()) : Type(b.getF16Type());
    Value h = LLVM::FPTruncOp::create(b, loc, VectorType::get({2}, half),
                                      float2(lo, hi));
    return LLVM::BitcastOp::create(b, loc, i32, h);
  }
  /// An even number of f32 values rounded to the 16-bit type, two to a
  /// 32-bit element (packHalf2), as one vector to store in one access.
  Value packHalves(ArrayRef<Value> values) {
    int64_t pairs = int64_t(values.size()) / 2;
    Value packed = LLVM::UndefOp::create(b, loc, VectorType::get({pairs}, i32));
    for (int64_t p = 0; p < pairs; ++p)
      packed = LLVM::InsertElementOp::create(
          b, loc, packed, packHalf2(values[2 * p], values[2 * p + 1]), c32(p));
    return packed;
  }
  /// 1 / `total`, or 0 where it is not positive (a softmax row that saw no
  /// key).
  Value inverseOf(Value total, Value zero) {
    Value positive =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, total, zero);
    return select(positive, arith::DivFOp::create(b, loc, cf(1.0), total),
                  zero);
  }
  /// Two f32 as a vector<2xf32>, `lo` first.
  Value float2(Value lo, Value hi) {
    Value v = LLVM::UndefOp::create(b, loc, VectorType::get({2}, f32));
    v = LLVM::InsertElementOp::create(b, loc, v, lo, c32(0));
    return LLVM::InsertElementOp::create(b, loc, v, hi, c32(1));
  }
  /// Stores two adjacent output elements at `address`: as f32 (8 bytes) or
  /// rounded to the emitter's 16-bit type (4 bytes).
  void storePair(Value address, Value lo, Value hi, bool asF32) {
    if (asF32)
      LLVM::StoreOp::create(b, loc, float2(lo, hi), address, 8);
    else
      LLVM::StoreOp::create(b, loc, packHalf2(lo, hi), address, 4);
  }

  // Shared memory: 32-bit addresses in the shared window.
  Value sharedPointer(Value address) {
    return LLVM::IntToPtrOp::create(b, loc, sharedPtr, address);
  }
  /// The kernel's shared-memory base aligned to `alignment` bytes, from the
  /// module's external shared array `symbol`.
  Value alignedSharedBase(StringRef symbol, int64_t alignment) {
    Value raw = LLVM::PtrToIntOp::create(
        b, loc, i32, LLVM::AddressOfOp::create(b, loc, sharedPtr, symbol));
    return arith::AndIOp::create(b, loc, add(raw, c32(alignment - 1)),
                                 c32(~(alignment - 1)));
  }
  /// The aligned pointer of a memref kernel argument, as an LLVM pointer.
  Value pointerOf(Value memref) {
    Value index = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref);
    return LLVM::IntToPtrOp::create(
        b, loc, ptr, Value(arith::IndexCastUIOp::create(b, loc, i64, index)));
  }
  /// pointerOf(memref) in the global address space (loads and stores
  /// through it are ld.global / st.global).
  Value globalPointerOf(Value memref) {
    return LLVM::AddrSpaceCastOp::create(
        b, loc, LLVM::LLVMPointerType::get(ctx, 1), pointerOf(memref));
  }

  OpBuilder &b;
  Location loc;
  MLIRContext *ctx;
  bool bf16; // 16-bit element type: bf16, else f16
  Type i1, i32, i64, f32, ptr, sharedPtr, clusterPtr;
};

/// The gpu.module `name` that holds hand-built kernels, created on first use
/// with an external shared array `sharedSymbol` aligned to `alignment`
/// bytes (the kernels' dynamic shared memory). Its kernels keep their names
/// when bpt-merge-kernel-modules gathers them.
gpu::GPUModuleOp getOrCreateKernelModule(ModuleOp module, StringRef name,
                                         StringRef sharedSymbol,
                                         int64_t alignment);

/// A kernel `name` of `inputs` in `kernels`. With `threads`, the kernel
/// gets a launch bound at entry (maxntid, at least `minBlocks` blocks per
/// multiprocessor), which caps its registers.
gpu::GPUFuncOp createKernel(gpu::GPUModuleOp kernels, StringRef name,
                            TypeRange inputs, std::optional<int64_t> threads,
                            Location loc, int64_t minBlocks = 1);

/// Host side: the read-only buffer of `tensor` (bufferization.to_buffer).
Value readOnlyBuffer(OpBuilder &b, Location loc, Value tensor);

/// Host side: `buffer` ([..., N]) viewed as a matrix of rows, [rows, N].
Value asRows(OpBuilder &b, Location loc, Value buffer);

/// Host side: the first `rows` rows of the [R, N] `matrix` (identity
/// layout), as a [rows, N] buffer of the same layout (a kernel argument
/// for a launch of fewer rows).
Value leadingRows(OpBuilder &b, Location loc, Value matrix, int64_t rows);

} // namespace bpt::codegen

#endif // BPT_LIB_CONVERSION_NVVMEMITTER_H
