//===- ReferenceInterpreter.h - run model-level IR in float64 ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_EXECUTION_REFERENCEINTERPRETER_H
#define BPT_EXECUTION_REFERENCEINTERPRETER_H

#include "bpt/Reference/Reference.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <vector>

namespace bpt {

/// Evaluates a model-level function op by op with the float64 reference
/// (lib/Reference), independent of every pass: bpt ops, `arith.addf` on
/// tensors, the reshapes, transposes and zero fills of decomposed blocks and
/// of bpt-build-backward's functions (also static slices, concatenations
/// and float conversions, the identity here, of a query-chunked backward),
/// and `func.return`. Fails with a
/// diagnostic on any other op. `bpt.attention_grad` is evaluated from its
/// query, key and value (its output and log-sum-exp operands are not read).
mlir::FailureOr<std::vector<ref::Tensor>>
evaluateReference(mlir::func::FuncOp func, llvm::ArrayRef<ref::Tensor> args);

} // namespace bpt

#endif // BPT_EXECUTION_REFERENCEINTERPRETER_H
