//===- BlockPieces.h - pieces of a transformer block ------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// What the two expansions of bpt.transformer_block (into bpt ops, and into
// chunk loops) build alike.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_TRANSFORMS_BLOCKPIECES_H
#define BPT_LIB_TRANSFORMS_BLOCKPIECES_H

#include "bpt/Dialect/BPTOps.h"

#include "mlir/IR/Builders.h"

namespace bpt::detail {

/// Permutation between [B, S, heads, D] and [B, heads, S, D]; it is its own
/// inverse.
constexpr int64_t kSwapSeqAndHeads[] = {0, 2, 1, 3};

/// The block's normalisation (its kind and epsilon) of `x`.
inline mlir::Operation *buildBlockNorm(mlir::OpBuilder &b, mlir::Location loc,
                                       TransformerBlockOp block, mlir::Value x,
                                       mlir::Value weight, mlir::Value bias) {
  if (block.getNorm() == NormKind::layer_norm)
    return LayerNormOp::create(b, loc, x.getType(), x, weight, bias,
                               block.getEpsilonAttr());
  return RMSNormOp::create(b, loc, x.getType(), x, weight,
                           block.getEpsilonAttr());
}

} // namespace bpt::detail

#endif // BPT_LIB_TRANSFORMS_BLOCKPIECES_H
