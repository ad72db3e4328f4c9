//===- KernelSet.h - from a model-level function to PTX + manifest -*- C++ -*-//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// What bpt-compile does, as a library: build model-level IR for given shapes,
// run bpt-blockwise and bpt-to-nvvm stage by stage, and turn the result into
// a kernel set: one PTX text and a manifest (JSON) that says which buffers to
// allocate and which kernels to launch, in order, with what grid.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_COMPILER_KERNELSET_H
#define BPT_COMPILER_KERNELSET_H

#include "bpt/Pipelines/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/JSON.h"

#include <optional>
#include <string>
#include <vector>

namespace bpt {

/// A model-level problem given by shapes (bpt-compile's flags).
struct ModelSpec {
  /// attention | attention_grad | ffn | block. attention_grad: the
  /// gradients alone, `attention_grad(q, k, v, o, dO, lse) -> (dq, dk, dv)`.
  std::string op = "attention";
  int64_t batch = 1, heads = 8, kvHeads = 0 /*= heads*/, seq = 1024,
          kvSeq = 0 /*= seq*/, headDim = 64, hidden = 0, ffn = 0;
  std::string activation = "gelu";
  std::string norm = "rms_norm";
  std::string dtype = "bf16";
  bool causal = false;
  /// attention only: the forward with its log-sum-exp and the gradients,
  /// one function `attention_backward(q, k, v, dO) -> (o, lse, dq, dk, dv)`.
  bool backward = false;
  /// block with backward only: rows per query chunk of the block's
  /// backward (bpt-build-backward's query-chunk); 0: the whole sequence.
  int64_t queryChunk = 0;
  /// attention only: the forward that also returns its log-sum-exp,
  /// `attention(q, k, v) -> (o, lse)` (what a training step saves for
  /// attention_grad).
  bool lse = false;
  /// The attention ops' softmax scale; 0: 1/sqrt(head_dim).
  double scale = 0;
};

/// Checks `spec`, fills its defaults, and builds the model-level module (one
/// public function named after the op, its inputs in the manifest's order)
/// with the bpt builders. On an invalid combination, returns the message
/// naming the flag and the limit.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
buildModel(ModelSpec &spec, mlir::MLIRContext &context);

/// Checks that each shape flag given on the command line (`given`, e.g.
/// "--head-dim", without values) affects a model of `spec.op`: --hidden on
/// an attention or --heads on an FFN would otherwise be ignored silently.
/// `fromFile`: the model comes from a .mlir file, which no shape flag
/// affects. The error names the flag and the ops it applies to.
llvm::Error checkShapeFlagsApply(const ModelSpec &spec,
                                 llvm::ArrayRef<std::string> given,
                                 bool fromFile);

/// Options of the whole compilation.
struct CompileOptions {
  /// The target chip and the kernel tilings a user pinned (bpt-compile's
  /// --chip, --q-block, --sm90-*, --sm80-* flags or a --tuning file):
  /// what bpt-select-strategy decides from.
  StrategyOptions strategy;
  bool fuse = true;
  /// Training steps: the attention's query, key and value projections
  /// computed again where its gradient reads them (less memory, three GEMMs
  /// more); recorded in the manifest's options.
  bool recomputeProjections = false;
  std::string features = "+ptx80";
  /// The portable path's threads per block and shared memory per block
  /// (0: the chip's).
  int64_t threads = 256, sharedMemory = 0;
  /// The portable path's GEMMs through shared-memory tiles
  /// (bpt-tile-gemms); off: one thread per output element.
  bool tileGemms = true;
};

/// Sets every bpt-to-nvvm option from `options`.
void fillPipelineOptions(const CompileOptions &options, NVVMOptions &nvvm);

/// Lowers `module` in place up to and including `stage`: the registered
/// bpt-to-nvvm pipeline, cut after that stage.
/// The kernel paths a module's ops and loop nests take.
struct KernelPathsUsed {
  /// Some op takes the portable path.
  bool portable = false;
  /// The portable attention loops (tiled by --q-block / --kv-block, fused
  /// unless --no-fuse): the block sizes each uses (`bpt.q_block`,
  /// `bpt.kv_block`: the flags clamped to its sequences).
  std::vector<std::pair<int64_t, int64_t>> portableBlocks;
  /// mma.sync kernels: a forward attention (--sm80-q-block, -kv-block,
  /// -stages), a GEMM (an FFN, projection or gradient GEMM:
  /// --sm80-gemm-block-n), the attention backward (--sm80-grad-*).
  bool mmaSyncAttention = false, mmaSyncGemm = false,
       mmaSyncAttentionGrad = false;
  /// wgmma kernels: a forward attention (--sm90-kv-block, --sm90-stages;
  /// a block's too), a GEMM (--sm90-gemm-*). The attention backward's has a
  /// fixed tiling: no flag reaches it.
  bool wgmmaAttention = false, wgmmaGemm = false;
  /// A lone FFN on the wgmma GEMMs (--sm90-gemm-split: only its launches
  /// split a last wave).
  bool wgmmaFFN = false;
  /// Some op is cut into chunks of rows (--chunk-rows): a tensor-core FFN,
  /// block or ffn_grad.
  bool chunked = false;
};

/// The paths of `module`'s strategies: a copy is taken to the blockwise
/// stage and its `#bpt.strategy` attributes read, so that flags of a path
/// no op takes can be reported as having no effect. Failure: that stage
/// failed (its diagnostics were emitted).
mlir::FailureOr<KernelPathsUsed> kernelPathsUsed(mlir::ModuleOp module,
                                                 const CompileOptions &options);

mlir::LogicalResult lowerToStage(mlir::ModuleOp module, Stage stage,
                                 const CompileOptions &options);

/// A compiled kernel set.
struct KernelSet {
  std::string ptx;
  llvm::json::Object manifest;
};

/// The libdevice functions (`__nv_*`) that `ptx` declares `.extern` and
/// calls: math that bpt-math-to-intrinsics did not lower (it takes f32
/// only), left unlinked when MLIR's search (CUDA_ROOT, CUDA_HOME,
/// CUDA_PATH) found no CUDA toolkit. A driver refuses to load such PTX.
std::vector<std::string> unresolvedLibdeviceFunctions(llvm::StringRef ptx);

/// Compiles the single public function of a model-level module to a kernel
/// set. `ptxFileName` is recorded in the manifest.
mlir::FailureOr<KernelSet> compileKernelSet(mlir::ModuleOp module,
                                            const CompileOptions &options,
                                            llvm::StringRef ptxFileName);

} // namespace bpt

#endif // BPT_COMPILER_KERNELSET_H
