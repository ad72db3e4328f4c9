//===- bpt-opt.cpp - mlir-opt with bpt registered ---------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  bpt::registerBPTDialect(registry);
  bpt::registerBPTPasses();
  bpt::registerBPTPipelines();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "bpt optimizer driver: the bpt dialect and its passes\n",
      registry));
}
