//===- BlockToSM80.cpp - bpt.transformer_block on mma.sync chips -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// On chips without wgmma there is no chunked block kernel sequence (that is
// bpt-block-to-sm90); instead an eligible block is expanded into its
// primitives here, at the model level, so that the mma.sync passes take its
// attention, FFN and projections (bpt-attention-to-sm80, bpt-ffn-to-sm80,
// bpt-linear-to-sm80) and the portable path only its norms, head transposes
// and residual additions. Neither an S x S nor an S x ffn buffer appears:
// the attention kernel is blockwise and the FFN chunked.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "bpt/Dialect/BPTOps.h"
#include "bpt/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "llvm/Support/FormatVariadic.h"

namespace bpt {
#define GEN_PASS_DEF_BPTBLOCKTOSM80
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;

namespace {

/// Why the expanded `op` would not reach the mma.sync kernels, or nothing.
std::optional<std::string> checkEligible(TransformerBlockOp op) {
  auto xType = op.getInput().getType();
  Type element = xType.getElementType();
  if (!element.isBF16() && !element.isF16()) {
    std::string name;
    llvm::raw_string_ostream(name) << element;
    return "element type " + name + " (the mma.sync path takes bf16 and f16)";
  }
  int64_t batch = xType.getDimSize(0), seq = xType.getDimSize(1);
  int64_t hidden = xType.getDimSize(2), headDim = op.getHeadDim();
  int64_t kvWidth = op.getKvHeadsAttr().getInt() * headDim;
  int64_t ffn = op.getWIn().getType().getDimSize(1);
  if (headDim != 64 && headDim != 128)
    return llvm::formatv("head dimension {0} (64 and 128 are supported)",
                         headDim)
        .str();
  if ((batch * seq) % 128 != 0)
    return llvm::formatv("{0} rows are not a multiple of 128", batch * seq)
        .str();
  if (hidden % 128 != 0 || kvWidth % 128 != 0 || ffn % 128 != 0)
    return llvm::formatv("hidden {0}, key/value width {1} and ffn {2} must be "
                         "multiples of 128",
                         hidden, kvWidth, ffn)
        .str();
  return std::nullopt;
}

struct BPTBlockToSM80Pass final
    : bpt::impl::BPTBlockToSM80Base<BPTBlockToSM80Pass> {
  void runOnOperation() override {
    SmallVector<TransformerBlockOp> ops;
    getOperation().walk([&](TransformerBlockOp op) { ops.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (TransformerBlockOp op : ops) {
      if (std::optional<std::string> why = checkEligible(op)) {
        op.emitRemark() << "transformer_block stays on the portable path: "
                        << *why;
        continue;
      }
      decomposeTransformerBlock(rewriter, op);
    }
  }
};

} // namespace
