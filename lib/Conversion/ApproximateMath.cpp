//===- ApproximateMath.cpp - erf/tanh without libdevice ---------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace bpt {
#define GEN_PASS_DEF_BPTAPPROXIMATEMATH
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

struct BPTApproximateMathPass final
    : bpt::impl::BPTApproximateMathBase<BPTApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populatePolynomialApproximateErfPattern(patterns);
    populatePolynomialApproximateTanhPattern(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
