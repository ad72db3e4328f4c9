//===- Blockwise.h - blockwise rewrites as functions ------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// The rewrites behind bpt-tile-attention and bpt-fuse-ffn-residual, callable
// on single ops by an embedding compiler.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_TRANSFORMS_BLOCKWISE_H
#define BPT_TRANSFORMS_BLOCKWISE_H

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

namespace bpt {

/// Emits, at the builder's insertion point, the blockwise form of `op`: an
/// `scf.forall` over (batch, query head, query block) whose body runs the
/// online softmax over key/value blocks, tagged `bpt.nest` (and with the
/// op's `bpt.strategy`, if it has one) so that a kernel conversion can take
/// the whole nest. Returns the value replacing `op`'s
/// result; `op` itself is left in place. Block sizes must be positive; they
/// are clamped to the sequence lengths.
mlir::Value tileAttention(mlir::OpBuilder &builder, AttentionOp op,
                          int64_t qBlock, int64_t kvBlock);

/// The same, returning the nest: its results replace all of `op`'s (the
/// output, and the log-sum-exp where `op` returns it).
mlir::scf::ForallOp tileAttentionNest(mlir::OpBuilder &builder, AttentionOp op,
                                      int64_t qBlock, int64_t kvBlock);

/// The gradients the blockwise form of a bpt.attention_grad computes.
struct AttentionGradResults {
  mlir::Value dq, dk, dv;
};

/// Emits, at the builder's insertion point, the blockwise form of `op`: the
/// row sums D = rowsum(dO ∘ O), an `scf.forall` over (batch, key/value
/// head, key block) that accumulates dK and dV over the query heads of the
/// group and the query blocks that see the key block (recomputing P from
/// the saved log-sum-exp), and an `scf.forall` over (batch, query head,
/// query block) that accumulates dQ over the key blocks it sees.
/// Deterministic: every gradient tile is written by one iteration, its sums
/// in a fixed order. Both nests are tagged #bpt.attention_grad_nest and
/// carry `op`'s strategy, if any. `op` itself is left in place.
AttentionGradResults tileAttentionGrad(mlir::OpBuilder &builder,
                                       AttentionGradOp op, int64_t qBlock,
                                       int64_t kvBlock);

/// Moves the position-wise consumers of `op`'s head-merged output (output
/// projection, residuals, norms, FFN, ...) into a loop over (batch, query
/// block) that computes all heads of the attention per query block. On
/// success the attention, the head merge and the consumers are replaced and
/// erased. On failure nothing changes, and a remark on `op` says why.
mlir::LogicalResult fuseAttentionConsumers(mlir::OpBuilder &builder,
                                           AttentionOp op, int64_t qBlock,
                                           int64_t kvBlock);

/// Checks block-size options, reporting on `anchor` for pass `pass`.
mlir::LogicalResult verifyBlockSizes(mlir::Operation *anchor,
                                     llvm::StringRef pass, int64_t qBlock,
                                     int64_t kvBlock);

/// Remarks at `loc`, for an op on the portable path (`strategy` portable or
/// null), that a block size larger than its sequence is clamped to it.
void remarkClampedBlockSizes(mlir::Location loc, StrategyAttr strategy,
                             llvm::StringRef pass, int64_t qBlock,
                             int64_t kvBlock, int64_t qSeq, int64_t kvSeq);

/// The block sizes to tile `op` (an attention or its gradient) with: its
/// strategy's `q_block` and `kv_block` where it records them, else `qBlock`
/// and `kvBlock`. With `portableOnly`, {0, 0} for an op whose strategy is a
/// tensor-core path (which only bpt-tile-attention tiles, as a nest of its
/// own).
std::pair<int64_t, int64_t> blockSizesOf(mlir::Operation *op, int64_t qBlock,
                                         int64_t kvBlock,
                                         bool portableOnly = true);

/// Records the block sizes on a blockwise loop (`bpt.q_block`,
/// `bpt.kv_block`), for later stages and for readers of the IR.
void setBlockSizeAttrs(mlir::Operation *loop, int64_t qBlock, int64_t kvBlock);

} // namespace bpt

#endif // BPT_TRANSFORMS_BLOCKWISE_H
