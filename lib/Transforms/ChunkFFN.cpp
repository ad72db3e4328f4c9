//===- ChunkFFN.cpp - tensor-core FFNs as chunk loops -----------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Dialect/BPTOps.h"
#include "bpt/Transforms/ChunkLoops.h"
#include "bpt/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace bpt {
#define GEN_PASS_DEF_BPTCHUNKFFN
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;

namespace {

struct BPTChunkFFNPass final : bpt::impl::BPTChunkFFNBase<BPTChunkFFNPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<FFNOp> ops;
    getOperation().walk([&](FFNOp op) {
      StrategyAttr strategy = StrategyAttr::get(op);
      // A chunk loop's tail is a chunk already.
      if (strategy && strategy.getPath() != KernelPath::portable &&
          !StrategyAttr::getEnclosing(op) && !isFFNChunkTail(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (FFNOp op : ops) {
      StrategyAttr strategy = StrategyAttr::get(op);
      auto type = cast<RankedTensorType>(op.getType());
      int64_t rows = type.getNumElements() / type.getShape().back();
      int64_t chunk = strategy.getChunkRows();
      if (chunk < 1 || chunk > rows) {
        op.emitError() << "bpt-chunk-ffn: strategy " << strategy
                       << " has chunks of " << chunk << " rows, not 1 to its "
                       << rows << " rows";
        return signalPassFailure();
      }
      buildFFNChunkLoop(rewriter, op, strategy);
    }
  }
};

} // namespace
