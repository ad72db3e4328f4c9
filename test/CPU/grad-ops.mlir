// The per-op gradients (bpt.linear_grad, bpt.ffn_grad with every activation,
// bpt.layer_norm_grad, bpt.rms_norm_grad) compiled for the CPU by
// bpt-convert-to-linalg and checked against the float64 backward functions of
// lib/Reference (themselves checked by finite differences; bpt-cpu-run,
// random inputs, the upstream gradient an input too): f32 at 1e-5 and bf16 at
// 1e-2 relative error, every output of every op. Each activation and norm
// has its own derivative in the lowering, so each has its own check; at
// these scales gelu and gelu_tanh differ by about 1e-4 relative, which the
// f32 tolerance tells apart. No sizes are equal (rows, hidden, F differ) so
// that a swapped index shows.
//
// Seen failing on wrong formulas (lowering changed by hand, then restored):
// gelu_tanh's derivative with 3·0.04 for 3·0.044715 fails ffn_f32's outputs
// 3 and 4 (9.8e-4 against 1e-5; bf16's 1e-2 does not see it, 1.8e-3);
// layer_norm_grad without its mean(g) term fails norms_f32's outputs 0 and
// 3 and norms_bf16's output 0 (1.3e-1).
//
// bpt-cpu-run compiles and JITs every function of its module, so each
// function lives in its own split-file part (//--- NAME.mlir).

// RUN: rm -rf %t && split-file %s %t

//--- linear_f32.mlir
// Rank-3 input, without and with a bias gradient (two upstream gradients:
// two identical ops would be merged by CSE into one value returned twice).
// RUN: bpt-cpu-run %t/linear_f32.mlir --seed=41 | FileCheck %s --check-prefix=LINEAR-F32
// LINEAR-F32: output 0 tensor<2x30x24xf32>: relative error {{.*}}: PASS
// LINEAR-F32: output 1 tensor<24x40xf32>: relative error {{.*}}: PASS
// LINEAR-F32: output 2 tensor<2x30x24xf32>: relative error {{.*}}: PASS
// LINEAR-F32: output 3 tensor<24x40xf32>: relative error {{.*}}: PASS
// LINEAR-F32: output 4 tensor<40xf32>: relative error {{.*}}: PASS
// LINEAR-F32: {{^PASS$}}
func.func @linear_f32(%x: tensor<2x30x24xf32>, %w: tensor<24x40xf32>,
                      %dy: tensor<2x30x40xf32>, %dy2: tensor<2x30x40xf32>)
    -> (tensor<2x30x24xf32>, tensor<24x40xf32>, tensor<2x30x24xf32>,
        tensor<24x40xf32>, tensor<40xf32>) {
  %dx, %dw = bpt.linear_grad %x, %w, %dy
      : (tensor<2x30x24xf32>, tensor<24x40xf32>, tensor<2x30x40xf32>)
        -> (tensor<2x30x24xf32>, tensor<24x40xf32>)
  %dx2, %dw2, %db = bpt.linear_grad %x, %w, %dy2
      : (tensor<2x30x24xf32>, tensor<24x40xf32>, tensor<2x30x40xf32>)
        -> (tensor<2x30x24xf32>, tensor<24x40xf32>, tensor<40xf32>)
  return %dx, %dw, %dx2, %dw2, %db
      : tensor<2x30x24xf32>, tensor<24x40xf32>, tensor<2x30x24xf32>,
        tensor<24x40xf32>, tensor<40xf32>
}

//--- linear_bf16.mlir
// bf16, a rank-2 input with a bias and a rank-1 input without.
// RUN: bpt-cpu-run %t/linear_bf16.mlir --seed=42 | FileCheck %s --check-prefix=LINEAR-BF16
// LINEAR-BF16-COUNT-5: output {{[0-4]}} tensor<{{.*}}xbf16>: relative error {{.*}}: PASS
// LINEAR-BF16: {{^PASS$}}
func.func @linear_bf16(%x: tensor<50x32xbf16>, %w: tensor<32x48xbf16>,
                       %dy: tensor<50x48xbf16>, %v: tensor<32xbf16>,
                       %dv: tensor<48xbf16>)
    -> (tensor<50x32xbf16>, tensor<32x48xbf16>, tensor<48xbf16>,
        tensor<32xbf16>, tensor<32x48xbf16>) {
  %dx, %dw, %db = bpt.linear_grad %x, %w, %dy
      : (tensor<50x32xbf16>, tensor<32x48xbf16>, tensor<50x48xbf16>)
        -> (tensor<50x32xbf16>, tensor<32x48xbf16>, tensor<48xbf16>)
  %dv1, %dw1 = bpt.linear_grad %v, %w, %dv
      : (tensor<32xbf16>, tensor<32x48xbf16>, tensor<48xbf16>)
        -> (tensor<32xbf16>, tensor<32x48xbf16>)
  return %dx, %dw, %db, %dv1, %dw1
      : tensor<50x32xbf16>, tensor<32x48xbf16>, tensor<48xbf16>,
        tensor<32xbf16>, tensor<32x48xbf16>
}

//--- ffn_f32.mlir
// The four two-matrix activations on the same operands.
// RUN: bpt-cpu-run %t/ffn_f32.mlir --seed=43 | FileCheck %s --check-prefix=FFN-F32
// The outputs are dx, dw_in, dw_out per activation.
// FFN-F32: output 0 tensor<2x36x40xf32>: relative error {{.*}}: PASS
// FFN-F32: output 1 tensor<40x72xf32>: relative error {{.*}}: PASS
// FFN-F32: output 2 tensor<72x40xf32>: relative error {{.*}}: PASS
// FFN-F32: output 3 tensor<2x36x40xf32>: relative error {{.*}}: PASS
// FFN-F32: output 4 tensor<40x72xf32>: relative error {{.*}}: PASS
// FFN-F32: output 5 tensor<72x40xf32>: relative error {{.*}}: PASS
// FFN-F32: output 6 tensor<2x36x40xf32>: relative error {{.*}}: PASS
// FFN-F32: output 7 tensor<40x72xf32>: relative error {{.*}}: PASS
// FFN-F32: output 8 tensor<72x40xf32>: relative error {{.*}}: PASS
// FFN-F32: output 9 tensor<2x36x40xf32>: relative error {{.*}}: PASS
// FFN-F32: output 10 tensor<40x72xf32>: relative error {{.*}}: PASS
// FFN-F32: output 11 tensor<72x40xf32>: relative error {{.*}}: PASS
// FFN-F32: {{^PASS$}}
func.func @ffn_f32(%x: tensor<2x36x40xf32>, %w1: tensor<40x72xf32>,
                   %w2: tensor<72x40xf32>, %dy: tensor<2x36x40xf32>)
    -> (tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>,
        tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>,
        tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>,
        tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>) {
  %a0, %a1, %a2 = bpt.ffn_grad gelu %x, %w1, %w2, %dy
      : (tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>, tensor<2x36x40xf32>)
        -> (tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>)
  %b0, %b1, %b2 = bpt.ffn_grad gelu_tanh %x, %w1, %w2, %dy
      : (tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>, tensor<2x36x40xf32>)
        -> (tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>)
  %c0, %c1, %c2 = bpt.ffn_grad relu %x, %w1, %w2, %dy
      : (tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>, tensor<2x36x40xf32>)
        -> (tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>)
  %d0, %d1, %d2 = bpt.ffn_grad silu %x, %w1, %w2, %dy
      : (tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>, tensor<2x36x40xf32>)
        -> (tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>)
  return %a0, %a1, %a2, %b0, %b1, %b2, %c0, %c1, %c2, %d0, %d1, %d2
      : tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>,
        tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>,
        tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>,
        tensor<2x36x40xf32>, tensor<40x72xf32>, tensor<72x40xf32>
}

//--- ffn_gated_f32.mlir
// The gated activations: four gradients each, w_gate's last.
// RUN: bpt-cpu-run %t/ffn_gated_f32.mlir --seed=44 | FileCheck %s --check-prefix=GATED-F32
// GATED-F32: output 0 tensor<45x40xf32>: relative error {{.*}}: PASS
// GATED-F32: output 1 tensor<40x56xf32>: relative error {{.*}}: PASS
// GATED-F32: output 2 tensor<56x40xf32>: relative error {{.*}}: PASS
// GATED-F32: output 3 tensor<40x56xf32>: relative error {{.*}}: PASS
// GATED-F32: output 4 tensor<45x40xf32>: relative error {{.*}}: PASS
// GATED-F32: output 5 tensor<40x56xf32>: relative error {{.*}}: PASS
// GATED-F32: output 6 tensor<56x40xf32>: relative error {{.*}}: PASS
// GATED-F32: output 7 tensor<40x56xf32>: relative error {{.*}}: PASS
// GATED-F32: {{^PASS$}}
func.func @ffn_gated_f32(%x: tensor<45x40xf32>, %w1: tensor<40x56xf32>,
                         %w2: tensor<56x40xf32>, %w3: tensor<40x56xf32>,
                         %dy: tensor<45x40xf32>)
    -> (tensor<45x40xf32>, tensor<40x56xf32>, tensor<56x40xf32>, tensor<40x56xf32>,
        tensor<45x40xf32>, tensor<40x56xf32>, tensor<56x40xf32>, tensor<40x56xf32>) {
  %a0, %a1, %a2, %a3 = bpt.ffn_grad swiglu %x, %w1, %w2, gate %w3, %dy
      : (tensor<45x40xf32>, tensor<40x56xf32>, tensor<56x40xf32>, tensor<40x56xf32>, tensor<45x40xf32>)
        -> (tensor<45x40xf32>, tensor<40x56xf32>, tensor<56x40xf32>, tensor<40x56xf32>)
  %b0, %b1, %b2, %b3 = bpt.ffn_grad geglu %x, %w1, %w2, gate %w3, %dy
      : (tensor<45x40xf32>, tensor<40x56xf32>, tensor<56x40xf32>, tensor<40x56xf32>, tensor<45x40xf32>)
        -> (tensor<45x40xf32>, tensor<40x56xf32>, tensor<56x40xf32>, tensor<40x56xf32>)
  return %a0, %a1, %a2, %a3, %b0, %b1, %b2, %b3
      : tensor<45x40xf32>, tensor<40x56xf32>, tensor<56x40xf32>, tensor<40x56xf32>,
        tensor<45x40xf32>, tensor<40x56xf32>, tensor<56x40xf32>, tensor<40x56xf32>
}

//--- ffn_bf16.mlir
// bf16: every activation once more, at bf16's tolerance.
// RUN: bpt-cpu-run %t/ffn_bf16.mlir --seed=45 | FileCheck %s --check-prefix=FFN-BF16
// FFN-BF16-COUNT-16: output {{[0-9]+}} tensor<{{.*}}xbf16>: relative error {{.*}}: PASS
// FFN-BF16: {{^PASS$}}
func.func @ffn_bf16(%x: tensor<2x20x32xbf16>, %w1: tensor<32x48xbf16>,
                    %w2: tensor<48x32xbf16>, %w3: tensor<32x48xbf16>,
                    %dy: tensor<2x20x32xbf16>)
    -> (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>,
        tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>,
        tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>,
        tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>,
        tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<32x48xbf16>) {
  %a0, %a1, %a2 = bpt.ffn_grad gelu %x, %w1, %w2, %dy
      : (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<2x20x32xbf16>)
        -> (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>)
  %b0, %b1, %b2 = bpt.ffn_grad gelu_tanh %x, %w1, %w2, %dy
      : (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<2x20x32xbf16>)
        -> (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>)
  %c0, %c1, %c2 = bpt.ffn_grad relu %x, %w1, %w2, %dy
      : (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<2x20x32xbf16>)
        -> (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>)
  %d0, %d1, %d2 = bpt.ffn_grad silu %x, %w1, %w2, %dy
      : (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<2x20x32xbf16>)
        -> (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>)
  %e0, %e1, %e2, %e3 = bpt.ffn_grad geglu %x, %w1, %w2, gate %w3, %dy
      : (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<32x48xbf16>, tensor<2x20x32xbf16>)
        -> (tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<32x48xbf16>)
  return %a0, %a1, %a2, %b0, %b1, %b2, %c0, %c1, %c2, %d0, %d1, %d2,
         %e0, %e1, %e2, %e3
      : tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>,
        tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>,
        tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>,
        tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>,
        tensor<2x20x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<32x48xbf16>
}

//--- ffn_swiglu_bf16.mlir
// RUN: bpt-cpu-run %t/ffn_swiglu_bf16.mlir --seed=46 | FileCheck %s --check-prefix=SWIGLU-BF16
// SWIGLU-BF16-COUNT-4: output {{[0-3]}} tensor<{{.*}}xbf16>: relative error {{.*}}: PASS
// SWIGLU-BF16: {{^PASS$}}
func.func @ffn_swiglu_bf16(%x: tensor<40x32xbf16>, %w1: tensor<32x48xbf16>,
                           %w2: tensor<48x32xbf16>, %w3: tensor<32x48xbf16>,
                           %dy: tensor<40x32xbf16>)
    -> (tensor<40x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<32x48xbf16>) {
  %a0, %a1, %a2, %a3 = bpt.ffn_grad swiglu %x, %w1, %w2, gate %w3, %dy
      : (tensor<40x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<32x48xbf16>, tensor<40x32xbf16>)
        -> (tensor<40x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<32x48xbf16>)
  return %a0, %a1, %a2, %a3
      : tensor<40x32xbf16>, tensor<32x48xbf16>, tensor<48x32xbf16>, tensor<32x48xbf16>
}

//--- norms_f32.mlir
// Both norms, at the default epsilon and at a large one (0.5, where the
// epsilon term is not negligible); rank 3 and rank 2.
// RUN: bpt-cpu-run %t/norms_f32.mlir --seed=47 | FileCheck %s --check-prefix=NORMS-F32
// NORMS-F32: output 0 tensor<3x25x48xf32>: relative error {{.*}}: PASS
// NORMS-F32: output 1 tensor<48xf32>: relative error {{.*}}: PASS
// NORMS-F32: output 2 tensor<48xf32>: relative error {{.*}}: PASS
// NORMS-F32: output 3 tensor<3x25x48xf32>: relative error {{.*}}: PASS
// NORMS-F32: output 4 tensor<48xf32>: relative error {{.*}}: PASS
// NORMS-F32: output 5 tensor<48xf32>: relative error {{.*}}: PASS
// NORMS-F32: output 6 tensor<3x25x48xf32>: relative error {{.*}}: PASS
// NORMS-F32: output 7 tensor<48xf32>: relative error {{.*}}: PASS
// NORMS-F32: output 8 tensor<75x48xf32>: relative error {{.*}}: PASS
// NORMS-F32: output 9 tensor<48xf32>: relative error {{.*}}: PASS
// NORMS-F32: {{^PASS$}}
func.func @norms_f32(%x: tensor<3x25x48xf32>, %g: tensor<48xf32>,
                     %dy: tensor<3x25x48xf32>, %x2: tensor<75x48xf32>,
                     %dy2: tensor<75x48xf32>)
    -> (tensor<3x25x48xf32>, tensor<48xf32>, tensor<48xf32>,
        tensor<3x25x48xf32>, tensor<48xf32>, tensor<48xf32>,
        tensor<3x25x48xf32>, tensor<48xf32>, tensor<75x48xf32>, tensor<48xf32>) {
  %a0, %a1, %a2 = bpt.layer_norm_grad %x, %g, %dy
      : (tensor<3x25x48xf32>, tensor<48xf32>, tensor<3x25x48xf32>)
        -> (tensor<3x25x48xf32>, tensor<48xf32>, tensor<48xf32>)
  %b0, %b1, %b2 = bpt.layer_norm_grad %x, %g, %dy {epsilon = 0.5}
      : (tensor<3x25x48xf32>, tensor<48xf32>, tensor<3x25x48xf32>)
        -> (tensor<3x25x48xf32>, tensor<48xf32>, tensor<48xf32>)
  %c0, %c1 = bpt.rms_norm_grad %x, %g, %dy
      : (tensor<3x25x48xf32>, tensor<48xf32>, tensor<3x25x48xf32>)
        -> (tensor<3x25x48xf32>, tensor<48xf32>)
  %d0, %d1 = bpt.rms_norm_grad %x2, %g, %dy2 {epsilon = 0.5}
      : (tensor<75x48xf32>, tensor<48xf32>, tensor<75x48xf32>)
        -> (tensor<75x48xf32>, tensor<48xf32>)
  return %a0, %a1, %a2, %b0, %b1, %b2, %c0, %c1, %d0, %d1
      : tensor<3x25x48xf32>, tensor<48xf32>, tensor<48xf32>,
        tensor<3x25x48xf32>, tensor<48xf32>, tensor<48xf32>,
        tensor<3x25x48xf32>, tensor<48xf32>, tensor<75x48xf32>, tensor<48xf32>
}

//--- norms_bf16.mlir
// RUN: bpt-cpu-run %t/norms_bf16.mlir --seed=48 | FileCheck %s --check-prefix=NORMS-BF16
// NORMS-BF16-COUNT-5: output {{[0-4]}} tensor<{{.*}}xbf16>: relative error {{.*}}: PASS
// NORMS-BF16: {{^PASS$}}
func.func @norms_bf16(%x: tensor<2x20x64xbf16>, %g: tensor<64xbf16>,
                      %dy: tensor<2x20x64xbf16>)
    -> (tensor<2x20x64xbf16>, tensor<64xbf16>, tensor<64xbf16>,
        tensor<2x20x64xbf16>, tensor<64xbf16>) {
  %a0, %a1, %a2 = bpt.layer_norm_grad %x, %g, %dy
      : (tensor<2x20x64xbf16>, tensor<64xbf16>, tensor<2x20x64xbf16>)
        -> (tensor<2x20x64xbf16>, tensor<64xbf16>, tensor<64xbf16>)
  %b0, %b1 = bpt.rms_norm_grad %x, %g, %dy
      : (tensor<2x20x64xbf16>, tensor<64xbf16>, tensor<2x20x64xbf16>)
        -> (tensor<2x20x64xbf16>, tensor<64xbf16>)
  return %a0, %a1, %a2, %b0, %b1
      : tensor<2x20x64xbf16>, tensor<64xbf16>, tensor<64xbf16>,
        tensor<2x20x64xbf16>, tensor<64xbf16>
}
