//===- NormToRowwise.cpp - the norms as one row kernel each -----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces each norm whose strategy takes the rowwise path by one launch of
// the row kernel (NormKernel.h) over its input viewed as [rows, hidden].
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "NVVMEmitter.h"
#include "NormKernel.h"
#include "StrategyOps.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace bpt {
#define GEN_PASS_DEF_BPTNORMTOROWWISE
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using codegen::NormConfig;

namespace {

constexpr llvm::StringLiteral kModuleName = "bpt_rows";
constexpr llvm::StringLiteral kSharedSymbol = "bpt_rows_shared";

struct BPTNormToRowwisePass final
    : bpt::impl::BPTNormToRowwiseBase<BPTNormToRowwisePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<Operation *> norms;
    for (auto op : opsTaking<LayerNormOp>(module, KernelPath::rowwise))
      norms.push_back(op);
    for (auto op : opsTaking<RMSNormOp>(module, KernelPath::rowwise))
      norms.push_back(op);
    for (Operation *norm : norms)
      if (failed(rewrite(norm)))
        return signalPassFailure();
  }

  LogicalResult rewrite(Operation *norm) {
    Location loc = norm->getLoc();
    auto type = cast<RankedTensorType>(norm->getResult(0).getType());
    Type element = type.getElementType();
    int64_t hidden = type.getShape().back();
    int64_t rows = type.getNumElements() / hidden;
    // The strategy is checked where it is chosen or recorded; a hand-made
    // one that the kernel cannot honour is an error, not a wrong answer.
    if (std::optional<std::string> why =
            NormConfig::check(rows, hidden, element))
      return norm->emitError() << "bpt-norm-to-rowwise: " << *why;
    bool layerNorm = isa<LayerNormOp>(norm);
    NormConfig config{rows, rows, hidden, layerNorm, codegen::normEpsilon(norm),
                      element.isBF16(), rows};
    gpu::GPUModuleOp kernels = codegen::getOrCreateKernelModule(
        getOperation(), kModuleName, kSharedSymbol, /*alignment=*/16);
    gpu::GPUFuncOp kernel =
        codegen::getOrBuildNormKernel(kernels, config, element, loc);

    OpBuilder b(norm);
    auto index = [&](int64_t v) -> Value {
      return arith::ConstantIndexOp::create(b, loc, v);
    };
    auto i32 = [&](int64_t v) -> Value {
      return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
    };
    // Operands: input, weight, (bias).
    SmallVector<Value> arguments = {codegen::asRows(
        b, loc, codegen::readOnlyBuffer(b, loc, norm->getOperand(0)))};
    for (Value operand : norm->getOperands().drop_front())
      arguments.push_back(codegen::readOnlyBuffer(b, loc, operand));
    Value out = memref::AllocOp::create(
        b, loc, MemRefType::get(type.getShape(), element));
    Value zero = i32(0); // rows from 0 in x and out
    arguments.append({codegen::asRows(b, loc, out), zero, zero});
    Value one = index(1);
    gpu::LaunchFuncOp::create(
        b, loc, kernel, gpu::KernelDim3{index(config.blocks()), one, one},
        gpu::KernelDim3{index(NormConfig::threads()), one, one}, Value(),
        arguments);
    norm->getResult(0).replaceAllUsesWith(bufferization::ToTensorOp::create(
        b, loc, type, out, /*restrict=*/true, /*writable=*/true));
    norm->erase();
    return success();
  }
};

} // namespace
