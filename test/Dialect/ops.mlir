// RUN: bpt-opt %s | bpt-opt | FileCheck %s
// RUN: bpt-opt %s --mlir-print-op-generic | bpt-opt | FileCheck %s
// RUN: bpt-opt %s --emit-bytecode | bpt-opt | FileCheck %s

// Round trip (custom form, generic form, bytecode) of every op and attribute.

// CHECK-LABEL: func.func @attention_mha
// CHECK-SAME: (%[[Q:.+]]: tensor<2x4x128x64xf32>, %[[K:.+]]: tensor<2x4x96x64xf32>, %[[V:.+]]: tensor<2x4x96x64xf32>)
func.func @attention_mha(%q: tensor<2x4x128x64xf32>, %k: tensor<2x4x96x64xf32>,
                         %v: tensor<2x4x96x64xf32>) -> tensor<2x4x128x64xf32> {
  // CHECK: bpt.attention %[[Q]], %[[K]], %[[V]] :
  // CHECK-SAME: (tensor<2x4x128x64xf32>, tensor<2x4x96x64xf32>, tensor<2x4x96x64xf32>) -> tensor<2x4x128x64xf32>
  %o = bpt.attention %q, %k, %v
      : (tensor<2x4x128x64xf32>, tensor<2x4x96x64xf32>, tensor<2x4x96x64xf32>)
        -> tensor<2x4x128x64xf32>
  return %o : tensor<2x4x128x64xf32>
}

// The log-sum-exp result, and the gradient op.
// CHECK-LABEL: func.func @attention_lse_and_grad
func.func @attention_lse_and_grad(%q: tensor<1x8x256x64xbf16>,
                                  %k: tensor<1x2x256x64xbf16>,
                                  %v: tensor<1x2x256x64xbf16>,
                                  %do: tensor<1x8x256x64xbf16>)
    -> (tensor<1x8x256x64xbf16>, tensor<1x2x256x64xbf16>,
        tensor<1x2x256x64xbf16>) {
  // CHECK: %[[O:.+]], %[[LSE:.+]] = bpt.attention %{{.+}}, %{{.+}}, %{{.+}} causal :
  // CHECK-SAME: -> (tensor<1x8x256x64xbf16>, tensor<1x8x256xf32>)
  %o, %lse = bpt.attention %q, %k, %v causal
      : (tensor<1x8x256x64xbf16>, tensor<1x2x256x64xbf16>,
         tensor<1x2x256x64xbf16>)
      -> (tensor<1x8x256x64xbf16>, tensor<1x8x256xf32>)
  // CHECK: bpt.attention_grad %{{.+}}, %{{.+}}, %{{.+}}, %[[O]], %{{.+}}, %[[LSE]] causal scale(1.250000e-01) :
  // CHECK-SAME: -> (tensor<1x8x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>)
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      scale(0.125)
      : (tensor<1x8x256x64xbf16>, tensor<1x2x256x64xbf16>,
         tensor<1x2x256x64xbf16>, tensor<1x8x256x64xbf16>,
         tensor<1x8x256x64xbf16>, tensor<1x8x256xf32>)
      -> (tensor<1x8x256x64xbf16>, tensor<1x2x256x64xbf16>,
          tensor<1x2x256x64xbf16>)
  return %dq, %dk, %dv : tensor<1x8x256x64xbf16>, tensor<1x2x256x64xbf16>,
                         tensor<1x2x256x64xbf16>
}

// CHECK-LABEL: func.func @attention_gqa_causal_scaled
func.func @attention_gqa_causal_scaled(%q: tensor<1x8x100x128xf16>,
                                       %k: tensor<1x2x100x128xf16>,
                                       %v: tensor<1x2x100x128xf16>)
    -> tensor<1x8x100x128xf16> {
  // CHECK: bpt.attention %{{.+}}, %{{.+}}, %{{.+}} causal scale(1.250000e-01) :
  %o = bpt.attention %q, %k, %v causal scale(0.125)
      : (tensor<1x8x100x128xf16>, tensor<1x2x100x128xf16>, tensor<1x2x100x128xf16>)
        -> tensor<1x8x100x128xf16>
  return %o : tensor<1x8x100x128xf16>
}

// CHECK-LABEL: func.func @attention_mqa_bf16
func.func @attention_mqa_bf16(%q: tensor<1x8x16x32xbf16>,
                              %kv: tensor<1x1x64x32xbf16>)
    -> tensor<1x8x16x32xbf16> {
  // CHECK: bpt.attention %{{.+}}, %{{.+}}, %{{.+}} causal :
  // CHECK-SAME: -> tensor<1x8x16x32xbf16>
  %o = bpt.attention %q, %kv, %kv causal
      : (tensor<1x8x16x32xbf16>, tensor<1x1x64x32xbf16>, tensor<1x1x64x32xbf16>)
        -> tensor<1x8x16x32xbf16>
  return %o : tensor<1x8x16x32xbf16>
}

// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.+]]: tensor<2x16x64xf32>, %[[W:.+]]: tensor<64x32xf32>, %[[B:.+]]: tensor<32xf32>)
func.func @linear(%x: tensor<2x16x64xf32>, %w: tensor<64x32xf32>,
                  %b: tensor<32xf32>) -> (tensor<2x16x32xf32>, tensor<2x16x32xf32>) {
  // CHECK: bpt.linear %[[X]], %[[W]] : (tensor<2x16x64xf32>, tensor<64x32xf32>) -> tensor<2x16x32xf32>
  %0 = bpt.linear %x, %w : (tensor<2x16x64xf32>, tensor<64x32xf32>) -> tensor<2x16x32xf32>
  // CHECK: bpt.linear %[[X]], %[[W]], %[[B]] : (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<32xf32>) -> tensor<2x16x32xf32>
  %1 = bpt.linear %x, %w, %b
      : (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<32xf32>) -> tensor<2x16x32xf32>
  return %0, %1 : tensor<2x16x32xf32>, tensor<2x16x32xf32>
}

// CHECK-LABEL: func.func @linear_rank1
func.func @linear_rank1(%x: tensor<64xbf16>, %w: tensor<64x8xbf16>) -> tensor<8xbf16> {
  // CHECK: bpt.linear %{{.+}}, %{{.+}} : (tensor<64xbf16>, tensor<64x8xbf16>) -> tensor<8xbf16>
  %0 = bpt.linear %x, %w : (tensor<64xbf16>, tensor<64x8xbf16>) -> tensor<8xbf16>
  return %0 : tensor<8xbf16>
}

// CHECK-LABEL: func.func @ffn_two_matrix
// CHECK-SAME: (%[[X:.+]]: tensor<2x16x64xf32>, %[[W1:.+]]: tensor<64x256xf32>, %[[W2:.+]]: tensor<256x64xf32>)
func.func @ffn_two_matrix(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>,
                          %w2: tensor<256x64xf32>) {
  // CHECK: bpt.ffn gelu %[[X]], %[[W1]], %[[W2]] : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  // CHECK: bpt.ffn gelu_tanh %[[X]], %[[W1]], %[[W2]] :
  %1 = bpt.ffn gelu_tanh %x, %w1, %w2
      : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  // CHECK: bpt.ffn relu %[[X]], %[[W1]], %[[W2]] :
  %2 = bpt.ffn relu %x, %w1, %w2
      : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  // CHECK: bpt.ffn silu %[[X]], %[[W1]], %[[W2]] :
  %3 = bpt.ffn silu %x, %w1, %w2
      : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  return
}

// CHECK-LABEL: func.func @ffn_gated
// CHECK-SAME: (%[[X:.+]]: tensor<16x64xf16>, %[[W1:.+]]: tensor<64x176xf16>, %[[W2:.+]]: tensor<176x64xf16>, %[[W3:.+]]: tensor<64x176xf16>)
func.func @ffn_gated(%x: tensor<16x64xf16>, %w1: tensor<64x176xf16>,
                     %w2: tensor<176x64xf16>, %w3: tensor<64x176xf16>) {
  // CHECK: bpt.ffn swiglu %[[X]], %[[W1]], %[[W2]], gate %[[W3]] : (tensor<16x64xf16>, tensor<64x176xf16>, tensor<176x64xf16>, tensor<64x176xf16>) -> tensor<16x64xf16>
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %w3
      : (tensor<16x64xf16>, tensor<64x176xf16>, tensor<176x64xf16>, tensor<64x176xf16>)
        -> tensor<16x64xf16>
  // CHECK: bpt.ffn geglu %[[X]], %[[W1]], %[[W2]], gate %[[W3]] :
  %1 = bpt.ffn geglu %x, %w1, %w2, gate %w3
      : (tensor<16x64xf16>, tensor<64x176xf16>, tensor<176x64xf16>, tensor<64x176xf16>)
        -> tensor<16x64xf16>
  return
}

// CHECK-LABEL: func.func @norms
// CHECK-SAME: (%[[X:.+]]: tensor<2x16x64xbf16>, %[[G:.+]]: tensor<64xbf16>, %[[B:.+]]: tensor<64xbf16>)
func.func @norms(%x: tensor<2x16x64xbf16>, %g: tensor<64xbf16>, %b: tensor<64xbf16>) {
  // The default epsilon (1e-5) is not printed.
  // CHECK: bpt.layer_norm %[[X]], %[[G]], %[[B]] : (tensor<2x16x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> tensor<2x16x64xbf16>
  %0 = bpt.layer_norm %x, %g, %b
      : (tensor<2x16x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> tensor<2x16x64xbf16>
  // CHECK: bpt.layer_norm %[[X]], %[[G]], %[[B]] {epsilon = 3.125000e-02 : f64} :
  %1 = bpt.layer_norm %x, %g, %b {epsilon = 0.03125}
      : (tensor<2x16x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> tensor<2x16x64xbf16>
  // CHECK: bpt.rms_norm %[[X]], %[[G]] : (tensor<2x16x64xbf16>, tensor<64xbf16>) -> tensor<2x16x64xbf16>
  %2 = bpt.rms_norm %x, %g
      : (tensor<2x16x64xbf16>, tensor<64xbf16>) -> tensor<2x16x64xbf16>
  // CHECK: bpt.rms_norm %[[X]], %[[G]] {epsilon = 0.000000e+00 : f64} :
  %3 = bpt.rms_norm %x, %g {epsilon = 0.0}
      : (tensor<2x16x64xbf16>, tensor<64xbf16>) -> tensor<2x16x64xbf16>
  return
}

// The per-op gradients: each gradient has its operand's type.
// CHECK-LABEL: func.func @linear_grad
// CHECK-SAME: (%[[X:.+]]: tensor<2x16x64xf32>, %[[W:.+]]: tensor<64x32xf32>, %[[DY:.+]]: tensor<2x16x32xf32>)
func.func @linear_grad(%x: tensor<2x16x64xf32>, %w: tensor<64x32xf32>,
                       %dy: tensor<2x16x32xf32>) {
  // CHECK: bpt.linear_grad %[[X]], %[[W]], %[[DY]] : (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<2x16x32xf32>) -> (tensor<2x16x64xf32>, tensor<64x32xf32>)
  %dx, %dw = bpt.linear_grad %x, %w, %dy
      : (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<2x16x32xf32>)
        -> (tensor<2x16x64xf32>, tensor<64x32xf32>)
  // With a bias in the forward: a third result.
  // CHECK: bpt.linear_grad %[[X]], %[[W]], %[[DY]] : (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<2x16x32xf32>) -> (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<32xf32>)
  %dx2, %dw2, %db = bpt.linear_grad %x, %w, %dy
      : (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<2x16x32xf32>)
        -> (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<32xf32>)
  return
}

// bpt.matmul: both layouts of each operand, an f32 sum, an f32 result.
// CHECK-LABEL: func.func @matmul
// CHECK-SAME: (%[[A:.+]]: tensor<32x16xbf16>, %[[B:.+]]: tensor<32x48xbf16>, %[[C:.+]]: tensor<48x32xbf16>, %[[S:.+]]: tensor<16x48xf32>)
func.func @matmul(%a: tensor<32x16xbf16>, %b: tensor<32x48xbf16>,
                  %c: tensor<48x32xbf16>, %s: tensor<16x48xf32>) {
  // CHECK: bpt.matmul %[[A]], %[[B]], acc %[[S]] {transpose_lhs} : (tensor<32x16xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>) -> tensor<16x48xf32>
  %0 = bpt.matmul %a, %b, acc %s {transpose_lhs}
      : (tensor<32x16xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>) -> tensor<16x48xf32>
  // CHECK: bpt.matmul %[[B]], %[[B]] {transpose_rhs} : (tensor<32x48xbf16>, tensor<32x48xbf16>) -> tensor<32x32xbf16>
  %1 = bpt.matmul %b, %b {transpose_rhs}
      : (tensor<32x48xbf16>, tensor<32x48xbf16>) -> tensor<32x32xbf16>
  // CHECK: bpt.matmul %[[A]], %[[C]] {transpose_lhs, transpose_rhs} : (tensor<32x16xbf16>, tensor<48x32xbf16>) -> tensor<16x48xbf16>
  %2 = bpt.matmul %a, %c {transpose_lhs, transpose_rhs}
      : (tensor<32x16xbf16>, tensor<48x32xbf16>) -> tensor<16x48xbf16>
  return
}

// bpt.matmul's activation-gradient epilogue: (dy · w_outᵀ) ⊙ act'(u) and
// act(u), for each non-gated activation; 16-bit and f32 results.
// CHECK-LABEL: func.func @matmul_act_grad
// CHECK-SAME: (%[[DY:.+]]: tensor<16x32xbf16>, %[[W:.+]]: tensor<48x32xbf16>, %[[V:.+]]: tensor<32x48xbf16>, %[[U:.+]]: tensor<16x48xf32>)
func.func @matmul_act_grad(%dy: tensor<16x32xbf16>, %w: tensor<48x32xbf16>,
                           %v: tensor<32x48xbf16>, %u: tensor<16x48xf32>) {
  // CHECK: %{{.+}}, %{{.+}} = bpt.matmul %[[DY]], %[[W]], act_grad gelu %[[U]] {transpose_rhs} : (tensor<16x32xbf16>, tensor<48x32xbf16>, tensor<16x48xf32>) -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  %du, %h = bpt.matmul %dy, %w, act_grad gelu %u {transpose_rhs}
      : (tensor<16x32xbf16>, tensor<48x32xbf16>, tensor<16x48xf32>)
        -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  // CHECK: bpt.matmul %[[DY]], %[[W]], act_grad gelu_tanh %[[U]] {transpose_rhs}
  %0:2 = bpt.matmul %dy, %w, act_grad gelu_tanh %u {transpose_rhs}
      : (tensor<16x32xbf16>, tensor<48x32xbf16>, tensor<16x48xf32>)
        -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  // CHECK: bpt.matmul %[[DY]], %[[W]], act_grad relu %[[U]] {transpose_rhs} : {{.+}} -> (tensor<16x48xf32>, tensor<16x48xf32>)
  %1:2 = bpt.matmul %dy, %w, act_grad relu %u {transpose_rhs}
      : (tensor<16x32xbf16>, tensor<48x32xbf16>, tensor<16x48xf32>)
        -> (tensor<16x48xf32>, tensor<16x48xf32>)
  // CHECK: bpt.matmul %[[DY]], %[[V]], act_grad silu %[[U]] : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>)
  %2:2 = bpt.matmul %dy, %v, act_grad silu %u
      : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>)
        -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  return
}

// CHECK-LABEL: func.func @ffn_grad
// CHECK-SAME: (%[[X:.+]]: tensor<16x64xbf16>, %[[W1:.+]]: tensor<64x176xbf16>, %[[W2:.+]]: tensor<176x64xbf16>, %[[W3:.+]]: tensor<64x176xbf16>, %[[DY:.+]]: tensor<16x64xbf16>)
func.func @ffn_grad(%x: tensor<16x64xbf16>, %w1: tensor<64x176xbf16>,
                    %w2: tensor<176x64xbf16>, %w3: tensor<64x176xbf16>,
                    %dy: tensor<16x64xbf16>) {
  // CHECK: bpt.ffn_grad gelu_tanh %[[X]], %[[W1]], %[[W2]], %[[DY]] : (tensor<16x64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>, tensor<16x64xbf16>) -> (tensor<16x64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>)
  %dx, %dw1, %dw2 = bpt.ffn_grad gelu_tanh %x, %w1, %w2, %dy
      : (tensor<16x64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>, tensor<16x64xbf16>)
        -> (tensor<16x64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>)
  // CHECK: bpt.ffn_grad swiglu %[[X]], %[[W1]], %[[W2]], gate %[[W3]], %[[DY]] : (tensor<16x64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>, tensor<64x176xbf16>, tensor<16x64xbf16>) -> (tensor<16x64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>, tensor<64x176xbf16>)
  %gx, %gw1, %gw2, %gw3 = bpt.ffn_grad swiglu %x, %w1, %w2, gate %w3, %dy
      : (tensor<16x64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>, tensor<64x176xbf16>, tensor<16x64xbf16>)
        -> (tensor<16x64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>, tensor<64x176xbf16>)
  return
}

// CHECK-LABEL: func.func @norm_grads
// CHECK-SAME: (%[[X:.+]]: tensor<2x16x64xf32>, %[[G:.+]]: tensor<64xf32>, %[[DY:.+]]: tensor<2x16x64xf32>)
func.func @norm_grads(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>,
                      %dy: tensor<2x16x64xf32>) {
  // CHECK: bpt.layer_norm_grad %[[X]], %[[G]], %[[DY]] : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<2x16x64xf32>) -> (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>)
  %dx, %dg, %db = bpt.layer_norm_grad %x, %g, %dy
      : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<2x16x64xf32>)
        -> (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>)
  // CHECK: bpt.rms_norm_grad %[[X]], %[[G]], %[[DY]] {epsilon = 0.000000e+00 : f64} : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<2x16x64xf32>) -> (tensor<2x16x64xf32>, tensor<64xf32>)
  %rx, %rg = bpt.rms_norm_grad %x, %g, %dy {epsilon = 0.0}
      : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<2x16x64xf32>)
        -> (tensor<2x16x64xf32>, tensor<64xf32>)
  return
}

// CHECK-LABEL: func.func @block_layer_norm_gelu
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x32x64xf32>, %[[G1:[^:]+]]: tensor<64xf32>, %[[B1:[^:]+]]: tensor<64xf32>, %[[WQ:[^:]+]]: tensor<64x64xf32>, %[[WK:[^:]+]]: tensor<64x64xf32>, %[[WV:[^:]+]]: tensor<64x64xf32>, %[[WO:[^:]+]]: tensor<64x64xf32>, %[[G2:[^:]+]]: tensor<64xf32>, %[[B2:[^:]+]]: tensor<64xf32>, %[[W1:[^:]+]]: tensor<64x256xf32>, %[[W2:[^:]+]]: tensor<256x64xf32>)
func.func @block_layer_norm_gelu(
    %x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %b1: tensor<64xf32>,
    %wq: tensor<64x64xf32>, %wk: tensor<64x64xf32>, %wv: tensor<64x64xf32>,
    %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %b2: tensor<64xf32>,
    %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) -> tensor<2x32x64xf32> {
  // CHECK: bpt.transformer_block %[[X]] norm1(%[[G1]], %[[B1]])
  // CHECK-SAME: attention(%[[WQ]], %[[WK]], %[[WV]], %[[WO]]) norm2(%[[G2]], %[[B2]])
  // CHECK-SAME: ffn(%[[W1]], %[[W2]]) heads(4) kv_heads(4) activation(gelu)
  // CHECK-SAME: norm(layer_norm) {epsilon = 3.125000e-02 : f64} :
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(4) kv_heads(4) activation(gelu)
      norm(layer_norm) {epsilon = 0.03125}
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64x64xf32>,
         tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64xf32>,
         tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return %y : tensor<2x32x64xf32>
}

// CHECK-LABEL: func.func @block_rms_norm_swiglu_gqa
func.func @block_rms_norm_swiglu_gqa(
    %x: tensor<1x48x64xbf16>, %g1: tensor<64xbf16>, %wq: tensor<64x64xbf16>,
    %wk: tensor<64x16xbf16>, %wv: tensor<64x16xbf16>, %wo: tensor<64x64xbf16>,
    %g2: tensor<64xbf16>, %w1: tensor<64x176xbf16>, %w2: tensor<176x64xbf16>,
    %w3: tensor<64x176xbf16>) -> tensor<1x48x64xbf16> {
  // CHECK: bpt.transformer_block %{{[^ ]+}} norm1(%{{[^ ]+}})
  // CHECK-SAME: ffn(%{{[^ ]+}}, %{{[^ ]+}}, gate %{{[^ ]+}}) heads(8) kv_heads(2) causal
  // CHECK-SAME: activation(swiglu) norm(rms_norm) :
  // CHECK-SAME: -> tensor<1x48x64xbf16>
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2, gate %w3) heads(8) kv_heads(2) causal
      activation(swiglu) norm(rms_norm)
      : (tensor<1x48x64xbf16>, tensor<64xbf16>, tensor<64x64xbf16>,
         tensor<64x16xbf16>, tensor<64x16xbf16>, tensor<64x64xbf16>,
         tensor<64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>,
         tensor<64x176xbf16>) -> tensor<1x48x64xbf16>
  return %y : tensor<1x48x64xbf16>
}

// Discardable attributes of other dialects are kept.
// CHECK-LABEL: func.func @foreign_attribute
func.func @foreign_attribute(%x: tensor<4x8xf32>, %g: tensor<8xf32>) -> tensor<4x8xf32> {
  // CHECK: bpt.rms_norm %{{.+}}, %{{.+}} {test.tag = "kept"}
  %0 = bpt.rms_norm %x, %g {test.tag = "kept"} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
