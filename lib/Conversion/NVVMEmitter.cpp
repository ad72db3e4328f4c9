//===- NVVMEmitter.cpp - building blocks of bpt's tensor-core kernels -----===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "NVVMEmitter.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace bpt::codegen;

gpu::GPUModuleOp bpt::codegen::getOrCreateKernelModule(ModuleOp module,
                                                       StringRef name,
                                                       StringRef sharedSymbol,
                                                       int64_t alignment) {
  for (auto existing : module.getOps<gpu::GPUModuleOp>())
    if (existing.getName() == name)
      return existing;
  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  auto kernels = gpu::GPUModuleOp::create(b, module.getLoc(), name);
  // Its kernels are named after what they compute; keep those names when
  // bpt-merge-kernel-modules gathers them.
  kernels->setAttr("bpt.keep_kernel_names", b.getUnitAttr());
  b.setInsertionPointToStart(kernels.getBody());
  auto bytes = LLVM::LLVMArrayType::get(b.getI8Type(), 0);
  LLVM::GlobalOp::create(b, module.getLoc(), bytes, /*isConstant=*/false,
                         LLVM::Linkage::External, sharedSymbol, Attribute(),
                         alignment, /*addrSpace=*/3);
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  b.getUnitAttr());
  return kernels;
}

gpu::GPUFuncOp bpt::codegen::createKernel(gpu::GPUModuleOp kernels,
                                          StringRef name, TypeRange inputs,
                                          std::optional<int64_t> threads,
                                          Location loc, int64_t minBlocks) {
  OpBuilder b(kernels.getContext());
  b.setInsertionPointToEnd(kernels.getBody());
  auto func = gpu::GPUFuncOp::create(
      b, loc, name, FunctionType::get(kernels.getContext(), inputs, {}));
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  if (threads) {
    func->setAttr("nvvm.maxntid",
                  b.getDenseI32ArrayAttr({int32_t(*threads), 1, 1}));
    func->setAttr("nvvm.minctasm", b.getI32IntegerAttr(minBlocks));
  }
  SymbolTable(kernels).insert(func);
  return func;
}

Value bpt::codegen::asRows(OpBuilder &b, Location loc, Value buffer) {
  int64_t rank = cast<MemRefType>(buffer.getType()).getRank();
  SmallVector<ReassociationIndices> toRows(1);
  for (int64_t d = 0; d + 1 < rank; ++d)
    toRows[0].push_back(d);
  toRows.push_back({rank - 1});
  return memref::CollapseShapeOp::create(b, loc, buffer, toRows);
}

Value bpt::codegen::leadingRows(OpBuilder &b, Location loc, Value matrix,
                                int64_t rows) {
  auto type = cast<MemRefType>(matrix.getType());
  int64_t width = type.getDimSize(1);
  Value view = memref::SubViewOp::create(
      b, loc, matrix, ArrayRef<int64_t>{0, 0}, ArrayRef<int64_t>{rows, width},
      ArrayRef<int64_t>{1, 1});
  // The leading rows are contiguous from the base: the identity layout.
  return memref::CastOp::create(
      b, loc, MemRefType::get({rows, width}, type.getElementType()), view);
}

Value bpt::codegen::readOnlyBuffer(OpBuilder &b, Location loc, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  return bufferization::ToBufferOp::create(
      b, loc, MemRefType::get(type.getShape(), type.getElementType()), tensor,
      /*read_only=*/true);
}
