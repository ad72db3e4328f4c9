//===- Passes.td - bpt transformation passes ---------------*- tablegen -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_TRANSFORMS_PASSES_TD
#define BPT_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def BPTDecomposeBlock : Pass<"bpt-decompose-block", "::mlir::func::FuncOp"> {
  let summary = "Expand bpt.transformer_block into its primitive ops";
  let description = [{
    Rewrites every `bpt.transformer_block` into the model-level primitives it
    stands for: the first norm, the Q/K/V projections (`bpt.linear`), the
    split into heads (`tensor.expand_shape` + `linalg.transpose` to
    `[B, heads, S, D]`), `bpt.attention`, the merge of heads, the output
    projection, the first residual (`arith.addf`), the second norm,
    `bpt.ffn`, and the second residual.

    Example:

    ```mlir
    %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
        norm2(%g2) ffn(%w1, %w2) heads(8) kv_heads(8) activation(gelu)
        norm(rms_norm) : (...) -> tensor<1x256x512xf32>
    ```

    becomes

    ```mlir
    %h = bpt.rms_norm %x, %g1 : ...
    %q = bpt.linear %h, %wq : ...
    %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [1, 256, 8, 64] : ...
    %qh = linalg.transpose ins(%q4 : ...) outs(%e : ...) permutation = [0, 2, 1, 3]
    ...
    %a = bpt.attention %qh, %kh, %vh : ...
    ...
    %r = arith.addf %x, %o : tensor<1x256x512xf32>
    %h2 = bpt.rms_norm %r, %g2 : ...
    %f = bpt.ffn gelu %h2, %w1, %w2 : ...
    %y = arith.addf %r, %f : tensor<1x256x512xf32>
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

#endif // BPT_TRANSFORMS_PASSES_TD
