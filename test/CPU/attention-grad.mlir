// The attention backward (bpt.attention_grad) in its blockwise form, run on
// the CPU after the forward that saves the log-sum-exp, against the float64
// gradients of lib/Reference (checked there by finite differences; bpt-
// cpu-run, random inputs, the upstream gradient dO an input too): GQA and
// MQA, causal with Sq > Skv (rows 0..29 see no key: zero dq, no NaN) and
// Sq < Skv, not causal, ragged query and key blocks, a custom scale; f32,
// bf16 and f16. --block-sizes also checks that every tiling agrees with the
// first.

// RUN: rm -rf %t && split-file %s %t

//--- gqa_causal_f32.mlir
// RUN: bpt-cpu-run %t/gqa_causal_f32.mlir --block-sizes=32:16,7:64,100:70,1:3 --seed=21 | FileCheck %s --check-prefix=GQA
// GQA-COUNT-4: output 0 tensor<2x4x100x32xf32>: relative error {{.*}}: PASS
// GQA: {{^PASS$}}
func.func @gqa_causal_f32(%q: tensor<2x4x100x32xf32>, %k: tensor<2x2x70x32xf32>,
                          %v: tensor<2x2x70x32xf32>, %do: tensor<2x4x100x32xf32>)
    -> (tensor<2x4x100x32xf32>, tensor<2x2x70x32xf32>, tensor<2x2x70x32xf32>) {
  %o, %lse = bpt.attention %q, %k, %v causal
      : (tensor<2x4x100x32xf32>, tensor<2x2x70x32xf32>, tensor<2x2x70x32xf32>)
      -> (tensor<2x4x100x32xf32>, tensor<2x4x100xf32>)
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      : (tensor<2x4x100x32xf32>, tensor<2x2x70x32xf32>, tensor<2x2x70x32xf32>,
         tensor<2x4x100x32xf32>, tensor<2x4x100x32xf32>, tensor<2x4x100xf32>)
      -> (tensor<2x4x100x32xf32>, tensor<2x2x70x32xf32>, tensor<2x2x70x32xf32>)
  return %dq, %dk, %dv
      : tensor<2x4x100x32xf32>, tensor<2x2x70x32xf32>, tensor<2x2x70x32xf32>
}

//--- mha_bf16.mlir
// Not causal, scale 0.2, Sq < Skv.
// RUN: bpt-cpu-run %t/mha_bf16.mlir --block-sizes=16:24,48:80 --seed=22 | FileCheck %s --check-prefix=MHA
// MHA-COUNT-2: output 2 tensor<1x2x80x64xbf16>: relative error {{.*}}: PASS
// MHA: {{^PASS$}}
func.func @mha_bf16(%q: tensor<1x2x48x64xbf16>, %k: tensor<1x2x80x64xbf16>,
                    %v: tensor<1x2x80x64xbf16>, %do: tensor<1x2x48x64xbf16>)
    -> (tensor<1x2x48x64xbf16>, tensor<1x2x80x64xbf16>, tensor<1x2x80x64xbf16>) {
  %o, %lse = bpt.attention %q, %k, %v scale(0.2)
      : (tensor<1x2x48x64xbf16>, tensor<1x2x80x64xbf16>, tensor<1x2x80x64xbf16>)
      -> (tensor<1x2x48x64xbf16>, tensor<1x2x48xf32>)
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse scale(0.2)
      : (tensor<1x2x48x64xbf16>, tensor<1x2x80x64xbf16>, tensor<1x2x80x64xbf16>,
         tensor<1x2x48x64xbf16>, tensor<1x2x48x64xbf16>, tensor<1x2x48xf32>)
      -> (tensor<1x2x48x64xbf16>, tensor<1x2x80x64xbf16>, tensor<1x2x80x64xbf16>)
  return %dq, %dk, %dv
      : tensor<1x2x48x64xbf16>, tensor<1x2x80x64xbf16>, tensor<1x2x80x64xbf16>
}

//--- mqa_causal_f16.mlir
// MQA (4 query heads, one key/value head), causal with Sq = 40 < Skv = 72.
// RUN: bpt-cpu-run %t/mqa_causal_f16.mlir --block-sizes=16:16,13:32 --seed=23 | FileCheck %s --check-prefix=MQA
// MQA-COUNT-2: output 1 tensor<1x1x72x32xf16>: relative error {{.*}}: PASS
// MQA: {{^PASS$}}
func.func @mqa_causal_f16(%q: tensor<1x4x40x32xf16>, %k: tensor<1x1x72x32xf16>,
                          %v: tensor<1x1x72x32xf16>, %do: tensor<1x4x40x32xf16>)
    -> (tensor<1x4x40x32xf16>, tensor<1x1x72x32xf16>, tensor<1x1x72x32xf16>) {
  %o, %lse = bpt.attention %q, %k, %v causal
      : (tensor<1x4x40x32xf16>, tensor<1x1x72x32xf16>, tensor<1x1x72x32xf16>)
      -> (tensor<1x4x40x32xf16>, tensor<1x4x40xf32>)
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      : (tensor<1x4x40x32xf16>, tensor<1x1x72x32xf16>, tensor<1x1x72x32xf16>,
         tensor<1x4x40x32xf16>, tensor<1x4x40x32xf16>, tensor<1x4x40xf32>)
      -> (tensor<1x4x40x32xf16>, tensor<1x1x72x32xf16>, tensor<1x1x72x32xf16>)
  return %dq, %dk, %dv
      : tensor<1x4x40x32xf16>, tensor<1x1x72x32xf16>, tensor<1x1x72x32xf16>
}
