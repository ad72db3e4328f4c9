//===- Builders.cpp - build bpt ops from C++ with inferred types -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Dialect/Builders.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace bpt;

AttentionOp bpt::buildAttention(OpBuilder &b, Location loc, Value query,
                                Value key, Value value, bool causal,
                                std::optional<double> scale) {
  return AttentionOp::create(b, loc, query.getType(), query, key, value,
                             causal ? b.getUnitAttr() : UnitAttr(),
                             scale ? b.getF64FloatAttr(*scale) : FloatAttr());
}

LinearOp bpt::buildLinear(OpBuilder &b, Location loc, Value input,
                          Value weight, Value bias) {
  auto inputType = cast<RankedTensorType>(input.getType());
  SmallVector<int64_t> shape(inputType.getShape());
  shape.back() = cast<RankedTensorType>(weight.getType()).getDimSize(1);
  return LinearOp::create(b, loc, inputType.clone(shape), input, weight, bias);
}

FFNOp bpt::buildFFN(OpBuilder &b, Location loc, Activation activation,
                    Value input, Value wIn, Value wOut, Value wGate) {
  return FFNOp::create(b, loc, input.getType(), input, wIn, wOut, wGate,
                       ActivationAttr::get(b.getContext(), activation));
}

Operation *bpt::buildNorm(OpBuilder &b, Location loc, Value input,
                          Value weight, Value bias, double epsilon) {
  FloatAttr eps = b.getF64FloatAttr(epsilon);
  if (bias)
    return LayerNormOp::create(b, loc, input.getType(), input, weight, bias,
                               eps);
  return RMSNormOp::create(b, loc, input.getType(), input, weight, eps);
}
