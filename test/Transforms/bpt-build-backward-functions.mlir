// RUN: bpt-opt %s --bpt-build-backward=functions=chosen | FileCheck %s

// Only the function named by `functions` is differentiated (@other has an
// op without a gradient, which would be an error); a result that is
// an argument passes its gradient straight through, and an rms_norm gives
// rms_norm_grad with its epsilon; the swiglu FFN's gate gets its gradient.
// CHECK-LABEL: func.func @chosen_grad(
// CHECK-SAME: %[[X:[^:]*]]: tensor<8x32xf16>, %[[G:[^:]*]]: tensor<32xf16>, %[[W1:[^:]*]]: tensor<32x48xf16>, %[[W2:[^:]*]]: tensor<48x32xf16>, %[[W3:[^:]*]]: tensor<32x48xf16>, %[[DY:[^:]*]]: tensor<8x32xf16>, %[[DX0:[^:]*]]: tensor<8x32xf16>)
// CHECK: %[[H:.*]] = bpt.rms_norm %[[X]], %[[G]] {epsilon = 1.000000e-03 : f64}
// CHECK: %[[DH:.*]], %[[D1:.*]], %[[D2:.*]], %[[D3:.*]] = bpt.ffn_grad swiglu %[[H]], %[[W1]], %[[W2]], gate %[[W3]], %[[DY]]
// CHECK: %[[DXN:.*]], %[[DG:.*]] = bpt.rms_norm_grad %[[X]], %[[G]], %[[DH]] {epsilon = 1.000000e-03 : f64}
// CHECK: %[[DX:.*]] = arith.addf %[[DX0]], %[[DXN]]
// CHECK: return %[[DX]], %[[DG]], %[[D1]], %[[D2]], %[[D3]]
// CHECK: func.func @other(
// CHECK-NOT: func.func
func.func @chosen(%x: tensor<8x32xf16>, %g: tensor<32xf16>, %w1: tensor<32x48xf16>,
                  %w2: tensor<48x32xf16>, %w3: tensor<32x48xf16>)
    -> (tensor<8x32xf16>, tensor<8x32xf16>) {
  %h = bpt.rms_norm %x, %g {epsilon = 1.0e-3 : f64}
      : (tensor<8x32xf16>, tensor<32xf16>) -> tensor<8x32xf16>
  %y = bpt.ffn swiglu %h, %w1, %w2, gate %w3
      : (tensor<8x32xf16>, tensor<32x48xf16>, tensor<48x32xf16>, tensor<32x48xf16>)
        -> tensor<8x32xf16>
  return %y, %x : tensor<8x32xf16>, tensor<8x32xf16>
}
func.func @other(%x: tensor<8x32xf16>) -> tensor<8x32xf16> {
  %e = math.exp %x : tensor<8x32xf16>
  return %e : tensor<8x32xf16>
}
