//===- ReadOnlyInputs.cpp - bpt-readonly-inputs -----------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Transforms/Passes.h"

namespace bpt {
#define GEN_PASS_DEF_BPTREADONLYINPUTS
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

struct BPTReadOnlyInputsPass final
    : bpt::impl::BPTReadOnlyInputsBase<BPTReadOnlyInputsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal() || func.isPrivate())
      return;
    auto readOnly = BoolAttr::get(&getContext(), false);
    for (BlockArgument arg : func.getArguments())
      if (isa<TensorType>(arg.getType()))
        func.setArgAttr(arg.getArgNumber(),
                        bufferization::BufferizationDialect::kWritableAttrName,
                        readOnly);
  }
};

} // namespace
