//===- Rematerialize.cpp - bpt-rematerialize --------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// A host-level value that is cheap to compute and read early and again
// much later keeps a whole buffer alive in between: in a training step, the
// first norm's output (read by the q/k/v projections, and by their weight
// gradients at the end), the second norm's (read by the FFN, and by its
// gradient), the token-major attention output (read by the output
// projection, and by its weight gradient). When what it is computed from
// is alive at the later reads anyway, computing it again there costs a
// few launches and saves a buffer over most of the step. Projections are
// not cheap (a GEMM each) and are repeated only when asked: the query, key
// and value of a training step, otherwise alive across the FFN's backward.
//
//===----------------------------------------------------------------------===//

#include "bpt/Transforms/Passes.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"

namespace bpt {
#define GEN_PASS_DEF_BPTREMATERIALIZE
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

/// Ops that only view their operand.
bool isView(Operation *op) {
  return isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op);
}

/// The ops of `block` that read `value`, seen through views: each with the
/// chain of views from `value` to the operand it reads.
void collectReaders(
    Value value, SmallVectorImpl<Operation *> &chain,
    SmallVectorImpl<std::pair<OpOperand *, SmallVector<Operation *>>> &out) {
  for (OpOperand &use : value.getUses()) {
    Operation *user = use.getOwner();
    if (isView(user)) {
      chain.push_back(user);
      collectReaders(user->getResult(0), chain, out);
      chain.pop_back();
      continue;
    }
    out.push_back({&use, llvm::to_vector(chain)});
  }
}

/// Ops that compute (counted against max-ops): linalg ops on tensors
/// (elementwise chains, reductions, transposes, fills), the norms left
/// whole for their row kernel (bpt-norm-to-rowwise runs after this pass),
/// and with `projections` the projections not yet lowered.
bool isComputation(Operation *op, bool projections) {
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
    return linalgOp.hasPureTensorSemantics();
  if (projections && isa<bpt::LinearOp>(op))
    return true;
  return isa<bpt::LayerNormOp, bpt::RMSNormOp>(op);
}

/// Ops a recomputation may repeat: computations, empty tensors, views,
/// constants.
bool isCheap(Operation *op, bool projections) {
  return isComputation(op, projections) ||
         isa<tensor::EmptyOp, arith::ConstantOp>(op) || isView(op);
}

struct BPTRematerializePass final
    : bpt::impl::BPTRematerializeBase<BPTRematerializePass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    Block &body = func.getBody().front();
    // Positions, for "far apart" and "alive at"; clones get their reader's.
    llvm::DenseMap<Operation *, int64_t> position;
    int64_t n = 0;
    for (Operation &op : body)
      position[&op] = n++;
    auto at = [&](Operation *op) {
      return position.lookup(body.findAncestorOpInBlock(*op));
    };
    // The last position where `v` is read (a function argument: always).
    // A tensor-core kernel's result is a to_tensor of its buffer, which
    // later kernels read directly: their reads count.
    auto lastRead = [&](Value v) -> int64_t {
      if (isa<BlockArgument>(v))
        return std::numeric_limits<int64_t>::max();
      int64_t last = -1;
      for (Operation *user : v.getUsers())
        last = std::max(last, at(user));
      if (auto toTensor = v.getDefiningOp<bufferization::ToTensorOp>())
        for (Operation *user : toTensor.getBuffer().getUsers())
          last = std::max(last, at(user));
      return last;
    };
    // The cheap ops that compute `v` again at position `here`, in program
    // order: the walk stops at values still read at `here` or later (and
    // arguments), which the clones read; it fails on a value of another
    // kind of op that is dead by then, or past maxOps linalg ops. With
    // `projections`, only chains through a projection count (the others
    // are left to the instance after bufferization's CSE), and a norm or
    // linalg op on the way is repeated even where its value is still read
    // later: that value is the later instance's to repeat, and the
    // projection's copy must not keep it alive.
    auto chainOf = [&](Value v, int64_t here,
                       SmallVectorImpl<Operation *> &ops) -> bool {
      llvm::SetVector<Operation *> seen;
      SmallVector<Value> work = {v};
      int64_t computing = 0;
      while (!work.empty()) {
        Value next = work.pop_back_val();
        Operation *def = next.getDefiningOp();
        bool passThrough = projections && def && isComputation(def, false);
        if (next != v && lastRead(next) >= here && !passThrough)
          continue;
        if (!def || def->getBlock() != &body || !isCheap(def, projections))
          return false;
        if (!seen.insert(def))
          continue;
        if (isComputation(def, projections) && ++computing > maxOps)
          return false;
        llvm::append_range(work, def->getOperands());
      }
      if (projections && llvm::none_of(seen, [](Operation *op) {
            return isa<bpt::LinearOp>(op);
          }))
        return false;
      ops.assign(seen.begin(), seen.end());
      llvm::sort(ops,
                 [&](Operation *x, Operation *y) { return at(x) < at(y); });
      return true;
    };

    SmallVector<Operation *> roots;
    for (Operation &op : body)
      if (isComputation(&op, projections) && op.getNumResults() == 1)
        roots.push_back(&op);
    for (Operation *root : roots) {
      SmallVector<Operation *> chain;
      SmallVector<std::pair<OpOperand *, SmallVector<Operation *>>> readers;
      collectReaders(root->getResult(0), chain, readers);
      if (readers.size() < 2)
        continue;
      llvm::stable_sort(readers, [&](auto &x, auto &y) {
        return at(x.first->getOwner()) < at(y.first->getOwner());
      });
      int64_t previous = at(readers.front().first->getOwner());
      // The copy the previous read took (empty: the original), which a
      // read near it shares: through its own views, cloned where missing.
      IRMapping latest;
      auto readLatest = [&](OpOperand *use, ArrayRef<Operation *> views,
                            Operation *anchor) {
        if (latest.getValueMap().empty())
          return;
        OpBuilder b(anchor);
        for (Operation *view : views)
          if (!latest.contains(view->getResult(0)))
            position[b.clone(*view, latest)] = position.lookup(anchor);
        use->set(latest.lookup(use->get()));
      };
      for (auto &[use, views] : llvm::drop_begin(readers)) {
        Operation *reader = use->getOwner();
        Operation *anchor = body.findAncestorOpInBlock(*reader);
        int64_t here = at(reader);
        // Near the previous read: the same value.
        if (here - previous <= minDistance) {
          readLatest(use, views, anchor);
          previous = here;
          continue;
        }
        // Not computable from what is alive there: the original.
        SmallVector<Operation *> ops;
        if (!chainOf(root->getResult(0), here, ops)) {
          latest.clear();
          previous = here;
          continue;
        }
        OpBuilder b(anchor);
        IRMapping map;
        for (Operation *op : ops) {
          Operation *clone = b.clone(*op, map);
          position[clone] = here;
          // Kept apart from the original by the CSE still to come.
          if (projections && isComputation(op, projections))
            clone->setAttr(bpt::kRecomputedAttrName, b.getUnitAttr());
        }
        for (Operation *view : views)
          position[b.clone(*view, map)] = here;
        use->set(map.lookup(use->get()));
        latest = std::move(map);
        previous = here;
      }
    }
    // Views and cheap ops left without readers go.
    SmallVector<Operation *> dead;
    for (Operation &op : body)
      if (isCheap(&op, projections) && op.use_empty())
        dead.push_back(&op);
    for (Operation *op : llvm::reverse(dead))
      if (op->use_empty())
        op->erase();
  }
};

} // namespace
