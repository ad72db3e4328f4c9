//===- ChunkLoops.h - row-wise work as loops over chunks --------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// The blockwise form of the row-wise work that the tensor-core paths run
// chunk by chunk: loops over chunks of rows (#bpt.chunk_loop) of a
// transformer block on the wgmma path (built by bpt-decompose-block) and of
// an FFN on a tensor-core path (built by bpt-chunk-ffn). The kernel
// conversions read them back and map each loop to a host loop of kernel
// launches. Each builder and its reader live side by side so that they
// cannot drift apart.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_TRANSFORMS_CHUNKLOOPS_H
#define BPT_TRANSFORMS_CHUNKLOOPS_H

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace bpt {

/// The tensor that `rows` ([rows, N]) views: the source of the
/// collapse_shape that flattened it, else `rows` itself.
mlir::Value unflattened(mlir::Value rows);

/// Replaces `op` (whose strategy has `chunk_rows`, `q_block` and
/// `kv_block`) by its chunk loops:
///
///   kv_projection, per chunk: h = norm1(x[chunk]); K[chunk] = h Wk;
///                             V[chunk] = h Wv
///   block, per chunk:         h = norm1(x[chunk]); q = h Wq
///                             a = attention(q, K[seq], V[seq]), causal
///                                 diagonal at the chunk's position
///                             y1 = x[chunk] + a Wo; h2 = norm2(y1)
///                             out[chunk] = y1 + ffn(h2)
///
/// over x viewed as [batch × seq, hidden]. A chunk lies in one sequence
/// (chunk_rows divides the sequence length). Both loops carry the strategy.
void buildBlockChunkLoops(mlir::RewriterBase &rewriter, TransformerBlockOp op,
                          StrategyAttr strategy);

/// One attention of a block expanded by query chunks: its queries are rows
/// [firstRow, firstRow + its query length) of the block's sequence.
struct QueryChunkAttention {
  AttentionOp op;
  int64_t firstRow;
};

/// Expands one bpt.transformer_block into its primitives by query chunks of
/// `chunkRows` rows (the last may be shorter), replacing it with the
/// chunks' outputs concatenated along the sequence: the first norm, the
/// keys and the values over the whole sequence, everything else per chunk
/// on its rows, each chunk's attention against the keys its queries see.
/// Returns the chunks' attentions in order. This is the forward whose
/// reverse sweep (bpt-build-backward's `query-chunk`) is the fused
/// blockwise backward.
llvm::SmallVector<QueryChunkAttention> decomposeTransformerBlockInQueryChunks(
    mlir::RewriterBase &rewriter, TransformerBlockOp op, int64_t chunkRows);

/// A `#bpt.chunk_loop<block>` loop and its `kv_projection` loop, read back
/// as the pieces of the block they compute.
struct BlockChunkLoops {
  mlir::scf::ForallOp kvLoop, blockLoop;
  /// The block's input as [rows, hidden], and its output as the block
  /// loop's single user that restores [batch, seq, hidden] (or null).
  mlir::Value inputRows;
  mlir::tensor::ExpandShapeOp output;
  /// bpt.layer_norm or bpt.rms_norm.
  mlir::Operation *norm1, *norm2;
  LinearOp keyProjection, valueProjection, queryProjection, outputProjection;
  /// The attention nest in the block loop's body.
  mlir::scf::ForallOp attention;
  FFNOp ffn;
  int64_t chunkRows, seq, heads, kvHeads, headDim;

  /// Reads `blockLoop` and the loop that computes its keys and values.
  /// Fails, with an error on the loop, when their bodies are not the
  /// pieces above in that order, each reading the one before: a loop the
  /// kernels would not compute exactly.
  static mlir::FailureOr<BlockChunkLoops> match(mlir::scf::ForallOp blockLoop);
};

/// Replaces `op` (whose strategy has `chunk_rows`) by a loop over the
/// whole chunks of `chunk_rows` rows of its input viewed as [rows, hidden],
/// with a `bpt.ffn` of the chunk in its body (#bpt.chunk_loop<ffn>,
/// carrying the strategy). Rows past the last whole chunk are the tail: a
/// `bpt.ffn` of those rows after the loop (the strategy, with the tail's
/// rows as its one chunk), inserted into the loop's result.
void buildFFNChunkLoop(mlir::RewriterBase &rewriter, FFNOp op,
                       StrategyAttr strategy);

/// Whether `op` is the tail of an FFN chunk loop: its one use inserts it
/// into the loop's result (FFNChunkLoop::match checks the rest).
bool isFFNChunkTail(FFNOp op);

/// A `#bpt.chunk_loop<ffn>` loop read back.
struct FFNChunkLoop {
  mlir::scf::ForallOp loop;
  /// The FFN's input as [rows, hidden], and the loop's single user that
  /// restores the input's shape (or null).
  mlir::Value inputRows;
  mlir::tensor::ExpandShapeOp output;
  /// The FFN of one chunk.
  FFNOp ffn;
  int64_t chunkRows;
  /// The tail, where the chunks leave rows: its FFN and its insertion into
  /// the loop's result (else null).
  FFNOp tail;
  mlir::tensor::InsertSliceOp tailInsert;

  /// The loop's whole chunks, and the tail's rows (0 without one).
  int64_t wholeChunks() { return loop.getStaticUpperBound()[0]; }
  int64_t tailRows() {
    return tail ? mlir::cast<mlir::RankedTensorType>(tail.getType())
                      .getDimSize(0)
                : 0;
  }

  /// The type of what the loop computes: the FFN's input's.
  mlir::RankedTensorType resultType() {
    return mlir::cast<mlir::RankedTensorType>(
        output ? output.getType() : inputRows.getType());
  }
  /// Replaces the loop (its tail and `output`) by `result`, and erases
  /// them.
  void replaceWith(mlir::Value result);

  /// Reads `loop`; fails, with an error on it, unless its body is one
  /// bpt.ffn of a chunk of rows, stored at the chunk's rows, and the rows
  /// past the whole chunks (fewer than a chunk) are its tail's.
  static mlir::FailureOr<FFNChunkLoop> match(mlir::scf::ForallOp loop);
};

} // namespace bpt

#endif // BPT_TRANSFORMS_CHUNKLOOPS_H
