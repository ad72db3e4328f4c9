// RUN: bpt-opt %s --bpt-decompose-block --split-input-file | FileCheck %s

// MHA, layer norm, GELU: the whole expansion, in order.

// CHECK-LABEL: func.func @mha_layer_norm_gelu
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x32x64xf32>, %[[G1:[^:]+]]: tensor<64xf32>, %[[B1:[^:]+]]: tensor<64xf32>, %[[WQ:[^:]+]]: tensor<64x64xf32>, %[[WK:[^:]+]]: tensor<64x64xf32>, %[[WV:[^:]+]]: tensor<64x64xf32>, %[[WO:[^:]+]]: tensor<64x64xf32>, %[[G2:[^:]+]]: tensor<64xf32>, %[[B2:[^:]+]]: tensor<64xf32>, %[[W1:[^:]+]]: tensor<64x256xf32>, %[[W2:[^:]+]]: tensor<256x64xf32>)
// CHECK-NOT: bpt.transformer_block
// CHECK: %[[H:.+]] = bpt.layer_norm %[[X]], %[[G1]], %[[B1]] : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x32x64xf32>
// CHECK: %[[Q:.+]] = bpt.linear %[[H]], %[[WQ]] : (tensor<2x32x64xf32>, tensor<64x64xf32>) -> tensor<2x32x64xf32>
// CHECK: %[[Q4:.+]] = tensor.expand_shape %[[Q]] {{\[}}[0], [1], [2, 3]] output_shape [2, 32, 4, 16] : tensor<2x32x64xf32> into tensor<2x32x4x16xf32>
// CHECK: %[[QE:.+]] = tensor.empty() : tensor<2x4x32x16xf32>
// CHECK: %[[QH:.+]] = linalg.transpose ins(%[[Q4]] : tensor<2x32x4x16xf32>) outs(%[[QE]] : tensor<2x4x32x16xf32>) permutation = [0, 2, 1, 3]
// CHECK: %[[K:.+]] = bpt.linear %[[H]], %[[WK]]
// CHECK: %[[K4:.+]] = tensor.expand_shape %[[K]]
// CHECK: %[[KH:.+]] = linalg.transpose ins(%[[K4]] : tensor<2x32x4x16xf32>) outs(%{{.+}} : tensor<2x4x32x16xf32>)
// CHECK: %[[V:.+]] = bpt.linear %[[H]], %[[WV]]
// CHECK: %[[V4:.+]] = tensor.expand_shape %[[V]]
// CHECK: %[[VH:.+]] = linalg.transpose ins(%[[V4]] : tensor<2x32x4x16xf32>) outs(%{{.+}} : tensor<2x4x32x16xf32>)
// CHECK: %[[A:.+]] = bpt.attention %[[QH]], %[[KH]], %[[VH]] : (tensor<2x4x32x16xf32>, tensor<2x4x32x16xf32>, tensor<2x4x32x16xf32>) -> tensor<2x4x32x16xf32>
// CHECK: %[[AE:.+]] = tensor.empty() : tensor<2x32x4x16xf32>
// CHECK: %[[AT:.+]] = linalg.transpose ins(%[[A]] : tensor<2x4x32x16xf32>) outs(%[[AE]] : tensor<2x32x4x16xf32>) permutation = [0, 2, 1, 3]
// CHECK: %[[AM:.+]] = tensor.collapse_shape %[[AT]] {{\[}}[0], [1], [2, 3]] : tensor<2x32x4x16xf32> into tensor<2x32x64xf32>
// CHECK: %[[O:.+]] = bpt.linear %[[AM]], %[[WO]] : (tensor<2x32x64xf32>, tensor<64x64xf32>) -> tensor<2x32x64xf32>
// CHECK: %[[R:.+]] = arith.addf %[[X]], %[[O]] : tensor<2x32x64xf32>
// CHECK: %[[H2:.+]] = bpt.layer_norm %[[R]], %[[G2]], %[[B2]]
// CHECK: %[[F:.+]] = bpt.ffn gelu %[[H2]], %[[W1]], %[[W2]] : (tensor<2x32x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
// CHECK: %[[Y:.+]] = arith.addf %[[R]], %[[F]] : tensor<2x32x64xf32>
// CHECK: return %[[Y]]
func.func @mha_layer_norm_gelu(
    %x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %b1: tensor<64xf32>,
    %wq: tensor<64x64xf32>, %wk: tensor<64x64xf32>, %wv: tensor<64x64xf32>,
    %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %b2: tensor<64xf32>,
    %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) -> tensor<2x32x64xf32> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(4) kv_heads(4) activation(gelu)
      norm(layer_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64x64xf32>,
         tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64xf32>,
         tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return %y : tensor<2x32x64xf32>
}

// -----

// GQA (8 query heads over 2 key/value heads), causal, RMSNorm with a custom
// epsilon, SwiGLU: K and V are projected to 2 heads, never repeated.

// CHECK-LABEL: func.func @gqa_rms_norm_swiglu
// CHECK-SAME: %[[W3:[^:]+]]: tensor<64x176xbf16>) -> tensor<1x48x64xbf16>
// CHECK: %[[H:.+]] = bpt.rms_norm %{{[^,]+}}, %{{[^ ]+}} {epsilon = 3.125000e-02 : f64} : (tensor<1x48x64xbf16>, tensor<64xbf16>) -> tensor<1x48x64xbf16>
// CHECK: bpt.linear %[[H]], %{{.+}} -> tensor<1x48x64xbf16>
// CHECK: tensor.expand_shape {{.+}} output_shape [1, 48, 8, 8] : tensor<1x48x64xbf16> into tensor<1x48x8x8xbf16>
// CHECK: %[[QH:.+]] = linalg.transpose {{.+}} outs(%{{.+}} : tensor<1x8x48x8xbf16>)
// CHECK: bpt.linear %[[H]], %{{.+}} -> tensor<1x48x16xbf16>
// CHECK: tensor.expand_shape {{.+}} output_shape [1, 48, 2, 8] : tensor<1x48x16xbf16> into tensor<1x48x2x8xbf16>
// CHECK: %[[KH:.+]] = linalg.transpose {{.+}} outs(%{{.+}} : tensor<1x2x48x8xbf16>)
// CHECK: bpt.linear %[[H]], %{{.+}} -> tensor<1x48x16xbf16>
// CHECK: %[[VH:.+]] = linalg.transpose {{.+}} outs(%{{.+}} : tensor<1x2x48x8xbf16>)
// CHECK: bpt.attention %[[QH]], %[[KH]], %[[VH]] causal : (tensor<1x8x48x8xbf16>, tensor<1x2x48x8xbf16>, tensor<1x2x48x8xbf16>) -> tensor<1x8x48x8xbf16>
// CHECK: %[[R:.+]] = arith.addf
// CHECK: %[[H2:.+]] = bpt.rms_norm %[[R]], %{{[^ ]+}} {epsilon = 3.125000e-02 : f64}
// CHECK: %[[F:.+]] = bpt.ffn swiglu %[[H2]], %{{[^,]+}}, %{{[^,]+}}, gate %[[W3]] :
// CHECK: arith.addf %[[R]], %[[F]] : tensor<1x48x64xbf16>
func.func @gqa_rms_norm_swiglu(
    %x: tensor<1x48x64xbf16>, %g1: tensor<64xbf16>, %wq: tensor<64x64xbf16>,
    %wk: tensor<64x16xbf16>, %wv: tensor<64x16xbf16>, %wo: tensor<64x64xbf16>,
    %g2: tensor<64xbf16>, %w1: tensor<64x176xbf16>, %w2: tensor<176x64xbf16>,
    %w3: tensor<64x176xbf16>) -> tensor<1x48x64xbf16> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2, gate %w3) heads(8) kv_heads(2) causal
      activation(swiglu) norm(rms_norm) {epsilon = 0.03125}
      : (tensor<1x48x64xbf16>, tensor<64xbf16>, tensor<64x64xbf16>,
         tensor<64x16xbf16>, tensor<64x16xbf16>, tensor<64x64xbf16>,
         tensor<64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>,
         tensor<64x176xbf16>) -> tensor<1x48x64xbf16>
  return %y : tensor<1x48x64xbf16>
}

// -----

// MQA (one key/value head), GeGLU, f16, head_dim 32.

// CHECK-LABEL: func.func @mqa_geglu
// CHECK: tensor.expand_shape {{.+}} into tensor<1x16x4x32xf16>
// CHECK: tensor.expand_shape {{.+}} into tensor<1x16x1x32xf16>
// CHECK: tensor.expand_shape {{.+}} into tensor<1x16x1x32xf16>
// CHECK: bpt.attention {{.+}} : (tensor<1x4x16x32xf16>, tensor<1x1x16x32xf16>, tensor<1x1x16x32xf16>) -> tensor<1x4x16x32xf16>
// CHECK: bpt.ffn geglu {{.+}}, gate
func.func @mqa_geglu(
    %x: tensor<1x16x128xf16>, %g1: tensor<128xf16>, %wq: tensor<128x128xf16>,
    %wk: tensor<128x32xf16>, %wv: tensor<128x32xf16>, %wo: tensor<128x128xf16>,
    %g2: tensor<128xf16>, %w1: tensor<128x320xf16>, %w2: tensor<320x128xf16>,
    %w3: tensor<128x320xf16>) -> tensor<1x16x128xf16> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2, gate %w3) heads(4) kv_heads(1)
      activation(geglu) norm(rms_norm)
      : (tensor<1x16x128xf16>, tensor<128xf16>, tensor<128x128xf16>,
         tensor<128x32xf16>, tensor<128x32xf16>, tensor<128x128xf16>,
         tensor<128xf16>, tensor<128x320xf16>, tensor<320x128xf16>,
         tensor<128x320xf16>) -> tensor<1x16x128xf16>
  return %y : tensor<1x16x128xf16>
}

// -----

// The remaining two-matrix activations, each carried onto bpt.ffn; blocks
// in one function are expanded independently; other ops (even unused ones)
// are left alone.

// CHECK-LABEL: func.func @other_activations
// CHECK: %[[UNUSED:.+]] = bpt.rms_norm %{{[^,]+}}, %{{[^ ]+}} : (tensor<1x8x32xf32>, tensor<32xf32>)
// CHECK: bpt.ffn relu
// CHECK: bpt.ffn silu
// CHECK: bpt.ffn gelu_tanh
// CHECK-NOT: bpt.transformer_block
func.func @other_activations(
    %x: tensor<1x8x32xf32>, %g: tensor<32xf32>, %w: tensor<32x32xf32>,
    %w1: tensor<32x64xf32>, %w2: tensor<64x32xf32>)
    -> (tensor<1x8x32xf32>, tensor<1x8x32xf32>, tensor<1x8x32xf32>) {
  %unused = bpt.rms_norm %x, %g : (tensor<1x8x32xf32>, tensor<32xf32>) -> tensor<1x8x32xf32>
  %0 = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w1, %w2) heads(2) kv_heads(2) activation(relu) norm(rms_norm)
      : (tensor<1x8x32xf32>, tensor<32xf32>, tensor<32x32xf32>, tensor<32x32xf32>,
         tensor<32x32xf32>, tensor<32x32xf32>, tensor<32xf32>, tensor<32x64xf32>,
         tensor<64x32xf32>) -> tensor<1x8x32xf32>
  %1 = bpt.transformer_block %0 norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w1, %w2) heads(2) kv_heads(2) activation(silu) norm(rms_norm)
      : (tensor<1x8x32xf32>, tensor<32xf32>, tensor<32x32xf32>, tensor<32x32xf32>,
         tensor<32x32xf32>, tensor<32x32xf32>, tensor<32xf32>, tensor<32x64xf32>,
         tensor<64x32xf32>) -> tensor<1x8x32xf32>
  %2 = bpt.transformer_block %1 norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w1, %w2) heads(2) kv_heads(2) activation(gelu_tanh) norm(rms_norm)
      : (tensor<1x8x32xf32>, tensor<32xf32>, tensor<32x32xf32>, tensor<32x32xf32>,
         tensor<32x32xf32>, tensor<32x32xf32>, tensor<32xf32>, tensor<32x64xf32>,
         tensor<64x32xf32>) -> tensor<1x8x32xf32>
  return %0, %1, %2 : tensor<1x8x32xf32>, tensor<1x8x32xf32>, tensor<1x8x32xf32>
}
