//===- SM90Emitter.h - building blocks of sm_90a kernels --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Helpers shared by the kernels bpt builds for Hopper (attention, GEMM), on
// top of NVVMEmitter's: wgmma accumulator fragments and matrix descriptors
// for the 128-byte swizzle, mbarrier waits, TMA copies and warp-specialised
// roles. A kernel emitter derives from SM90Emitter and reads like the
// algorithm.
//
// Conventions: a tile of 16-bit elements with the 128-byte swizzle is stored as
// column blocks of 64 elements (128 bytes a row), which is what a TMA box
// of 64 columns with SWIZZLE_128B writes and what a wgmma descriptor with
// the 128-byte swizzle mode reads.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_SM90EMITTER_H
#define BPT_LIB_CONVERSION_SM90EMITTER_H

#include "NVVMEmitter.h"

#include <string>

namespace bpt::sm90 {

using namespace mlir;
using codegen::createKernel;
using codegen::asRows;
using codegen::readOnlyBuffer;

constexpr int64_t kWarpgroup = 128;
/// A row of a swizzled tile is 64 16-bit elements: one 128-byte swizzle span.
constexpr int64_t kSwizzleElements = 64;
constexpr int64_t kSwizzleBytes = 128;
/// Shared-memory address and swizzle pattern alignment.
constexpr int64_t kSwizzleAtomBytes = 1024;

/// The 64-bit shared-memory matrix descriptor that wgmma reads (PTX ISA,
/// "Matrix Descriptor Format" of warpgroup MMA): the tile's start address
/// and two byte offsets, all in 16-byte units, the swizzle pattern's base
/// offset and the swizzle mode, each in a bit field of its own. Everything
/// but the start address is known when the kernel is built; the start
/// address is encoded in the kernel (SM90Emitter::descriptor).
struct WgmmaDescriptor {
  /// `width` bits from bit `shift`.
  struct Field {
    unsigned shift, width;
    constexpr uint64_t mask() const { return (uint64_t(1) << width) - 1; }
    constexpr uint64_t encode(uint64_t value) const {
      return (value & mask()) << shift;
    }
  };
  static constexpr Field kStartAddress{0, 14};
  static constexpr Field kLeadingByteOffset{16, 14};
  static constexpr Field kStrideByteOffset{32, 14};
  static constexpr Field kBaseOffset{49, 3};
  static constexpr Field kSwizzle{62, 2};
  /// Addresses and byte offsets are stored in 16-byte units.
  static constexpr unsigned kUnitShift = 4;

  enum class Swizzle : uint64_t {
    none = 0,
    bytes128 = 1,
    bytes64 = 2,
    bytes32 = 3
  };

  /// In bytes. For a K-major operand the leading byte offset is unused
  /// with a swizzle (16 by convention) and the stride byte offset steps
  /// over 8-row groups; for an MN-major one, the leading byte offset steps
  /// over 64-element column blocks.
  int64_t leadingByteOffset = 0;
  int64_t strideByteOffset = 0;
  /// Where the tile starts within the swizzle pattern (0: at a 1 KiB
  /// boundary, as all of bpt's tiles).
  int64_t baseOffset = 0;
  Swizzle swizzle = Swizzle::none;

  /// A K-major tile of 128-byte rows with the 128-byte swizzle.
  static constexpr WgmmaDescriptor kMajor() {
    return {/*leadingByteOffset=*/16, /*strideByteOffset=*/kSwizzleAtomBytes,
            /*baseOffset=*/0, Swizzle::bytes128};
  }
  /// An MN-major tile with the 128-byte swizzle whose 64-element column
  /// blocks are `columnBlockBytes` apart.
  static constexpr WgmmaDescriptor mnMajor(int64_t columnBlockBytes) {
    return {columnBlockBytes, /*strideByteOffset=*/kSwizzleAtomBytes,
            /*baseOffset=*/0, Swizzle::bytes128};
  }

  /// The fields other than the start address.
  constexpr uint64_t encodeLayout() const {
    return kLeadingByteOffset.encode(uint64_t(leadingByteOffset) >>
                                     kUnitShift) |
           kStrideByteOffset.encode(uint64_t(strideByteOffset) >>
                                    kUnitShift) |
           kBaseOffset.encode(uint64_t(baseOffset)) |
           kSwizzle.encode(uint64_t(swizzle));
  }
  /// The whole descriptor of a tile at shared address `startAddress`.
  constexpr uint64_t encode(uint64_t startAddress) const {
    return kStartAddress.encode(startAddress >> kUnitShift) | encodeLayout();
  }
  /// What moving the start address on by `bytes` adds to a descriptor
  /// (the field does not overflow within a tile).
  static constexpr uint64_t addressStep(int64_t bytes) {
    return uint64_t(bytes) >> kUnitShift;
  }
};
// The kernel encodes the start address with a shift and a mask, no move.
static_assert(WgmmaDescriptor::kStartAddress.shift == 0);
static_assert(WgmmaDescriptor::kMajor().encode(0x10400) ==
              (uint64_t(1) << 62 | uint64_t(64) << 32 | uint64_t(1) << 16 |
               0x1040));

/// One wgmma.mma_async m64nNk16 with both operands in shared memory (the
/// nvvm.wgmma.mma_async op): D = A·B, plus D unless `scaleD` is zero; f32
/// accumulators.
struct WgmmaSharedA {
  /// N of m64nNk16: the accumulator is N/2 floats a thread.
  int64_t n;
  /// A's and B's 16-bit element type (bf16 or f16).
  NVVM::WGMMATypes elementType;
  /// The accumulator, an LLVM struct of N/2 f32 (SM90Emitter::
  /// accumulatorType).
  Value accumulator;
  /// A's and B's descriptors (i64).
  Value a, b;
  NVVM::WGMMAScaleOut scaleD = NVVM::WGMMAScaleOut::one;
  /// col: B is K-major; row: N-major (transposed).
  NVVM::MMALayout layoutB = NVVM::MMALayout::col;
  /// row: A is K-major; col: M-major (transposed).
  NVVM::MMALayout layoutA = NVVM::MMALayout::row;
};

/// One wgmma.mma_async m64nNk16 with A in registers and B in shared memory:
/// D = A·B, plus D unless `scaleD` is zero; f32 accumulators. MLIR 22's
/// nvvm.wgmma.mma_async takes A from shared memory only: this one is inline
/// PTX, its accumulators tied in and out.
struct WgmmaRegA {
  /// N of m64nNk16.
  int64_t n;
  /// A's and B's 16-bit element type (bf16 or f16).
  NVVM::WGMMATypes elementType;
  /// N/2 f32 a thread.
  ArrayRef<Value> accumulators;
  /// A's fragment: four i32 of two 16-bit elements each, in the layout of
  /// an m64n16 accumulator (so a k16 slice of one wgmma's result, packed,
  /// is the next one's A).
  ArrayRef<Value> a;
  /// B's descriptor (i64).
  Value b;
  NVVM::WGMMAScaleOut scaleD = NVVM::WGMMAScaleOut::one;
  NVVM::WGMMAScaleIn scaleA = NVVM::WGMMAScaleIn::one;
  NVVM::WGMMAScaleIn scaleB = NVVM::WGMMAScaleIn::one;
  /// imm-trans-b: B is N-major (else K-major).
  bool transposeB = true;
};

class SM90Emitter : public codegen::NVVMEmitter {
public:
  SM90Emitter(OpBuilder &b, Location loc, bool bf16)
      : NVVMEmitter(b, loc, bf16) {}

protected:
  /// Decodes a causal kernel's one-dimensional block index `gx` in groups
  /// of `group` (head, sequence) pairs of `blocks` blocks each, the pairs
  /// fastest (the order of causalGroup()): the block's position in its
  /// pair's order and the pair (head + heads · sequence).
  std::pair<Value, Value> decodeGroupedBlock(Value gx, int64_t group,
                                             int64_t blocks) {
    int64_t groupBlocks = group * blocks;
    Value inGroup = rem(gx, c32(groupBlocks));
    Value position = div(inGroup, c32(group));
    Value pair = add(mul(div(gx, c32(groupBlocks)), c32(group)),
                     rem(inGroup, c32(group)));
    return {position, pair};
  }

  // Accumulator fragments: a wgmma m64nNk16 f32 accumulator is N/2 floats
  // per thread, an LLVM struct at the instruction boundary.
  Type accumulatorType(int64_t n) {
    return LLVM::LLVMStructType::getLiteral(
        ctx, SmallVector<Type>(n / 2, f32));
  }

  /// Calls `fn(row, column)` for each 16-byte chunk that this thread
  /// (`warp`, `lane` of a warpgroup) takes of 64 rows of `rowElements`
  /// 16-bit elements, `column` in elements: consecutive threads take
  /// consecutive chunks of a row, so each warp instruction covers whole
  /// rows (a tile staged in shared memory, stored with 16-byte stores).
  void forEachRowChunk(Value warp, Value lane, int64_t rowElements,
                       function_ref<void(Value row, Value column)> fn,
                       int64_t rows = 64) {
    const int64_t chunksPerRow = rowElements / 8;
    Value thread = add(mul(warp, c32(32)), lane);
    for (int64_t k = 0; k < rows * chunksPerRow / kWarpgroup; ++k) {
      Value index = add(thread, c32(k * kWarpgroup));
      Value row = div(index, c32(chunksPerRow));
      Value column = mul(rem(index, c32(chunksPerRow)), c32(8));
      OpBuilder::InsertionGuard guard(b);
      fn(row, column);
    }
  }

  /// Stores the 16 bytes `data` at element (`row`, `column`) of the
  /// row-major 16-bit matrix at `base`, `rowStride` elements a row.
  void storeRowChunk(Value base, Value row, int64_t rowStride, Value column,
                     Value data) {
    // One statement a step: the ops' order does not hang on the C++
    // compiler's order of evaluating arguments.
    Value column64 = arith::ExtUIOp::create(b, loc, i64, column);
    Value rowStart =
        mul(arith::ExtUIOp::create(b, loc, i64, row), c64(rowStride));
    Value element = add(rowStart, column64);
    Value address = LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), base,
                                        ValueRange{mul(element, c64(2))});
    LLVM::StoreOp::create(b, loc, data, address, 16);
  }

  /// The wgmma operand type of this kernel's 16-bit elements.
  NVVM::WGMMATypes wgmmaElementType() const {
    return bf16 ? NVVM::WGMMATypes::bf16 : NVVM::WGMMATypes::f16;
  }

  /// Issues `op`; returns the new accumulator struct.
  Value emitWgmma(const WgmmaSharedA &op) {
    return NVVM::WgmmaMmaAsyncOp::create(
        b, loc, accumulatorType(op.n), op.accumulator, op.a, op.b,
        NVVM::MMAShapeAttr::get(ctx, 64, op.n, 16), op.elementType,
        op.elementType, NVVM::WGMMATypes::f32, op.scaleD,
        NVVM::WGMMAScaleIn::one, NVVM::WGMMAScaleIn::one, op.layoutA,
        op.layoutB, NVVM::MMAIntOverflowAttr());
  }

  /// Issues `op`; returns the new accumulators (not to be read before
  /// emitWgmmaWait).
  SmallVector<Value> emitWgmma(const WgmmaRegA &op) {
    int64_t count = op.accumulators.size();
    assert(count == op.n / 2 && op.a.size() == 4 && "m64nNk16 fragments");
    // Operands: the accumulators out ($0..), tied in, A, B, scale-d.
    int64_t aFirst = 2 * count, bIndex = aFirst + 4, scaleIndex = bIndex + 1;
    auto scale = [](NVVM::WGMMAScaleIn s) {
      return s == NVVM::WGMMAScaleIn::one ? "1" : "-1";
    };
    std::string text;
    {
      llvm::raw_string_ostream os(text);
      os << "{\n.reg .pred p;\nsetp.ne.b32 p, $" << scaleIndex
         << ", 0;\nwgmma.mma_async.sync.aligned.m64n" << op.n << "k16.f32."
         << NVVM::stringifyWGMMATypes(op.elementType) << "."
         << NVVM::stringifyWGMMATypes(op.elementType) << " {";
      for (int64_t i = 0; i < count; ++i)
        os << (i ? ", " : "") << "$" << i;
      os << "}, {$" << aFirst << ", $" << aFirst + 1 << ", $" << aFirst + 2
         << ", $" << aFirst + 3 << "}, $" << bIndex << ", p, "
         << scale(op.scaleA) << ", " << scale(op.scaleB) << ", "
         << (op.transposeB ? 1 : 0) << ";\n}";
    }
    std::string constraints;
    for (int64_t i = 0; i < count; ++i)
      constraints += "=f,";
    for (int64_t i = 0; i < count; ++i)
      constraints += std::to_string(i) + ",";
    constraints += "r,r,r,r,l,r";
    SmallVector<Value> operands(op.accumulators);
    llvm::append_range(operands, op.a);
    operands.push_back(op.b);
    operands.push_back(
        c32(op.scaleD == NVVM::WGMMAScaleOut::one ? 1 : 0));
    Value result = asmOp(accumulatorType(op.n), operands, text, constraints,
                         /*sideEffects=*/true);
    return unpack(result, count);
  }

  /// Waits until at most `pending` of this thread's wgmma groups are in
  /// flight (wgmma.wait_group), tying the accumulators to the wait so that
  /// no later instruction reads them before it.
  SmallVector<Value> emitWgmmaWait(ArrayRef<Value> accumulators,
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

  /// This thread arrives on the mbarrier `barrier` (a shared pointer).
  void arriveBarrier(Value barrier) {
    NVVM::MBarrierArriveOp::create(b, loc, i64, barrier, Value(),
                                   NVVM::MemScopeKind::CTA, false);
  }
  /// Makes this thread's shared-memory stores visible to the async proxy
  /// (TMA and bulk copies, wgmma's shared operands).
  void fenceAsyncShared() {
    NVVM::FenceProxyOp::create(
        b, loc, NVVM::ProxyKind::async_shared,
        NVVM::SharedSpaceAttr::get(ctx, NVVM::SharedSpace::shared_cta));
  }

  void waitBarrier(Value barrier, Value phase) {
    NVVM::MBarrierTryWaitParityOp::create(b, loc, barrier, phase,
                                          c32(10000000));
  }

  /// The wgmma descriptor of the tile at shared address `address` (i32)
  /// laid out as `layout` says.
  Value descriptor(Value address, const WgmmaDescriptor &layout) {
    using Descriptor = WgmmaDescriptor;
    Value start = arith::AndIOp::create(
        b, loc,
        arith::ShRUIOp::create(b, loc, address, c32(Descriptor::kUnitShift)),
        c32(Descriptor::kStartAddress.mask()));
    Value wide = arith::ExtUIOp::create(b, loc, i64, start);
    return arith::OrIOp::create(b, loc, wide, c64(layout.encodeLayout()));
  }
  /// `desc` with its start address moved on by `bytes`.
  Value advance(Value desc, int64_t bytes) {
    return add(desc, c64(WgmmaDescriptor::addressStep(bytes)));
  }

  /// Issues one TMA copy of a [rows, 64] box at (column, row) into `dst`;
  /// of a [1, rows, 64] box at (column, row, outer) when `outer` is given
  /// (a map whose outer dimension separates matrices, e.g. heads, so that
  /// rows past one matrix's end read TMA's zero fill, not the next one).
  void copyTile(Value dst, Value map, Value column, Value row, Value barrier,
                Value outer = Value()) {
    Value cluster = LLVM::AddrSpaceCastOp::create(b, loc, clusterPtr,
                                                  sharedPointer(dst));
    SmallVector<Value, 3> coordinates = {column, row};
    if (outer)
      coordinates.push_back(outer);
    NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
        b, loc, cluster, map, coordinates, barrier, ValueRange{},
        /*multicastMask=*/Value(), /*l2CacheHint=*/Value(),
        NVVM::TMALoadMode::TILE, /*isCTAOnly=*/false,
        /*group=*/NVVM::CTAGroupKindAttr(), /*predicate=*/Value());
  }

  /// Copies a [rows, columns] tile as ceil(columns / 64) boxes of
  /// [rows, 64] at (column, row) of `map` (at (column, row, outer) of a
  /// 3-D map when `outer` is given), column block c at dst + c * rows * 128
  /// (the 128-byte swizzle's layout). A null `column` is column 0. Columns
  /// past the map's last are TMA's zero fill.
  void copyRows(Value dst, Value map, int64_t rows, int64_t columns, Value row,
                Value column, Value barrier, Value outer = Value()) {
    for (int64_t c = 0; c * kSwizzleElements < columns; ++c) {
      Value at = c32(c * kSwizzleElements);
      copyTile(add(dst, c32(c * rows * kSwizzleBytes)), map,
               column ? add(column, at) : at, row, barrier, outer);
    }
  }

  /// Byte address of (row, column) of a [tileRows, columns] tile of 16-bit
  /// elements at shared address `tile` (1 KiB aligned) in the layout
  /// copyRows writes: column blocks of [tileRows, 64], each row 128 bytes
  /// with its 16-byte chunks swizzled by the row (the 128-byte swizzle).
  Value swizzledAddress(Value tile, int64_t tileRows, Value row,
                        Value column) {
    Value block = div(column, c32(kSwizzleElements));
    Value chunk = div(rem(column, c32(kSwizzleElements)), c32(8));
    Value swizzled = arith::XOrIOp::create(b, loc, chunk, rem(row, c32(8)));
    return add(add(tile, mul(block, c32(tileRows * kSwizzleBytes))),
               add(mul(row, c32(kSwizzleBytes)),
                   add(mul(swizzled, c32(16)),
                       mul(rem(column, c32(8)), c32(2)))));
  }

  /// A TMA descriptor kernel argument (!nvgpu.tensormap.descriptor) as the
  /// pointer the copies take; the cast cancels once
  /// bpt-lower-tensor-map-args has made the argument a pointer.
  Value tensorMapPointer(Value argument) {
    return UnrealizedConversionCastOp::create(b, loc, ptr, argument)
        .getResult(0);
  }

  /// Waits for the current phase of the mbarrier at shared address
  /// `address` (a parity wait: `phase` is 0 or 1).
  void waitBarrierAt(Value address, Value phase) {
    waitBarrier(sharedPointer(address), phase);
  }

  /// Splits a 384-thread block into warp-specialised roles: warpgroup 0
  /// gives registers away (setmaxnreg 24) and its first thread (`leader`)
  /// runs `producer`, its warps 1 to 3 `helper(warp, lane)` where given;
  /// the two others take 240 and run `consumer(index, lane, warp)`.
  /// 24 + 2 × 240 = 3 × 168, the registers the block starts with (65536 /
  /// 384, rounded down to 8): asking for more would leave setmaxnreg.inc
  /// waiting forever.
  void emitRoles(Value tid, Value leader, function_ref<void()> producer,
                 function_ref<void(Value, Value, Value)> consumer,
                 function_ref<void(Value, Value)> helper = nullptr) {
    Value warpgroup = div(tid, c32(kWarpgroup));
    Value isProducer = cmp(arith::CmpIPredicate::eq, warpgroup, c32(0));
    auto roles = scf::IfOp::create(b, loc, isProducer, /*withElse=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(roles.thenBlock());
      NVVM::SetMaxRegisterOp::create(b, loc, 24,
                                     NVVM::SetMaxRegisterAction::decrease);
      auto first = scf::IfOp::create(b, loc, leader, /*withElse=*/false);
      {
        OpBuilder::InsertionGuard inner(b);
        b.setInsertionPointToStart(first.thenBlock());
        producer();
      }
      if (helper) {
        Value warp = div(tid, c32(32));
        auto others = scf::IfOp::create(
            b, loc, cmp(arith::CmpIPredicate::ne, warp, c32(0)),
            /*withElse=*/false);
        b.setInsertionPointToStart(others.thenBlock());
        helper(warp, rem(tid, c32(32)));
      }
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

  /// The kernel's 1 KiB-aligned shared-memory base (the swizzle pattern's
  /// alignment), from the module's external shared array `symbol`.
  Value alignedSharedBase(StringRef symbol) {
    return NVVMEmitter::alignedSharedBase(symbol, kSwizzleAtomBytes);
  }
};

/// The gpu.module that holds bpt's sm_90a kernels, created with its
/// external shared array on first use.
gpu::GPUModuleOp getOrCreateSM90KernelModule(ModuleOp module);

/// The external shared array of that module.
constexpr llvm::StringLiteral kSharedMemorySymbol = "bpt_sm90_shared";

/// The columns of `element` in one 128-byte swizzled row: a box's width
/// (64 of a 16-bit type, 32 of f32).
inline int64_t swizzleColumns(Type element) {
  return kSwizzleBytes * 8 / element.getIntOrFloatBitWidth();
}

/// `!nvgpu.tensormap.descriptor` of a [rows, swizzleColumns] box of
/// `element`, 128-byte swizzle, zero fill; [1, rows, swizzleColumns] when
/// `perMatrix` (a 3-D map of [matrices, rows, columns]).
Type tensorMapType(MLIRContext *ctx, int64_t rows, Type element,
                   bool perMatrix = false);

/// Host side: a TMA descriptor of the 2-D `matrix` with [boxRows,
/// swizzleColumns] boxes (nvgpu.tma.create.descriptor; the manifest turns it
/// into a tensor map), or of the 3-D [matrices, rows, columns] `matrix`
/// with [1, boxRows, swizzleColumns] boxes.
Value createTensorMap(OpBuilder &b, Location loc, Value matrix,
                      int64_t boxRows);

/// Host side: the TMA descriptor of an attention operand [B, H, S, D] read
/// in [boxRows, D] tiles: as [B·H·S, D] rows, or (`perHead`, a ragged S)
/// as [B·H, S, D], so that a tile past a head's end reads zeros rather than
/// the next head's rows.
Value createHeadsTensorMap(OpBuilder &b, Location loc, Value buffer,
                           int64_t boxRows, bool perHead);

} // namespace bpt::sm90

#endif // BPT_LIB_CONVERSION_SM90EMITTER_H
