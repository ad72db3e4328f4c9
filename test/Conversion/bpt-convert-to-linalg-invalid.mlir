// RUN: bpt-opt %s --split-input-file --bpt-convert-to-linalg --verify-diagnostics

// Attention and whole blocks must be tiled/decomposed before lowering.

func.func @untiled_attention(%q: tensor<1x1x16x8xf32>) -> tensor<1x1x16x8xf32> {
  // expected-error @+1 {{bpt.attention must be tiled before it is lowered: run bpt-tile-attention (or the bpt-blockwise pipeline) first}}
  %o = bpt.attention %q, %q, %q
      : (tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>) -> tensor<1x1x16x8xf32>
  return %o : tensor<1x1x16x8xf32>
}

// -----

func.func @undecomposed_block(%x: tensor<1x8x16xf32>, %g: tensor<16xf32>, %w: tensor<16x16xf32>,
    %w1: tensor<16x32xf32>, %w2: tensor<32x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{bpt.transformer_block must be decomposed before it is lowered: run bpt-decompose-block (or the bpt-blockwise pipeline) first}}
  %y = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w1, %w2) heads(2) kv_heads(2) activation(relu) norm(rms_norm)
      : (tensor<1x8x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<16x16xf32>,
         tensor<16x16xf32>, tensor<16x16xf32>, tensor<16xf32>, tensor<16x32xf32>,
         tensor<32x16xf32>) -> tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @attention_grad(%q: tensor<1x1x16x8xf32>, %lse: tensor<1x1x16xf32>)
    -> tensor<1x1x16x8xf32> {
  // expected-error @+1 {{bpt.attention_grad must be tiled before it is lowered: run bpt-tile-attention (or the bpt-blockwise pipeline) first}}
  %dq, %dk, %dv = bpt.attention_grad %q, %q, %q, %q, %q, %lse
      : (tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>,
         tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>, tensor<1x1x16xf32>)
      -> (tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>)
  return %dq : tensor<1x1x16x8xf32>
}
