//===- SM80Emitter.h - building blocks of mma.sync kernels ------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Helpers shared by the kernels bpt builds for warp-level tensor cores
// (sm_80 and later: attention, GEMM), on top of NVVMEmitter's: cp.async
// copies of tiles into swizzled shared memory, ldmatrix, and mma.sync
// m16n8k16 with f32 accumulators.
//
// Tiles are rows of 16-byte chunks, chunk c of row r stored at chunk
// c ^ (r % 8): the eight rows one ldmatrix phase reads fall in eight
// different bank groups. Rows must be a multiple of 128 bytes.
//
// Fragments of m16n8k16 (g = lane / 4, t = lane % 4): A (16 x 16) is four
// registers (row g | g + 8) x (columns 2t.. | 2t + 8..); B (16 x 8) two,
// (k 2t.. | 2t + 8..) of column g; the accumulator four floats, (row g |
// g + 8) x columns 2t, 2t + 1. One ldmatrix.x4 of a row-major [16, 16]
// tile gives an A fragment; of a [rows = n, k] tile, the B fragments of
// two 8-column tiles; ldmatrix.x4.trans of a [k, n] tile, the same.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_SM80EMITTER_H
#define BPT_LIB_CONVERSION_SM80EMITTER_H

#include "NVVMEmitter.h"

namespace bpt::sm80 {

using namespace mlir;
using codegen::createKernel;
using codegen::asRows;
using codegen::readOnlyBuffer;

constexpr int64_t kWarp = 32;
/// Tile rows are 16-byte chunks, swizzled over 8-row groups.
constexpr int64_t kChunkBytes = 16;
/// Shared-memory base alignment.
constexpr int64_t kTileAlignment = 128;
/// The external shared array of `gpu.module @bpt_sm80`.
constexpr llvm::StringLiteral kSharedMemorySymbol = "bpt_sm80_shared";

/// The gpu.module that holds bpt's mma.sync kernels.
inline gpu::GPUModuleOp getOrCreateSM80KernelModule(ModuleOp module) {
  return codegen::getOrCreateKernelModule(module, "bpt_sm80",
                                          kSharedMemorySymbol, kTileAlignment);
}

/// mma.sync, ldmatrix and cp.async over swizzled tiles.
class SM80Emitter : public codegen::NVVMEmitter {
public:
  SM80Emitter(OpBuilder &b, Location loc, bool bf16)
      : NVVMEmitter(b, loc, bf16), globalPtr(LLVM::LLVMPointerType::get(
                                       b.getContext(), 1)) {}

protected:
  /// Shared address of 16-byte chunk `chunk` of row `row` of a tile whose
  /// rows are `rowBytes` long (an even number of chunks). The chunks are
  /// XOR-swizzled by the row within groups of 8 (ldmatrix's 8 rows then hit
  /// 8 different 16-byte bank groups); a row whose chunks are not a
  /// multiple of 8 ends in groups of 4 and 2, swizzled by row % 4 and
  /// row % 2, so that every row stays a permutation of its own chunks.
  Value chunkAddress(Value tile, Value row, Value chunk, int64_t rowBytes) {
    int64_t chunks = rowBytes / kChunkBytes;
    int64_t start = chunks - chunks % 8;
    Value swizzled;
    if (start > 0)
      swizzled = xori(chunk, rem(row, c32(8)));
    for (int64_t size : {4, 2}) {
      if ((chunks - start) < size)
        continue;
      // Chunks from `start` on: start + ((chunk - start) ^ (row % size)).
      Value inGroup = add(c32(start), xori(sub(chunk, c32(start)),
                                           rem(row, c32(size))));
      swizzled = swizzled ? select(cmp(arith::CmpIPredicate::sge, chunk,
                                       c32(start)),
                                   inGroup, swizzled)
                          : inGroup;
      start += size;
    }
    return add(tile, add(mul(row, c32(rowBytes)),
                         mul(swizzled, c32(kChunkBytes))));
  }

  /// The threads of the block copy `rows` rows of `rowBytes` bytes each,
  /// from `source` (global, rows `sourceStride` bytes apart) into the
  /// swizzled tile at `tile`, 16 bytes a thread per step. With `validRows`
  /// (i32), rows from there on are zero-filled without reading memory (the
  /// copy reads 0 bytes, from row 0's address).
  void copyTileAsync(Value tile, Value source, int64_t rows, int64_t rowBytes,
                     int64_t sourceStride, Value tid, int64_t threads,
                     Value validRows = Value()) {
    int64_t chunks = rowBytes / kChunkBytes;
    for (int64_t k = 0; k < rows * chunks / threads; ++k) {
      Value index = add(tid, c32(k * threads));
      Value row = div(index, c32(chunks));
      Value chunk = rem(index, c32(chunks));
      Value sourceRow = row, bytes;
      if (validRows) {
        Value inRange = cmp(arith::CmpIPredicate::slt, row, validRows);
        sourceRow = select(inRange, row, c32(0));
        bytes = select(inRange, c32(kChunkBytes), c32(0));
      }
      Value offset = add(
          mul(arith::ExtUIOp::create(b, loc, i64, sourceRow), c64(sourceStride)),
          arith::ExtUIOp::create(b, loc, i64, mul(chunk, c32(kChunkBytes))));
      Value src = LLVM::GEPOp::create(b, loc, globalPtr, b.getI8Type(), source,
                                      ValueRange{offset});
      NVVM::CpAsyncOp::create(
          b, loc, sharedPointer(chunkAddress(tile, row, chunk, rowBytes)), src,
          kChunkBytes, NVVM::LoadCacheModifierKind::CG, bytes);
    }
  }

  /// Four 8x8 matrices of 16-bit elements; lane i gives the address of a
  /// row of matrix i / 8. `transpose`: each thread gets a column pair.
  SmallVector<Value> loadMatrices(Value address, bool transpose) {
    Type result = LLVM::LLVMStructType::getLiteral(
        ctx, SmallVector<Type>(4, i32));
    Value loaded = NVVM::LdMatrixOp::create(
        b, loc, result, sharedPointer(address), 4,
        transpose ? NVVM::MMALayout::col : NVVM::MMALayout::row,
        NVVM::LdStMatrixShapeAttr::get(ctx, 8, 8),
        NVVM::LdStMatrixEltType::B16);
    return unpack(loaded, 4);
  }

  /// acc += A·B, m16n8k16 with f32 accumulators: `a` is four 32-bit
  /// registers of 16-bit pairs, `b0` and `b1` B's two, `acc` four floats.
  SmallVector<Value> mma(ArrayRef<Value> a, Value b0, Value b1,
                         ArrayRef<Value> acc) {
    auto operand = [&](Value v) -> Value {
      if (bf16)
        return v;
      return LLVM::BitcastOp::create(
          b, loc, VectorType::get({2}, b.getF16Type()), v);
    };
    SmallVector<Value> aOps = llvm::map_to_vector(a, operand);
    SmallVector<Value> bOps = {operand(b0), operand(b1)};
    Type result = LLVM::LLVMStructType::getLiteral(
        ctx, SmallVector<Type>(4, f32));
    NVVM::MMATypes type = bf16 ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
    Value d = NVVM::MmaOp::create(
        b, loc, result, aOps, bOps, acc, ArrayRef<int64_t>{16, 8, 16},
        std::nullopt, std::nullopt,
        std::array<NVVM::MMATypes, 2>{type, type},
        std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                       NVVM::MMALayout::col});
    return unpack(d, 4);
  }

  /// An f32 word rounded to TF32, to nearest (ties away), as cuBLAS and
  /// CUTLASS round; the tensor cores would otherwise drop the low 13 bits,
  /// a truncation whose bias does not average out over a long K.
  Value roundToTF32(Value word) {
    return asmOp(i32, word, "cvt.rna.tf32.f32 $0, $1;", "=r,r",
                 /*sideEffects=*/false);
  }

  /// acc += A·B, m16n8k8 with f32 operands as TF32 (the tensor cores read
  /// the top 19 bits of each word): `a` four words (rows g, g + 8 by
  /// columns t, t + 4), `b0` and `b1` (rows t, t + 4 of column g), `acc`
  /// four floats.
  SmallVector<Value> mmaTF32(ArrayRef<Value> a, Value b0, Value b1,
                             ArrayRef<Value> acc) {
    Type result =
        LLVM::LLVMStructType::getLiteral(ctx, SmallVector<Type>(4, f32));
    Value d = NVVM::MmaOp::create(
        b, loc, result, a, ValueRange{b0, b1}, acc, ArrayRef<int64_t>{16, 8, 8},
        std::nullopt, std::nullopt,
        std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::tf32,
                                      NVVM::MMATypes::tf32},
        std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                       NVVM::MMALayout::col});
    return unpack(d, 4);
  }

  Type globalPtr;
};

} // namespace bpt::sm80

#endif // BPT_LIB_CONVERSION_SM80EMITTER_H
