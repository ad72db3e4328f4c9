//===- AttentionNest.h - blockwise attention nests as kernels ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The tensor-core attention conversions lower the blockwise loop nest that
// bpt-tile-attention builds (an scf.forall over batch, query head and query
// block, tagged #bpt.attention_nest and #bpt.strategy), not the model-level
// op: the nest's parallel loop becomes the kernel's grid, its key/value
// loop the kernel's pipeline, with the tiling the strategy recorded. This
// is what they need to know of a nest.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_ATTENTIONNEST_H
#define BPT_LIB_CONVERSION_ATTENTIONNEST_H

#include "AttentionGradKernels.h"
#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"

namespace bpt {

/// Fills an attention kernel configuration's shapes from the query [B, Hq,
/// Sq, D] and key [B, Hkv, Skv, D] types, and its element type.
template <typename Config>
void fillAttentionShape(Config &config, mlir::RankedTensorType query,
                        mlir::RankedTensorType key) {
  llvm::ArrayRef<int64_t> q = query.getShape(), kv = key.getShape();
  config.batch = q[0];
  config.heads = q[1];
  config.seqQ = q[2];
  config.headDim = q[3];
  config.kvHeads = kv[1];
  config.seqKV = kv[2];
  config.bf16 = query.getElementType().isBF16();
}

/// Fills the fields every attention kernel configuration (forward or
/// backward) has: shapes (fillAttentionShape), causality, scale, and the
/// strategy's tiling.
template <typename Config>
void fillAttentionConfig(Config &config, mlir::RankedTensorType query,
                         mlir::RankedTensorType key, bool causal, double scale,
                         StrategyAttr strategy) {
  fillAttentionShape(config, query, key);
  config.causal = causal;
  config.scale = scale;
  config.blockM = strategy.getQBlock();
  config.blockN = strategy.getKvBlock();
  config.stages = strategy.getStages();
}

/// Replaces `loop` by one launch of `kernel` (`grid`, `threads` a block,
/// `sharedBytes` of dynamic shared memory) on `inputs` and fresh buffers
/// for the loop's results (the kernel's last arguments), named for the
/// manifest by `resultNames` where given; the results' users read the
/// buffers. Returns the buffers.
llvm::SmallVector<mlir::Value>
replaceLoopWithLaunch(mlir::OpBuilder &builder, mlir::scf::ForallOp loop,
                      mlir::gpu::GPUFuncOp kernel, llvm::ArrayRef<int64_t> grid,
                      int64_t threads, int64_t sharedBytes,
                      mlir::ValueRange inputs,
                      llvm::ArrayRef<llvm::StringRef> resultNames = {});

/// One blockwise attention nest, read back as the attention it computes.
struct AttentionNest {
  mlir::scf::ForallOp loop;
  /// The operands the nest reads its tiles from: [B, Hq, Sq, D] and
  /// [B, Hkv, Skv, D].
  mlir::TypedValue<mlir::RankedTensorType> query, key, value;
  bool causal;
  double scale;
  StrategyAttr strategy;
  /// The nest also returns the rows' log-sum-exp ([B, Hq, Sq] f32), the
  /// state a backward pass needs.
  bool withLSE = false;
  /// The partial nest of an attention split over its keys
  /// (#bpt.split_kv_nest<partial>): its results are the splits' rows in
  /// f32 ([B, Hkv, splits, Hq / Hkv × Sq, D]) and their log-sum-exp; the
  /// combine nest that reads them stays a loop. 0: not split.
  int64_t kvSplits = 0;

  mlir::RankedTensorType resultType() const { return query.getType(); }

  /// Reads `loop` (tagged bpt.nest): the query, key and value are the
  /// tensors its first key/value step's two products read (Q·Kᵀ, then
  /// P·V), traced back through tile copies to values defined above it; its
  /// results are the output and, optionally, the log-sum-exp (or, for a
  /// split partial nest, the partial rows and their log-sum-exp).
  /// Fails, with an error on the loop, when the nest does not have that
  /// shape.
  static mlir::FailureOr<AttentionNest> match(mlir::scf::ForallOp loop);

  /// Fills the problem fields every attention kernel configuration has
  /// (shapes, causality, scale, element type) and the strategy's tiling.
  template <typename Config>
  void fillConfig(Config &config) const {
    fillAttentionConfig(config, query.getType(), key.getType(), causal, scale,
                        strategy);
  }

  /// Replaces the nest by a launch of `kernel` on `grid` x `threads` with
  /// `sharedBytes` of dynamic shared memory and `inputs` followed by fresh
  /// buffers for the nest's results (the kernel's last arguments: the
  /// output, then the log-sum-exp when the nest has it): the launch
  /// bookkeeping both tensor-core attention kernels share.
  /// `resultNames` name the fresh buffers for the manifest (workspace).
  /// Returns the buffers.
  llvm::SmallVector<mlir::Value> replaceWithLaunch(mlir::OpBuilder &builder, mlir::gpu::GPUFuncOp kernel,
                         llvm::ArrayRef<int64_t> grid, int64_t threads,
                         int64_t sharedBytes, mlir::ValueRange inputs,
                         llvm::ArrayRef<llvm::StringRef> resultNames = {});
};

/// The two nests of one attention backward, read back as what they compute.
struct AttentionGradNests {
  mlir::scf::ForallOp keyValue, query;
  mlir::TypedValue<mlir::RankedTensorType> q, k, v, outputGrad, lse, rowDots;
  /// The pre-pass D = rowsum(dO ∘ O) and the O it reads.
  mlir::Operation *rowDotsOp;
  mlir::TypedValue<mlir::RankedTensorType> output;
  bool causal;
  double scale;
  StrategyAttr strategy;

  /// Reads the key/value nest `keyValue` (tagged
  /// #bpt.attention_grad_nest<key_value>) and its sibling query nest.
  /// Fails, with an error on the loop, when they do not have that shape.
  static mlir::FailureOr<AttentionGradNests> match(mlir::scf::ForallOp keyValue);

  template <typename Config>
  void fillConfig(Config &config) const {
    fillAttentionConfig(config, q.getType(), k.getType(), causal, scale,
                        strategy);
  }

  /// The buffers of a tensor-core backward's kernels beside its operands:
  /// the f32 row sums D = rowsum(dO ∘ O) ([B, Hq, Sq]) and dQ accumulator
  /// ([B, Hq, Sq, D]), named "delta" and "dq_accumulator" for the
  /// manifest; with `paddedSeqQ`, their Sq rows a head become that many (a
  /// ragged Sq in whole query blocks) and "lse_padded", lse's copy in those
  /// rows, is the `lse` the kernel reads instead of lse.
  struct Workspaces {
    mlir::Value rowDots, accumulator, lse;
  };
  /// Allocates them and launches the pre-pass (AttentionGradKernels.h),
  /// `kernel` building it: at `b` as one kernel; or, where
  /// model-level work runs between the point where dO, O and lse exist and
  /// the nests (the block step, which may recompute q, k and v there), D
  /// from that point, so that O dies early, and the zeroing at `b`.
  Workspaces emitPrepare(
      mlir::OpBuilder &b, int64_t paddedSeqQ,
      llvm::function_ref<mlir::gpu::GPUFuncOp(codegen::PrepareWork)> kernel);

  /// Replaces both nests' results by the buffers `dQ`, `dK` and `dV` (as
  /// tensors, at `b`) and erases the nests and the pre-pass they made dead.
  void replaceWith(mlir::OpBuilder &b, mlir::Value dQ, mlir::Value dK,
                   mlir::Value dV);
};

/// The key/value nests of attention backwards in `module` whose strategy
/// takes `path`, in order.
llvm::SmallVector<mlir::scf::ForallOp>
collectAttentionGradNests(mlir::ModuleOp module, KernelPath path);

/// Follows a tile back through the copies and reshapes that made it
/// (extract_slice, insert_slice into a padded tile, linalg.copy,
/// expand_shape, collapse_shape) to the value defined above `nest` it was
/// read from, or null.
mlir::Value traceToOperand(mlir::Value tile, mlir::Operation *nest);

/// The attention nests in `module` whose strategy takes `path`, in order
/// (the partial nests of attentions split over their keys among them).
llvm::SmallVector<mlir::scf::ForallOp>
collectAttentionNests(mlir::ModuleOp module, KernelPath path);

} // namespace bpt

#endif // BPT_LIB_CONVERSION_ATTENTIONNEST_H
