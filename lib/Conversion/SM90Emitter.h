//===- SM90Emitter.h - building blocks of sm_90a kernels --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Helpers shared by the kernels bpt builds for Hopper (attention, GEMM):
// scalar arithmetic, inline PTX, wgmma accumulator fragments and matrix
// descriptors for the 128-byte swizzle, mbarrier waits and TMA copies. A
// kernel emitter derives from SM90Emitter and reads like the algorithm.
//
// Conventions: shared memory is addressed with 32-bit offsets in the shared
// window; a tile of 16-bit elements with the 128-byte swizzle is stored as
// column blocks of 64 elements (128 bytes a row), which is what a TMA box
// of 64 columns with SWIZZLE_128B writes and what a wgmma descriptor with
// the 128-byte swizzle mode reads.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_SM90EMITTER_H
#define BPT_LIB_CONVERSION_SM90EMITTER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace bpt::sm90 {

using namespace mlir;

constexpr int64_t kWarpgroup = 128;
/// A row of a swizzled tile is 64 16-bit elements: one 128-byte swizzle span.
constexpr int64_t kSwizzleElements = 64;
constexpr int64_t kSwizzleBytes = 128;
/// Shared-memory address and swizzle pattern alignment.
constexpr int64_t kSwizzleAtomBytes = 1024;

class SM90Emitter {
public:
  SM90Emitter(OpBuilder &b, Location loc, bool bf16)
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
  Value exp2(Value x) {
    return asmOp(f32, x, "ex2.approx.ftz.f32 $0, $1;", "=f,f",
                 /*sideEffects=*/false);
  }
  Value shuffleXor(Value x, int64_t offset) {
    return NVVM::ShflOp::create(b, loc, f32, c32(-1), x, c32(offset),
                                c32(0x1f), NVVM::ShflKind::bfly,
                                UnitAttr());
  }
  Value index32(Value v) {
    return arith::IndexCastUIOp::create(b, loc, i32, v);
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

  // Accumulator fragments: a wgmma m64nNk16 f32 accumulator is N/2 floats
  // per thread, an LLVM struct at the instruction boundary.
  Type accumulatorType(int64_t n) {
    return LLVM::LLVMStructType::getLiteral(
        ctx, SmallVector<Type>(n / 2, f32));
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
  /// low half (the lower column, as wgmma and memory expect).
  Value packHalf2(Value lo, Value hi) {
    Type half = bf16 ? Type(b.getBF16Type()) : Type(b.getF16Type());
    auto v2f32 = VectorType::get({2}, f32);
    Value v = LLVM::UndefOp::create(b, loc, v2f32);
    v = LLVM::InsertElementOp::create(b, loc, v, lo, c32(0));
    v = LLVM::InsertElementOp::create(b, loc, v, hi, c32(1));
    Value h = LLVM::FPTruncOp::create(b, loc, VectorType::get({2}, half), v);
    return LLVM::BitcastOp::create(b, loc, i32, h);
  }

  /// Waits until at most `pending` of this thread's wgmma groups are in
  /// flight, tying the accumulators to the wait so that no later
  /// instruction reads them before it.
  SmallVector<Value> waitGroup(ArrayRef<Value> accumulators,
                               int64_t pending = 0) {
    int64_t n = accumulators.size();
    std::string constraints;
    for (int64_t i = 0; i < n; ++i)
      constraints += "=f,";
    for (int64_t i = 0; i < n; ++i)
      constraints += std::to_string(i) + (i + 1 < n ? "," : "");
    Value result = asmOp(accumulatorType(2 * n), accumulators,
                         "wgmma.wait_group.sync.aligned " +
                             std::to_string(pending) + ";",
                         constraints,
                         /*sideEffects=*/true);
    return unpack(result, n);
  }

  // Shared memory: 32-bit addresses in the shared window.
  Value sharedPointer(Value address) {
    return LLVM::IntToPtrOp::create(b, loc, sharedPtr, address);
  }
  void waitBarrier(Value barrier, Value phase) {
    NVVM::MBarrierTryWaitParityOp::create(b, loc, barrier, phase,
                                          c32(10000000));
  }

  /// A wgmma matrix descriptor for a tile at shared address `address` laid
  /// out with the 128-byte swizzle. For a K-major operand the stride byte
  /// offset steps over 8-row groups; for an MN-major one, the leading byte
  /// offset steps over 64-element column blocks.
  Value descriptor(Value address, int64_t leadingBytes, int64_t strideBytes) {
    uint64_t high = ((uint64_t(leadingBytes) >> 4) & 0x3fff) << 16 |
                    ((uint64_t(strideBytes) >> 4) & 0x3fff) << 32 |
                    uint64_t(1) << 62;
    Value start = arith::AndIOp::create(
        b, loc, arith::ShRUIOp::create(b, loc, address, c32(4)),
        c32(0x3fff));
    Value wide = arith::ExtUIOp::create(b, loc, i64, start);
    return arith::OrIOp::create(b, loc, wide, c64(high));
  }
  Value advance(Value desc, int64_t bytes) {
    return add(desc, c64(bytes >> 4));
  }

  /// Issues one TMA copy of a [rows, 64] box at (column, row) into `dst`.
  void copyTile(Value dst, Value map, Value column, Value row,
                Value barrier) {
    Value cluster = LLVM::AddrSpaceCastOp::create(b, loc, clusterPtr,
                                                  sharedPointer(dst));
    NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
        b, loc, cluster, map, ValueRange{column, row}, barrier,
        ValueRange{}, /*multicastMask=*/Value(), /*l2CacheHint=*/Value(),
        NVVM::TMALoadMode::TILE, /*isCTAOnly=*/false,
        /*group=*/NVVM::CTAGroupKindAttr(), /*predicate=*/Value());
  }

  /// Waits for the current phase of the mbarrier at shared address
  /// `address` (a parity wait: `phase` is 0 or 1).
  void waitBarrierAt(Value address, Value phase) {
    waitBarrier(sharedPointer(address), phase);
  }

  /// Splits a 384-thread block into warp-specialised roles: warpgroup 0
  /// gives registers away (setmaxnreg 24) and its first thread (`leader`)
  /// runs `producer`; the two others take 240 and run
  /// `consumer(index, lane, warp)`. 24 + 2 × 240 = 3 × 168, the registers
  /// the block starts with (65536 / 384, rounded down to 8): asking for
  /// more would leave setmaxnreg.inc waiting forever.
  void emitRoles(Value tid, Value leader, function_ref<void()> producer,
                 function_ref<void(Value, Value, Value)> consumer) {
    Value warpgroup = div(tid, c32(kWarpgroup));
    Value isProducer = cmp(arith::CmpIPredicate::eq, warpgroup, c32(0));
    auto roles = scf::IfOp::create(b, loc, isProducer, /*withElse=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(roles.thenBlock());
      NVVM::SetMaxRegisterOp::create(b, loc, 24,
                                     NVVM::SetMaxRegisterAction::decrease);
      auto first = scf::IfOp::create(b, loc, leader, /*withElse=*/false);
      b.setInsertionPointToStart(first.thenBlock());
      producer();
    }
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(roles.elseBlock());
      NVVM::SetMaxRegisterOp::create(b, loc, 240,
                                     NVVM::SetMaxRegisterAction::increase);
      Value index = sub(warpgroup, c32(1));
      Value local = rem(tid, c32(kWarpgroup));
      Value lane = rem(local, c32(32));
      Value warp = div(local, c32(32));
      consumer(index, lane, warp);
    }
  }

  /// The kernel's 1 KiB-aligned shared-memory base, from the module's
  /// external shared array `symbol`.
  Value alignedSharedBase(StringRef symbol) {
    Value raw = LLVM::PtrToIntOp::create(
        b, loc, i32, LLVM::AddressOfOp::create(b, loc, sharedPtr, symbol));
    return arith::AndIOp::create(b, loc, add(raw, c32(kSwizzleAtomBytes - 1)),
                                 c32(~(kSwizzleAtomBytes - 1)));
  }

  OpBuilder &b;
  Location loc;
  MLIRContext *ctx;
  bool bf16; // 16-bit element type: bf16, else f16
  Type i1, i32, i64, f32, ptr, sharedPtr, clusterPtr;
};

/// The gpu.module that holds bpt's sm_90a kernels, created with its
/// external shared array on first use.
gpu::GPUModuleOp getOrCreateSM90KernelModule(ModuleOp module);

/// The external shared array of that module.
constexpr llvm::StringLiteral kSharedMemorySymbol = "bpt_sm90_shared";

/// `!nvgpu.tensormap.descriptor` of a [rows, 64] box of `element`, 128-byte
/// swizzle, zero fill.
Type tensorMapType(MLIRContext *ctx, int64_t rows, Type element);

/// A kernel `name` of `inputs` in `kernels`. With `threads`, the kernel
/// gets a register cap at entry (maxntid, one block per multiprocessor),
/// which setmaxnreg needs.
gpu::GPUFuncOp createKernel(gpu::GPUModuleOp kernels, StringRef name,
                            TypeRange inputs, std::optional<int64_t> threads,
                            Location loc);

/// Host side: the read-only buffer of `tensor` (bufferization.to_buffer).
Value readOnlyBuffer(OpBuilder &b, Location loc, Value tensor);

/// Host side: a TMA descriptor of the 2-D `matrix` with [boxRows, 64] boxes
/// (nvgpu.tma.create.descriptor; the manifest turns it into a tensor map).
Value createTensorMap(OpBuilder &b, Location loc, Value matrix,
                      int64_t boxRows);

} // namespace bpt::sm90

#endif // BPT_LIB_CONVERSION_SM90EMITTER_H
