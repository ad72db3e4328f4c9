//===- Layouts.h - what a memref's layout says about its bytes --*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_UTILS_LAYOUTS_H
#define BPT_UTILS_LAYOUTS_H

#include "mlir/IR/BuiltinTypes.h"

namespace bpt {

/// Whether `type` (static) addresses its elements as one row-major block at
/// the start of its buffer: offset 0, and the row-major stride in every
/// dimension of more than one element. A slice of leading rows has this
/// layout, so the buffer's base pointer serves as the slice's (a kernel set
/// passes whole buffers).
bool isContiguousAtBase(mlir::MemRefType type);

} // namespace bpt

#endif // BPT_UTILS_LAYOUTS_H
