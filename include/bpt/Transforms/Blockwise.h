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

#include "mlir/IR/Builders.h"

namespace bpt {

/// Emits, at the builder's insertion point, the blockwise form of `op`: an
/// `scf.forall` over (batch, query head, query block) whose body runs the
/// online softmax over key/value blocks. Returns the value replacing `op`'s
/// result; `op` itself is left in place. Block sizes must be positive; they
/// are clamped to the sequence lengths.
mlir::Value tileAttention(mlir::OpBuilder &builder, AttentionOp op,
                          int64_t qBlock, int64_t kvBlock);

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

/// Records the block sizes on a blockwise loop (`bpt.q_block`,
/// `bpt.kv_block`), for later stages and for readers of the IR.
void setBlockSizeAttrs(mlir::Operation *loop, int64_t qBlock, int64_t kvBlock);

} // namespace bpt

#endif // BPT_TRANSFORMS_BLOCKWISE_H
