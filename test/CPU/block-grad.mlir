// Training a whole transformer block on the CPU: bpt-cpu-run --backward
// builds the block's training forward (@f_train: the output and the
// attention's log-sum-exp) and backward (@f_grad: every argument's gradient)
// with bpt-build-backward, compiles both through bpt-blockwise and
// bpt-to-cpu, runs the forward, then the backward on the forward's own
// log-sum-exp and a random output gradient, and checks
//   - every output and gradient against the float64 evaluation of the same
//     functions (lib/Reference's per-op backward functions; f32 at 1e-5,
//     bf16 at 1e-2), for each block-size configuration and against the
//     first;
//   - the float64 gradients against central finite differences of the
//     original function (the block op itself, lib/Reference's
//     transformerBlock) along a random direction per argument (1e-5):
//     this is what checks the pass's chain rule, independently of it.
// Every activation, both norms, MHA/GQA/MQA, causal or not, ragged blocks.
//
// Seen failing: with the rule for arith.addf dropping its right operand's
// gradient, the finite differences fail every argument of
// gqa_rms_norm_swiglu (relative error 0.77 to 1.0), while the compiled
// outputs still match the float64 evaluation of the same wrong graph.
//
// bf16: this GQA block meets 1e-2 (5e-3 at most); an MHA block of hidden 128
// (test/CPU/block.mlir's relu one) does not: its dW_q and dW_k reach
// 1.2e-2 with gelu (the attention's dS = P(dP - D) cancels, and every
// intermediate gradient is stored in bf16), and dW_in and the second norm's
// gradients 2.9e-2 with relu (pre-activations near 0 change sign under
// bf16 rounding). The issue's bar for those is relative to PyTorch's own
// bf16 error, measured on the GPU (docs/notes/block-training.md).
//
// bpt-cpu-run compiles and JITs every function of its module, so each
// function lives in its own split-file part (//--- NAME.mlir).

// RUN: rm -rf %t && split-file %s %t
//--- mha_layer_norm_gelu.mlir
// MHA (4 heads of 32), layer_norm, gelu, not causal, batch 2, S = 100;
// two block-size configurations, ragged against S.
// RUN: bpt-cpu-run %t/mha_layer_norm_gelu.mlir --backward --block-sizes=32:16,64:64 --seed=61 | FileCheck %s --check-prefix=MHA-LAYER-NORM-GELU
// MHA-LAYER-NORM-GELU: forward 0 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: forward 1 {{.*}}xf32>: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 0 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 1 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 2 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 3 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 4 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 5 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 6 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 7 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 8 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 9 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: gradient 10 {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 0: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 1: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 2: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 3: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 4: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 5: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 6: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 7: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 8: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 9: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: finite differences, argument 10: {{.*}}: PASS
// MHA-LAYER-NORM-GELU: {{^PASS$}}
func.func @mha_layer_norm_gelu(
    %x: tensor<2x100x128xf32>, %g1: tensor<128xf32>, %b1: tensor<128xf32>,
    %wq: tensor<128x128xf32>, %wk: tensor<128x128xf32>, %wv: tensor<128x128xf32>,
    %wo: tensor<128x128xf32>, %g2: tensor<128xf32>, %b2: tensor<128xf32>,
    %w1: tensor<128x256xf32>, %w2: tensor<256x128xf32>) -> tensor<2x100x128xf32> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(4) kv_heads(4) activation(gelu)
      norm(layer_norm)
      : (tensor<2x100x128xf32>, tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32>,
         tensor<128x128xf32>, tensor<128x128xf32>, tensor<128x128xf32>, tensor<128xf32>,
         tensor<128xf32>, tensor<128x256xf32>, tensor<256x128xf32>) -> tensor<2x100x128xf32>
  return %y : tensor<2x100x128xf32>
}

//--- mha_layer_norm_causal.mlir
// MHA (2 heads of 64), layer_norm with epsilon 0.25, gelu_tanh, causal.
// RUN: bpt-cpu-run %t/mha_layer_norm_causal.mlir --backward --block-sizes=32:16 --seed=62 | FileCheck %s --check-prefix=MHA-LAYER-NORM-CAUSAL
// MHA-LAYER-NORM-CAUSAL: forward 0 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: forward 1 {{.*}}xf32>: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 0 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 1 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 2 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 3 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 4 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 5 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 6 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 7 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 8 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 9 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: gradient 10 {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 0: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 1: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 2: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 3: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 4: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 5: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 6: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 7: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 8: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 9: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: finite differences, argument 10: {{.*}}: PASS
// MHA-LAYER-NORM-CAUSAL: {{^PASS$}}
func.func @mha_layer_norm_causal(
    %x: tensor<1x100x128xf32>, %g1: tensor<128xf32>, %b1: tensor<128xf32>,
    %wq: tensor<128x128xf32>, %wk: tensor<128x128xf32>, %wv: tensor<128x128xf32>,
    %wo: tensor<128x128xf32>, %g2: tensor<128xf32>, %b2: tensor<128xf32>,
    %w1: tensor<128x384xf32>, %w2: tensor<384x128xf32>) -> tensor<1x100x128xf32> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(2) kv_heads(2) causal
      activation(gelu_tanh) norm(layer_norm) {epsilon = 0.25}
      : (tensor<1x100x128xf32>, tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32>,
         tensor<128x128xf32>, tensor<128x128xf32>, tensor<128x128xf32>, tensor<128xf32>,
         tensor<128xf32>, tensor<128x384xf32>, tensor<384x128xf32>) -> tensor<1x100x128xf32>
  return %y : tensor<1x100x128xf32>
}

//--- gqa_rms_norm_swiglu.mlir
// GQA (8 heads of 16 over 2), rms_norm, swiglu, causal, S = 100.
// RUN: bpt-cpu-run %t/gqa_rms_norm_swiglu.mlir --backward --block-sizes=32:32,16:48 --seed=63 | FileCheck %s --check-prefix=GQA-RMS-NORM-SWIGLU
// GQA-RMS-NORM-SWIGLU: forward 0 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: forward 1 {{.*}}xf32>: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 0 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 1 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 2 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 3 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 4 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 5 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 6 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 7 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 8 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: gradient 9 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 0: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 1: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 2: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 3: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 4: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 5: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 6: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 7: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 8: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: finite differences, argument 9: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU: {{^PASS$}}
func.func @gqa_rms_norm_swiglu(
    %x: tensor<1x100x128xf32>, %g1: tensor<128xf32>, %wq: tensor<128x128xf32>,
    %wk: tensor<128x32xf32>, %wv: tensor<128x32xf32>, %wo: tensor<128x128xf32>,
    %g2: tensor<128xf32>, %w1: tensor<128x352xf32>, %w2: tensor<352x128xf32>,
    %w3: tensor<128x352xf32>) -> tensor<1x100x128xf32> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2, gate %w3) heads(8) kv_heads(2) causal
      activation(swiglu) norm(rms_norm)
      : (tensor<1x100x128xf32>, tensor<128xf32>, tensor<128x128xf32>,
         tensor<128x32xf32>, tensor<128x32xf32>, tensor<128x128xf32>,
         tensor<128xf32>, tensor<128x352xf32>, tensor<352x128xf32>,
         tensor<128x352xf32>) -> tensor<1x100x128xf32>
  return %y : tensor<1x100x128xf32>
}

//--- gqa_rms_norm_geglu.mlir
// GQA (4 heads of 16 over 2), rms_norm with epsilon 0.5, geglu, not causal,
// batch 2, S = 70.
// RUN: bpt-cpu-run %t/gqa_rms_norm_geglu.mlir --backward --block-sizes=32:16 --seed=64 | FileCheck %s --check-prefix=GQA-RMS-NORM-GEGLU
// GQA-RMS-NORM-GEGLU: forward 0 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: forward 1 {{.*}}xf32>: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 0 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 1 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 2 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 3 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 4 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 5 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 6 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 7 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 8 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: gradient 9 {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 0: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 1: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 2: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 3: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 4: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 5: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 6: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 7: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 8: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: finite differences, argument 9: {{.*}}: PASS
// GQA-RMS-NORM-GEGLU: {{^PASS$}}
func.func @gqa_rms_norm_geglu(
    %x: tensor<2x70x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>,
    %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>,
    %g2: tensor<64xf32>, %w1: tensor<64x192xf32>, %w2: tensor<192x64xf32>,
    %w3: tensor<64x192xf32>) -> tensor<2x70x64xf32> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2, gate %w3) heads(4) kv_heads(2)
      activation(geglu) norm(rms_norm) {epsilon = 0.5}
      : (tensor<2x70x64xf32>, tensor<64xf32>, tensor<64x64xf32>,
         tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>,
         tensor<64xf32>, tensor<64x192xf32>, tensor<192x64xf32>,
         tensor<64x192xf32>) -> tensor<2x70x64xf32>
  return %y : tensor<2x70x64xf32>
}

//--- mqa_layer_norm_silu.mlir
// MQA (4 heads of 32 over one), layer_norm, silu, causal, S = 90, a query
// block larger than S.
// RUN: bpt-cpu-run %t/mqa_layer_norm_silu.mlir --backward --block-sizes=128:32 --seed=65 | FileCheck %s --check-prefix=MQA-LAYER-NORM-SILU
// MQA-LAYER-NORM-SILU: forward 0 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: forward 1 {{.*}}xf32>: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 0 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 1 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 2 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 3 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 4 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 5 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 6 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 7 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 8 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 9 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: gradient 10 {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 0: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 1: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 2: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 3: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 4: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 5: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 6: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 7: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 8: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 9: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: finite differences, argument 10: {{.*}}: PASS
// MQA-LAYER-NORM-SILU: {{^PASS$}}
func.func @mqa_layer_norm_silu(
    %x: tensor<1x90x128xf32>, %g1: tensor<128xf32>, %b1: tensor<128xf32>,
    %wq: tensor<128x128xf32>, %wk: tensor<128x32xf32>, %wv: tensor<128x32xf32>,
    %wo: tensor<128x128xf32>, %g2: tensor<128xf32>, %b2: tensor<128xf32>,
    %w1: tensor<128x256xf32>, %w2: tensor<256x128xf32>) -> tensor<1x90x128xf32> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(4) kv_heads(1) causal
      activation(silu) norm(layer_norm)
      : (tensor<1x90x128xf32>, tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32>,
         tensor<128x32xf32>, tensor<128x32xf32>, tensor<128x128xf32>, tensor<128xf32>,
         tensor<128xf32>, tensor<128x256xf32>, tensor<256x128xf32>) -> tensor<1x90x128xf32>
  return %y : tensor<1x90x128xf32>
}

//--- mha_layer_norm_relu_f32.mlir
// MHA, layer_norm, relu (its kink: the finite differences use a step of
// 1e-6, small enough that no pre-activation of these inputs crosses 0).
// RUN: bpt-cpu-run %t/mha_layer_norm_relu_f32.mlir --backward --block-sizes=32:16 --seed=66 | FileCheck %s --check-prefix=MHA-LAYER-NORM-RELU-F32
// MHA-LAYER-NORM-RELU-F32: forward 0 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: forward 1 {{.*}}xf32>: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 0 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 1 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 2 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 3 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 4 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 5 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 6 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 7 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 8 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 9 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: gradient 10 {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 0: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 1: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 2: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 3: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 4: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 5: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 6: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 7: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 8: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 9: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: finite differences, argument 10: {{.*}}: PASS
// MHA-LAYER-NORM-RELU-F32: {{^PASS$}}
func.func @mha_layer_norm_relu_f32(
    %x: tensor<2x60x128xf32>, %g1: tensor<128xf32>, %b1: tensor<128xf32>,
    %wq: tensor<128x128xf32>, %wk: tensor<128x128xf32>, %wv: tensor<128x128xf32>,
    %wo: tensor<128x128xf32>, %g2: tensor<128xf32>, %b2: tensor<128xf32>,
    %w1: tensor<128x256xf32>, %w2: tensor<256x128xf32>) -> tensor<2x60x128xf32> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(4) kv_heads(4) activation(relu)
      norm(layer_norm)
      : (tensor<2x60x128xf32>, tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32>,
         tensor<128x128xf32>, tensor<128x128xf32>, tensor<128x128xf32>, tensor<128xf32>,
         tensor<128xf32>, tensor<128x256xf32>, tensor<256x128xf32>) -> tensor<2x60x128xf32>
  return %y : tensor<2x60x128xf32>
}

//--- gqa_rms_norm_swiglu_bf16.mlir
// bf16: GQA (8 heads of 8 over 2), rms_norm, swiglu, causal, S = 100.
// RUN: bpt-cpu-run %t/gqa_rms_norm_swiglu_bf16.mlir --backward --block-sizes=32:32 --seed=67 | FileCheck %s --check-prefix=GQA-RMS-NORM-SWIGLU-BF16
// GQA-RMS-NORM-SWIGLU-BF16: forward 0 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: forward 1 {{.*}}xf32>: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 0 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 1 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 2 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 3 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 4 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 5 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 6 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 7 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 8 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: gradient 9 {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 0: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 1: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 2: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 3: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 4: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 5: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 6: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 7: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 8: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: finite differences, argument 9: {{.*}}: PASS
// GQA-RMS-NORM-SWIGLU-BF16: {{^PASS$}}
func.func @gqa_rms_norm_swiglu_bf16(
    %x: tensor<1x100x64xbf16>, %g1: tensor<64xbf16>, %wq: tensor<64x64xbf16>,
    %wk: tensor<64x16xbf16>, %wv: tensor<64x16xbf16>, %wo: tensor<64x64xbf16>,
    %g2: tensor<64xbf16>, %w1: tensor<64x176xbf16>, %w2: tensor<176x64xbf16>,
    %w3: tensor<64x176xbf16>) -> tensor<1x100x64xbf16> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2, gate %w3) heads(8) kv_heads(2) causal
      activation(swiglu) norm(rms_norm)
      : (tensor<1x100x64xbf16>, tensor<64xbf16>, tensor<64x64xbf16>,
         tensor<64x16xbf16>, tensor<64x16xbf16>, tensor<64x64xbf16>,
         tensor<64xbf16>, tensor<64x176xbf16>, tensor<176x64xbf16>,
         tensor<64x176xbf16>) -> tensor<1x100x64xbf16>
  return %y : tensor<1x100x64xbf16>
}

//--- cross_attention.mlir
// Hand-written pieces rather than a block: a projection with a bias,
// attention of 48 queries over 80 keys (causal, bottom-right aligned: the
// first queries see the first 33 keys), GQA 4 over 2, an explicit scale, a
// value used twice (%x: residual and projection), a result that is an
// argument's own value (the memory passes through), and an argument nothing
// depends on (zero gradient).
// RUN: bpt-cpu-run %t/cross_attention.mlir --backward --block-sizes=16:32,32:16 --seed=68 | FileCheck %s --check-prefix=CROSS
// CROSS: forward 0 {{.*}}: PASS
// CROSS: forward 1 {{.*}}: PASS
// CROSS: forward 2 tensor<1x4x48xf32>: {{.*}}: PASS
// CROSS: gradient 0 tensor<1x48x64xf32>: {{.*}}: PASS
// CROSS: gradient 1 tensor<1x80x64xf32>: {{.*}}: PASS
// CROSS: gradient 2 tensor<64x64xf32>: {{.*}}: PASS
// CROSS: gradient 3 tensor<64xf32>: {{.*}}: PASS
// CROSS: gradient 4 tensor<64x32xf32>: {{.*}}: PASS
// CROSS: gradient 5 tensor<64x32xf32>: {{.*}}: PASS
// CROSS: gradient 6 tensor<7xf32>: relative error 0.00e+00
// CROSS: finite differences, argument 6: float64 gradient 0.000000e+00 vs 0.000000e+00
// CROSS: {{^PASS$}}
func.func @cross_attention(%x: tensor<1x48x64xf32>, %mem: tensor<1x80x64xf32>,
                           %wq: tensor<64x64xf32>, %bq: tensor<64xf32>,
                           %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>,
                           %unused: tensor<7xf32>)
    -> (tensor<1x48x64xf32>, tensor<1x80x64xf32>) {
  %q = bpt.linear %x, %wq, %bq
      : (tensor<1x48x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<1x48x64xf32>
  %k = bpt.linear %mem, %wk : (tensor<1x80x64xf32>, tensor<64x32xf32>) -> tensor<1x80x32xf32>
  %v = bpt.linear %mem, %wv : (tensor<1x80x64xf32>, tensor<64x32xf32>) -> tensor<1x80x32xf32>
  %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [1, 48, 4, 16]
      : tensor<1x48x64xf32> into tensor<1x48x4x16xf32>
  %k4 = tensor.expand_shape %k [[0], [1], [2, 3]] output_shape [1, 80, 2, 16]
      : tensor<1x80x32xf32> into tensor<1x80x2x16xf32>
  %v4 = tensor.expand_shape %v [[0], [1], [2, 3]] output_shape [1, 80, 2, 16]
      : tensor<1x80x32xf32> into tensor<1x80x2x16xf32>
  %eq = tensor.empty() : tensor<1x4x48x16xf32>
  %ek = tensor.empty() : tensor<1x2x80x16xf32>
  %qh = linalg.transpose ins(%q4 : tensor<1x48x4x16xf32>) outs(%eq : tensor<1x4x48x16xf32>) permutation = [0, 2, 1, 3]
  %kh = linalg.transpose ins(%k4 : tensor<1x80x2x16xf32>) outs(%ek : tensor<1x2x80x16xf32>) permutation = [0, 2, 1, 3]
  %vh = linalg.transpose ins(%v4 : tensor<1x80x2x16xf32>) outs(%ek : tensor<1x2x80x16xf32>) permutation = [0, 2, 1, 3]
  %o = bpt.attention %qh, %kh, %vh causal scale(0.3)
      : (tensor<1x4x48x16xf32>, tensor<1x2x80x16xf32>, tensor<1x2x80x16xf32>)
        -> tensor<1x4x48x16xf32>
  %eo = tensor.empty() : tensor<1x48x4x16xf32>
  %ot = linalg.transpose ins(%o : tensor<1x4x48x16xf32>) outs(%eo : tensor<1x48x4x16xf32>) permutation = [0, 2, 1, 3]
  %om = tensor.collapse_shape %ot [[0], [1], [2, 3]] : tensor<1x48x4x16xf32> into tensor<1x48x64xf32>
  %y = arith.addf %x, %om : tensor<1x48x64xf32>
  return %y, %mem : tensor<1x48x64xf32>, tensor<1x80x64xf32>
}

//--- perturbed.mlir
// The check can fail: a compiled output moved by twice the tolerance.
// RUN: not bpt-cpu-run %t/perturbed.mlir --backward --perturb-output --seed=69 | FileCheck %s --check-prefix=PERTURBED
// PERTURBED: forward 0 {{.*}}: FAIL
// PERTURBED: {{^FAIL$}}
func.func @perturbed(%x: tensor<2x16x32xf32>, %w: tensor<32x32xf32>) -> tensor<2x16x32xf32> {
  %y = bpt.linear %x, %w : (tensor<2x16x32xf32>, tensor<32x32xf32>) -> tensor<2x16x32xf32>
  return %y : tensor<2x16x32xf32>
}
