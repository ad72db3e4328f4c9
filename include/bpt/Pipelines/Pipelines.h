//===- Pipelines.h - bpt's named pass pipelines -----------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// bpt-blockwise: model level -> blockwise level (tiled attention, fused FFN).
// bpt-to-cpu:    blockwise level -> LLVM dialect for the host.
// bpt-to-nvvm:   blockwise level -> PTX kernels + host launch sequence.
// Both run on builtin.module, so `builtin.module(bpt-blockwise,bpt-to-cpu)`
// composes; each is built from named stages that tools can also run one at a
// time (e.g. to inspect the IR after bufferization).
//
//===----------------------------------------------------------------------===//

#ifndef BPT_PIPELINES_PIPELINES_H
#define BPT_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace bpt {

/// Options of bpt-blockwise.
struct BlockwiseOptions : mlir::PassPipelineOptions<BlockwiseOptions> {
  Option<int64_t> qBlock{*this, "q-block",
                         llvm::cl::desc("Query rows per block"),
                         llvm::cl::init(64)};
  Option<int64_t> kvBlock{*this, "kv-block",
                          llvm::cl::desc("Key/value rows per block"),
                          llvm::cl::init(64)};
  Option<bool> fuse{*this, "fuse",
                    llvm::cl::desc("Fuse the FFN and residuals into the "
                                   "query-block loop (bpt-fuse-ffn-residual)"),
                    llvm::cl::init(true)};
};

/// Options of bpt-to-cpu.
struct CPUOptions : mlir::PassPipelineOptions<CPUOptions> {
  Option<bool> reportMemory{
      *this, "report-memory",
      llvm::cl::desc("Run bpt-report-memory after bufferization"),
      llvm::cl::init(false)};
};

/// Options of bpt-to-nvvm.
struct NVVMOptions : mlir::PassPipelineOptions<NVVMOptions> {
  Option<std::string> chip{*this, "chip",
                           llvm::cl::desc("GPU architecture (sm_90a: H100/H200)"),
                           llvm::cl::init("sm_90a")};
  Option<std::string> features{
      *this, "features",
      llvm::cl::desc("PTX features (sm_90 and sm_90a need +ptx80)"),
      llvm::cl::init("+ptx80")};
  Option<int64_t> threads{*this, "threads",
                          llvm::cl::desc("Threads per block"),
                          llvm::cl::init(256)};
  Option<int64_t> sharedMemory{
      *this, "shared-memory",
      llvm::cl::desc("Bytes of shared memory a block may use; tiles beyond "
                     "it go to a global workspace"),
      llvm::cl::init(232448)};
  Option<unsigned> optLevel{*this, "opt-level",
                            llvm::cl::desc("NVPTX optimisation level"),
                            llvm::cl::init(3)};
};

/// Model level -> blockwise level: decompose blocks, fuse position-wise
/// consumers into query-block loops (unless disabled), tile the remaining
/// attention ops, clean up.
void buildBPTBlockwisePipeline(mlir::OpPassManager &pm,
                               const BlockwiseOptions &options);

/// bpt-to-cpu, stage 1: bpt ops and elementwise tensor ops -> linalg.
void addLinalgStage(mlir::OpPassManager &pm);
/// bpt-to-cpu, stage 2: one-shot bufferization with identity layouts at
/// function boundaries, inputs read-only, results turned into
/// out-parameters (the caller owns every input and output buffer; every
/// allocation left is an intermediate).
void addBufferizationStage(mlir::OpPassManager &pm);
/// bpt-to-cpu, stage 3: deallocation, loops, and the LLVM dialect; functions
/// take bare pointers (static shapes), in argument order, outputs last.
void addHostLLVMStage(mlir::OpPassManager &pm);

/// Blockwise level -> LLVM dialect for the host: the three stages above.
void buildBPTToCPUPipeline(mlir::OpPassManager &pm, const CPUOptions &options);

/// bpt-to-nvvm, stage 3: host code that allocates buffers and launches
/// kernels, the kernels outlined into a gpu.module.
void addGPUMappingStage(mlir::OpPassManager &pm, const NVVMOptions &options);
/// bpt-to-nvvm, stage 4: the gpu.module to NVVM and on to PTX text in a
/// gpu.binary (no CUDA toolkit needed).
void addPTXStage(mlir::OpPassManager &pm, const NVVMOptions &options);

/// Blockwise level -> kernels in PTX (gpu.binary) and a host function that
/// only allocates workspace buffers and launches them, in order.
void buildBPTToNVVMPipeline(mlir::OpPassManager &pm,
                            const NVVMOptions &options);

/// Registers bpt-blockwise, bpt-to-cpu and bpt-to-nvvm for textual
/// pipelines.
void registerBPTPipelines();

} // namespace bpt

#endif // BPT_PIPELINES_PIPELINES_H
