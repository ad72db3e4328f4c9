//===- SM90Emitter.cpp - building blocks of sm_90a kernels ------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "SM90Emitter.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace bpt::sm90;

gpu::GPUModuleOp bpt::sm90::getOrCreateSM90KernelModule(ModuleOp module) {
  return codegen::getOrCreateKernelModule(module, "bpt_sm90",
                                          kSharedMemorySymbol,
                                          kSwizzleAtomBytes);
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
