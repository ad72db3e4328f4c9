// bpt.attention with its log-sum-exp result (what a backward pass saves),
// compiled blockwise for the CPU and checked against the float64 reference
// (bpt-cpu-run, random inputs): both outputs, causal with Sq > Skv so that
// rows 0..29 see no key (output 0, lse -inf, matched exactly), GQA, ragged
// blocks; f32 and bf16 (the lse stays f32).

// RUN: rm -rf %t && split-file %s %t

//--- f32.mlir
// RUN: bpt-cpu-run %t/f32.mlir --q-block=32 --kv-block=16 --seed=11 | FileCheck %s --check-prefix=F32
// RUN: bpt-cpu-run %t/f32.mlir --q-block=7 --kv-block=64 --seed=12 | FileCheck %s --check-prefix=F32
// F32: output 0 tensor<2x4x100x32xf32>: relative error {{.*}}: PASS
// F32: output 1 tensor<2x4x100xf32>: relative error {{.*}}: PASS
// F32: {{^PASS$}}
func.func @f32(%q: tensor<2x4x100x32xf32>, %k: tensor<2x2x70x32xf32>,
               %v: tensor<2x2x70x32xf32>)
    -> (tensor<2x4x100x32xf32>, tensor<2x4x100xf32>) {
  %o, %lse = bpt.attention %q, %k, %v causal
      : (tensor<2x4x100x32xf32>, tensor<2x2x70x32xf32>, tensor<2x2x70x32xf32>)
      -> (tensor<2x4x100x32xf32>, tensor<2x4x100xf32>)
  return %o, %lse : tensor<2x4x100x32xf32>, tensor<2x4x100xf32>
}

//--- bf16.mlir
// Not causal, scale 0.3, Sq < Skv.
// RUN: bpt-cpu-run %t/bf16.mlir --q-block=16 --kv-block=24 --seed=13 | FileCheck %s --check-prefix=BF16
// BF16: output 0 tensor<1x2x48x64xbf16>: relative error {{.*}}: PASS
// BF16: output 1 tensor<1x2x48xf32>: relative error {{.*}}: PASS
// BF16: {{^PASS$}}
func.func @bf16(%q: tensor<1x2x48x64xbf16>, %k: tensor<1x2x80x64xbf16>,
                %v: tensor<1x2x80x64xbf16>)
    -> (tensor<1x2x48x64xbf16>, tensor<1x2x48xf32>) {
  %o, %lse = bpt.attention %q, %k, %v scale(0.3)
      : (tensor<1x2x48x64xbf16>, tensor<1x2x80x64xbf16>, tensor<1x2x80x64xbf16>)
      -> (tensor<1x2x48x64xbf16>, tensor<1x2x48xf32>)
  return %o, %lse : tensor<1x2x48x64xbf16>, tensor<1x2x48xf32>
}
