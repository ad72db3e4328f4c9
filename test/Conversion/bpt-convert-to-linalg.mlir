// RUN: bpt-opt %s --bpt-convert-to-linalg | FileCheck %s

// Position-wise bpt ops become linalg.generic on tensors: contractions
// accumulate in f32 with the inputs widened in the loop body, nonlinearities
// and statistics are f32, and the result is rounded once.

// CHECK-DAG: #[[X3:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG: #[[W3:.+]] = affine_map<(d0, d1, d2, d3) -> (d3, d2)>
// CHECK-DAG: #[[O3:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>

// CHECK-LABEL: func.func @linear_bias_bf16
// CHECK-SAME: (%[[X:.+]]: tensor<2x8x16xbf16>, %[[W:.+]]: tensor<16x4xbf16>, %[[B:.+]]: tensor<4xbf16>)
// CHECK-NOT: bpt.linear
// CHECK: %[[ZERO:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<2x8x4xf32>)
// CHECK: %[[ACC:.+]] = linalg.generic {indexing_maps = [#[[X3]], #[[W3]], #[[O3]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[X]], %[[W]] : tensor<2x8x16xbf16>, tensor<16x4xbf16>) outs(%[[ZERO]] : tensor<2x8x4xf32>)
// CHECK: arith.extf %{{.+}} : bf16 to f32
// CHECK: arith.extf %{{.+}} : bf16 to f32
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: linalg.generic {{.+}} ins(%[[ACC]], %[[B]] : tensor<2x8x4xf32>, tensor<4xbf16>) outs(%{{.+}} : tensor<2x8x4xbf16>)
// CHECK: arith.addf
// CHECK: arith.truncf %{{.+}} : f32 to bf16
func.func @linear_bias_bf16(%x: tensor<2x8x16xbf16>, %w: tensor<16x4xbf16>,
                            %b: tensor<4xbf16>) -> tensor<2x8x4xbf16> {
  %0 = bpt.linear %x, %w, %b
      : (tensor<2x8x16xbf16>, tensor<16x4xbf16>, tensor<4xbf16>) -> tensor<2x8x4xbf16>
  return %0 : tensor<2x8x4xbf16>
}

// f32 without bias: the accumulator is the result, no rounding pass.
// CHECK-LABEL: func.func @linear_f32
// CHECK: %[[ACC:.+]] = linalg.generic
// CHECK-NOT: arith.extf
// CHECK: return %[[ACC]]
func.func @linear_f32(%x: tensor<8x16xf32>, %w: tensor<16x4xf32>) -> tensor<8x4xf32> {
  %0 = bpt.linear %x, %w : (tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// Two-matrix FFN: up-projection, activation (erf GELU) in place of it, so
// one hidden [8, 64] f32 tile exists, and the down-projection.
// CHECK-LABEL: func.func @ffn_gelu
// CHECK: %[[UP:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<8x64xf32>)
// CHECK: %[[HID:.+]] = linalg.generic {{.+}} outs(%[[UP]] : tensor<8x64xf32>)
// CHECK: math.erf
// CHECK: %[[DOWN:.+]] = linalg.generic {{.+}} ins(%[[HID]], %{{.+}} : tensor<8x64xf32>, tensor<64x16xf16>) outs(%{{.+}} : tensor<8x16xf32>)
// CHECK: arith.truncf %{{.+}} : f32 to f16
func.func @ffn_gelu(%x: tensor<8x16xf16>, %w1: tensor<16x64xf16>, %w2: tensor<64x16xf16>) -> tensor<8x16xf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<8x16xf16>, tensor<16x64xf16>, tensor<64x16xf16>) -> tensor<8x16xf16>
  return %0 : tensor<8x16xf16>
}

// The other activations' scalar forms.
// CHECK-LABEL: func.func @activations
// CHECK: math.tanh
// CHECK: arith.maximumf
// CHECK: math.exp
func.func @activations(%x: tensor<8x16xf32>, %w1: tensor<16x64xf32>, %w2: tensor<64x16xf32>)
    -> (tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>) {
  %0 = bpt.ffn gelu_tanh %x, %w1, %w2
      : (tensor<8x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<8x16xf32>
  %1 = bpt.ffn relu %x, %w1, %w2
      : (tensor<8x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<8x16xf32>
  %2 = bpt.ffn silu %x, %w1, %w2
      : (tensor<8x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<8x16xf32>
  return %0, %1, %2 : tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>
}

// Gated FFN: gate and up projections, act(gate) * up in place of the up
// projection, then down.
// CHECK-LABEL: func.func @ffn_swiglu
// CHECK: %[[UP:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<8x64xf32>)
// CHECK: %[[GATE:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<8x64xf32>)
// CHECK: %[[HID:.+]] = linalg.generic {{.+}} ins(%[[GATE]] : tensor<8x64xf32>) outs(%[[UP]] : tensor<8x64xf32>)
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: arith.mulf
// CHECK: linalg.generic {{.+}} ins(%[[HID]], %{{.+}} : tensor<8x64xf32>, tensor<64x16xf32>)
func.func @ffn_swiglu(%x: tensor<8x16xf32>, %w1: tensor<16x64xf32>, %w2: tensor<64x16xf32>,
                      %w3: tensor<16x64xf32>) -> tensor<8x16xf32> {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %w3
      : (tensor<8x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>, tensor<16x64xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}

// Layer norm: row mean, row variance around it, 1/sqrt(var + eps), then
// one pass that normalises, scales, shifts and rounds.
// CHECK-LABEL: func.func @layer_norm_bf16
// CHECK: %[[SUM:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.+}} : tensor<2x8x16xbf16>) outs(%{{.+}} : tensor<2x8xf32>)
// CHECK: %[[MEAN:.+]] = linalg.generic {{.+}} ins(%[[SUM]] : tensor<2x8xf32>)
// CHECK: arith.constant 1.600000e+01 : f32
// CHECK: %[[VAR:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.+}}, %[[MEAN]] : tensor<2x8x16xbf16>, tensor<2x8xf32>)
// CHECK: %[[INV:.+]] = linalg.generic {{.+}} ins(%[[VAR]] : tensor<2x8xf32>)
// CHECK: arith.constant 3.125000e-02 : f32
// CHECK: math.sqrt
// CHECK: linalg.generic {{.+}} ins(%{{.+}}, %[[INV]], %{{.+}}, %[[MEAN]], %{{.+}} : tensor<2x8x16xbf16>, tensor<2x8xf32>, tensor<16xbf16>, tensor<2x8xf32>, tensor<16xbf16>) outs(%{{.+}} : tensor<2x8x16xbf16>)
// CHECK: arith.truncf %{{.+}} : f32 to bf16
func.func @layer_norm_bf16(%x: tensor<2x8x16xbf16>, %g: tensor<16xbf16>, %b: tensor<16xbf16>)
    -> tensor<2x8x16xbf16> {
  %0 = bpt.layer_norm %x, %g, %b {epsilon = 0.03125}
      : (tensor<2x8x16xbf16>, tensor<16xbf16>, tensor<16xbf16>) -> tensor<2x8x16xbf16>
  return %0 : tensor<2x8x16xbf16>
}

// RMS norm: the mean of squares only, no shift.
// CHECK-LABEL: func.func @rms_norm
// CHECK: %[[SQ:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]} ins(%{{.+}} : tensor<8x16xf32>) outs(%{{.+}} : tensor<8xf32>)
// CHECK: arith.mulf %[[IN:.+]], %[[IN]] : f32
// CHECK: %[[INV:.+]] = linalg.generic {{.+}} ins(%[[SQ]] : tensor<8xf32>)
// CHECK: linalg.generic {{.+}} ins(%{{.+}}, %[[INV]], %{{.+}} : tensor<8x16xf32>, tensor<8xf32>, tensor<16xf32>) outs(%{{.+}} : tensor<8x16xf32>)
// CHECK-NOT: arith.subf
// CHECK: return
func.func @rms_norm(%x: tensor<8x16xf32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  %0 = bpt.rms_norm %x, %g : (tensor<8x16xf32>, tensor<16xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}
