//===- Pipelines.cpp - bpt's named pass pipelines ---------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Pipelines/Pipelines.h"

#include "bpt/Conversion/Passes.h"
#include "bpt/Target/Chip.h"
#include "bpt/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mlir;
using namespace bpt;

std::optional<Stage> bpt::parseStage(StringRef name) {
  return llvm::StringSwitch<std::optional<Stage>>(name)
      .Case("model", Stage::Model)
      .Case("blockwise", Stage::Blockwise)
      .Case("linalg", Stage::Linalg)
      .Case("bufferized", Stage::Bufferized)
      .Case("gpu", Stage::GPU)
      .Case("binary", Stage::Binary)
      .Default(std::nullopt);
}

static BPTSelectStrategyOptions selectStrategyOptions(const StrategyOptions &o) {
  BPTSelectStrategyOptions pass;
  copyStrategyFields(o, pass);
  pass.reportBlockSizes = o.reportBlockSizes;
  return pass;
}

/// Fuse, tile, clean up: block sizes come from each op's strategy where it
/// has one, else `qBlock` / `kvBlock`.
static void addTiling(OpPassManager &pm, bool fuse, int64_t qBlock,
                      int64_t kvBlock, bool reportBlockSizes) {
  OpPassManager &func = pm.nest<func::FuncOp>();
  if (fuse)
    func.addPass(
        createBPTFuseFFNResidual({qBlock, kvBlock, reportBlockSizes}));
  func.addPass(createBPTTileAttention({qBlock, kvBlock, reportBlockSizes}));
  func.addPass(createBPTChunkFFN());
  // Loop nests keep their unit dimensions (batch 1, one head, one query
  // block) at this level: a nest that a kernel conversion takes must stay a
  // loop nest, and the linalg stage's canonicalization folds them later.
  GreedyRewriteConfig config;
  func.addPass(createCanonicalizerPass(
      config, /*disabledPatterns=*/{
          "(anonymous namespace)::ForallOpSingleOrZeroIterationDimsFolder"}));
  func.addPass(createCSEPass());
}

void bpt::addBlockwiseStage(OpPassManager &pm, const StrategyOptions &strategy,
                            bool fuse, bool recomputeProjections) {
  BPTSelectStrategyOptions select = selectStrategyOptions(strategy);
  pm.addPass(createBPTSelectStrategy(select));
  // The pieces of the blocks decomposed first, and the GEMMs of the
  // tensor-core gradient ops, get strategies of their own before anything
  // is fused or tiled; wgmma blocks become chunk loops.
  pm.nest<func::FuncOp>().addPass(createBPTDecomposeBlock());
  pm.nest<func::FuncOp>().addPass(createBPTExpandGradients());
  pm.addPass(createBPTSelectStrategy(select));
  addTiling(pm, fuse, strategy.qBlock, strategy.kvBlock,
            strategy.reportBlockSizes);
  if (recomputeProjections) {
    BPTRematerializeOptions remat;
    remat.projections = true;
    // Ops are coarser here than after bufferization (an FFN's gradient can
    // be one op): "far" is fewer of them.
    remat.minDistance = 8;
    pm.addNestedPass<func::FuncOp>(createBPTRematerialize(remat));
  }
}

void bpt::addKernelStage(OpPassManager &pm) {
  // Kernels are built into the module in this order (the PTX's order).
  pm.addPass(createBPTBlockToSM90());
  pm.addPass(createBPTAttentionToSM90());
  pm.addPass(createBPTAttentionGradToSM90());
  pm.addPass(createBPTFFNToSM90());
  pm.addPass(createBPTLinearToSM90());
  pm.addPass(createBPTAttentionToSM80());
  pm.addPass(createBPTAttentionGradToSM80());
  pm.addPass(createBPTFFNToSM80());
  pm.addPass(createBPTLinearToSM80());
}

void bpt::addLinalgStage(OpPassManager &pm, bool keepRowwiseNorms) {
  OpPassManager &func = pm.nest<func::FuncOp>();
  BPTConvertToLinalgOptions toLinalg;
  toLinalg.keepRowwise = keepRowwiseNorms;
  func.addPass(createBPTConvertToLinalg(toLinalg));
  func.addPass(createConvertElementwiseToLinalgPass());
  func.addPass(createCanonicalizerPass());
  func.addPass(createCSEPass());
}

void bpt::addBufferizationStage(OpPassManager &pm) {
  pm.addNestedPass<func::FuncOp>(createBPTRematerialize());
  // The norms kept whole for it, each computed where rematerialization put
  // it (a no-op on the CPU path, which lowers every norm to linalg).
  pm.addPass(createBPTNormToRowwise());
  pm.addNestedPass<func::FuncOp>(createBPTReadOnlyInputs());
  pm.addNestedPass<func::FuncOp>(createBPTSplitEmptyTensors());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // buffer-results-to-out-params needs one buffer per result.
  pm.addNestedPass<func::FuncOp>(createBPTDistinctResults());
  bufferization::BufferResultsToOutParamsPassOptions outParams;
  outParams.hoistStaticAllocs = true;
  outParams.modifyPublicFunctions = true;
  pm.addPass(bufferization::createBufferResultsToOutParamsPass(outParams));
  pm.addPass(createCanonicalizerPass());
}

void bpt::addGemmTiling(OpPassManager &pm) {
  // The GPU's default tiling: sm_90a's shared memory, 256 threads.
  BPTTileGemmsOptions tiles;
  const ChipInfo &chip = getChipInfo("sm_90a");
  tiles.sharedMemory = chip.sharedMemoryPerBlock;
  tiles.multiprocessors = chip.multiprocessors;
  pm.nest<func::FuncOp>().addPass(createBPTTileGemms(tiles));
}

void bpt::addHostLLVMStage(OpPassManager &pm) {
  bufferization::buildBufferDeallocationPipeline(pm);
  pm.addPass(createConvertBufferizationToMemRefPass());
  OpPassManager &func = pm.nest<func::FuncOp>();
  // The CPU path runs query blocks one after another.
  func.addPass(createForallToForLoopPass());
  func.addPass(createConvertLinalgToLoopsPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  // LLVM intrinsics where they exist (exp2, sqrt); libm for the rest (erf,
  // tanh).
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  ConvertFuncToLLVMPassOptions funcToLLVM;
  funcToLLVM.useBarePtrCallConv = true;
  pm.addPass(createConvertFuncToLLVMPass(funcToLLVM));
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void bpt::buildBPTToCPUPipeline(OpPassManager &pm, const CPUOptions &options) {
  // The CPU lowers every nest as loops, whatever its strategy; what is
  // still model-level here is made blockwise first, and gradients recorded
  // for tensor cores are expanded as there.
  pm.nest<func::FuncOp>().addPass(createBPTDecomposeBlock());
  pm.nest<func::FuncOp>().addPass(createBPTExpandGradients());
  addTiling(pm, /*fuse=*/true, 64, 64, /*reportBlockSizes=*/false);
  addLinalgStage(pm);
  // As on the GPU: fewer passes over the host-level intermediates, and the
  // CPU's numerical tests run the fused chains against float64.
  pm.nest<func::FuncOp>().addPass(createBPTFuseElementwise());
  addBufferizationStage(pm);
  if (options.reportMemory)
    pm.nest<func::FuncOp>().addPass(createBPTReportMemory());
  if (options.tileGemms)
    addGemmTiling(pm);
  addHostLLVMStage(pm);
}

void bpt::addGPUMappingStage(OpPassManager &pm, const NVVMOptions &options) {
  OpPassManager &func = pm.nest<func::FuncOp>();
  int64_t sharedMemory = options.sharedMemory
                             ? options.sharedMemory
                             : getChipInfo(options.chip).sharedMemoryPerBlock;
  if (options.tileGemms) {
    BPTTileGemmsOptions tiles;
    tiles.threads = options.threads;
    tiles.sharedMemory = sharedMemory;
    tiles.multiprocessors = getChipInfo(options.chip).multiprocessors;
    func.addPass(createBPTTileGemms(tiles));
  }
  BPTMapToGPUOptions mapping;
  mapping.threads = options.threads;
  mapping.sharedMemory = sharedMemory;
  func.addPass(createBPTMapToGPU(mapping));
  func.addPass(createGpuLaunchSinkIndexComputationsPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createBPTMergeKernelModules());
}

namespace {

/// Fails the pipeline with a message at the module: how bpt-to-nvvm reports
/// an option its builder finds invalid (a chip or PTX version the back end
/// does not support), which would otherwise be a fatal error inside LLVM.
struct ReportOptionError
    : PassWrapper<ReportOptionError, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(ReportOptionError)

  explicit ReportOptionError(std::string message)
      : message(std::move(message)) {}
  StringRef getArgument() const override { return "bpt-report-option-error"; }
  void runOnOperation() override {
    getOperation().emitError(message);
    signalPassFailure();
  }

  std::string message;
};

/// The PTX features to generate with: the option's, unless it was left at
/// its default (+ptx80) for a chip that needs a newer PTX (sm_100 and
/// later), which then gets the chip's default.
std::string ptxFeatures(const NVVMOptions &options) {
  if (options.features.hasValue() || options.features != "+ptx80")
    return options.features;
  return defaultPTXFeatures(options.chip);
}

} // namespace

void bpt::addPTXStage(OpPassManager &pm, const NVVMOptions &options) {
  BPTDependentLaunchOptions dependent;
  dependent.chip = options.chip;
  pm.addPass(createBPTDependentLaunch(dependent));
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = ptxFeatures(options);
  target.optLevel = options.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  // Math that convert-gpu-to-nvvm would leave to libdevice (linked only
  // where a CUDA toolkit is found) becomes NVPTX's own instructions.
  kernels.addPass(createBPTApproximateMath());
  kernels.addPass(createBPTMathToIntrinsics());
  kernels.addPass(createLowerAffinePass());
  kernels.addPass(memref::createExpandStridedMetadataPass());
  kernels.addPass(createLowerAffinePass());
  kernels.addPass(createSCFToControlFlowPass());
  kernels.addPass(createBPTLowerTensorMapArgs());
  ConvertGpuOpsToNVVMOpsOptions toNVVM;
  toNVVM.useBarePtrCallConv = true;
  kernels.addPass(createConvertGpuOpsToNVVMOps(toNVVM));
  // NVVM ops written as PTX (wgmma, mbarrier waits) become inline assembly.
  kernels.addPass(createConvertNVVMToLLVMPass());
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  kernels.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void bpt::buildBPTToNVVMPipeline(OpPassManager &pm, const NVVMOptions &options,
                                 Stage last) {
  if (std::optional<std::string> why = checkChipAndFeatures(
          options.chip, ptxFeatures(options), "chip", "features")) {
    pm.addPass(std::make_unique<ReportOptionError>("bpt-to-nvvm: " + *why));
    return;
  }
  if (last >= Stage::Blockwise)
    addBlockwiseStage(pm, options.strategy(), options.fuse,
                      options.recomputeProjections);
  if (last >= Stage::Linalg) {
    addKernelStage(pm);
    // What is left becomes portable launches: a loop of one iteration too.
    pm.nest<func::FuncOp>().addPass(createBPTKeepSingleBlockLoops());
    addLinalgStage(pm, /*keepRowwiseNorms=*/true);
    // Portable launches go through global memory: chains of elementwise
    // ops become one. They run a thread per output element: long
    // reductions into few outputs (the norms' row and channel sums) are
    // split.
    pm.nest<func::FuncOp>().addPass(createBPTFuseElementwise());
    pm.nest<func::FuncOp>().addPass(createBPTSplitReductions());
  }
  if (last >= Stage::Bufferized)
    addBufferizationStage(pm);
  if (last >= Stage::GPU)
    addGPUMappingStage(pm, options);
  if (last >= Stage::Binary)
    addPTXStage(pm, options);
}

void bpt::registerBPTPipelines() {
  PassPipelineRegistration<BlockwiseOptions>(
      "bpt-blockwise",
      "Model level to blockwise level: choose and record each op's kernel "
      "strategy for the chip, decompose blocks, fuse the FFN and residuals "
      "into query-block loops, tile attention into loop nests",
      [](OpPassManager &pm, const BlockwiseOptions &options) {
        buildBPTBlockwisePipeline(pm, options);
      });
  PassPipelineRegistration<CPUOptions>(
      "bpt-to-cpu",
      "Blockwise level to the LLVM dialect for the host (bufferized, "
      "bare-pointer functions with outputs as trailing arguments)",
      buildBPTToCPUPipeline);
  PassPipelineRegistration<NVVMOptions>(
      "bpt-to-nvvm",
      "Model or blockwise level to PTX, the whole lowering: strategies, "
      "blockwise nests, tensor-core kernels (wgmma, mma.sync) for the nests "
      "and ops whose strategy names them, the portable loops mapped to "
      "thread blocks with shared-memory tiles, NVVM, PTX in a gpu.binary",
      [](OpPassManager &pm, const NVVMOptions &options) {
        buildBPTToNVVMPipeline(pm, options);
      });
}
