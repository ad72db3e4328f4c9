// The position-wise ops compiled for the CPU and checked against the float64
// reference (bpt-cpu-run, random inputs): bpt.ffn with every activation
// (gelu, gelu_tanh, relu, silu, and the gated swiglu and geglu) in f32 and
// in bf16/f16; bpt.linear with and without a bias (rank 3, 2 and 1 inputs);
// bpt.layer_norm and bpt.rms_norm with the default and custom epsilons; and
// residual arith.addf on tensors, alone and chained with the others. Each
// activation and norm has its own formula in the lowering, so each needs its
// own numerical check. Without a bpt.attention nothing here is tiled into
// query blocks (that is block.mlir's subject); the RUN lines still vary the
// block sizes and --no-fuse to show those options leave these ops alone.
//
// bpt-cpu-run compiles and JITs every function of its module, so each
// function lives in its own split-file part (//--- NAME.mlir).

// RUN: rm -rf %t && split-file %s %t

//--- ffn_f32.mlir
// The four two-matrix activations on the same input, one output each. At
// these scales gelu and gelu_tanh differ by about 1e-4 relative: the f32
// tolerance (1e-5) tells them apart, bf16's (1e-2) would not.
// RUN: bpt-cpu-run %t/ffn_f32.mlir --function=ffn_f32 --q-block=32 --kv-block=32 --seed=31 | FileCheck %s --check-prefix=FFN-F32
// RUN: bpt-cpu-run %t/ffn_f32.mlir --function=ffn_f32 --q-block=7 --kv-block=64 --no-fuse --seed=32 | FileCheck %s --check-prefix=FFN-F32
// FFN-F32: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// FFN-F32: output 1 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// FFN-F32: output 2 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// FFN-F32: output 3 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// FFN-F32: {{^PASS$}}
func.func @ffn_f32(%x: tensor<2x100x64xf32>, %w1: tensor<64x256xf32>,
                   %w2: tensor<256x64xf32>)
    -> (tensor<2x100x64xf32>, tensor<2x100x64xf32>, tensor<2x100x64xf32>,
        tensor<2x100x64xf32>) {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2x100x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x100x64xf32>
  %1 = bpt.ffn gelu_tanh %x, %w1, %w2
      : (tensor<2x100x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x100x64xf32>
  %2 = bpt.ffn relu %x, %w1, %w2
      : (tensor<2x100x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x100x64xf32>
  %3 = bpt.ffn silu %x, %w1, %w2
      : (tensor<2x100x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x100x64xf32>
  return %0, %1, %2, %3
      : tensor<2x100x64xf32>, tensor<2x100x64xf32>, tensor<2x100x64xf32>, tensor<2x100x64xf32>
}

//--- ffn_gated_f32.mlir
// The gated activations, F = 176 (not a power of two), rank-2 input.
// RUN: bpt-cpu-run %t/ffn_gated_f32.mlir --function=ffn_gated_f32 --q-block=16 --kv-block=16 --seed=33 | FileCheck %s --check-prefix=GATED-F32
// RUN: bpt-cpu-run %t/ffn_gated_f32.mlir --function=ffn_gated_f32 --q-block=128 --kv-block=128 --no-fuse --seed=34 | FileCheck %s --check-prefix=GATED-F32
// GATED-F32: output 0 tensor<90x128xf32>: relative error {{.*}}: PASS
// GATED-F32: output 1 tensor<90x128xf32>: relative error {{.*}}: PASS
// GATED-F32: {{^PASS$}}
func.func @ffn_gated_f32(%x: tensor<90x128xf32>, %w1: tensor<128x176xf32>,
                         %w2: tensor<176x128xf32>, %w3: tensor<128x176xf32>)
    -> (tensor<90x128xf32>, tensor<90x128xf32>) {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %w3
      : (tensor<90x128xf32>, tensor<128x176xf32>, tensor<176x128xf32>, tensor<128x176xf32>)
        -> tensor<90x128xf32>
  %1 = bpt.ffn geglu %x, %w1, %w2, gate %w3
      : (tensor<90x128xf32>, tensor<128x176xf32>, tensor<176x128xf32>, tensor<128x176xf32>)
        -> tensor<90x128xf32>
  return %0, %1 : tensor<90x128xf32>, tensor<90x128xf32>
}

//--- ffn_bf16.mlir
// bf16: the gated activations and gelu_tanh, F = 512.
// RUN: bpt-cpu-run %t/ffn_bf16.mlir --function=ffn_bf16 --q-block=32 --kv-block=32 --seed=35 | FileCheck %s --check-prefix=FFN-BF16
// FFN-BF16: output 0 tensor<1x100x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// FFN-BF16: output 1 tensor<1x100x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// FFN-BF16: output 2 tensor<1x100x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// FFN-BF16: {{^PASS$}}
func.func @ffn_bf16(%x: tensor<1x100x64xbf16>, %w1: tensor<64x512xbf16>,
                    %w2: tensor<512x64xbf16>, %w3: tensor<64x512xbf16>)
    -> (tensor<1x100x64xbf16>, tensor<1x100x64xbf16>, tensor<1x100x64xbf16>) {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %w3
      : (tensor<1x100x64xbf16>, tensor<64x512xbf16>, tensor<512x64xbf16>, tensor<64x512xbf16>)
        -> tensor<1x100x64xbf16>
  %1 = bpt.ffn geglu %x, %w1, %w2, gate %w3
      : (tensor<1x100x64xbf16>, tensor<64x512xbf16>, tensor<512x64xbf16>, tensor<64x512xbf16>)
        -> tensor<1x100x64xbf16>
  %2 = bpt.ffn gelu_tanh %x, %w1, %w2
      : (tensor<1x100x64xbf16>, tensor<64x512xbf16>, tensor<512x64xbf16>) -> tensor<1x100x64xbf16>
  return %0, %1, %2 : tensor<1x100x64xbf16>, tensor<1x100x64xbf16>, tensor<1x100x64xbf16>
}

//--- ffn_f16.mlir
// f16: silu and relu.
// RUN: bpt-cpu-run %t/ffn_f16.mlir --function=ffn_f16 --q-block=24 --kv-block=24 --seed=36 | FileCheck %s --check-prefix=FFN-F16
// FFN-F16: output 0 tensor<2x50x32xf16>: relative error {{.*}} (tolerance 1e-02): PASS
// FFN-F16: output 1 tensor<2x50x32xf16>: relative error {{.*}} (tolerance 1e-02): PASS
// FFN-F16: {{^PASS$}}
func.func @ffn_f16(%x: tensor<2x50x32xf16>, %w1: tensor<32x128xf16>,
                   %w2: tensor<128x32xf16>) -> (tensor<2x50x32xf16>, tensor<2x50x32xf16>) {
  %0 = bpt.ffn silu %x, %w1, %w2
      : (tensor<2x50x32xf16>, tensor<32x128xf16>, tensor<128x32xf16>) -> tensor<2x50x32xf16>
  %1 = bpt.ffn relu %x, %w1, %w2
      : (tensor<2x50x32xf16>, tensor<32x128xf16>, tensor<128x32xf16>) -> tensor<2x50x32xf16>
  return %0, %1 : tensor<2x50x32xf16>, tensor<2x50x32xf16>
}

//--- linear_f32.mlir
// bpt.linear without and with a bias, rank-3 input, H 64 -> 96.
// RUN: bpt-cpu-run %t/linear_f32.mlir --function=linear_f32 --q-block=32 --kv-block=32 --seed=37 | FileCheck %s --check-prefix=LINEAR
// LINEAR: output 0 tensor<2x100x96xf32>: relative error {{.*}}: PASS
// LINEAR: output 1 tensor<2x100x96xf32>: relative error {{.*}}: PASS
// LINEAR: {{^PASS$}}
func.func @linear_f32(%x: tensor<2x100x64xf32>, %w: tensor<64x96xf32>, %b: tensor<96xf32>)
    -> (tensor<2x100x96xf32>, tensor<2x100x96xf32>) {
  %0 = bpt.linear %x, %w : (tensor<2x100x64xf32>, tensor<64x96xf32>) -> tensor<2x100x96xf32>
  %1 = bpt.linear %x, %w, %b
      : (tensor<2x100x64xf32>, tensor<64x96xf32>, tensor<96xf32>) -> tensor<2x100x96xf32>
  return %0, %1 : tensor<2x100x96xf32>, tensor<2x100x96xf32>
}

//--- linear_low_rank.mlir
// bpt.linear on a rank-2 input with a bias and a rank-1 input without, bf16.
// RUN: bpt-cpu-run %t/linear_low_rank.mlir --function=linear_low_rank --q-block=16 --kv-block=16 --seed=38 | FileCheck %s --check-prefix=LINEAR-LOW
// LINEAR-LOW: output 0 tensor<70x32xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// LINEAR-LOW: output 1 tensor<8xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// LINEAR-LOW: {{^PASS$}}
func.func @linear_low_rank(%x: tensor<70x64xbf16>, %w: tensor<64x32xbf16>,
                           %b: tensor<32xbf16>, %v: tensor<64xbf16>,
                           %w8: tensor<64x8xbf16>) -> (tensor<70x32xbf16>, tensor<8xbf16>) {
  %0 = bpt.linear %x, %w, %b
      : (tensor<70x64xbf16>, tensor<64x32xbf16>, tensor<32xbf16>) -> tensor<70x32xbf16>
  %1 = bpt.linear %v, %w8 : (tensor<64xbf16>, tensor<64x8xbf16>) -> tensor<8xbf16>
  return %0, %1 : tensor<70x32xbf16>, tensor<8xbf16>
}

//--- norms_f32.mlir
// layer_norm and rms_norm with the default epsilon (1e-5) and a custom one
// large enough (0.5, against a variance of about 1/3 for the uniform inputs)
// that ignoring it would fail; rms_norm also with epsilon 0.
// RUN: bpt-cpu-run %t/norms_f32.mlir --function=norms_f32 --q-block=32 --kv-block=32 --seed=39 | FileCheck %s --check-prefix=NORMS
// RUN: bpt-cpu-run %t/norms_f32.mlir --function=norms_f32 --q-block=9 --kv-block=9 --no-fuse --seed=40 | FileCheck %s --check-prefix=NORMS
// NORMS: output 0 tensor<2x100x128xf32>: relative error {{.*}}: PASS
// NORMS: output 1 tensor<2x100x128xf32>: relative error {{.*}}: PASS
// NORMS: output 2 tensor<2x100x128xf32>: relative error {{.*}}: PASS
// NORMS: output 3 tensor<2x100x128xf32>: relative error {{.*}}: PASS
// NORMS: output 4 tensor<2x100x128xf32>: relative error {{.*}}: PASS
// NORMS: {{^PASS$}}
func.func @norms_f32(%x: tensor<2x100x128xf32>, %g: tensor<128xf32>, %b: tensor<128xf32>)
    -> (tensor<2x100x128xf32>, tensor<2x100x128xf32>, tensor<2x100x128xf32>,
        tensor<2x100x128xf32>, tensor<2x100x128xf32>) {
  %0 = bpt.layer_norm %x, %g, %b
      : (tensor<2x100x128xf32>, tensor<128xf32>, tensor<128xf32>) -> tensor<2x100x128xf32>
  %1 = bpt.layer_norm %x, %g, %b {epsilon = 0.5}
      : (tensor<2x100x128xf32>, tensor<128xf32>, tensor<128xf32>) -> tensor<2x100x128xf32>
  %2 = bpt.rms_norm %x, %g
      : (tensor<2x100x128xf32>, tensor<128xf32>) -> tensor<2x100x128xf32>
  %3 = bpt.rms_norm %x, %g {epsilon = 0.5}
      : (tensor<2x100x128xf32>, tensor<128xf32>) -> tensor<2x100x128xf32>
  %4 = bpt.rms_norm %x, %g {epsilon = 0.0}
      : (tensor<2x100x128xf32>, tensor<128xf32>) -> tensor<2x100x128xf32>
  return %0, %1, %2, %3, %4
      : tensor<2x100x128xf32>, tensor<2x100x128xf32>, tensor<2x100x128xf32>,
        tensor<2x100x128xf32>, tensor<2x100x128xf32>
}

//--- norms_bf16.mlir
// The norms in bf16 (computed in f32 inside), custom epsilon 0.03125.
// RUN: bpt-cpu-run %t/norms_bf16.mlir --function=norms_bf16 --q-block=16 --kv-block=16 --seed=41 | FileCheck %s --check-prefix=NORMS-BF16
// NORMS-BF16: output 0 tensor<2x40x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// NORMS-BF16: output 1 tensor<2x40x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// NORMS-BF16: {{^PASS$}}
func.func @norms_bf16(%x: tensor<2x40x64xbf16>, %g: tensor<64xbf16>, %b: tensor<64xbf16>)
    -> (tensor<2x40x64xbf16>, tensor<2x40x64xbf16>) {
  %0 = bpt.layer_norm %x, %g, %b {epsilon = 0.03125}
      : (tensor<2x40x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> tensor<2x40x64xbf16>
  %1 = bpt.rms_norm %x, %g {epsilon = 0.03125}
      : (tensor<2x40x64xbf16>, tensor<64xbf16>) -> tensor<2x40x64xbf16>
  return %0, %1 : tensor<2x40x64xbf16>, tensor<2x40x64xbf16>
}

//--- residual.mlir
// Residual arith.addf: alone (x + y), and a pre-norm FFN sub-block
// r = x + linear(x); out = r + ffn(rms_norm(r)), fused and not.
// RUN: bpt-cpu-run %t/residual.mlir --function=residual --q-block=32 --kv-block=32 --seed=42 | FileCheck %s --check-prefix=RESIDUAL
// RUN: bpt-cpu-run %t/residual.mlir --function=residual --q-block=13 --kv-block=13 --no-fuse --seed=43 | FileCheck %s --check-prefix=RESIDUAL
// RESIDUAL: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// RESIDUAL: output 1 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// RESIDUAL: {{^PASS$}}
func.func @residual(%x: tensor<2x100x64xf32>, %y: tensor<2x100x64xf32>,
                    %w: tensor<64x64xf32>, %g: tensor<64xf32>,
                    %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>,
                    %w3: tensor<64x256xf32>)
    -> (tensor<2x100x64xf32>, tensor<2x100x64xf32>) {
  %sum = arith.addf %x, %y : tensor<2x100x64xf32>
  %p = bpt.linear %x, %w : (tensor<2x100x64xf32>, tensor<64x64xf32>) -> tensor<2x100x64xf32>
  %r = arith.addf %x, %p : tensor<2x100x64xf32>
  %h = bpt.rms_norm %r, %g : (tensor<2x100x64xf32>, tensor<64xf32>) -> tensor<2x100x64xf32>
  %f = bpt.ffn swiglu %h, %w1, %w2, gate %w3
      : (tensor<2x100x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>, tensor<64x256xf32>)
        -> tensor<2x100x64xf32>
  %out = arith.addf %r, %f : tensor<2x100x64xf32>
  return %sum, %out : tensor<2x100x64xf32>, tensor<2x100x64xf32>
}

//--- residual_bf16.mlir
// Residual arith.addf in bf16 around a layer_norm + gelu FFN.
// RUN: bpt-cpu-run %t/residual_bf16.mlir --function=residual_bf16 --q-block=32 --kv-block=32 --seed=44 | FileCheck %s --check-prefix=RESIDUAL-BF16
// RESIDUAL-BF16: output 0 tensor<1x100x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// RESIDUAL-BF16: {{^PASS$}}
func.func @residual_bf16(%x: tensor<1x100x64xbf16>, %g: tensor<64xbf16>, %b: tensor<64xbf16>,
                         %w1: tensor<64x256xbf16>, %w2: tensor<256x64xbf16>)
    -> tensor<1x100x64xbf16> {
  %h = bpt.layer_norm %x, %g, %b
      : (tensor<1x100x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> tensor<1x100x64xbf16>
  %f = bpt.ffn gelu %h, %w1, %w2
      : (tensor<1x100x64xbf16>, tensor<64x256xbf16>, tensor<256x64xbf16>) -> tensor<1x100x64xbf16>
  %out = arith.addf %x, %f : tensor<1x100x64xbf16>
  return %out : tensor<1x100x64xbf16>
}
