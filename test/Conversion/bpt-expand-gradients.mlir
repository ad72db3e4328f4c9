// RUN: bpt-opt %s --split-input-file --bpt-expand-gradients | FileCheck %s

// On the wgmma path a two-matrix FFN's hidden gradient is the dh GEMM's
// activation-gradient epilogue: per chunk (200 rows in chunks of 128 and
// 72), u = x·w_in in f32, then du and h = act(u) from dy·w_outᵀ with
// act_grad, both bf16; no f32 dh and no elementwise pass. h feeds dw_out,
// du feeds dw_in and dx.
// CHECK-LABEL: func.func @ffn_gelu
// CHECK-SAME: (%[[X:.+]]: tensor<200x128xbf16>, %[[W1:.+]]: tensor<128x256xbf16>, %[[W2:.+]]: tensor<256x128xbf16>, %[[DY:.+]]: tensor<200x128xbf16>)
// CHECK-NOT: linalg.generic
// CHECK: %[[XC:.+]] = tensor.extract_slice %[[X]][0, 0] [128, 128] [1, 1]
// CHECK: %[[DYC:.+]] = tensor.extract_slice %[[DY]][0, 0] [128, 128] [1, 1]
// CHECK: %[[U:.+]] = bpt.matmul %[[XC]], %[[W1]] : (tensor<128x128xbf16>, tensor<128x256xbf16>) -> tensor<128x256xf32>
// CHECK: %[[DU:[a-z0-9_]+]], %[[H:[a-z0-9_]+]] = bpt.matmul %[[DYC]], %[[W2]], act_grad gelu %[[U]] {transpose_rhs} : (tensor<128x128xbf16>, tensor<256x128xbf16>, tensor<128x256xf32>) -> (tensor<128x256xbf16>, tensor<128x256xbf16>)
// CHECK: %[[DWO:.+]] = bpt.matmul %[[H]], %[[DYC]] {transpose_lhs} : (tensor<128x256xbf16>, tensor<128x128xbf16>) -> tensor<256x128xf32>
// CHECK: %[[DWI:.+]] = bpt.matmul %[[XC]], %[[DU]] {transpose_lhs} : (tensor<128x128xbf16>, tensor<128x256xbf16>) -> tensor<128x256xf32>
// CHECK: bpt.matmul %[[DU]], %[[W1]] {transpose_rhs} : (tensor<128x256xbf16>, tensor<128x256xbf16>) -> tensor<128x128xbf16>
// CHECK-NOT: linalg.generic
// CHECK: %[[U2:.+]] = bpt.matmul {{.+}} -> tensor<72x256xf32>
// CHECK: %[[DU2:[a-z0-9_]+]], %[[H2:[a-z0-9_]+]] = bpt.matmul %{{.+}}, %[[W2]], act_grad gelu %[[U2]] {transpose_rhs} : (tensor<72x128xbf16>, tensor<256x128xbf16>, tensor<72x256xf32>) -> (tensor<72x256xbf16>, tensor<72x256xbf16>)
// CHECK: bpt.matmul %[[H2]], %{{.+}}, acc %[[DWO]] {transpose_lhs} : {{.+}} -> tensor<256x128xbf16>
// CHECK: bpt.matmul %{{.+}}, %[[DU2]], acc %[[DWI]] {transpose_lhs} : {{.+}} -> tensor<128x256xbf16>
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @ffn_gelu(%x: tensor<200x128xbf16>, %w1: tensor<128x256xbf16>,
                    %w2: tensor<256x128xbf16>, %dy: tensor<200x128xbf16>)
    -> (tensor<200x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>) {
  %dx, %dw1, %dw2 = bpt.ffn_grad gelu %x, %w1, %w2, %dy {bpt.strategy =
      #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 128>}
      : (tensor<200x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<200x128xbf16>)
        -> (tensor<200x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>)
  return %dx, %dw1, %dw2
      : tensor<200x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>
}

// -----

// Gated activations keep the f32 dh and the elementwise pass: du and dg
// need act(g) and act'(g) with u, two pre-activations per element.
// CHECK-LABEL: func.func @ffn_swiglu
// CHECK-NOT: act_grad
// CHECK: %[[DH:.+]] = bpt.matmul {{.+}} {transpose_rhs} : (tensor<64x128xbf16>, tensor<256x128xbf16>) -> tensor<64x256xf32>
// CHECK: linalg.generic {{.+}} ins(%{{.+}}, %[[DH]], %{{.+}} : tensor<64x256xf32>, tensor<64x256xf32>, tensor<64x256xf32>)
// CHECK-NOT: act_grad
func.func @ffn_swiglu(%x: tensor<64x128xbf16>, %w1: tensor<128x256xbf16>,
                      %w2: tensor<256x128xbf16>, %w3: tensor<128x256xbf16>,
                      %dy: tensor<64x128xbf16>)
    -> (tensor<64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
        tensor<128x256xbf16>) {
  %dx, %dw1, %dw2, %dw3 = bpt.ffn_grad swiglu %x, %w1, %w2, gate %w3, %dy
      {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 64>}
      : (tensor<64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<128x256xbf16>, tensor<64x128xbf16>)
        -> (tensor<64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
            tensor<128x256xbf16>)
  return %dx, %dw1, %dw2, %dw3
      : tensor<64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
        tensor<128x256xbf16>
}

// -----

// Only the wgmma GEMM has the epilogue: an mma_sync strategy (given by
// hand; bpt-select-strategy keeps gradient GEMMs portable on mma.sync
// chips) keeps the f32 dh and the elementwise pass.
// CHECK-LABEL: func.func @ffn_relu_mma_sync
// CHECK-NOT: act_grad
// CHECK: %[[U:.+]] = bpt.matmul {{.+}} -> tensor<64x256xf32>
// CHECK: %[[DH:.+]] = bpt.matmul {{.+}} {transpose_rhs} : {{.+}} -> tensor<64x256xf32>
// CHECK: linalg.generic {{.+}} ins(%[[U]], %[[DH]] : tensor<64x256xf32>, tensor<64x256xf32>)
// CHECK-NOT: act_grad
func.func @ffn_relu_mma_sync(%x: tensor<64x128xf16>, %w1: tensor<128x256xf16>,
                             %w2: tensor<256x128xf16>, %dy: tensor<64x128xf16>)
    -> (tensor<64x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>) {
  %dx, %dw1, %dw2 = bpt.ffn_grad relu %x, %w1, %w2, %dy {bpt.strategy =
      #bpt.strategy<mma_sync, chip = "sm_80", chunk_rows = 64>}
      : (tensor<64x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>,
         tensor<64x128xf16>)
        -> (tensor<64x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>)
  return %dx, %dw1, %dw2
      : tensor<64x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>
}
