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
  if (!transposeB)
    return linalg::MatmulOp::create(b, loc, TypeRange{c.getType()},
                                    ValueRange{a, bMatrix}, ValueRange{c})
        .getResult(0);
  MLIRContext *ctx = b.getContext();
  return buildMappedMatmul(
      b, loc, a, bMatrix, c,
      [&](AffineExpr m, AffineExpr, AffineExpr k) {
        return AffineMap::get(3, 0, {m, k}, ctx);
      },
      [&](AffineExpr, AffineExpr n, AffineExpr k) {
        return AffineMap::get(3, 0, {n, k}, ctx);
      });
}

Value bpt::buildMatmulTransposedA(OpBuilder &b, Location loc, Value a,
                                  Value bMatrix, Value c) {
  MLIRContext *ctx = b.getContext();
  return buildMappedMatmul(
      b, loc, a, bMatrix, c,
      [&](AffineExpr m, AffineExpr, AffineExpr k) {
        return AffineMap::get(3, 0, {k, m}, ctx);
      },
      [&](AffineExpr, AffineExpr n, AffineExpr k) {
        return AffineMap::get(3, 0, {k, n}, ctx);
      });
}
