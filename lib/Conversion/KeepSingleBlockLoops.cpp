//===- KeepSingleBlockLoops.cpp - bpt-keep-single-block-loops ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "mlir/IR/BuiltinTypeInterfaces.h"

namespace bpt {
#define GEN_PASS_DEF_BPTKEEPSINGLEBLOCKLOOPS
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

/// Whether every dimension of `loop` has static bounds and one iteration.
bool hasSingleIteration(scf::ForallOp loop) {
  for (auto [lb, ub, step] :
       llvm::zip(loop.getStaticLowerBound(), loop.getStaticUpperBound(),
                 loop.getStaticStep())) {
    if (ShapedType::isDynamic(lb) || ShapedType::isDynamic(ub) ||
        ShapedType::isDynamic(step) || step < 1 || ub <= lb ||
        uint64_t(ub) - uint64_t(lb) > uint64_t(step))
      return false;
  }
  return true;
}

struct BPTKeepSingleBlockLoopsPass final
    : bpt::impl::BPTKeepSingleBlockLoopsBase<BPTKeepSingleBlockLoopsPass> {
  void runOnOperation() override {
    if (getOperation().isExternal())
      return;
    MLIRContext *ctx = &getContext();
    constexpr int64_t kLinearDims = 10; // gpu::MappingId::LinearDim0..9
    for (auto loop : getOperation().getBody().getOps<scf::ForallOp>()) {
      // The canonicalizer leaves mapped loops alone: that is the point.
      if (loop.getMapping() || !hasSingleIteration(loop) ||
          loop.getRank() > kLinearDims)
        continue;
      SmallVector<Attribute> mapping;
      for (int64_t i = 0; i < loop.getRank(); ++i)
        mapping.push_back(gpu::GPUBlockMappingAttr::get(
            ctx, static_cast<gpu::MappingId>(
                     static_cast<uint64_t>(gpu::MappingId::LinearDim0) + i)));
      loop.setMappingAttr(ArrayAttr::get(ctx, mapping));
    }
  }
};

} // namespace
