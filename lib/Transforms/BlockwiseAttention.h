//===- BlockwiseAttention.h - blockwise attention builder -------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// The one place that knows how to emit blockwise (online-softmax) attention
// for one query block. bpt-tile-attention wraps it in a parallel loop over
// (batch, head, query block); bpt-fuse-ffn-residual wraps it in a loop over
// (batch, query block) with the heads inside, followed by the fused
// position-wise consumers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_TRANSFORMS_BLOCKWISEATTENTION_H
#define BPT_LIB_TRANSFORMS_BLOCKWISEATTENTION_H

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

namespace bpt::detail {

/// Static facts of one bpt.attention and the block sizes used to tile it.
struct AttentionTiling {
  int64_t batch, qHeads, kvHeads, qSeq, kvSeq, headDim;
  /// Block sizes, clamped to the sequence lengths.
  int64_t qBlock, kvBlock;
  bool causal;
  double scale;
  mlir::Type elementType;
  /// Where query row 0 sits among the keys: with `causal`, key j is visible
  /// to query row i iff j <= i + queryOffset. Null means bottom-right
  /// alignment, kvSeq - qSeq; a chunk of a sequence passes its position.
  mlir::Value queryOffset;
  /// Also produce each row's log-sum-exp ([B, Hq, Sq] in f32).
  bool withLSE = false;
  /// Query heads packed as the rows of one tile (a split-K/V nest packs
  /// the heads of a key/value group): the tile has packedHeads × qBlock
  /// rows, row r at query position q0 + r % qBlock.
  int64_t packedHeads = 1;

  /// Reads the shapes of `op` and clamps the requested block sizes (which
  /// must be positive) to its sequence lengths.
  static AttentionTiling get(AttentionOp op, int64_t qBlock, int64_t kvBlock);
  /// The same for the gradient of an attention.
  static AttentionTiling get(AttentionGradOp op, int64_t qBlock,
                             int64_t kvBlock);
  /// From the query and key types and the attention's attributes.
  static AttentionTiling get(mlir::RankedTensorType query,
                             mlir::RankedTensorType key, bool causal,
                             double scale, int64_t qBlock, int64_t kvBlock);

  int64_t numQueryBlocks() const { return (qSeq + qBlock - 1) / qBlock; }
  int64_t numKeyBlocks() const { return (kvSeq + kvBlock - 1) / kvBlock; }
  int64_t tileRows() const { return packedHeads * qBlock; }
  bool raggedQuery() const { return qSeq % qBlock != 0; }
  bool raggedKV() const { return kvSeq % kvBlock != 0; }
};

/// The tiles of one query block: the output, and with `withLSE` the rows'
/// log-sum-exp (`tensor<qBlock x f32>`).
struct QueryBlockTiles {
  mlir::Value out, lse;
};

/// Emits, at the builder's insertion point, the attention output of query
/// rows [q0, q0 + qBlock) of query head `head` in batch `batch`: a
/// `tensor<qBlock x headDim x elementType>`, computed block by block over the
/// keys with an online softmax (running max, running sum and an fp32
/// accumulator carried through `scf.for`). Rows past the end of a ragged
/// query block hold padding, to be dropped by the caller.
QueryBlockTiles buildAttentionQueryBlock(mlir::OpBuilder &builder,
                                     mlir::Location loc,
                                     const AttentionTiling &tiling,
                                     mlir::Value query, mlir::Value key,
                                     mlir::Value value, mlir::Value batch,
                                     mlir::Value head, mlir::Value q0);

/// Emits, at the builder's insertion point, the blockwise nest of one
/// attention of query `[B, Hq, Sq, D]`, key and value `[B, Hkv, Skv, D]`:
/// an `scf.forall` over (batch, query head, query block) whose body runs
/// buildAttentionQueryBlock, tagged `bpt.nest` and with its block sizes.
/// The nest's results are the attention's output and, with `withLSE`, its
/// log-sum-exp.
mlir::scf::ForallOp buildAttentionNest(mlir::OpBuilder &builder,
                                       mlir::Location loc,
                                       const AttentionTiling &tiling,
                                       mlir::Value query, mlir::Value key,
                                       mlir::Value value);

/// Emits, at the builder's insertion point, the split-K/V form of one
/// attention (decode and short queries; `tiling` has qBlock = qSeq and
/// packedHeads = Hq / Hkv): an `scf.forall` over (batch, key/value head,
/// split) whose body packs the group's query rows as one tile and runs
/// the online softmax over the split's key blocks only, writing the tile
/// normalised in f32 and its rows' log-sum-exp; then an `scf.forall` over
/// (batch, query head, query row) that combines the splits. Both are
/// tagged #bpt.split_kv_nest; the combine nest's result is the attention's
/// output.
struct SplitKVNests {
  mlir::scf::ForallOp partials, combine;
};
SplitKVNests buildSplitKVAttention(mlir::OpBuilder &builder,
                                          mlir::Location loc,
                                          const AttentionTiling &tiling,
                                          int64_t kvSplits, mlir::Value query,
                                          mlir::Value key, mlir::Value value);

/// row + the causal diagonal's offset + extra: the last key visible to query
/// row `row`, plus `extra`.
mlir::Value causalLimit(mlir::OpBuilder &builder, mlir::Location loc,
                        const AttentionTiling &tiling, mlir::Value row,
                        int64_t extra);

/// Inside a linalg.generic over a [query, key] tile at rows q0 and keys
/// kv0: whether the key is visible to the row (a real key, and on or below
/// the causal diagonal; with `maskRows`, a real row too). Null where every
/// key is visible.
mlir::Value visibleInTile(mlir::OpBuilder &builder, mlir::Location loc,
                          const AttentionTiling &tiling, mlir::Value q0,
                          mlir::Value kv0, bool maskRows);

/// Causal: the number of key blocks whose keys every row of the query block
/// at `q0` sees, and the end of those any of its valid rows sees.
mlir::Value causalFullKeyBlocks(mlir::OpBuilder &builder, mlir::Location loc,
                                const AttentionTiling &tiling, mlir::Value q0);
mlir::Value causalKeyBlockEnd(mlir::OpBuilder &builder, mlir::Location loc,
                              const AttentionTiling &tiling, mlir::Value q0);

/// Returns rows [row0, row0 + rows) of `source` (`[lead..., S, N]`) at the
/// leading indices `lead`, copied into a static `tensor<rows x N>` of its
/// own (on the GPU, a shared-memory tile). With `ragged`, rows past S are
/// zero (the valid slice is copied into a zeroed tile).
mlir::Value extractRowBlock(mlir::OpBuilder &builder, mlir::Location loc,
                            mlir::Value source, mlir::ValueRange lead,
                            mlir::Value row0, int64_t rows, bool ragged);

/// The number of valid rows of a block starting at `row0` in a sequence of
/// `total` rows: min(rows, total - row0).
mlir::Value validRows(mlir::OpBuilder &builder, mlir::Location loc,
                      mlir::Value row0, int64_t rows, int64_t total);

} // namespace bpt::detail

#endif // BPT_LIB_TRANSFORMS_BLOCKWISEATTENTION_H
