//===- LowerTensorMapArgs.cpp - tensor-map kernel args as pointers -*- C++ -*-//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

namespace bpt {
#define GEN_PASS_DEF_BPTLOWERTENSORMAPARGS
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

struct BPTLowerTensorMapArgsPass final
    : bpt::impl::BPTLowerTensorMapArgsBase<BPTLowerTensorMapArgsPass> {
  void runOnOperation() override {
    auto pointer = LLVM::LLVMPointerType::get(&getContext());
    for (auto func : getOperation().getOps<gpu::GPUFuncOp>()) {
      if (func.isExternal())
        continue;
      Block &entry = func.getBody().front();
      OpBuilder b = OpBuilder::atBlockBegin(&entry);
      SmallVector<Type> inputs;
      for (BlockArgument arg : entry.getArguments()) {
        if (!isa<nvgpu::TensorMapDescriptorType>(arg.getType())) {
          inputs.push_back(arg.getType());
          continue;
        }
        Type original = arg.getType();
        arg.setType(pointer);
        auto cast = UnrealizedConversionCastOp::create(b, func.getLoc(),
                                                       original, arg);
        arg.replaceAllUsesExcept(cast.getResult(0), cast);
        inputs.push_back(pointer);
      }
      func.setFunctionType(FunctionType::get(
          &getContext(), inputs, func.getFunctionType().getResults()));
    }
  }
};

} // namespace
