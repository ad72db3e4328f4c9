//===- BPT.cpp - C API of the bpt compiler ----------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt-c/BPT.h"

#include "bpt/Compiler/KernelSet.h"
#include "bpt/Dialect/BPTDialect.h"
#include "bpt/InitAll.h"

#include "mlir/CAPI/IR.h"
#include "mlir/CAPI/Registration.h"
#include "mlir/CAPI/Support.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;

MLIR_DEFINE_CAPI_DIALECT_REGISTRATION(BPT, bpt, bpt::BPTDialect)

void bptRegisterDialects(MlirDialectRegistry registry) {
  bpt::registerBPTDialect(*unwrap(registry));
}

void bptRegisterPasses(void) {
  bpt::registerBPTPasses();
  bpt::registerBPTPipelines();
}

MlirLogicalResult bptRunPipeline(MlirModule module, MlirStringRef pipeline) {
  ModuleOp op = unwrap(module);
  std::string errors;
  llvm::raw_string_ostream os(errors);
  FailureOr<OpPassManager> parsed = parsePassPipeline(unwrap(pipeline), os);
  if (failed(parsed)) {
    op.emitError() << "bpt: invalid pipeline: " << errors;
    return mlirLogicalResultFailure();
  }
  PassManager pm(op.getContext());
  static_cast<OpPassManager &>(pm) = *parsed;
  return wrap(pm.run(op));
}

bptCompileOptions bptCompileOptionsDefault(void) {
  bpt::CompileOptions defaults;
  return {defaults.strategy.qBlock, defaults.strategy.kvBlock, defaults.fuse,
          defaults.threads, "sm_90a", "+ptx80"};
}

MlirLogicalResult bptCompileKernelSet(MlirModule module,
                                      const bptCompileOptions *options,
                                      MlirStringRef ptxFileName,
                                      MlirStringCallback ptx,
                                      MlirStringCallback manifest,
                                      void *userData) {
  bpt::CompileOptions compile;
  if (options) {
    compile.strategy.qBlock = options->qBlock;
    compile.strategy.kvBlock = options->kvBlock;
    compile.fuse = options->fuse;
    compile.threads = options->threads;
    if (options->chip)
      compile.strategy.chip = options->chip;
    if (options->features)
      compile.features = options->features;
  }
  FailureOr<bpt::KernelSet> set =
      bpt::compileKernelSet(unwrap(module), compile, unwrap(ptxFileName));
  if (failed(set))
    return mlirLogicalResultFailure();
  std::string json = llvm::formatv(
      "{0:2}", llvm::json::Value(std::move(set->manifest)));
  ptx(mlirStringRefCreate(set->ptx.data(), set->ptx.size()), userData);
  manifest(mlirStringRefCreate(json.data(), json.size()), userData);
  return mlirLogicalResultSuccess();
}
