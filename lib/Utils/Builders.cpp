//===- Builders.cpp - small IR-building helpers -----------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Utils/Builders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;

Value bpt::indexConstant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

Value bpt::floatConstant(OpBuilder &b, Location loc, Type type, double value) {
  return arith::ConstantOp::create(b, loc, b.getFloatAttr(type, value));
}

Value bpt::filledTensor(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                        Type elementType, double value) {
  Value empty = tensor::EmptyOp::create(b, loc, shape, elementType);
  Value scalar = floatConstant(b, loc, elementType, value);
  return linalg::FillOp::create(b, loc, ValueRange{scalar}, ValueRange{empty})
      .getResult(0);
}

Value bpt::convertFloat(OpBuilder &b, Location loc, Value value, Type to) {
  Type from = value.getType();
  if (from == to)
    return value;
  if (from.getIntOrFloatBitWidth() < to.getIntOrFloatBitWidth())
    return arith::ExtFOp::create(b, loc, to, value);
  return arith::TruncFOp::create(b, loc, to, value);
}

SmallVector<Value> bpt::buildGeneric(OpBuilder &b, Location loc,
                                     ValueRange inputs, ValueRange outputs,
                                     ArrayRef<AffineMap> maps,
                                     unsigned numLoops,
                                     ArrayRef<unsigned> reductionDims,
                                     GenericBody body) {
  SmallVector<utils::IteratorType> iterators(numLoops,
                                             utils::IteratorType::parallel);
  for (unsigned dim : reductionDims)
    iterators[dim] = utils::IteratorType::reduction;
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange(outputs), inputs, outputs, maps, iterators,
      [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        linalg::YieldOp::create(nested, nestedLoc, body(nested, nestedLoc, args));
      });
  return SmallVector<Value>(generic.getResults());
}

Value bpt::buildMap(OpBuilder &b, Location loc, Value input,
                    Type resultElementType,
                    function_ref<Value(OpBuilder &, Location, Value)> f) {
  auto type = cast<RankedTensorType>(input.getType());
  Value init =
      tensor::EmptyOp::create(b, loc, type.getShape(), resultElementType);
  AffineMap identity =
      AffineMap::getMultiDimIdentityMap(type.getRank(), b.getContext());
  return buildGeneric(b, loc, input, init, {identity, identity},
                      type.getRank(), {},
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        return SmallVector<Value>{f(nb, nl, args[0])};
                      })
      .front();
}

/// `C += A' · B'` as linalg.matmul, with A and B read through `mapA` and
/// `mapB` over the loops (m, n, k).
static Value buildMappedMatmul(OpBuilder &b, Location loc, Value a,
                               Value bMatrix, Value c,
                               function_ref<AffineMap(AffineExpr, AffineExpr,
                                                      AffineExpr)>
                                   mapA,
                               function_ref<AffineMap(AffineExpr, AffineExpr,
                                                      AffineExpr)>
                                   mapB) {
  MLIRContext *ctx = b.getContext();
  AffineExpr m, n, k;
  bindDims(ctx, m, n, k);
  SmallVector<Attribute> maps = {
      AffineMapAttr::get(mapA(m, n, k)), AffineMapAttr::get(mapB(m, n, k)),
      AffineMapAttr::get(AffineMap::get(3, 0, {m, n}, ctx))};
  return linalg::MatmulOp::create(
             b, loc, TypeRange{c.getType()}, ValueRange{a, bMatrix},
             ValueRange{c},
             {b.getNamedAttr("indexing_maps", b.getArrayAttr(maps))})
      .getResult(0);
}

Value bpt::buildMatmul(OpBuilder &b, Location loc, Value a, Value bMatrix,
                       Value c, bool transposeB) {
  return buildMatmul(b, loc, a, bMatrix, c, /*transposeA=*/false, transposeB);
}

Value bpt::buildMatmul(OpBuilder &b, Location loc, Value a, Value bMatrix,
                       Value c, bool transposeA, bool transposeB) {
  if (!transposeA && !transposeB)
    return linalg::MatmulOp::create(b, loc, TypeRange{c.getType()},
                                    ValueRange{a, bMatrix}, ValueRange{c})
        .getResult(0);
  MLIRContext *ctx = b.getContext();
  return buildMappedMatmul(
      b, loc, a, bMatrix, c,
      [&](AffineExpr m, AffineExpr, AffineExpr k) {
        return AffineMap::get(3, 0, {transposeA ? k : m, transposeA ? m : k},
                              ctx);
      },
      [&](AffineExpr, AffineExpr n, AffineExpr k) {
        return AffineMap::get(3, 0, {transposeB ? n : k, transposeB ? k : n},
                              ctx);
      });
}

Value bpt::buildMatmulTransposedA(OpBuilder &b, Location loc, Value a,
                                  Value bMatrix, Value c) {
  return buildMatmul(b, loc, a, bMatrix, c, /*transposeA=*/true,
                     /*transposeB=*/false);
}

/// Rounds an f32 tensor to `elementType`.
Value bpt::roundTo(OpBuilder &b, Location loc, Value x, Type elementType) {
  if (cast<RankedTensorType>(x.getType()).getElementType() == elementType)
    return x;
  return buildMap(b, loc, x, elementType,
                  [&](OpBuilder &nb, Location nl, Value v) {
                    return convertFloat(nb, nl, v, elementType);
                  });
}

/// `x` ([..., N]) as a [rows, N] matrix: leading dimensions collapsed, a
/// rank-1 vector as one row. Views only, nothing is copied.
Value bpt::asMatrix(OpBuilder &b, Location loc, Value x) {
  auto type = cast<RankedTensorType>(x.getType());
  int64_t rank = type.getRank();
  if (rank == 2)
    return x;
  int64_t width = type.getShape().back();
  auto matrixType = RankedTensorType::get(
      {type.getNumElements() / width, width}, type.getElementType());
  if (rank == 1)
    return tensor::ExpandShapeOp::create(b, loc, matrixType, x,
                                         {{0, 1}});
  ReassociationIndices rows;
  for (int64_t d = 0; d + 1 < rank; ++d)
    rows.push_back(d);
  return tensor::CollapseShapeOp::create(b, loc, matrixType, x,
                                         {rows, {rank - 1}});
}

/// The inverse of `asMatrix`: the [rows, N] `m` in the shape of `like`.
Value bpt::fromMatrix(OpBuilder &b, Location loc, Value m, RankedTensorType like) {
  int64_t rank = like.getRank();
  auto type = RankedTensorType::get(
      like.getShape(), cast<RankedTensorType>(m.getType()).getElementType());
  if (rank == 2)
    return m;
  if (rank == 1)
    return tensor::CollapseShapeOp::create(b, loc, type, m, {{0, 1}});
  ReassociationIndices rows;
  for (int64_t d = 0; d + 1 < rank; ++d)
    rows.push_back(d);
  return tensor::ExpandShapeOp::create(b, loc, type, m, {rows, {rank - 1}});
}

/// A zero f32 [rows, cols] accumulator.
Value bpt::zeros(OpBuilder &b, Location loc, int64_t rows, int64_t cols) {
  return filledTensor(b, loc, {rows, cols}, b.getF32Type(), 0.0);
}

Value bpt::sliceAlong(OpBuilder &b, Location loc, Value source, int64_t dim,
                      int64_t first, int64_t count) {
  auto type = cast<RankedTensorType>(source.getType());
  SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
  SmallVector<OpFoldResult> sizes, strides(type.getRank(), b.getIndexAttr(1));
  for (int64_t size : type.getShape())
    sizes.push_back(b.getIndexAttr(size));
  offsets[dim] = b.getIndexAttr(first);
  sizes[dim] = b.getIndexAttr(count);
  return tensor::ExtractSliceOp::create(b, loc, source, offsets, sizes,
                                        strides);
}

Value bpt::insertRows(OpBuilder &b, Location loc, Value piece, Value into,
                      int64_t first) {
  return tensor::InsertSliceOp::create(
      b, loc, piece, into,
      ArrayRef<OpFoldResult>{b.getIndexAttr(first), b.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{b.getIndexAttr(dimOf(piece, 0)),
                             b.getIndexAttr(dimOf(piece, 1))},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)});
}

int64_t bpt::dimOf(Value v, unsigned d) {
  return cast<RankedTensorType>(v.getType()).getDimSize(d);
}

/// Σ_rows of the [R, N] `m`, in f32: [N].
Value bpt::columnSums(OpBuilder &b, Location loc, Value m) {
  MLIRContext *ctx = b.getContext();
  AffineExpr r = getAffineDimExpr(0, ctx), n = getAffineDimExpr(1, ctx);
  Value init = filledTensor(b, loc, {dimOf(m, 1)}, b.getF32Type(), 0.0);
  return buildGeneric(b, loc, m, init,
                      {AffineMap::get(2, 0, {r, n}, ctx),
                       AffineMap::get(2, 0, {n}, ctx)},
                      2, {0},
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Value v = convertFloat(nb, nl, args[0],
                                               nb.getF32Type());
                        return SmallVector<Value>{
                            arith::AddFOp::create(nb, nl, v, args[1])};
                      })
      .front();
}
