//===- main.cpp - embed bpt: build attention in C++, compile to PTX -------===//
//
// Part of the bpt project: an example consumer outside bpt's tree. It builds
// a bpt.attention with bpt::buildAttention, runs the textual pipeline
// builtin.module(bpt-blockwise,bpt-to-nvvm) after the three registration
// calls, and writes the PTX of the resulting gpu.binary.
//
//   bpt-consumer out.ptx
//
//===----------------------------------------------------------------------===//

#include "bpt/Dialect/Builders.h"
#include "bpt/InitAll.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include <fstream>

using namespace mlir;

int main(int argc, char **argv) {
  if (argc != 2) {
    llvm::errs() << "usage: bpt-consumer <out.ptx>\n";
    return 2;
  }
  DialectRegistry registry;
  bpt::registerBPTDialect(registry);
  bpt::registerBPTPasses();
  bpt::registerBPTPipelines();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();

  // func @attention(q, k, v) { bpt.attention q, k, v causal }: GQA 8 on 2.
  OpBuilder b(&context);
  Location loc = b.getUnknownLoc();
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  Type bf16 = b.getBF16Type();
  auto q = RankedTensorType::get({1, 8, 256, 64}, bf16);
  auto kv = RankedTensorType::get({1, 2, 256, 64}, bf16);
  b.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(b, loc, "attention",
                                   b.getFunctionType({q, kv, kv}, {q}));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value attention =
      bpt::buildAttention(b, loc, entry->getArgument(0), entry->getArgument(1),
                          entry->getArgument(2), /*causal=*/true);
  func::ReturnOp::create(b, loc, attention);

  // The whole pipeline text, anchor included, as bpt-opt would take it.
  FailureOr<OpPassManager> pipeline =
      parsePassPipeline("builtin.module(bpt-blockwise,bpt-to-nvvm)",
                        llvm::errs());
  PassManager pm(&context);
  if (succeeded(pipeline))
    static_cast<OpPassManager &>(pm) = *pipeline;
  if (failed(pipeline) || failed(pm.run(*module))) {
    llvm::errs() << "bpt-consumer: compilation failed\n";
    return 1;
  }
  for (auto binary : module->getOps<gpu::BinaryOp>()) {
    auto object = cast<gpu::ObjectAttr>(binary.getObjects()[0]);
    std::ofstream(argv[1]) << object.getObject().getValue().str();
    llvm::outs() << "bpt-consumer: wrote " << argv[1] << " ("
                 << object.getObject().size() << " bytes of PTX)\n";
    return 0;
  }
  llvm::errs() << "bpt-consumer: no gpu.binary produced\n";
  return 1;
}
