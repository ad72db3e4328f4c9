//===- BPTDialect.cpp - bpt dialect -----------------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Dialect/BPTDialect.h"
#include "bpt/Dialect/BPTOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace bpt;

#include "bpt/Dialect/BPTOpsDialect.cpp.inc"
#include "bpt/Dialect/BPTOpsEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "bpt/Dialect/BPTOpsAttrs.cpp.inc"

void BPTDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "bpt/Dialect/BPTOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "bpt/Dialect/BPTOpsAttrs.cpp.inc"
      >();
}

bool bpt::isGatedActivation(Activation activation) {
  return activation == Activation::swiglu || activation == Activation::geglu;
}
