//===- RematerializeTransposes.cpp - bpt-rematerialize-transposes -*- C++
//-*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// A host-level transpose whose result is read early and again much later
// (a training step's token-major attention output: by the output projection
// in the forward, by its weight gradient at the end of the backward) keeps
// a whole [S, hidden] buffer alive in between. When its input is alive at
// the later reads anyway, transposing again there is one cheap launch
// against a buffer less over most of the step.
//
//===----------------------------------------------------------------------===//

#include "bpt/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"

namespace bpt {
#define GEN_PASS_DEF_BPTREMATERIALIZETRANSPOSES
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

struct BPTRematerializeTransposesPass final
    : bpt::impl::BPTRematerializeTransposesBase<
          BPTRematerializeTransposesPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    Block &body = func.getBody().front();
    // Positions, for "far apart" and "alive at".
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

    for (auto transpose : llvm::to_vector(body.getOps<linalg::TransposeOp>())) {
      if (!transpose.hasPureTensorSemantics())
        continue;
      auto init = transpose.getInit().getDefiningOp<tensor::EmptyOp>();
      if (!init)
        continue;
      SmallVector<Operation *> chain;
      SmallVector<std::pair<OpOperand *, SmallVector<Operation *>>> readers;
      collectReaders(transpose.getResult().front(), chain, readers);
      llvm::stable_sort(readers, [&](auto &a, auto &b) {
        return at(a.first->getOwner()) < at(b.first->getOwner());
      });
      int64_t inputAlive = lastRead(transpose.getInput());
      int64_t previous = at(transpose);
      for (auto &[use, views] : readers) {
        Operation *reader = use->getOwner();
        int64_t here = at(reader);
        // Near the previous read, or past the input's last read: keep.
        if (here - previous <= minDistance || inputAlive < here) {
          previous = here;
          continue;
        }
        OpBuilder b(body.findAncestorOpInBlock(*reader));
        IRMapping map;
        b.clone(*init, map);
        Operation *again = b.clone(*transpose, map);
        map.map(transpose.getResult().front(), again->getResult(0));
        for (Operation *view : views)
          b.clone(*view, map);
        use->set(map.lookup(use->get()));
        previous = here;
      }
    }
    // Views left without readers go.
    SmallVector<Operation *> dead;
    for (Operation &op : body)
      if (isView(&op) && op.use_empty())
        dead.push_back(&op);
    for (Operation *op : llvm::reverse(dead))
      if (op->use_empty())
        op->erase();
  }
};

} // namespace
