//===- Passes.td - bpt conversion passes -------------------*- tablegen -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_CONVERSION_PASSES_TD
#define BPT_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def BPTConvertToLinalg : Pass<"bpt-convert-to-linalg", "::mlir::func::FuncOp"> {
  let summary = "Lower bpt's position-wise ops to linalg on tensors";
  let description = [{
    Lowers `bpt.linear`, `bpt.ffn`, `bpt.layer_norm` and `bpt.rms_norm` to
    `linalg.generic` on tensors: contractions accumulate in `f32` (inputs are
    widened inside the loop body), activations and norms are computed in
    `f32`, and results are rounded to the op's element type once, at the end.
    The FFN hidden activation stays `f32` between its two products.

    `bpt.attention` and `bpt.transformer_block` are not lowered here: they
    must be tiled (`bpt-tile-attention`, `bpt-fuse-ffn-residual`) or
    decomposed (`bpt-decompose-block`) first, i.e. run `bpt-blockwise`; the
    pass fails with an error on any that remain.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

#endif // BPT_CONVERSION_PASSES_TD
