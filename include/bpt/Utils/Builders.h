//===- Builders.h - small IR-building helpers -------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// Helpers shared by the passes that emit tensor-level linalg code: constants,
// empty/filled tensors, float casts, and a compact linalg.generic builder.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_UTILS_BUILDERS_H
#define BPT_UTILS_BUILDERS_H

#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/STLFunctionalExtras.h"

namespace bpt {

mlir::Value indexConstant(mlir::OpBuilder &b, mlir::Location loc,
                          int64_t value);
mlir::Value floatConstant(mlir::OpBuilder &b, mlir::Location loc,
                          mlir::Type type, double value);

/// A `tensor<shape x elementType>` filled with `value`.
mlir::Value filledTensor(mlir::OpBuilder &b, mlir::Location loc,
                         llvm::ArrayRef<int64_t> shape,
                         mlir::Type elementType, double value);

/// Converts a scalar float between widths (extf / truncf / no-op).
mlir::Value convertFloat(mlir::OpBuilder &b, mlir::Location loc,
                         mlir::Value value, mlir::Type to);

/// The body of a linalg.generic: block arguments (inputs then outputs) in,
/// the values to yield out.
using GenericBody = llvm::function_ref<llvm::SmallVector<mlir::Value>(
    mlir::OpBuilder &, mlir::Location, mlir::ValueRange)>;

/// Builds a linalg.generic over `numLoops` loops (reductions where
/// `reductionDims` says so), with one indexing map per input and output, and
/// returns its results.
llvm::SmallVector<mlir::Value>
buildGeneric(mlir::OpBuilder &b, mlir::Location loc, mlir::ValueRange inputs,
             mlir::ValueRange outputs, llvm::ArrayRef<mlir::AffineMap> maps,
             unsigned numLoops, llvm::ArrayRef<unsigned> reductionDims,
             GenericBody body);

/// Elementwise map over a tensor of any rank: `f(x)` for each element of
/// `input`, into a tensor of `resultElementType`.
mlir::Value
buildMap(mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
         mlir::Type resultElementType,
         llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                        mlir::Value)>
             f);

/// `C (f32) += A · B` or, with `transposeB`, `C += A · Bᵀ`, as linalg.matmul;
/// A and B are 2-D, of any float type (widened to C's type).
mlir::Value buildMatmul(mlir::OpBuilder &b, mlir::Location loc, mlir::Value a,
                        mlir::Value bMatrix, mlir::Value c,
                        bool transposeB = false);

/// `C (f32) += op(A) · op(B)` as linalg.matmul, op transposing where asked:
/// A [M, K] (or [K, M]) and B [K, N] (or [N, K]) of any float type.
mlir::Value buildMatmul(mlir::OpBuilder &b, mlir::Location loc, mlir::Value a,
                        mlir::Value bMatrix, mlir::Value c, bool transposeA,
                        bool transposeB);

/// `C (f32) += Aᵀ · B` as linalg.matmul; A [K, M] and B [K, N] of any float
/// type (widened to C's type).
mlir::Value buildMatmulTransposedA(mlir::OpBuilder &b, mlir::Location loc,
                                   mlir::Value a, mlir::Value bMatrix,
                                   mlir::Value c);

/// Rounds an f32 tensor to `elementType` (no-op when it has that type).
mlir::Value roundTo(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                    mlir::Type elementType);

/// `x` ([..., N]) as a [rows, N] matrix: leading dimensions collapsed, a
/// rank-1 vector as one row. Views only, nothing is copied.
mlir::Value asMatrix(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x);

/// The inverse of `asMatrix`: the [rows, N] `m` in the shape of `like`.
mlir::Value fromMatrix(mlir::OpBuilder &b, mlir::Location loc, mlir::Value m,
                       mlir::RankedTensorType like);

/// A zero f32 [rows, cols] tensor.
mlir::Value zeros(mlir::OpBuilder &b, mlir::Location loc, int64_t rows,
                  int64_t cols);

/// Positions [first, first + count) of dimension `dim` of the ranked tensor
/// `source`, all of every other dimension (a tensor.extract_slice).
mlir::Value sliceAlong(mlir::OpBuilder &b, mlir::Location loc,
                       mlir::Value source, int64_t dim, int64_t first,
                       int64_t count);

/// `piece` ([count, N]) written into rows [first, first + count) of the
/// matrix `into` (a tensor.insert_slice).
mlir::Value insertRows(mlir::OpBuilder &b, mlir::Location loc,
                       mlir::Value piece, mlir::Value into, int64_t first);

/// Dimension `d` of the ranked tensor `v`.
int64_t dimOf(mlir::Value v, unsigned d);

/// Σ_rows of the [R, N] `m`, in f32: [N].
mlir::Value columnSums(mlir::OpBuilder &b, mlir::Location loc, mlir::Value m);

} // namespace bpt

#endif // BPT_UTILS_BUILDERS_H
