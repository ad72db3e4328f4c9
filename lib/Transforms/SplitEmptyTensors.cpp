//===- SplitEmptyTensors.cpp - bpt-split-empty-tensors ----------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace bpt {
#define GEN_PASS_DEF_BPTSPLITEMPTYTENSORS
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

struct BPTSplitEmptyTensorsPass final
    : bpt::impl::BPTSplitEmptyTensorsBase<BPTSplitEmptyTensorsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    // Only the host program's: empty tensors of the function body used by
    // ops of the function body (inside a loop nest, which becomes a kernel,
    // they are tiles whose sharing the analysis gets right; splitting them
    // would only cost shared memory).
    Block &body = func.getBody().front();
    // A snapshot: the clones, placed further down, are not visited again.
    for (auto op : llvm::to_vector(body.getOps<tensor::EmptyOp>())) {
      SmallVector<OpOperand *> uses;
      for (OpOperand &use : op->getUses())
        if (use.getOwner()->getBlock() == &body)
          uses.push_back(&use);
      // Each such use gets a clone of its own just before it: the buffer
      // it becomes then lives from there, not from wherever CSE left the
      // shared op (the top of a long training function, say).
      OpBuilder b(op);
      for (OpOperand *use : uses) {
        b.setInsertionPoint(use->getOwner());
        use->set(b.clone(*op)->getResult(0));
      }
      if (op->use_empty())
        op->erase();
    }
  }
};

} // namespace
