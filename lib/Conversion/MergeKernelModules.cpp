//===- MergeKernelModules.cpp - one gpu.module per kernel set ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringExtras.h"

namespace bpt {
#define GEN_PASS_DEF_BPTMERGEKERNELMODULES
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kKernelModuleName = "bpt_kernels";
constexpr llvm::StringLiteral kKeepKernelNames = "bpt.keep_kernel_names";

/// `name` made a PTX identifier ([A-Za-z_$][A-Za-z0-9_$]*): NVPTX aborts on
/// any other symbol ("Symbol name with unsupported characters"), and a
/// kernel outlined from `func.func @"my-attention"` takes the function's
/// name. Valid names are returned unchanged.
std::string ptxIdentifier(StringRef name) {
  std::string result;
  for (char c : name)
    result += llvm::isAlnum(c) || c == '_' || c == '$' ? c : '_';
  if (result.empty() || llvm::isDigit(result.front()))
    result.insert(result.begin(), '_');
  return result;
}

struct BPTMergeKernelModulesPass final
    : bpt::impl::BPTMergeKernelModulesBase<BPTMergeKernelModulesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<gpu::GPUModuleOp> sources =
        llvm::to_vector(module.getOps<gpu::GPUModuleOp>());
    if (sources.empty())
      return;
    OpBuilder b(&getContext());
    b.setInsertionPoint(sources.front());
    auto merged = gpu::GPUModuleOp::create(b, sources.front().getLoc(),
                                           kKernelModuleName);
    if (ArrayAttr targets = sources.front().getTargetsAttr())
      merged.setTargetsAttr(targets);
    SymbolTable mergedSymbols(merged);

    // Old (module, kernel) -> new kernel name.
    llvm::DenseMap<std::pair<StringAttr, StringAttr>, StringAttr> renamed;
    for (gpu::GPUModuleOp source : sources) {
      for (Operation &op : llvm::make_early_inc_range(
               source.getBodyRegion().front().getOperations())) {
        auto symbol = dyn_cast<SymbolOpInterface>(&op);
        if (!symbol) {
          op.emitError() << "bpt-merge-kernel-modules: unexpected op in a "
                            "kernel module";
          return signalPassFailure();
        }
        StringAttr oldName = symbol.getNameAttr();
        // Outlined kernels take their module's (unique) name; kernels built
        // by name (bpt-attention-to-sm90) and helpers keep theirs unless
        // they clash.
        bool keepNames = source->hasAttr(kKeepKernelNames);
        StringAttr newName = isa<gpu::GPUFuncOp>(op) && !keepNames
                                 ? source.getNameAttr()
                                 : oldName;
        op.remove();
        symbol.setName(ptxIdentifier(newName.getValue()));
        StringAttr unique = mergedSymbols.insert(&op);
        renamed[{source.getNameAttr(), oldName}] = unique;
      }
      source.erase();
    }

    WalkResult result = module.walk([&](gpu::LaunchFuncOp launch) {
      auto key = std::make_pair(launch.getKernelModuleName(),
                                launch.getKernelName());
      auto it = renamed.find(key);
      if (it == renamed.end()) {
        launch.emitError() << "bpt-merge-kernel-modules: unknown kernel";
        return WalkResult::interrupt();
      }
      launch.setKernelAttr(SymbolRefAttr::get(
          b.getStringAttr(kKernelModuleName),
          {FlatSymbolRefAttr::get(it->second)}));
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return signalPassFailure();
  }
};

} // namespace
