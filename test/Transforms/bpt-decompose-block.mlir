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

// -----

// On the wgmma path the block becomes its chunk loops (chunks of 128 rows of
// the [512, 256] rows): K and V of every chunk first, then the rest of the
// block per chunk, with the attention as a nest over the keys of the chunk's
// sequence whose causal diagonal sits at the chunk's position (r0 mod 256).
// CHECK-LABEL: func.func @wgmma_chunk_loops
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x256x256xbf16>, %[[G:[^:]+]]: tensor<256xbf16>, %[[WQ:[^:]+]]: tensor<256x256xbf16>, %[[WK:[^:]+]]: tensor<256x128xbf16>, %[[WV:[^:]+]]: tensor<256x128xbf16>, %[[WO:[^:]+]]: tensor<256x256xbf16>, %[[W1:[^:]+]]: tensor<256x512xbf16>, %[[W2:[^:]+]]: tensor<512x256xbf16>)
// CHECK: %[[ROWS:.+]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<2x256x256xbf16> into tensor<512x256xbf16>
// CHECK: %[[KV:.+]]:2 = scf.forall (%[[C:.+]]) in (4) shared_outs(%[[KO:.+]] = %{{.+}}, %[[VO:.+]] = %{{.+}}) -> (tensor<512x128xbf16>, tensor<512x128xbf16>)
// CHECK: %[[R0:.+]] = arith.muli %[[C]], %{{.+}} : index
// CHECK: %[[XC:.+]] = tensor.extract_slice %[[ROWS]][%[[R0]], 0] [128, 256] [1, 1]
// CHECK: %[[H:.+]] = bpt.rms_norm %[[XC]], %[[G]] : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
// CHECK: %[[K:.+]] = bpt.linear %[[H]], %[[WK]] : (tensor<128x256xbf16>, tensor<256x128xbf16>) -> tensor<128x128xbf16>
// CHECK: %[[V:.+]] = bpt.linear %[[H]], %[[WV]]
// CHECK: tensor.parallel_insert_slice %[[K]] into %[[KO]][%[[R0]], 0] [128, 128] [1, 1]
// CHECK: tensor.parallel_insert_slice %[[V]] into %[[VO]][%[[R0]], 0] [128, 128] [1, 1]
// CHECK: } {bpt.nest = #bpt.chunk_loop<kv_projection>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>}
// CHECK: %[[OUT:.+]] = scf.forall (%[[C2:.+]]) in (4) shared_outs(%[[OO:.+]] = %{{.+}}) -> (tensor<512x256xbf16>)
// CHECK: %[[S0:.+]] = arith.muli %[[C2]]
// CHECK: %[[XC2:.+]] = tensor.extract_slice %[[ROWS]][%[[S0]], 0] [128, 256] [1, 1]
// CHECK: %[[H1:.+]] = bpt.rms_norm %[[XC2]], %[[G]]
// CHECK: %[[Q:.+]] = bpt.linear %[[H1]], %[[WQ]] : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
// CHECK: %[[POS:.+]] = arith.remui %[[S0]], %{{.+}} : index
// CHECK: %[[FIRST:.+]] = arith.subi %[[S0]], %[[POS]] : index
// CHECK: tensor.extract_slice %[[KV]]#0[%[[FIRST]], 0] [256, 128] [1, 1] : tensor<512x128xbf16> to tensor<256x128xbf16>
// CHECK: tensor.extract_slice %[[KV]]#1[%[[FIRST]], 0] [256, 128] [1, 1]
// CHECK: %[[A:.+]] = scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (1, 4, 1) shared_outs(%{{.+}}) -> (tensor<1x4x128x64xbf16>)
// The diagonal: key j is visible to query row i iff j <= i + POS.
// CHECK: %[[J:.+]] = linalg.index 1 : index
// CHECK: %[[COL:.+]] = arith.addi %{{.+}}, %[[J]] : index
// CHECK: %[[I:.+]] = linalg.index 0 : index
// CHECK: %[[ROW:.+]] = arith.addi %{{.+}}, %[[I]] : index
// CHECK: %[[LIMIT:.+]] = arith.addi %[[ROW]], %[[POS]] : index
// CHECK: arith.cmpi sle, %[[COL]], %[[LIMIT]] : index
// CHECK: } {bpt.kv_block = 128 : i64, bpt.nest = #bpt.attention_nest<causal = true, scale = 1.250000e-01>, bpt.q_block = 128 : i64}
// CHECK: %[[AT:.+]] = linalg.transpose ins(%[[A]] : tensor<1x4x128x64xbf16>)
// CHECK: %[[AM:.+]] = tensor.collapse_shape %[[AT]] {{\[}}[0, 1], [2, 3]] : tensor<1x128x4x64xbf16> into tensor<128x256xbf16>
// CHECK: %[[O:.+]] = bpt.linear %[[AM]], %[[WO]]
// CHECK: %[[Y1:.+]] = arith.addf %[[XC2]], %[[O]] : tensor<128x256xbf16>
// CHECK: %[[H2:.+]] = bpt.rms_norm %[[Y1]], %[[G]]
// CHECK: %[[F:.+]] = bpt.ffn gelu %[[H2]], %[[W1]], %[[W2]] : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
// CHECK: %[[Y:.+]] = arith.addf %[[Y1]], %[[F]] : tensor<128x256xbf16>
// CHECK: tensor.parallel_insert_slice %[[Y]] into %[[OO]][%[[S0]], 0] [128, 256] [1, 1]
// CHECK: } {bpt.nest = #bpt.chunk_loop<block>, bpt.strategy = #bpt.strategy<wgmma
// CHECK: %[[RESULT:.+]] = tensor.expand_shape %[[OUT]] {{\[}}[0, 1], [2]] output_shape [2, 256, 256] : tensor<512x256xbf16> into tensor<2x256x256xbf16>
// CHECK: return %[[RESULT]]
func.func @wgmma_chunk_loops(%x: tensor<2x256x256xbf16>, %g: tensor<256xbf16>,
                             %wq: tensor<256x256xbf16>, %wk: tensor<256x128xbf16>,
                             %wv: tensor<256x128xbf16>, %wo: tensor<256x256xbf16>,
                             %w1: tensor<256x512xbf16>, %w2: tensor<512x256xbf16>)
    -> tensor<2x256x256xbf16> {
  %y = bpt.transformer_block %x norm1(%g) attention(%wq, %wk, %wv, %wo)
      norm2(%g) ffn(%w1, %w2) heads(4) kv_heads(2) causal activation(gelu)
      norm(rms_norm) {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a",
        q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>}
      : (tensor<2x256x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x128xbf16>, tensor<256x128xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x256x256xbf16>
  return %y : tensor<2x256x256xbf16>
}
