// RUN: bpt-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(bpt-rematerialize{min-distance=2 projections=true}))' | FileCheck %s
// RUN: bpt-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(bpt-rematerialize{min-distance=2}))' | FileCheck %s --check-prefix=PLAIN

// A projection of a norm's output, head-transposed, read early (the
// attention) and far later (its gradient): with `projections`, the norm,
// the projection and the transpose are repeated before the late read,
// marked so that CSE does not merge them back. The norm is repeated even
// though the late weight-gradient read (%dw) still reads its output: that
// read is the later (plain) instance's to serve, and the projection's copy
// must not keep the first norm's buffer alive. Without `projections` only
// the norm is repeated, for its own late read; the projection stays.
// CHECK-LABEL: func.func @projection
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x16x32xbf16>, %[[G:[^:]+]]: tensor<32xbf16>, %[[W:[^:]+]]: tensor<32x32xbf16>
// CHECK: %[[N1:.+]] = bpt.rms_norm %[[X]], %[[G]] :
// CHECK: %[[P1:.+]] = bpt.linear %[[N1]], %[[W]] :
// CHECK: %[[T1:.+]] = linalg.transpose ins(%[[P1]]
// CHECK: arith.addf %[[T1]], %[[T1]]
// CHECK-COUNT-3: arith.mulf
// CHECK: %[[N2:.+]] = bpt.rms_norm %[[X]], %[[G]] {bpt.recomputed}
// CHECK: %[[P2:.+]] = bpt.linear %[[N2]], %[[W]] {bpt.recomputed}
// CHECK: %[[T2:.+]] = linalg.transpose ins(%[[P2]] {{.*}}{bpt.recomputed}
// CHECK: %[[LATE:.+]] = arith.subf %[[T2]], %{{.+}}
// CHECK: arith.mulf %[[T2]], %[[LATE]]
// CHECK: arith.subf %[[N1]], %{{.+}}
// CHECK-NOT: bpt.linear
// PLAIN-LABEL: func.func @projection
// PLAIN-COUNT-1: bpt.linear
// PLAIN-NOT: bpt.linear
// PLAIN-NOT: bpt.recomputed
func.func @projection(%x: tensor<1x16x32xbf16>, %g: tensor<32xbf16>,
                      %w: tensor<32x32xbf16>, %u: tensor<1x32x16xbf16>)
    -> (tensor<1x32x16xbf16>, tensor<1x32x16xbf16>, tensor<1x16x32xbf16>) {
  %n = bpt.rms_norm %x, %g : (tensor<1x16x32xbf16>, tensor<32xbf16>)
      -> tensor<1x16x32xbf16>
  %p = bpt.linear %n, %w : (tensor<1x16x32xbf16>, tensor<32x32xbf16>)
      -> tensor<1x16x32xbf16>
  %e = tensor.empty() : tensor<1x32x16xbf16>
  %t = linalg.transpose ins(%p : tensor<1x16x32xbf16>)
      outs(%e : tensor<1x32x16xbf16>) permutation = [0, 2, 1]
  %early = arith.addf %t, %t : tensor<1x32x16xbf16>
  %m1 = arith.mulf %u, %early : tensor<1x32x16xbf16>
  %m2 = arith.mulf %m1, %m1 : tensor<1x32x16xbf16>
  %m3 = arith.mulf %m2, %m2 : tensor<1x32x16xbf16>
  // The gradient's two reads, next to each other: one copy.
  %late = arith.subf %t, %m3 : tensor<1x32x16xbf16>
  %late2 = arith.mulf %t, %late : tensor<1x32x16xbf16>
  %dw = arith.subf %n, %x : tensor<1x16x32xbf16>
  return %late, %late2, %dw
      : tensor<1x32x16xbf16>, tensor<1x32x16xbf16>, tensor<1x16x32xbf16>
}

// -----

// With `projections`, chains without a projection are left to the plain
// instance that runs after bufferization's CSE: a transpose of an argument
// read far apart is not repeated here.
// CHECK-LABEL: func.func @no_projection
// PLAIN-LABEL: func.func @no_projection
// CHECK-COUNT-1: linalg.transpose
// CHECK-NOT: linalg.transpose
// CHECK-NOT: bpt.recomputed
func.func @no_projection(%a: tensor<4x8xf32>, %w: tensor<8x4xf32>)
    -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%a : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>)
      permutation = [1, 0]
  %early = arith.addf %t, %t : tensor<8x4xf32>
  %m1 = arith.mulf %w, %early : tensor<8x4xf32>
  %m2 = arith.mulf %m1, %m1 : tensor<8x4xf32>
  %m3 = arith.mulf %m2, %m2 : tensor<8x4xf32>
  %late = arith.subf %t, %m3 : tensor<8x4xf32>
  return %early, %late : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// A projection whose input is dead at the late read and comes from an op
// that is not repeated (a slice) is not repeated either: the copy would
// keep that input alive instead.
// CHECK-LABEL: func.func @dead_input
// CHECK-COUNT-1: bpt.linear
// CHECK-NOT: bpt.linear
func.func @dead_input(%x: tensor<1x32x32xbf16>, %w: tensor<32x32xbf16>,
                      %u: tensor<1x16x32xbf16>)
    -> (tensor<1x16x32xbf16>, tensor<1x16x32xbf16>) {
  %h = tensor.extract_slice %x[0, 0, 0] [1, 16, 32] [1, 1, 1]
      : tensor<1x32x32xbf16> to tensor<1x16x32xbf16>
  %s = bpt.linear %h, %w : (tensor<1x16x32xbf16>, tensor<32x32xbf16>)
      -> tensor<1x16x32xbf16>
  %early = arith.addf %s, %s : tensor<1x16x32xbf16>
  %m1 = arith.mulf %u, %early : tensor<1x16x32xbf16>
  %m2 = arith.mulf %m1, %m1 : tensor<1x16x32xbf16>
  %m3 = arith.mulf %m2, %m2 : tensor<1x16x32xbf16>
  %late = arith.subf %s, %m3 : tensor<1x16x32xbf16>
  return %early, %late : tensor<1x16x32xbf16>, tensor<1x16x32xbf16>
}
