// RUN: bpt-opt %s --bpt-convert-to-linalg | FileCheck %s

// The per-op gradients become linalg on tensors: the products are
// linalg.matmul accumulating in f32 with the transposed operand read through
// its indexing map (no transpose is materialised), rank-3 operands are viewed
// as [rows, N] matrices, the FFN's elementwise part is one generic with an
// output per intermediate, and each gradient is rounded once to its
// operand's type. Numerics: test/CPU/grad-ops.mlir.

// CHECK-DAG: #[[A:.+]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[BT:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[C:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[AT:.+]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG: #[[B:.+]] = affine_map<(d0, d1, d2) -> (d2, d1)>

// CHECK-LABEL: func.func @linear_grad
// CHECK-SAME: (%[[X:.+]]: tensor<2x8x16xbf16>, %[[W:.+]]: tensor<16x4xbf16>, %[[DY:.+]]: tensor<2x8x4xbf16>)
// CHECK-NOT: linalg.transpose
// CHECK-DAG: %[[XM:.+]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<2x8x16xbf16> into tensor<16x16xbf16>
// CHECK-DAG: %[[DYM:.+]] = tensor.collapse_shape %[[DY]] {{\[}}[0, 1], [2]] : tensor<2x8x4xbf16> into tensor<16x4xbf16>
// dx = dy · wᵀ
// CHECK: %[[DX:.+]] = linalg.matmul indexing_maps = [#[[A]], #[[BT]], #[[C]]] ins(%[[DYM]], %[[W]] : tensor<16x4xbf16>, tensor<16x4xbf16>) outs(%{{.+}} : tensor<16x16xf32>)
// dw = xᵀ · dy
// CHECK: %[[DW:.+]] = linalg.matmul indexing_maps = [#[[AT]], #[[B]], #[[C]]] ins(%[[XM]], %[[DYM]] : tensor<16x16xbf16>, tensor<16x4xbf16>) outs(%{{.+}} : tensor<16x4xf32>)
// db = Σ_rows dy
// CHECK: %[[DB:.+]] = linalg.generic {{.+}} iterator_types = ["reduction", "parallel"]} ins(%[[DYM]] : tensor<16x4xbf16>) outs(%{{.+}} : tensor<4xf32>)
// CHECK: %[[DXR:.+]] = linalg.generic {{.+}} ins(%[[DX]] : tensor<16x16xf32>) outs(%{{.+}} : tensor<16x16xbf16>)
// CHECK: arith.truncf
// CHECK: %[[DX3:.+]] = tensor.expand_shape %[[DXR]] {{\[}}[0, 1], [2]] output_shape [2, 8, 16] : tensor<16x16xbf16> into tensor<2x8x16xbf16>
// CHECK: %[[DWR:.+]] = linalg.generic {{.+}} ins(%[[DW]] : tensor<16x4xf32>) outs(%{{.+}} : tensor<16x4xbf16>)
// CHECK: %[[DBR:.+]] = linalg.generic {{.+}} ins(%[[DB]] : tensor<4xf32>) outs(%{{.+}} : tensor<4xbf16>)
// CHECK: return %[[DX3]], %[[DWR]], %[[DBR]]
func.func @linear_grad(%x: tensor<2x8x16xbf16>, %w: tensor<16x4xbf16>,
                       %dy: tensor<2x8x4xbf16>)
    -> (tensor<2x8x16xbf16>, tensor<16x4xbf16>, tensor<4xbf16>) {
  %dx, %dw, %db = bpt.linear_grad %x, %w, %dy
      : (tensor<2x8x16xbf16>, tensor<16x4xbf16>, tensor<2x8x4xbf16>)
        -> (tensor<2x8x16xbf16>, tensor<16x4xbf16>, tensor<4xbf16>)
  return %dx, %dw, %db : tensor<2x8x16xbf16>, tensor<16x4xbf16>, tensor<4xbf16>
}

// Gated FFN: u = x·w_in, dh = dy·w_outᵀ, g = x·w_gate; one generic gives
// h = act(g) ⊙ u, du and dg; dx accumulates du·w_inᵀ then dg·w_gateᵀ.
// CHECK-LABEL: func.func @ffn_grad_swiglu
// CHECK-SAME: (%[[X:.+]]: tensor<8x16xf32>, %[[W1:.+]]: tensor<16x64xf32>, %[[W2:.+]]: tensor<64x16xf32>, %[[W3:.+]]: tensor<16x64xf32>, %[[DY:.+]]: tensor<8x16xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: %[[U:.+]] = linalg.matmul ins(%[[X]], %[[W1]] :
// CHECK: %[[DH:.+]] = linalg.matmul indexing_maps = [#[[A]], #[[BT]], #[[C]]] ins(%[[DY]], %[[W2]] :
// CHECK: %[[G:.+]] = linalg.matmul ins(%[[X]], %[[W3]] :
// CHECK: %[[P:.+]]:3 = linalg.generic {{.+}} ins(%[[U]], %[[DH]], %[[G]] : {{.+}}) outs({{.+}} : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
// CHECK: math.exp
// CHECK: %[[DX:.+]] = linalg.matmul indexing_maps = [#[[A]], #[[BT]], #[[C]]] ins(%[[P]]#1, %[[W1]] :
// CHECK: %[[DW1:.+]] = linalg.matmul indexing_maps = [#[[AT]], #[[B]], #[[C]]] ins(%[[X]], %[[P]]#1 :
// CHECK: %[[DW2:.+]] = linalg.matmul indexing_maps = [#[[AT]], #[[B]], #[[C]]] ins(%[[P]]#0, %[[DY]] :
// CHECK: %[[DX2:.+]] = linalg.matmul indexing_maps = [#[[A]], #[[BT]], #[[C]]] ins(%[[P]]#2, %[[W3]] : {{.+}}) outs(%[[DX]] :
// CHECK: %[[DW3:.+]] = linalg.matmul indexing_maps = [#[[AT]], #[[B]], #[[C]]] ins(%[[X]], %[[P]]#2 :
// CHECK: return %[[DX2]], %[[DW1]], %[[DW2]], %[[DW3]]
func.func @ffn_grad_swiglu(%x: tensor<8x16xf32>, %w1: tensor<16x64xf32>,
                           %w2: tensor<64x16xf32>, %w3: tensor<16x64xf32>,
                           %dy: tensor<8x16xf32>)
    -> (tensor<8x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>, tensor<16x64xf32>) {
  %0:4 = bpt.ffn_grad swiglu %x, %w1, %w2, gate %w3, %dy
      : (tensor<8x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>, tensor<16x64xf32>, tensor<8x16xf32>)
        -> (tensor<8x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>, tensor<16x64xf32>)
  return %0#0, %0#1, %0#2, %0#3
      : tensor<8x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>, tensor<16x64xf32>
}

// Norm gradients, on x and dy viewed as [rows, N]: the forward's
// statistics, per-row sums, dx elementwise, and the per-channel sums (dw,
// db) over the rows; each sum its own generic (one reduction dimension, one
// output: what bpt-split-reductions splits).
// CHECK-LABEL: func.func @layer_norm_grad
// CHECK: %[[X:.+]] = tensor.collapse_shape %{{.+}} {{\[\[}}0, 1], [2]] : tensor<2x8x16xf32> into tensor<16x16xf32>
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]} ins(%[[X]] : tensor<16x16xf32>) outs(%{{.+}} : tensor<16xf32>)
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]} ins(%[[X]], %{{.+}} : tensor<16x16xf32>, tensor<16xf32>) outs(%{{.+}} : tensor<16xf32>)
// CHECK: %[[GX:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]} {{.+}} outs(%{{.+}} : tensor<16xf32>)
// CHECK: %[[G:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]} {{.+}} outs(%{{.+}} : tensor<16xf32>)
// CHECK: %[[DX:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]} ins({{.+}}, %[[GX]], %[[G]] : {{.+}}) outs(%{{.+}} : tensor<16x16xf32>)
// CHECK: %[[DW:.+]] = linalg.generic {{.+}} iterator_types = ["reduction", "parallel"]} {{.+}} outs(%{{.+}} : tensor<16xf32>)
// CHECK: %[[DB:.+]] = linalg.generic {{.+}} iterator_types = ["reduction", "parallel"]} {{.+}} outs(%{{.+}} : tensor<16xf32>)
// CHECK: %[[DXS:.+]] = tensor.expand_shape %[[DX]] {{\[\[}}0, 1], [2]] output_shape [2, 8, 16]
// CHECK: return %[[DXS]], %[[DW]], %[[DB]]
func.func @layer_norm_grad(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>,
                           %dy: tensor<2x8x16xf32>)
    -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %0:3 = bpt.layer_norm_grad %x, %g, %dy
      : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<2x8x16xf32>)
        -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>)
  return %0#0, %0#1, %0#2 : tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>
}
