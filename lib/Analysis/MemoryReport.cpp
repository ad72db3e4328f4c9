//===- MemoryReport.cpp - peak bytes of live buffers ------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Analysis/MemoryReport.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/DenseMap.h"

#include <algorithm>

using namespace mlir;
using namespace bpt;

int64_t bpt::allocationBytes(Operation *alloc) {
  auto type = cast<MemRefType>(alloc->getResult(0).getType());
  int64_t bits = type.getElementTypeBitWidth();
  return type.getNumElements() * ((bits + 7) / 8);
}

namespace {

/// Program order of a function, with each op's subtree as an interval:
/// [index(op), lastIndex(op)] covers the op and everything nested in it.
class ProgramOrder {
public:
  explicit ProgramOrder(Operation *root) {
    root->walk<WalkOrder::PreOrder>([&](Operation *op) {
      first[op] = next++;
    });
    root->walk<WalkOrder::PostOrder>([&](Operation *op) {
      int64_t last = first[op];
      for (Region &region : op->getRegions())
        for (Block &block : region)
          for (Operation &nested : block)
            last = std::max(last, lastIndex(&nested));
      lastOf[op] = last;
    });
  }
  int64_t index(Operation *op) const { return first.lookup(op); }
  int64_t lastIndex(Operation *op) const { return lastOf.lookup(op); }

private:
  llvm::DenseMap<Operation *, int64_t> first, lastOf;
  int64_t next = 0;
};

/// The last program point at which the buffer `root`, allocated in `block`,
/// may still be read or written.
int64_t liveUntil(Value root, Block *block, const ProgramOrder &order) {
  int64_t end = order.index(root.getDefiningOp());
  SmallVector<Value> worklist = {root};
  llvm::DenseSet<Value> seen;
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    if (!seen.insert(value).second)
      continue;
    for (OpOperand &use : value.getUses()) {
      Operation *user = use.getOwner();
      // A use inside a loop (or any region) keeps the buffer to its end. A
      // use outside `block` (after a yield) is at the user itself.
      Operation *anchor = block->findAncestorOpInBlock(*user);
      if (!anchor)
        anchor = user;
      end = std::max(end, order.lastIndex(anchor));
      // Views alias the buffer.
      if (auto view = dyn_cast<ViewLikeOpInterface>(user))
        if (view.getViewSource() == value)
          worklist.append(user->result_begin(), user->result_end());
      if (isa<memref::CastOp>(user))
        worklist.append(user->result_begin(), user->result_end());
      // A buffer yielded out of a region lives on in the parent's result.
      if (user->hasTrait<OpTrait::IsTerminator>())
        if (Operation *parent = user->getParentOp();
            parent && parent->getNumResults() == user->getNumOperands())
          worklist.push_back(parent->getResult(use.getOperandNumber()));
    }
  }
  return end;
}

} // namespace

FailureOr<MemoryReport> bpt::computeMemoryReport(func::FuncOp func) {
  ProgramOrder order(func);
  struct Interval {
    int64_t start, end, bytes;
    Operation *op;
  };
  SmallVector<Interval> intervals;
  WalkResult result = func.walk([&](Operation *op) {
    if (!isa<memref::AllocOp, memref::AllocaOp>(op))
      return WalkResult::advance();
    auto type = cast<MemRefType>(op->getResult(0).getType());
    if (!type.hasStaticShape()) {
      op->emitError() << "bpt memory report: dynamically sized allocation "
                      << type << " cannot be bounded";
      return WalkResult::interrupt();
    }
    intervals.push_back({order.index(op),
                         liveUntil(op->getResult(0), op->getBlock(), order),
                         allocationBytes(op), op});
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();

  // Sweep the program points where some buffer starts.
  MemoryReport report;
  report.numAllocations = intervals.size();
  for (const Interval &at : intervals) {
    int64_t live = 0;
    for (const Interval &other : intervals)
      if (other.start <= at.start && at.start <= other.end)
        live += other.bytes;
    if (live <= report.peakBytes)
      continue;
    report.peakBytes = live;
    report.liveAtPeak.clear();
    for (const Interval &other : intervals)
      if (other.start <= at.start && at.start <= other.end)
        report.liveAtPeak.push_back(other.op);
  }
  llvm::stable_sort(report.liveAtPeak, [](Operation *a, Operation *b) {
    return allocationBytes(a) > allocationBytes(b);
  });
  return report;
}
