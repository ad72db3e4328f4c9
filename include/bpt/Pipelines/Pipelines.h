//===- Pipelines.h - bpt's named pass pipelines -----------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// bpt-blockwise: model level -> blockwise level: each op's kernel strategy
//                chosen and recorded (bpt-select-strategy), blocks
//                decomposed, attention tiled into query/key-value blocks
//                with the FFN and residuals fused, as the strategy says.
// bpt-to-cpu:    blockwise level -> LLVM dialect for the host.
// bpt-to-nvvm:   model or blockwise level -> PTX kernels + host launch
//                sequence: the whole lowering, tensor-core kernels included.
//                bpt-compile and the C API run exactly this pipeline, cut
//                after a stage (bpt::Stage) when asked for an earlier one.
// All run on builtin.module, so `builtin.module(bpt-blockwise,bpt-to-nvvm)`
// composes (the blockwise stage is then a no-op), as does
// `builtin.module(bpt-blockwise,bpt-to-cpu)`.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_PIPELINES_PIPELINES_H
#define BPT_PIPELINES_PIPELINES_H

#include "bpt/Conversion/Strategy.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

#include <optional>

namespace bpt {

/// The stages of bpt-to-nvvm, in order; a compilation can stop after any.
enum class Stage {
  Model,      ///< nothing run
  Blockwise,  ///< strategies recorded, blockwise loop nests
  Linalg,     ///< tensor-core kernels launched, the rest in linalg
  Bufferized, ///< one-shot bufferization, outputs as out-parameters
  GPU,        ///< portable loops mapped to kernels, kernels outlined
  Binary      ///< PTX in a gpu.binary
};
std::optional<Stage> parseStage(llvm::StringRef name);

/// The options of bpt-select-strategy, shared by the pipelines that run it.
template <typename Derived>
struct StrategyPipelineOptions : mlir::PassPipelineOptions<Derived> {
  using Base = mlir::PassPipelineOptions<Derived>;
  template <typename T>
  using Option = typename Base::template Option<T>;

  Option<std::string> chip{*this, "chip",
                           llvm::cl::desc("Target chip (sm_90a: H100/H200)"),
                           llvm::cl::init("sm_90a")};
  Option<bool> tensorCores{
      *this, "tensor-cores",
      llvm::cl::desc("Allow the tensor-core paths and the norms' row "
                     "kernel (off: all portable)"),
      llvm::cl::init(true)};
  Option<bool> allowTF32{
      *this, "allow-tf32",
      llvm::cl::desc("f32 FFNs on tensor cores as TF32 (mma.sync m16n8k8; "
                     "off: f32 stays portable)"),
      llvm::cl::init(false)};
  Option<int64_t> qBlock{*this, "q-block",
                         llvm::cl::desc("Portable path: query rows per block"),
                         llvm::cl::init(64)};
  Option<int64_t> kvBlock{
      *this, "kv-block",
      llvm::cl::desc("Portable path: key/value rows per block"),
      llvm::cl::init(64)};
  Option<bool> fuse{*this, "fuse",
                    llvm::cl::desc("Fuse the FFN and residuals into the "
                                   "query-block loop (bpt-fuse-ffn-residual)"),
                    llvm::cl::init(true)};
  Option<bool> recomputeProjections{
      *this, "recompute-projections",
      llvm::cl::desc("Training steps: compute the attention's query, key "
                     "and value projections again where its gradient reads "
                     "them (bpt-rematerialize projections=true at the end "
                     "of the blockwise stage): three [S, hidden] buffers "
                     "fewer across the FFN's backward, three GEMMs more"),
      llvm::cl::init(false)};
  Option<int64_t> chunkRows{
      *this, "chunk-rows",
      llvm::cl::desc("Rows per chunk of the tensor-core FFN and block and "
                     "of the portable FFN and FFN gradient (0: 2048, and a "
                     "lone wgmma FFN's from its GEMMs' waves)"),
      llvm::cl::init(0)};
  Option<int64_t> sm90KvBlock{
      *this, "sm90-kv-block",
      llvm::cl::desc("wgmma attention key/value block (0: cost model)"),
      llvm::cl::init(0)};
  Option<int64_t> sm90Stages{
      *this, "sm90-stages",
      llvm::cl::desc("wgmma attention K/V stages (0: cost model)"),
      llvm::cl::init(0)};
  Option<int64_t> gemmBlockN{
      *this, "sm90-gemm-block-n",
      llvm::cl::desc("wgmma GEMM tile columns (0: 128)"), llvm::cl::init(0)};
  Option<int64_t> gemmStages{
      *this, "sm90-gemm-stages",
      llvm::cl::desc("wgmma GEMM stages (0: three, two blocks a multiprocessor, where the epilogue allows; else as many as fit)"),
      llvm::cl::init(0)};
  Option<int64_t> gemmSplit{
      *this, "sm90-gemm-split",
      llvm::cl::desc("wgmma GEMMs: the most parts a mostly idle last wave's "
                     "tiles are split into along K, 1 (none) to 8 (0: the "
                     "model's choice)"),
      llvm::cl::init(0)};
  Option<int64_t> sm80QBlock{
      *this, "sm80-q-block",
      llvm::cl::desc("mma.sync attention query block (0: cost model)"),
      llvm::cl::init(0)};
  Option<int64_t> sm80KvBlock{
      *this, "sm80-kv-block",
      llvm::cl::desc("mma.sync attention key/value block (0: cost model)"),
      llvm::cl::init(0)};
  Option<int64_t> sm80Stages{
      *this, "sm80-stages",
      llvm::cl::desc("mma.sync attention K/V stages (0: cost model)"),
      llvm::cl::init(0)};
  Option<int64_t> sm80GemmBlockN{
      *this, "sm80-gemm-block-n",
      llvm::cl::desc("mma.sync GEMM tile columns (0: 256 where N allows)"),
      llvm::cl::init(0)};
  Option<int64_t> sm80GradQBlock{
      *this, "sm80-grad-q-block",
      llvm::cl::desc("mma.sync attention backward query block (0: 64, or "
                     "32 where that does not fit)"),
      llvm::cl::init(0)};
  Option<int64_t> sm80GradKvBlock{
      *this, "sm80-grad-kv-block",
      llvm::cl::desc("mma.sync attention backward key/value block (0: 128, "
                     "or 64 where that does not fit)"),
      llvm::cl::init(0)};
  Option<int64_t> sm80GradStages{
      *this, "sm80-grad-stages",
      llvm::cl::desc("mma.sync attention backward stages (0: 2)"),
      llvm::cl::init(0)};
  Option<int64_t> kvSplits{
      *this, "kv-splits",
      llvm::cl::desc("attention with short queries: key/value splits (0: "
                     "cost rule, 1: never split)"),
      llvm::cl::init(0)};

  /// Whether block sizes given as options (q-block, kv-block) are reported
  /// where a tensor-core kernel ignores them or where they are clamped to
  /// the sequence; callers that report them themselves (bpt-compile) or that
  /// set them without the user (the CPU runner's defaults) turn it off.
  bool reportBlockSizes = true;

  /// The same values as bpt-select-strategy's options.
  StrategyOptions strategy() const {
    StrategyOptions o;
    copyStrategyFields(*this, o);
    o.reportBlockSizes =
        reportBlockSizes && (qBlock.hasValue() || kvBlock.hasValue());
    return o;
  }
  /// Sets every strategy option from `o`.
  void setStrategy(const StrategyOptions &o) {
    copyStrategyFields(o, *this);
    reportBlockSizes = o.reportBlockSizes;
  }
};

/// Options of bpt-blockwise.
struct BlockwiseOptions : StrategyPipelineOptions<BlockwiseOptions> {};

/// Options of bpt-to-cpu.
struct CPUOptions : mlir::PassPipelineOptions<CPUOptions> {
  Option<bool> reportMemory{
      *this, "report-memory",
      llvm::cl::desc("Run bpt-report-memory after bufferization"),
      llvm::cl::init(false)};
  Option<bool> tileGemms{
      *this, "tile-gemms",
      llvm::cl::desc("Tile top-level GEMMs as bpt-to-nvvm does for the GPU "
                     "(bpt-tile-gemms), to test that tiling on the CPU"),
      llvm::cl::init(false)};
};

/// Options of bpt-to-nvvm: the strategy's, and the portable path's and
/// PTX generation's.
struct NVVMOptions : StrategyPipelineOptions<NVVMOptions> {
  Option<std::string> features{
      *this, "features",
      llvm::cl::desc("PTX features (sm_90 and sm_90a need +ptx80)"),
      llvm::cl::init("+ptx80")};
  Option<int64_t> threads{*this, "threads",
                          llvm::cl::desc("Portable path: threads per block"),
                          llvm::cl::init(256)};
  Option<int64_t> sharedMemory{
      *this, "shared-memory",
      llvm::cl::desc("Portable path: bytes of shared memory a block may "
                     "use, tiles beyond it in a global workspace (0: the "
                     "chip's)"),
      llvm::cl::init(0)};
  Option<bool> tileGemms{
      *this, "tile-gemms",
      llvm::cl::desc("Portable path: GEMMs through shared-memory tiles "
                     "(bpt-tile-gemms); false: a thread per output element"),
      llvm::cl::init(true)};
  Option<unsigned> optLevel{*this, "opt-level",
                            llvm::cl::desc("NVPTX optimisation level"),
                            llvm::cl::init(3)};
};

/// The stage behind bpt-blockwise; with `recomputeProjections`, projections
/// read again far later are repeated there (bpt-rematerialize
/// projections=true, after the stage's CSE, which would merge them again).
void addBlockwiseStage(mlir::OpPassManager &pm, const StrategyOptions &strategy,
                       bool fuse, bool recomputeProjections = false);

/// Model level -> blockwise level: select strategies, decompose blocks
/// (those bound for the wgmma block kernels stay whole), select strategies
/// for the pieces, fuse position-wise consumers into query-block loops
/// (portable attention, unless disabled), tile the remaining attention ops
/// into nests with their strategies' block sizes, clean up.
template <typename Derived>
void buildBPTBlockwisePipeline(mlir::OpPassManager &pm,
                               const StrategyPipelineOptions<Derived> &options) {
  addBlockwiseStage(pm, options.strategy(), options.fuse,
                    options.recomputeProjections);
}

/// The tensor-core conversions: every op and nest whose strategy names a
/// tensor-core path becomes kernel launches.
void addKernelStage(mlir::OpPassManager &pm);
/// bpt ops and elementwise tensor ops -> linalg; with `keepRowwiseNorms`
/// (the GPU), norms bound for their row kernel stay (the bufferization
/// stage launches it).
void addLinalgStage(mlir::OpPassManager &pm, bool keepRowwiseNorms = false);
/// One-shot bufferization with identity layouts at function boundaries,
/// inputs read-only, results turned into out-parameters (the caller owns
/// every input and output buffer; every allocation left is an
/// intermediate).
void addBufferizationStage(mlir::OpPassManager &pm);
/// Deallocation, loops, and the LLVM dialect; functions take bare pointers
/// (static shapes), in argument order, outputs last.
void addHostLLVMStage(mlir::OpPassManager &pm);

/// bpt-tile-gemms with the GPU's default tiling (sm_90a's shared memory,
/// 256 threads), for the CPU path's tests of it.
void addGemmTiling(mlir::OpPassManager &pm);

/// Blockwise level -> LLVM dialect for the host: what the blockwise stage
/// left whole for a tensor-core kernel is made blockwise (the CPU runs
/// every loop nest as loops), then linalg, bufferization, LLVM.
void buildBPTToCPUPipeline(mlir::OpPassManager &pm, const CPUOptions &options);

/// bpt-to-nvvm, stage 4: host code that allocates buffers and launches
/// kernels, the portable loop nests mapped to kernels, all outlined into a
/// gpu.module.
void addGPUMappingStage(mlir::OpPassManager &pm, const NVVMOptions &options);
/// bpt-to-nvvm, stage 5: the gpu.module to NVVM and on to PTX text in a
/// gpu.binary (no CUDA toolkit needed).
void addPTXStage(mlir::OpPassManager &pm, const NVVMOptions &options);

/// bpt-to-nvvm up to and including `last`: blockwise, kernels + linalg,
/// bufferization, GPU mapping, PTX.
void buildBPTToNVVMPipeline(mlir::OpPassManager &pm, const NVVMOptions &options,
                            Stage last);
/// The whole of bpt-to-nvvm: kernels in PTX (gpu.binary) and a host
/// function that only allocates workspace buffers and launches them.
inline void buildBPTToNVVMPipeline(mlir::OpPassManager &pm,
                                   const NVVMOptions &options) {
  buildBPTToNVVMPipeline(pm, options, Stage::Binary);
}

/// Registers bpt-blockwise, bpt-to-cpu and bpt-to-nvvm for textual
/// pipelines.
void registerBPTPipelines();

} // namespace bpt

#endif // BPT_PIPELINES_PIPELINES_H
