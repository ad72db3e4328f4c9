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

namespace bpt {

/// A model-level problem given by shapes (bpt-compile's flags).
struct ModelSpec {
  std::string op = "attention"; ///< attention | ffn | block
  int64_t batch = 1, heads = 8, kvHeads = 0 /*= heads*/, seq = 1024,
          kvSeq = 0 /*= seq*/, headDim = 64, hidden = 0, ffn = 0;
  std::string activation = "gelu";
  std::string norm = "rms_norm";
  std::string dtype = "bf16";
  bool causal = false;
};

/// Checks `spec`, fills its defaults, and builds the model-level module (one
/// public function named after the op, its inputs in the manifest's order)
/// with the bpt builders. On an invalid combination, returns the message
/// naming the flag and the limit.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
buildModel(ModelSpec &spec, mlir::MLIRContext &context);

/// Options of the whole compilation.
struct CompileOptions {
  int64_t qBlock = 64, kvBlock = 64;
  bool fuse = true;
  std::string chip = "sm_90a", features = "+ptx80";
  /// The portable path's threads per block and shared memory per block
  /// (0: the chip's).
  int64_t threads = 256, sharedMemory = 0;
  /// Lower eligible ops to the chip's tensor-core kernels (sm_90a: wgmma
  /// for attention, FFN and block; sm_80 and later: mma.sync for
  /// attention); the rest take the portable path.
  bool tensorCores = true;
  /// Tiling of the sm_90a kernels (bpt-compile --sm90-*, or a --tuning
  /// file): rows per chunk of the FFN and block passes, the attention's
  /// key/value block and ring stages (0: chosen by the attention cost
  /// model), the GEMMs' tile width and stages (0: chosen per GEMM).
  int64_t chunkRows = 2048;
  int64_t attentionKvBlock = 0, attentionStages = 0;
  int64_t gemmBlockN = 0, gemmStages = 0;
  /// Tiling of the mma.sync attention (bpt-compile --sm80-*): query rows
  /// per thread block, key/value rows per block, K/V ring stages (0: chosen
  /// by the attention cost model).
  int64_t mmaSyncQBlock = 0, mmaSyncKvBlock = 0, mmaSyncStages = 0;
  /// The mma.sync GEMMs' tile columns (bpt-compile --sm80-gemm-block-n; 0:
  /// 256 where N allows).
  int64_t mmaSyncGemmBlockN = 0;
};

/// The bpt-select-strategy options that `options` stand for.
StrategyOptions strategyOptions(const CompileOptions &options);
/// Sets every bpt-to-nvvm option from `options`.
void fillPipelineOptions(const CompileOptions &options, NVVMOptions &nvvm);

/// Lowers `module` in place up to and including `stage`: the registered
/// bpt-to-nvvm pipeline, cut after that stage.
mlir::LogicalResult lowerToStage(mlir::ModuleOp module, Stage stage,
                                 const CompileOptions &options);

/// A compiled kernel set.
struct KernelSet {
  std::string ptx;
  llvm::json::Object manifest;
};

/// Compiles the single public function of a model-level module to a kernel
/// set. `ptxFileName` is recorded in the manifest.
mlir::FailureOr<KernelSet> compileKernelSet(mlir::ModuleOp module,
                                            const CompileOptions &options,
                                            llvm::StringRef ptxFileName);

} // namespace bpt

#endif // BPT_COMPILER_KERNELSET_H
