//===- Pipelines.cpp - bpt's named pass pipelines ---------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Pipelines/Pipelines.h"

#include "bpt/Conversion/Passes.h"
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

using namespace mlir;

void bpt::buildBPTBlockwisePipeline(OpPassManager &pm,
                                    const BlockwiseOptions &options) {
  OpPassManager &func = pm.nest<func::FuncOp>();
  func.addPass(createBPTDecomposeBlock());
  if (options.fuse)
    func.addPass(createBPTFuseFFNResidual(
        {options.qBlock.getValue(), options.kvBlock.getValue()}));
  func.addPass(createBPTTileAttention(
      {options.qBlock.getValue(), options.kvBlock.getValue()}));
  func.addPass(createCanonicalizerPass());
  func.addPass(createCSEPass());
}

void bpt::addLinalgStage(OpPassManager &pm) {
  OpPassManager &func = pm.nest<func::FuncOp>();
  func.addPass(createBPTConvertToLinalg());
  func.addPass(createConvertElementwiseToLinalgPass());
  func.addPass(createCanonicalizerPass());
  func.addPass(createCSEPass());
}

void bpt::addBufferizationStage(OpPassManager &pm) {
  pm.addNestedPass<func::FuncOp>(createBPTReadOnlyInputs());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::BufferResultsToOutParamsPassOptions outParams;
  outParams.hoistStaticAllocs = true;
  outParams.modifyPublicFunctions = true;
  pm.addPass(bufferization::createBufferResultsToOutParamsPass(outParams));
  pm.addPass(createCanonicalizerPass());
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
  addLinalgStage(pm);
  addBufferizationStage(pm);
  if (options.reportMemory)
    pm.nest<func::FuncOp>().addPass(createBPTReportMemory());
  addHostLLVMStage(pm);
}

void bpt::addGPUMappingStage(OpPassManager &pm, const NVVMOptions &options) {
  OpPassManager &func = pm.nest<func::FuncOp>();
  BPTMapToGPUOptions mapping;
  mapping.threads = options.threads;
  mapping.sharedMemory = options.sharedMemory;
  func.addPass(createBPTMapToGPU(mapping));
  func.addPass(createGpuLaunchSinkIndexComputationsPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createBPTMergeKernelModules());
}

void bpt::addPTXStage(OpPassManager &pm, const NVVMOptions &options) {
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = options.features;
  target.optLevel = options.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createBPTApproximateMath());
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

void bpt::buildBPTToNVVMPipeline(OpPassManager &pm,
                                 const NVVMOptions &options) {
  addLinalgStage(pm);
  addBufferizationStage(pm);
  addGPUMappingStage(pm, options);
  addPTXStage(pm, options);
}

void bpt::registerBPTPipelines() {
  PassPipelineRegistration<BlockwiseOptions>(
      "bpt-blockwise",
      "Model level to blockwise level: decompose blocks, fuse the FFN and "
      "residuals into query-block loops, tile attention",
      buildBPTBlockwisePipeline);
  PassPipelineRegistration<CPUOptions>(
      "bpt-to-cpu",
      "Blockwise level to the LLVM dialect for the host (bufferized, "
      "bare-pointer functions with outputs as trailing arguments)",
      buildBPTToCPUPipeline);
  PassPipelineRegistration<NVVMOptions>(
      "bpt-to-nvvm",
      "Blockwise level to PTX: bufferize, map blockwise loops to thread "
      "blocks with shared-memory tiles, outline kernels, lower to NVVM and "
      "serialize to PTX in a gpu.binary",
      buildBPTToNVVMPipeline);
}
