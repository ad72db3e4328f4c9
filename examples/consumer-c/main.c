/*===- main.c - embed bpt from C: a model-level module to PTX -------------===*\
|*                                                                            *|
|* Part of the bpt project: an example consumer outside bpt's tree that uses  *|
|* only C (mlir-c and bpt-c): it parses a model-level attention, compiles it  *|
|* with bptCompileKernelSet, and writes <out>.ptx and <out>.json.             *|
|*                                                                            *|
|*   bpt-consumer-c <out>                                                     *|
\*===----------------------------------------------------------------------===*/

#include "bpt-c/BPT.h"
#include "mlir-c/IR.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kModel =
    "func.func @attention(%q: tensor<1x4x128x64xbf16>,\n"
    "                     %k: tensor<1x4x128x64xbf16>,\n"
    "                     %v: tensor<1x4x128x64xbf16>) -> tensor<1x4x128x64xbf16> {\n"
    "  %o = bpt.attention %q, %k, %v causal\n"
    "      : (tensor<1x4x128x64xbf16>, tensor<1x4x128x64xbf16>,\n"
    "         tensor<1x4x128x64xbf16>) -> tensor<1x4x128x64xbf16>\n"
    "  return %o : tensor<1x4x128x64xbf16>\n"
    "}\n";

static void writeTo(MlirStringRef text, void *path) {
  FILE *file = fopen((const char *)path, "w");
  if (!file) {
    fprintf(stderr, "bpt-consumer-c: cannot write %s\n", (const char *)path);
    exit(1);
  }
  fwrite(text.data, 1, text.length, file);
  fclose(file);
}

static void writePTX(MlirStringRef text, void *base) {
  char path[4096];
  snprintf(path, sizeof(path), "%s.ptx", (const char *)base);
  writeTo(text, path);
}

static void writeManifest(MlirStringRef text, void *base) {
  char path[4096];
  snprintf(path, sizeof(path), "%s.json", (const char *)base);
  writeTo(text, path);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: bpt-consumer-c <out>\n");
    return 2;
  }
  MlirDialectRegistry registry = mlirDialectRegistryCreate();
  bptRegisterDialects(registry);
  bptRegisterPasses();
  MlirContext context = mlirContextCreateWithRegistry(registry, false);
  mlirDialectRegistryDestroy(registry);

  MlirModule module =
      mlirModuleCreateParse(context, mlirStringRefCreateFromCString(kModel));
  if (mlirModuleIsNull(module)) {
    fprintf(stderr, "bpt-consumer-c: the model did not parse\n");
    return 1;
  }
  bptCompileOptions options = bptCompileOptionsDefault();
  options.qBlock = 32;
  const char *base = argv[1];
  const char *slash = strrchr(base, '/');
  char ptxName[1024];
  snprintf(ptxName, sizeof(ptxName), "%s.ptx", slash ? slash + 1 : base);
  MlirLogicalResult result = bptCompileKernelSet(
      module, &options, mlirStringRefCreateFromCString(ptxName), writePTX,
      writeManifest, (void *)base);
  mlirModuleDestroy(module);
  mlirContextDestroy(context);
  if (mlirLogicalResultIsFailure(result)) {
    fprintf(stderr, "bpt-consumer-c: compilation failed\n");
    return 1;
  }
  printf("bpt-consumer-c: wrote %s.ptx and %s.json\n", base, base);
  return 0;
}
