//===- DistinctResults.cpp - bpt-distinct-results ---------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Transforms/Passes.h"

#include "llvm/ADT/SmallPtrSet.h"

namespace bpt {
#define GEN_PASS_DEF_BPTDISTINCTRESULTS
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

struct BPTDistinctResultsPass final
    : bpt::impl::BPTDistinctResultsBase<BPTDistinctResultsPass> {
  void runOnOperation() override {
    WalkResult result = getOperation().walk([](func::ReturnOp ret) {
      llvm::SmallPtrSet<Value, 4> seen;
      OpBuilder b(ret);
      for (OpOperand &operand : ret->getOpOperands()) {
        Value value = operand.get();
        if (!isa<BaseMemRefType>(value.getType()) ||
            seen.insert(value).second)
          continue;
        auto type = dyn_cast<MemRefType>(value.getType());
        if (!type || !type.getLayout().isIdentity()) {
          ret.emitError() << "bpt-distinct-results: result "
                          << operand.getOperandNumber()
                          << " repeats an earlier result of type "
                          << value.getType()
                          << ", which cannot be copied into a buffer of its "
                             "own (needs a ranked memref with the identity "
                             "layout)";
          return WalkResult::interrupt();
        }
        SmallVector<Value> sizes;
        for (int64_t d = 0; d < type.getRank(); ++d)
          if (type.isDynamicDim(d))
            sizes.push_back(memref::DimOp::create(b, ret.getLoc(), value, d));
        Value copy = memref::AllocOp::create(b, ret.getLoc(), type, sizes);
        memref::CopyOp::create(b, ret.getLoc(), value, copy);
        operand.set(copy);
      }
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
