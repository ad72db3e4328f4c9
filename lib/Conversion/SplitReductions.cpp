//===- SplitReductions.cpp - bpt-split-reductions ---------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// A portable launch runs one thread per output element of a linalg op, so a
// long reduction into few outputs (the norm gradients' row and channel
// sums) leaves most of the GPU idle: split it into partial sums and a short
// final reduction (linalg::splitReduction, on tensors).
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace bpt {
#define GEN_PASS_DEF_BPTSPLITREDUCTIONS
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

struct BPTSplitReductionsPass final
    : bpt::impl::BPTSplitReductionsBase<BPTSplitReductionsPass> {
  using Base::Base;

  /// The split for `op`: a ratio of 0 leaves it alone.
  linalg::SplitReductionOptions chooseSplit(linalg::LinalgOp op) {
    linalg::SplitReductionOptions none;
    if (op.getNumDpsInits() != 1 || op.getNumReductionLoops() != 1 ||
        !op.hasPureTensorSemantics())
      return none;
    SmallVector<unsigned> reductions;
    op.getReductionDims(reductions);
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    int64_t length = ranges[reductions.front()];
    int64_t parallel = 1;
    for (auto [i, range] : llvm::enumerate(ranges)) {
      if (ShapedType::isDynamic(range))
        return none;
      if (i != reductions.front())
        parallel *= range;
    }
    int64_t ratio = 1;
    while (parallel * ratio < minParallelism && length % (2 * ratio) == 0 &&
           length / (2 * ratio) >= minElements)
      ratio *= 2;
    if (ratio == 1)
      return none;
    linalg::SplitReductionOptions split;
    split.ratio = ratio;
    // A reduction along the innermost loop is a row's: split it as
    // [length / ratio, ratio] with the partials innermost, so that
    // neighbouring threads read neighbouring elements. Over an outer loop
    // (rows), the partials go first and the columns stay innermost.
    bool innermost = reductions.front() == ranges.size() - 1;
    split.innerParallel = innermost;
    // Where the partials' dimension goes in the intermediate result.
    split.index =
        innermost ? cast<ShapedType>(op.getDpsInits()[0].getType()).getRank()
                  : 0;
    return split;
  }

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    if (minParallelism < 1 || minElements < 1) {
      func.emitError() << "bpt-split-reductions: options min-parallelism and "
                          "min-elements must be positive";
      return signalPassFailure();
    }
    // The host program's ops only: a loop nest's body is one kernel.
    SmallVector<linalg::LinalgOp> candidates;
    for (Operation &op : func.getBody().front())
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
        if (chooseSplit(linalgOp).ratio > 1)
          candidates.push_back(linalgOp);
    IRRewriter rewriter(&getContext());
    for (linalg::LinalgOp op : candidates) {
      rewriter.setInsertionPoint(op);
      // An op whose combiner splitReduction does not recognise stays.
      (void)linalg::splitReduction(
          rewriter, op, [&](linalg::LinalgOp o) { return chooseSplit(o); });
    }
  }
};

} // namespace
