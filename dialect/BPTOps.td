//===- BPTOps.td - bpt dialect operations ------------------*- tablegen -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_DIALECT_BPTOPS_TD
#define BPT_DIALECT_BPTOPS_TD

include "BPTBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

// Operand and result constraints are checked in C++ so that every diagnostic
// names the operand (`key`, `w_in`, ...) rather than its position. Enum
// attributes print as bare keywords (`swiglu`) through custom directives.

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

def BPT_AttentionOp : BPT_Op<"attention", [Pure]> {
  let summary = "scaled dot-product attention (MHA, GQA, MQA)";
  let description = [{
    Computes `softmax(scale · Q·Kᵀ + mask) · V` for every batch and query head.

    - `query`: `[B, Hq, Sq, D]`; `key`, `value`: `[B, Hkv, Skv, D]`, where
      `Hq` is a multiple of `Hkv`. Query head `h` reads key/value head
      `h / (Hq / Hkv)`: `Hkv = Hq` is multi-head, `1 < Hkv < Hq` grouped-query,
      `Hkv = 1` multi-query attention.
    - `scale` defaults to `1/sqrt(D)`; it must be finite and in
      `[2^-126, 2^16]`: it is applied in f32 (times log2(e)) in the online
      softmax, and a larger one overflows it on ordinary data.
    - `causal`: query `i` attends to key `j` only where `j <= i + (Skv - Sq)`,
      i.e. the causal diagonal is aligned to the bottom-right corner of the
      `Sq × Skv` score matrix, as in FlashAttention ≥ 2.1 and PyTorch's
      `causal_lower_right` bias (PyTorch's `is_causal=True` aligns top-left
      instead; the two agree when `Sq = Skv`). When
      `Sq > Skv`, the first `Sq - Skv` query rows see no key at all: a fully
      masked row produces 0, not NaN.
    - The result has the query's type; all operands share one element type
      (`f32`, `f16` or `bf16`); softmax and accumulation are in `f32`.
    - An optional second result `lse`, `[B, Hq, Sq]` in `f32`, is each row's
      log-sum-exp, `log Σ_j exp(scale · q_i·k_j)` over the keys the row
      sees (natural log; `-inf` for a row that sees no key): what
      `bpt.attention_grad` needs to recompute the probabilities, saved
      instead of them.

    Example:

    ```mlir
    %o = bpt.attention %q, %k, %v causal
        : (tensor<2x8x128x64xf16>, tensor<2x2x128x64xf16>,
           tensor<2x2x128x64xf16>) -> tensor<2x8x128x64xf16>
    %o2, %lse = bpt.attention %q, %k, %v causal
        : (tensor<2x8x128x64xf16>, tensor<2x2x128x64xf16>,
           tensor<2x2x128x64xf16>)
        -> (tensor<2x8x128x64xf16>, tensor<2x8x128xf32>)
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$key,
    AnyRankedTensor:$value,
    UnitAttr:$causal,
    OptionalAttr<F64Attr>:$scale
  );
  let results = (outs AnyRankedTensor:$result, Optional<AnyRankedTensor>:$lse);

  let assemblyFormat = [{
    $query `,` $key `,` $value (`causal` $causal^)? (`scale` `(` $scale^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];

  let builders = [
    // Without the log-sum-exp result.
    OpBuilder<(ins "::mlir::Type":$result, "::mlir::Value":$query,
                   "::mlir::Value":$key, "::mlir::Value":$value,
                   "::mlir::UnitAttr":$causal, "::mlir::FloatAttr":$scale), [{
      build($_builder, $_state, result, /*lse=*/::mlir::Type(), query, key,
            value, causal, scale);
    }]>
  ];

  let extraClassDeclaration = [{
    /// The softmax scale: the `scale` attribute, or 1/sqrt(head_dim).
    double getEffectiveScale();
    /// The op as its output (as for a one-result op; the log-sum-exp, where
    /// there is one, is `getLse()`).
    operator ::mlir::Value() { return getResult(); }
  }];

  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// AttentionGradOp
//===----------------------------------------------------------------------===//

def BPT_AttentionGradOp : BPT_Op<"attention_grad", [Pure]> {
  let summary = "gradients of bpt.attention with respect to Q, K and V";
  let description = [{
    The backward pass of `bpt.attention`: given the forward's operands
    (`query`, `key`, `value`, with its `causal` and `scale`), its output
    `output` and log-sum-exp `lse` (the second result of `bpt.attention`),
    and the gradient `output_grad` of a loss with respect to the output,
    returns the gradients of the loss with respect to the query, key and
    value. With P the probabilities (recomputed as `exp(scale · q·kᵀ −
    lse)`), D = rowsum(`output_grad` ∘ `output`):

    - dV = Pᵀ · dO, dS = P ∘ (dO · Vᵀ − D), dQ = scale · dS · K,
      dK = scale · dSᵀ · Q;
    - GQA/MQA: the gradients of a key/value head sum over the query heads
      that read it;
    - a row that sees no key (causal, `Sq > Skv`) has a zero query
      gradient and adds nothing to the others (no NaN).

    Shapes: `output`, `output_grad` and the query gradient have the query's
    type, the key and value gradients the key's and value's; `lse` is
    `[B, Hq, Sq]` in `f32`. The gradients are accumulated in `f32`.

    Example:

    ```mlir
    %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
        : (tensor<1x8x256x64xbf16>, tensor<1x2x256x64xbf16>,
           tensor<1x2x256x64xbf16>, tensor<1x8x256x64xbf16>,
           tensor<1x8x256x64xbf16>, tensor<1x8x256xf32>)
        -> (tensor<1x8x256x64xbf16>, tensor<1x2x256x64xbf16>,
            tensor<1x2x256x64xbf16>)
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$key,
    AnyRankedTensor:$value,
    AnyRankedTensor:$output,
    AnyRankedTensor:$output_grad,
    AnyRankedTensor:$lse,
    UnitAttr:$causal,
    OptionalAttr<F64Attr>:$scale
  );
  let results = (outs AnyRankedTensor:$query_grad, AnyRankedTensor:$key_grad,
                      AnyRankedTensor:$value_grad);

  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $output `,` $output_grad `,` $lse
    (`causal` $causal^)? (`scale` `(` $scale^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];

  let extraClassDeclaration = [{
    /// The softmax scale: the `scale` attribute, or 1/sqrt(head_dim).
    double getEffectiveScale();
  }];

  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

def BPT_LinearOp : BPT_Op<"linear", [Pure]> {
  let summary = "affine projection over the last dimension";
  let description = [{
    `result = input · weight (+ bias)`, contracting the last dimension of
    `input` (`[..., K]`) with the first of `weight` (`[K, N]`, i.e. in × out,
    the transpose of PyTorch's `nn.Linear.weight`); `bias` is `[N]`. The
    result is `[..., N]`.

    Example:

    ```mlir
    %y = bpt.linear %x, %w, %b
        : (tensor<2x128x512xf32>, tensor<512x1024xf32>, tensor<1024xf32>)
          -> tensor<2x128x1024xf32>
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$input,
    AnyRankedTensor:$weight,
    Optional<AnyRankedTensor>:$bias
  );
  let results = (outs AnyRankedTensor:$result);

  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

def BPT_LinearGradOp : BPT_Op<"linear_grad", [Pure]> {
  let summary = "gradients of bpt.linear with respect to its operands";
  let description = [{
    The backward pass of `bpt.linear`: given the forward's `input`
    (`[..., K]`) and `weight` (`[K, N]`) and the gradient `result_grad`
    (`[..., N]`, the forward result's type) of a loss with respect to its
    result, returns

    - `input_grad` = `result_grad · weightᵀ` (`[..., K]`),
    - `weight_grad` = `Σ_rows inputᵀ · result_grad` (`[K, N]`, every leading
      dimension of the input counted as rows),
    - `bias_grad` = `Σ_rows result_grad` (`[N]`), only when the op has this
      third result: the forward had a bias. The bias itself is not an
      operand: none of the gradients depends on it.

    Each gradient has exactly the type of the operand it is the gradient
    of; products and sums are accumulated in `f32`.

    Example:

    ```mlir
    %dx, %dw, %db = bpt.linear_grad %x, %w, %dy
        : (tensor<2x128x512xf32>, tensor<512x1024xf32>,
           tensor<2x128x1024xf32>)
        -> (tensor<2x128x512xf32>, tensor<512x1024xf32>, tensor<1024xf32>)
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$input,
    AnyRankedTensor:$weight,
    AnyRankedTensor:$result_grad
  );
  let results = (outs AnyRankedTensor:$input_grad,
                      AnyRankedTensor:$weight_grad,
                      Optional<AnyRankedTensor>:$bias_grad);

  let assemblyFormat = [{
    $input `,` $weight `,` $result_grad attr-dict `:`
    functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// MatmulOp
//===----------------------------------------------------------------------===//

def BPT_MatmulOp : BPT_Op<"matmul", [Pure, AttrSizedOperandSegments]> {
  let summary = "a 2-D matrix product with transposed operands, an f32 "
                "accumulator or an activation-gradient epilogue";
  let description = [{
    `result = accumulator + op(lhs) · op(rhs)`, where `op(lhs)` is `[M, K]`
    (stored `[K, M]` with `transpose_lhs`) and `op(rhs)` is `[K, N]` (stored
    `[N, K]` with `transpose_rhs`). Products and sums are taken in `f32`,
    rounded once to the result's element type. The optional `accumulator`
    is an `f32` `[M, N]` tensor; without it the sum starts at zero.

    With `act_grad <activation> %pre` (the activation-gradient epilogue),
    `pre` is an `f32` `[M, N]` tensor of pre-activations and the op has a
    second result `act` of the result's type:

    - `result = (op(lhs) · op(rhs)) ⊙ act'(pre)`,
    - `act = act(pre)`,

    each computed in `f32` and rounded once. `act` and `act'` are those of
    `bpt.ffn_grad`; only the activations of one operand (`gelu`,
    `gelu_tanh`, `relu`, `silu`) are taken: a gated one's derivative needs
    both halves of the hidden layer. The epilogue does not combine with an
    `accumulator`.

    This is the GEMM that the gradients need: `bpt-expand-gradients` writes
    `bpt.linear_grad` and `bpt.ffn_grad` as these (`dx = dy · wᵀ`,
    `dw = Σ_chunks xᵀ · dy` with an `f32` accumulator across row chunks,
    and for an FFN `du = (dy · w_outᵀ) ⊙ act'(u)` with the hidden
    activation `act(u)`), which the tensor-core paths run with transposed
    shared-memory operands rather than transposed copies, the activation's
    derivative in the GEMM's epilogue.

    The operands have the same element type (f32, f16 or bf16); the result
    has that type or `f32`.

    Example:

    ```mlir
    %dw = bpt.matmul %x, %dy, acc %dw0 {transpose_lhs}
        : (tensor<2048x512xbf16>, tensor<2048x1024xbf16>, tensor<512x1024xf32>)
          -> tensor<512x1024xf32>
    %du, %h = bpt.matmul %dy, %w_out, act_grad gelu %u {transpose_rhs}
        : (tensor<2048x512xbf16>, tensor<2048x512xbf16>, tensor<2048x2048xf32>)
          -> (tensor<2048x2048xbf16>, tensor<2048x2048xbf16>)
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$lhs,
    AnyRankedTensor:$rhs,
    Optional<AnyRankedTensor>:$accumulator,
    Optional<AnyRankedTensor>:$pre,
    UnitAttr:$transpose_lhs,
    UnitAttr:$transpose_rhs,
    OptionalAttr<BPT_ActivationAttr>:$activation
  );
  let results = (outs AnyRankedTensor:$result,
                      Optional<AnyRankedTensor>:$act);

  // `, acc %s` and `, act_grad <activation> %pre` both start with a comma,
  // which the declarative format's optional groups cannot tell apart.
  let assemblyFormat = [{
    $lhs `,` $rhs `` custom<MatmulClauses>($accumulator, $activation, $pre)
    attr-dict `:` functional-type(operands, results)
  }];

  let builders = [
    // The plain product (no epilogue), optionally onto `accumulator`.
    OpBuilder<(ins "::mlir::Type":$result, "::mlir::Value":$lhs,
                   "::mlir::Value":$rhs, "::mlir::Value":$accumulator)>
  ];

  let extraClassDeclaration = [{
    /// M, N and K of the product.
    int64_t getM();
    int64_t getN();
    int64_t getK();
  }];

  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// FFNOp
//===----------------------------------------------------------------------===//

def BPT_FFNOp : BPT_Op<"ffn", [Pure]> {
  let summary = "position-wise feed-forward network";
  let description = [{
    A feed-forward network applied to each position (the last dimension) of
    `input` (`[..., H]`), in one of two forms:

    - two matrices, for `gelu`, `gelu_tanh`, `relu`, `silu`:
      `act(input · w_in) · w_out`;
    - three matrices, for the gated `swiglu` and `geglu`:
      `(act(input · w_gate) ⊙ (input · w_in)) · w_out`, with `act` being
      `silu` and `gelu` (erf form) respectively.

    `w_in` and `w_gate` are `[H, F]`, `w_out` is `[F, H]`; the result has the
    input's type. `gelu` is the erf form, `gelu_tanh` the tanh approximation.

    Example:

    ```mlir
    %y = bpt.ffn swiglu %x, %w_in, %w_out, gate %w_gate
        : (tensor<2x128x512xbf16>, tensor<512x1408xbf16>,
           tensor<1408x512xbf16>, tensor<512x1408xbf16>)
          -> tensor<2x128x512xbf16>
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$input,
    AnyRankedTensor:$w_in,
    AnyRankedTensor:$w_out,
    Optional<AnyRankedTensor>:$w_gate,
    BPT_ActivationAttr:$activation
  );
  let results = (outs AnyRankedTensor:$result);

  let assemblyFormat = [{
    custom<Activation>($activation) $input `,` $w_in `,` $w_out (`,` `gate` $w_gate^)?
    attr-dict `:` functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

def BPT_FFNGradOp : BPT_Op<"ffn_grad", [Pure]> {
  let summary = "gradients of bpt.ffn with respect to its operands";
  let description = [{
    The backward pass of `bpt.ffn` (same `activation`, same operands), for
    the gradient `result_grad` (the input's type) of a loss with respect to
    the forward's result. Per position, with `u = input · w_in`,
    `dh = result_grad · w_outᵀ`:

    - two matrices (`gelu`, `gelu_tanh`, `relu`, `silu`):
      `w_out_grad = Σ_rows act(u)ᵀ · result_grad`, `du = dh ⊙ act'(u)`;
    - gated (`swiglu`, `geglu`), with `g = input · w_gate`:
      `w_out_grad = Σ_rows (act(g) ⊙ u)ᵀ · result_grad`, `du = dh ⊙ act(g)`,
      `dg = dh ⊙ u ⊙ act'(g)`, `w_gate_grad = Σ_rows inputᵀ · dg`;
    - then `w_in_grad = Σ_rows inputᵀ · du` and
      `input_grad = du · w_inᵀ (+ dg · w_gateᵀ)`.

    `act` and its derivative are those of the forward's formulas: `gelu`
    (and `geglu`'s gate) `x·Φ(x)`, `act' = Φ(x) + x·φ(x)`; `gelu_tanh`
    `0.5·x·(1 + t)`, `t = tanh(c·(x + 0.044715·x³))`, `c = sqrt(2/π)`,
    `act' = 0.5·(1 + t) + 0.5·x·(1 − t²)·c·(1 + 3·0.044715·x²)`; `relu`
    with `relu'(0) = 0`; `silu` (and `swiglu`'s gate) `x·σ(x)`,
    `act' = σ(x)·(1 + x·(1 − σ(x)))`.

    The gated activations take `w_gate` and give `w_gate_grad`; the others
    take neither. Each gradient has exactly the type of its operand; the
    intermediates (`u`, `g`, `dh`, ...) are `f32`.

    Example:

    ```mlir
    %dx, %dw1, %dw2, %dw3 = bpt.ffn_grad swiglu %x, %w1, %w2, gate %w3, %dy
        : (tensor<2x128x512xbf16>, tensor<512x1408xbf16>,
           tensor<1408x512xbf16>, tensor<512x1408xbf16>,
           tensor<2x128x512xbf16>)
        -> (tensor<2x128x512xbf16>, tensor<512x1408xbf16>,
            tensor<1408x512xbf16>, tensor<512x1408xbf16>)
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$input,
    AnyRankedTensor:$w_in,
    AnyRankedTensor:$w_out,
    Optional<AnyRankedTensor>:$w_gate,
    AnyRankedTensor:$result_grad,
    BPT_ActivationAttr:$activation
  );
  let results = (outs AnyRankedTensor:$input_grad,
                      AnyRankedTensor:$w_in_grad,
                      AnyRankedTensor:$w_out_grad,
                      Optional<AnyRankedTensor>:$w_gate_grad);

  // The optional group starts with its keyword, so that `, %dy` after
  // `w_out` is not mistaken for the start of a gate.
  let assemblyFormat = [{
    custom<Activation>($activation) $input `,` $w_in `,` $w_out `,`
    (`gate` $w_gate^ `,`)? $result_grad
    attr-dict `:` functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Normalisations
//===----------------------------------------------------------------------===//

def BPT_LayerNormOp : BPT_Op<"layer_norm", [Pure]> {
  let summary = "layer normalisation over the last dimension";
  let description = [{
    `(input - mean) / sqrt(var + epsilon) · weight + bias`, with the biased
    variance over the last dimension `H`, computed in `f32`. `weight` and
    `bias` are `[H]`; `epsilon` (default `1e-5`) is finite and in `[0, 1]`.

    Example:

    ```mlir
    %y = bpt.layer_norm %x, %gamma, %beta {epsilon = 1.000000e-06 : f64}
        : (tensor<2x128x512xf32>, tensor<512xf32>, tensor<512xf32>)
          -> tensor<2x128x512xf32>
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$input,
    AnyRankedTensor:$weight,
    AnyRankedTensor:$bias,
    DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon
  );
  let results = (outs AnyRankedTensor:$result);

  let assemblyFormat = [{
    $input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

def BPT_RMSNormOp : BPT_Op<"rms_norm", [Pure]> {
  let summary = "root-mean-square normalisation over the last dimension";
  let description = [{
    `input / sqrt(mean(input²) + epsilon) · weight` over the last dimension
    `H`, computed in `f32`. `weight` is `[H]`; `epsilon` (default `1e-5`) is
    finite and in `[0, 1]`.

    Example:

    ```mlir
    %y = bpt.rms_norm %x, %gamma
        : (tensor<2x128x512xf32>, tensor<512xf32>) -> tensor<2x128x512xf32>
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$input,
    AnyRankedTensor:$weight,
    DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon
  );
  let results = (outs AnyRankedTensor:$result);

  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

def BPT_LayerNormGradOp : BPT_Op<"layer_norm_grad", [Pure]> {
  let summary = "gradients of bpt.layer_norm with respect to its operands";
  let description = [{
    The backward pass of `bpt.layer_norm` (same `input`, `weight` and
    `epsilon`; the bias is not an operand, no gradient depends on it), for
    the gradient `result_grad` (the input's type) of a loss with respect to
    its result. Per row, with `inv = 1/sqrt(var + epsilon)` (biased
    variance), `x̂ = (input − mean)·inv` and `g = result_grad ⊙ weight`:

    - `input_grad = inv · (g − mean(g) − x̂ · mean(g ⊙ x̂))`,
    - `weight_grad = Σ_rows result_grad ⊙ x̂`, `bias_grad = Σ_rows result_grad`.

    Each gradient has exactly the type of its operand (`bias_grad` the
    weight's: the bias has the weight's type); statistics and sums are
    `f32`.

    Example:

    ```mlir
    %dx, %dw, %db = bpt.layer_norm_grad %x, %gamma, %dy
        {epsilon = 1.000000e-06 : f64}
        : (tensor<2x128x512xf32>, tensor<512xf32>, tensor<2x128x512xf32>)
        -> (tensor<2x128x512xf32>, tensor<512xf32>, tensor<512xf32>)
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$input,
    AnyRankedTensor:$weight,
    AnyRankedTensor:$result_grad,
    DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon
  );
  let results = (outs AnyRankedTensor:$input_grad,
                      AnyRankedTensor:$weight_grad,
                      AnyRankedTensor:$bias_grad);

  let assemblyFormat = [{
    $input `,` $weight `,` $result_grad attr-dict `:`
    functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

def BPT_RMSNormGradOp : BPT_Op<"rms_norm_grad", [Pure]> {
  let summary = "gradients of bpt.rms_norm with respect to its operands";
  let description = [{
    The backward pass of `bpt.rms_norm` (same `input`, `weight` and
    `epsilon`), for the gradient `result_grad` (the input's type) of a loss
    with respect to its result. Per row, with
    `inv = 1/sqrt(mean(input²) + epsilon)`, `x̂ = input·inv` and
    `g = result_grad ⊙ weight`:

    - `input_grad = inv · (g − x̂ · mean(g ⊙ x̂))`,
    - `weight_grad = Σ_rows result_grad ⊙ x̂`.

    Each gradient has exactly the type of its operand; statistics and sums
    are `f32`.

    Example:

    ```mlir
    %dx, %dw = bpt.rms_norm_grad %x, %gamma, %dy
        : (tensor<2x128x512xbf16>, tensor<512xbf16>, tensor<2x128x512xbf16>)
        -> (tensor<2x128x512xbf16>, tensor<512xbf16>)
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$input,
    AnyRankedTensor:$weight,
    AnyRankedTensor:$result_grad,
    DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon
  );
  let results = (outs AnyRankedTensor:$input_grad,
                      AnyRankedTensor:$weight_grad);

  let assemblyFormat = [{
    $input `,` $weight `,` $result_grad attr-dict `:`
    functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// TransformerBlockOp
//===----------------------------------------------------------------------===//

def BPT_TransformerBlockOp : BPT_Op<"transformer_block",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "a whole pre-norm transformer block";
  let description = [{
    A pre-norm transformer block on `input` (`[B, S, H]`):

    ```
    h = norm1(x);  q, k, v = h·w_q, h·w_k, h·w_v   (split into heads)
    r = x + attention(q, k, v)·w_o                 (heads merged back)
    y = r + ffn(norm2(r))
    ```

    - `w_q`: `[H, heads·D]`, `w_k`, `w_v`: `[H, kv_heads·D]`, `w_o`:
      `[heads·D, H]`; the head dimension `D` is `w_q`'s width over `heads`,
      and `heads` is a multiple of `kv_heads` (MHA, GQA, MQA).
    - `norm` is `layer_norm` (each norm takes a weight and a bias, `[H]`) or
      `rms_norm` (a weight only), with `epsilon` (default `1e-5`, in
      `[0, 1]`).
    - The FFN is `w_in` `[H, F]`, `w_out` `[F, H]`, plus `w_gate` `[H, F]` for
      the gated activations (`swiglu`, `geglu`); see `bpt.ffn`.
    - Attention uses the default scale `1/sqrt(D)`; `causal` as in
      `bpt.attention`.

    `bpt-decompose-block` expands the op into the primitives above.

    Example:

    ```mlir
    %y = bpt.transformer_block %x
        norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
        ffn(%w1, %w2, gate %w3)
        heads(8) kv_heads(2) causal activation(swiglu) norm(rms_norm)
        : (tensor<1x256x512xf32>, tensor<512xf32>, tensor<512x512xf32>,
           tensor<512x128xf32>, tensor<512x128xf32>, tensor<512x512xf32>,
           tensor<512xf32>, tensor<512x1408xf32>, tensor<1408x512xf32>,
           tensor<512x1408xf32>) -> tensor<1x256x512xf32>
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$input,
    AnyRankedTensor:$norm1_weight,
    Optional<AnyRankedTensor>:$norm1_bias,
    AnyRankedTensor:$w_q,
    AnyRankedTensor:$w_k,
    AnyRankedTensor:$w_v,
    AnyRankedTensor:$w_o,
    AnyRankedTensor:$norm2_weight,
    Optional<AnyRankedTensor>:$norm2_bias,
    AnyRankedTensor:$w_in,
    AnyRankedTensor:$w_out,
    Optional<AnyRankedTensor>:$w_gate,
    I64Attr:$heads,
    I64Attr:$kv_heads,
    UnitAttr:$causal,
    BPT_ActivationAttr:$activation,
    BPT_NormKindAttr:$norm,
    DefaultValuedAttr<F64Attr, "1.0e-5">:$epsilon
  );
  let results = (outs AnyRankedTensor:$result);

  let assemblyFormat = [{
    $input
    `norm1` `(` $norm1_weight (`,` $norm1_bias^)? `)`
    `attention` `(` $w_q `,` $w_k `,` $w_v `,` $w_o `)`
    `norm2` `(` $norm2_weight (`,` $norm2_bias^)? `)`
    `ffn` `(` $w_in `,` $w_out (`,` `gate` $w_gate^)? `)`
    `heads` `(` $heads `)` `kv_heads` `(` $kv_heads `)` (`causal` $causal^)?
    `activation` `(` custom<Activation>($activation) `)`
    `norm` `(` custom<NormKind>($norm) `)`
    attr-dict `:` functional-type(operands, results)
  }];

  let extraClassDeclaration = [{
    /// The attention head dimension: w_q's width over `heads`.
    int64_t getHeadDim();
  }];

  let hasVerifier = 1;
}

#endif // BPT_DIALECT_BPTOPS_TD
