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

Type bpt::sm90::tensorMapType(MLIRContext *ctx, int64_t rows, Type element,
                              bool perMatrix) {
  SmallVector<int64_t, 3> shape = {rows, swizzleColumns(element)};
  if (perMatrix)
    shape.insert(shape.begin(), 1);
  auto box = MemRefType::get(
      shape, element, MemRefLayoutAttrInterface(),
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup));
  return nvgpu::TensorMapDescriptorType::get(
      ctx, box, nvgpu::TensorMapSwizzleKind::SWIZZLE_128B,
      nvgpu::TensorMapL2PromoKind::L2PROMO_128B,
      nvgpu::TensorMapOOBKind::OOB_ZERO,
      nvgpu::TensorMapInterleaveKind::INTERLEAVE_NONE);
}

Value bpt::sm90::createHeadsTensorMap(OpBuilder &b, Location loc, Value buffer,
                                      int64_t boxRows, bool perHead) {
  Value matrix = perHead
                     ? memref::CollapseShapeOp::create(
                           b, loc, buffer,
                           SmallVector<ReassociationIndices>{{0, 1}, {2}, {3}})
                           .getResult()
                     : asRows(b, loc, buffer);
  return createTensorMap(b, loc, matrix, boxRows);
}

Value bpt::sm90::createTensorMap(OpBuilder &b, Location loc, Value matrix,
                                 int64_t boxRows) {
  auto type = cast<MemRefType>(matrix.getType());
  Type element = type.getElementType();
  bool perMatrix = type.getRank() == 3;
  Value unranked = memref::CastOp::create(
      b, loc, UnrankedMemRefType::get(element, 0), matrix);
  SmallVector<Value, 3> box;
  if (perMatrix)
    box.push_back(arith::ConstantIndexOp::create(b, loc, 1));
  box.append({arith::ConstantIndexOp::create(b, loc, boxRows),
              arith::ConstantIndexOp::create(b, loc, swizzleColumns(element))});
  return nvgpu::TmaCreateDescriptorOp::create(
      b, loc, tensorMapType(b.getContext(), boxRows, element, perMatrix),
      unranked, box);
}
