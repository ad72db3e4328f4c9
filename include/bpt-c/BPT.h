/*===- BPT.h - C API of the bpt compiler ---------------------------*- C -*-===*\
|*                                                                            *|
|* Part of the bpt project: a compiler for Blockwise Parallel Transformers.   *|
|*                                                                            *|
|* Follows MLIR's C API conventions (mlir-c/IR.h): register bpt on an         *|
|* MlirDialectRegistry, run a named pipeline on an MlirModule, and compile a  *|
|* model-level module to a kernel set (PTX + manifest) returned as strings.   *|
|* The runtime's C API is include/bpt-c/Runtime.h.                            *|
\*===----------------------------------------------------------------------===*/

#ifndef BPT_C_BPT_H
#define BPT_C_BPT_H

#include "mlir-c/IR.h"
#include "mlir-c/Support.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// mlirGetDialectHandle__bpt__(): the bpt dialect alone.
MLIR_DECLARE_CAPI_DIALECT_REGISTRATION(BPT, bpt);

/// Registers the bpt dialect and every upstream dialect, translation and
/// interface its pipelines need (bpt::registerBPTDialect).
MLIR_CAPI_EXPORTED void bptRegisterDialects(MlirDialectRegistry registry);

/// Registers bpt's passes and pipelines (bpt-blockwise, bpt-to-cpu,
/// bpt-to-nvvm) and the upstream passes they use, for textual pipelines.
MLIR_CAPI_EXPORTED void bptRegisterPasses(void);

/// Parses `pipeline` (e.g. "builtin.module(bpt-blockwise,bpt-to-nvvm)") and
/// runs it on `module`. Errors go to the context's diagnostic handlers.
MLIR_CAPI_EXPORTED MlirLogicalResult bptRunPipeline(MlirModule module,
                                                    MlirStringRef pipeline);

/// Options of bptCompileKernelSet; bptCompileOptionsDefault() fills them.
typedef struct bptCompileOptions {
  int64_t qBlock;
  int64_t kvBlock;
  bool fuse;
  int64_t threads;
  const char *chip;     ///< e.g. "sm_90a"
  const char *features; ///< e.g. "+ptx80"
} bptCompileOptions;

MLIR_CAPI_EXPORTED bptCompileOptions bptCompileOptionsDefault(void);

/// Compiles the single function of a model-level `module` (lowered in place)
/// to a kernel set; calls `ptx` with the PTX text and `manifest` with the
/// manifest (JSON; its "ptx" field is `ptxFileName`). Errors go to the
/// context's diagnostic handlers.
MLIR_CAPI_EXPORTED MlirLogicalResult bptCompileKernelSet(
    MlirModule module, const bptCompileOptions *options,
    MlirStringRef ptxFileName, MlirStringCallback ptx,
    MlirStringCallback manifest, void *userData);

#ifdef __cplusplus
}
#endif

#endif // BPT_C_BPT_H
