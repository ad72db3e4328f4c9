// The whole bpt.transformer_block compiled for the CPU, both with the FFN and
// residuals fused into the query-block loop (the default) and unfused
// (--no-fuse), each checked against the float64 reference (bpt-cpu-run,
// random inputs): MHA, GQA and MQA; layer_norm and rms_norm; causal and not;
// ragged sequence lengths (S = 100 with q-block 32, and others); f32 and
// bf16. Fusion changes where the residual, the second norm and the FFN run,
// so both paths must give the reference result on the same inputs (same
// seed per pair of RUN lines).
//
// bpt-cpu-run compiles and JITs every function of its module, so each
// function lives in its own split-file part (//--- NAME.mlir).

// RUN: rm -rf %t && split-file %s %t

//--- mha_layer_norm_gelu.mlir
// MHA (4 heads of 32), layer_norm, gelu, not causal, batch 2, S = 100.
// RUN: bpt-cpu-run %t/mha_layer_norm_gelu.mlir --function=mha_layer_norm_gelu --q-block=32 --kv-block=32 --seed=51 | FileCheck %s --check-prefix=MHA-LN
// RUN: bpt-cpu-run %t/mha_layer_norm_gelu.mlir --function=mha_layer_norm_gelu --q-block=32 --kv-block=32 --seed=51 --no-fuse | FileCheck %s --check-prefix=MHA-LN
// RUN: bpt-cpu-run %t/mha_layer_norm_gelu.mlir --function=mha_layer_norm_gelu --q-block=24 --kv-block=40 --seed=52 | FileCheck %s --check-prefix=MHA-LN
// MHA-LN: output 0 tensor<2x100x128xf32>: relative error {{.*}}: PASS
// MHA-LN: {{^PASS$}}
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
// MHA (2 heads of 64), layer_norm with epsilon 0.25, gelu_tanh, causal,
// S = 100.
// RUN: bpt-cpu-run %t/mha_layer_norm_causal.mlir --function=mha_layer_norm_causal --q-block=32 --kv-block=16 --seed=53 | FileCheck %s --check-prefix=MHA-LN-CAUSAL
// RUN: bpt-cpu-run %t/mha_layer_norm_causal.mlir --function=mha_layer_norm_causal --q-block=32 --kv-block=16 --seed=53 --no-fuse | FileCheck %s --check-prefix=MHA-LN-CAUSAL
// MHA-LN-CAUSAL: output 0 tensor<1x100x128xf32>: relative error {{.*}}: PASS
// MHA-LN-CAUSAL: {{^PASS$}}
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
// GQA (8 heads of 16 over 2 key/value heads), rms_norm, swiglu (F = 352),
// causal, S = 100; the layout of examples/block.mlir, scaled down.
// RUN: bpt-cpu-run %t/gqa_rms_norm_swiglu.mlir --function=gqa_rms_norm_swiglu --q-block=32 --kv-block=32 --seed=54 | FileCheck %s --check-prefix=GQA-RMS
// RUN: bpt-cpu-run %t/gqa_rms_norm_swiglu.mlir --function=gqa_rms_norm_swiglu --q-block=32 --kv-block=32 --seed=54 --no-fuse | FileCheck %s --check-prefix=GQA-RMS
// RUN: bpt-cpu-run %t/gqa_rms_norm_swiglu.mlir --function=gqa_rms_norm_swiglu --q-block=11 --kv-block=64 --seed=55 | FileCheck %s --check-prefix=GQA-RMS
// GQA-RMS: output 0 tensor<1x100x128xf32>: relative error {{.*}}: PASS
// GQA-RMS: {{^PASS$}}
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
// RUN: bpt-cpu-run %t/gqa_rms_norm_geglu.mlir --function=gqa_rms_norm_geglu --q-block=16 --kv-block=32 --seed=56 | FileCheck %s --check-prefix=GQA-GEGLU
// RUN: bpt-cpu-run %t/gqa_rms_norm_geglu.mlir --function=gqa_rms_norm_geglu --q-block=16 --kv-block=32 --seed=56 --no-fuse | FileCheck %s --check-prefix=GQA-GEGLU
// GQA-GEGLU: output 0 tensor<2x70x64xf32>: relative error {{.*}}: PASS
// GQA-GEGLU: {{^PASS$}}
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
// MQA (4 heads of 32 over one key/value head), layer_norm, silu, causal,
// S = 90, and a query block larger than S.
// RUN: bpt-cpu-run %t/mqa_layer_norm_silu.mlir --function=mqa_layer_norm_silu --q-block=128 --kv-block=24 --seed=57 | FileCheck %s --check-prefix=MQA-LN
// RUN: bpt-cpu-run %t/mqa_layer_norm_silu.mlir --function=mqa_layer_norm_silu --q-block=128 --kv-block=24 --seed=57 --no-fuse | FileCheck %s --check-prefix=MQA-LN
// MQA-LN: output 0 tensor<1x90x128xf32>: relative error {{.*}}: PASS
// MQA-LN: {{^PASS$}}
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

//--- gqa_rms_norm_swiglu_bf16.mlir
// bf16: GQA (8 heads of 8 over 2), rms_norm, swiglu (F = 176), causal,
// S = 100 (the ops.mlir block, longer).
// RUN: bpt-cpu-run %t/gqa_rms_norm_swiglu_bf16.mlir --function=gqa_rms_norm_swiglu_bf16 --q-block=32 --kv-block=32 --seed=58 | FileCheck %s --check-prefix=GQA-BF16
// RUN: bpt-cpu-run %t/gqa_rms_norm_swiglu_bf16.mlir --function=gqa_rms_norm_swiglu_bf16 --q-block=32 --kv-block=32 --seed=58 --no-fuse | FileCheck %s --check-prefix=GQA-BF16
// GQA-BF16: output 0 tensor<1x100x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// GQA-BF16: {{^PASS$}}
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

//--- mha_layer_norm_relu_bf16.mlir
// bf16: MHA (4 heads of 32), layer_norm, relu, not causal, batch 2, S = 60.
// RUN: bpt-cpu-run %t/mha_layer_norm_relu_bf16.mlir --function=mha_layer_norm_relu_bf16 --q-block=32 --kv-block=16 --seed=59 | FileCheck %s --check-prefix=MHA-BF16
// RUN: bpt-cpu-run %t/mha_layer_norm_relu_bf16.mlir --function=mha_layer_norm_relu_bf16 --q-block=32 --kv-block=16 --seed=59 --no-fuse | FileCheck %s --check-prefix=MHA-BF16
// MHA-BF16: output 0 tensor<2x60x128xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// MHA-BF16: {{^PASS$}}
func.func @mha_layer_norm_relu_bf16(
    %x: tensor<2x60x128xbf16>, %g1: tensor<128xbf16>, %b1: tensor<128xbf16>,
    %wq: tensor<128x128xbf16>, %wk: tensor<128x128xbf16>, %wv: tensor<128x128xbf16>,
    %wo: tensor<128x128xbf16>, %g2: tensor<128xbf16>, %b2: tensor<128xbf16>,
    %w1: tensor<128x256xbf16>, %w2: tensor<256x128xbf16>) -> tensor<2x60x128xbf16> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(4) kv_heads(4) activation(relu)
      norm(layer_norm)
      : (tensor<2x60x128xbf16>, tensor<128xbf16>, tensor<128xbf16>, tensor<128x128xbf16>,
         tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128xbf16>,
         tensor<128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>) -> tensor<2x60x128xbf16>
  return %y : tensor<2x60x128xbf16>
}
