//===- MemoryReport.h - peak bytes of live buffers --------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// After bufferization, how many bytes of intermediate buffers are live at
// once? This is the number behind BPT's memory claim: for a fused block it
// must not grow with S x ffn_width or S x S.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_ANALYSIS_MEMORYREPORT_H
#define BPT_ANALYSIS_MEMORYREPORT_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SmallVector.h"

namespace bpt {

/// Peak live intermediate buffers of one bufferized function.
struct MemoryReport {
  /// Largest sum of the sizes of simultaneously live allocations.
  int64_t peakBytes = 0;
  /// Number of allocation ops (memref.alloc / memref.alloca) in the function.
  int64_t numAllocations = 0;
  /// The allocations live at the peak, largest first.
  llvm::SmallVector<mlir::Operation *> liveAtPeak;
};

/// Computes the report of `func`, which must be bufferized (no tensors
/// passed to allocations) with statically sized allocations; fails with a
/// diagnostic on a dynamically sized one.
///
/// Each allocation is live from its op to the end of its last use; a use
/// nested in a loop keeps it live to the end of that loop, and a use through
/// a view (subview, cast, reshape) or a value yielded out of a region counts
/// as a use of the allocation. A loop body counts once: the report is the
/// peak of one sequential execution, in which each iteration frees what it
/// allocated before the next begins. Function arguments (inputs and
/// caller-provided outputs) are not intermediates and are not counted.
mlir::FailureOr<MemoryReport> computeMemoryReport(mlir::func::FuncOp func);

/// Byte size of a statically shaped memref allocation.
int64_t allocationBytes(mlir::Operation *alloc);

} // namespace bpt

#endif // BPT_ANALYSIS_MEMORYREPORT_H
