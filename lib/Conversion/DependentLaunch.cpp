//===- DependentLaunch.cpp - programmatic dependent launch -----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// A kernel set is a chain of launches on one stream, each reading what the
// one before wrote. Launched plainly, a kernel's blocks are scheduled only
// once the previous kernel has ended, so every launch boundary pays the
// launch and the block start with the chip idle. With programmatic
// dependent launch (sm_90 and later) the next kernel's blocks take the
// multiprocessors the previous kernel's last wave frees and wait at
// `griddepcontrol.wait` until its memory is visible.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"
#include "bpt/Target/Chip.h"

#include "llvm/ADT/DenseSet.h"

namespace bpt {
#define GEN_PASS_DEF_BPTDEPENDENTLAUNCH
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

struct BPTDependentLaunchPass final
    : bpt::impl::BPTDependentLaunchBase<BPTDependentLaunchPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    bpt::ChipInfo info = bpt::getChipInfo(chip);
    if (info.version == 0) {
      module.emitError() << "bpt-dependent-launch: '" << chip
                         << "' is not a chip name (sm_XY or sm_XYa)";
      return signalPassFailure();
    }
    if (info.version < 90)
      return;
    llvm::DenseSet<Operation *> started;
    module.walk([&](gpu::LaunchFuncOp launch) {
      auto kernel = SymbolTable::lookupNearestSymbolFrom<gpu::GPUFuncOp>(
          launch, launch.getKernel());
      // A kernel already lowered (an llvm.func, a gpu.binary) is not ours
      // to change: its launches stay plain.
      if (!kernel || kernel.getBody().empty())
        return;
      if (started.insert(kernel).second)
        beginWithWait(kernel);
      launch->setAttr(bpt::kDependentLaunchAttrName,
                      UnitAttr::get(&getContext()));
    });
  }

  /// Puts the wait, then the trigger, before the kernel's first op. The
  /// trigger after the wait: the next kernel is scheduled only once this
  /// one's predecessor has ended, so at most two kernels share the chip.
  static void beginWithWait(gpu::GPUFuncOp kernel) {
    OpBuilder b = OpBuilder::atBlockBegin(&kernel.getBody().front());
    Location loc = kernel.getLoc();
    NVVM::GriddepcontrolOp::create(b, loc, NVVM::GridDepActionKind::wait);
    NVVM::GriddepcontrolOp::create(b, loc,
                                   NVVM::GridDepActionKind::launch_dependents);
  }
};

} // namespace
