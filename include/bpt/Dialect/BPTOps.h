//===- BPTOps.h - bpt dialect operations ------------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_DIALECT_BPTOPS_H
#define BPT_DIALECT_BPTOPS_H

#include "bpt/Dialect/BPTDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "bpt/Dialect/BPTOps.h.inc"

#endif // BPT_DIALECT_BPTOPS_H
