//===- SM90Emitter.cpp - building blocks of sm_90a kernels ------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "SM90Emitter.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace bpt::sm90;

/// The sm_90a kernel module, created with the first kernel.
gpu::GPUModuleOp bpt::sm90::getOrCreateSM90KernelModule(ModuleOp module) {
  for (auto existing : module.getOps<gpu::GPUModuleOp>())
    if (existing.getName() == "bpt_sm90")
      return existing;
  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  auto kernels = gpu::GPUModuleOp::create(b, module.getLoc(), "bpt_sm90");
  // Its kernels are named after what they compute; keep those names when
  // bpt-merge-kernel-modules gathers them.
  kernels->setAttr("bpt.keep_kernel_names", b.getUnitAttr());
  b.setInsertionPointToStart(kernels.getBody());
  auto bytes = LLVM::LLVMArrayType::get(b.getI8Type(), 0);
  LLVM::GlobalOp::create(b, module.getLoc(), bytes, /*isConstant=*/false,
                         LLVM::Linkage::External, kSharedMemorySymbol, Attribute(),
                         /*alignment=*/1024, /*addrSpace=*/3);
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  b.getUnitAttr());
  return kernels;
}

Type bpt::sm90::tensorMapType(MLIRContext *ctx, int64_t rows, Type element) {
  auto box = MemRefType::get(
      {rows, kSwizzleElements}, element, MemRefLayoutAttrInterface(),
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup));
  return nvgpu::TensorMapDescriptorType::get(
      ctx, box, nvgpu::TensorMapSwizzleKind::SWIZZLE_128B,
      nvgpu::TensorMapL2PromoKind::L2PROMO_128B,
      nvgpu::TensorMapOOBKind::OOB_ZERO,
      nvgpu::TensorMapInterleaveKind::INTERLEAVE_NONE);
}


gpu::GPUFuncOp bpt::sm90::createKernel(gpu::GPUModuleOp kernels,
                                       StringRef name, TypeRange inputs,
                                       std::optional<int64_t> threads,
                                       Location loc) {
  OpBuilder b(kernels.getContext());
  b.setInsertionPointToEnd(kernels.getBody());
  auto func = gpu::GPUFuncOp::create(
      b, loc, name, FunctionType::get(kernels.getContext(), inputs, {}));
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  if (threads) {
    func->setAttr("nvvm.maxntid",
                  b.getDenseI32ArrayAttr({int32_t(*threads), 1, 1}));
    func->setAttr("nvvm.minctasm", b.getI32IntegerAttr(1));
  }
  SymbolTable(kernels).insert(func);
  return func;
}

Value bpt::sm90::readOnlyBuffer(OpBuilder &b, Location loc, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  return bufferization::ToBufferOp::create(
      b, loc, MemRefType::get(type.getShape(), type.getElementType()), tensor,
      /*read_only=*/true);
}

Value bpt::sm90::createTensorMap(OpBuilder &b, Location loc, Value matrix,
                                 int64_t boxRows) {
  Type element = cast<MemRefType>(matrix.getType()).getElementType();
  Value unranked = memref::CastOp::create(
      b, loc, UnrankedMemRefType::get(element, 0), matrix);
  Value box[2] = {arith::ConstantIndexOp::create(b, loc, boxRows),
                  arith::ConstantIndexOp::create(b, loc, kSwizzleElements)};
  return nvgpu::TmaCreateDescriptorOp::create(
      b, loc, tensorMapType(b.getContext(), boxRows, element), unranked, box);
}
