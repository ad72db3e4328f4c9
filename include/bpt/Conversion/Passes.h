//===- Passes.h - bpt conversion passes -------------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_CONVERSION_PASSES_H
#define BPT_CONVERSION_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

#include "bpt/Dialect/BPTOps.h"

namespace mlir {
class RewritePatternSet;
} // namespace mlir

namespace bpt {

#define GEN_PASS_DECL
#include "bpt/Conversion/Passes.h.inc"

/// The activation `act` of an f32 scalar, in arith and math ops; gated kinds
/// use their gate's activation (silu for swiglu, erf-gelu for geglu).
mlir::Value buildActivation(mlir::OpBuilder &b, mlir::Location loc,
                            Activation act, mlir::Value x);

/// `buildActivation` as the tensor-core GEMM epilogues evaluate it (16-bit
/// outputs, or f32 ones of TF32 products): GELU (and GeGLU's gate) with one ex2
/// and a polynomial, SiLU (and SwiGLU's gate) and GELU-tanh with an
/// approximate division (bpt/Conversion/EpilogueActivation.h says how and
/// how accurately); ReLU as buildActivation.
mlir::Value buildEpilogueActivation(mlir::OpBuilder &b, mlir::Location loc,
                                    Activation act, mlir::Value x);

/// d/dx of `buildActivation(act, x)` for an f32 scalar, with the float64
/// reference's formulas (relu'(0) = 0).
mlir::Value buildActivationDerivative(mlir::OpBuilder &b, mlir::Location loc,
                                      Activation act, mlir::Value x);

/// The activation-gradient epilogue of bpt.matmul (and of a two-matrix
/// bpt.ffn_grad's hidden layer) on f32 scalars: `product` ⊙ act'(`pre`)
/// and act(`pre`), in that order.
std::pair<mlir::Value, mlir::Value>
buildActivationGradient(mlir::OpBuilder &b, mlir::Location loc, Activation act,
                        mlir::Value product, mlir::Value pre);

/// Adds the patterns lowering bpt.linear, bpt.ffn, the gradient ops and the
/// norms to linalg; with `keepRowwiseNorms`, norms whose strategy takes the
/// rowwise path are left for bpt-norm-to-rowwise.
void populateBPTToLinalgPatterns(mlir::RewritePatternSet &patterns,
                                 bool keepRowwiseNorms = false);

#define GEN_PASS_REGISTRATION
#include "bpt/Conversion/Passes.h.inc"

} // namespace bpt

#endif // BPT_CONVERSION_PASSES_H
