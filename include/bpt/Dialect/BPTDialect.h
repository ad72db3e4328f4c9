//===- BPTDialect.h - bpt dialect -------------------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_DIALECT_BPTDIALECT_H
#define BPT_DIALECT_BPTDIALECT_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/Dialect.h"

#include "bpt/Dialect/BPTOpsDialect.h.inc"
#include "bpt/Dialect/BPTOpsEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "bpt/Dialect/BPTOpsAttrs.h.inc"

namespace bpt {

/// True for the gated activations (swiglu, geglu), which take a third
/// matrix, `w_gate`.
bool isGatedActivation(Activation activation);

} // namespace bpt

#endif // BPT_DIALECT_BPTDIALECT_H
