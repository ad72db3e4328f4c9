// RUN: bpt-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(bpt-rematerialize{min-distance=2}))' | FileCheck %s

// Read again far from the transpose, while its input is still read there:
// a second transpose (and empty tensor, and view) just before that read;
// the first serves the early read only.
// CHECK-LABEL: func.func @far_read
// CHECK-SAME: (%[[A:.+]]: tensor<4x8xf32>, %[[W:.+]]: tensor<8x4xf32>)
// CHECK: %[[T1:.+]] = linalg.transpose ins(%[[A]] : tensor<4x8xf32>)
// CHECK: %[[E1:.+]] = tensor.expand_shape %[[T1]]
// CHECK: %[[EARLY:.+]] = arith.addf %[[E1]], %[[E1]]
// CHECK-COUNT-3: arith.mulf
// CHECK: %[[T2:.+]] = linalg.transpose ins(%[[A]] : tensor<4x8xf32>)
// CHECK: %[[E2:.+]] = tensor.expand_shape %[[T2]]
// CHECK: %[[LATE:.+]] = arith.subf %[[E2]], %{{.+}}
// CHECK: return
func.func @far_read(%a: tensor<4x8xf32>, %w: tensor<8x4xf32>)
    -> (tensor<2x4x4xf32>, tensor<8x4xf32>, tensor<2x4x4xf32>) {
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%a : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>)
      permutation = [1, 0]
  %v = tensor.expand_shape %t [[0, 1], [2]] output_shape [2, 4, 4]
      : tensor<8x4xf32> into tensor<2x4x4xf32>
  %early = arith.addf %v, %v : tensor<2x4x4xf32>
  %m1 = arith.mulf %w, %w : tensor<8x4xf32>
  %m2 = arith.mulf %m1, %m1 : tensor<8x4xf32>
  %m3 = arith.mulf %m2, %m2 : tensor<8x4xf32>
  %late = arith.subf %v, %early : tensor<2x4x4xf32>
  return %early, %m3, %late : tensor<2x4x4xf32>, tensor<8x4xf32>, tensor<2x4x4xf32>
}

// -----

// The input is not read after the transpose (and is no argument): a second
// transpose would keep it alive instead; nothing changes. Reads close
// together share the transpose too.
// CHECK-LABEL: func.func @input_dead
// CHECK-COUNT-1: linalg.transpose
// CHECK-NOT: linalg.transpose
// CHECK-LABEL: func.func @near_reads
// CHECK-COUNT-1: linalg.transpose
// CHECK-NOT: linalg.transpose
func.func @input_dead(%a: tensor<4x8xf32>, %w: tensor<8x4xf32>)
    -> (tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>) {
  %s = arith.addf %a, %a : tensor<4x8xf32>
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%s : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>)
      permutation = [1, 0]
  %early = arith.addf %t, %t : tensor<8x4xf32>
  %m1 = arith.mulf %w, %w : tensor<8x4xf32>
  %m2 = arith.mulf %m1, %m1 : tensor<8x4xf32>
  %m3 = arith.mulf %m2, %m2 : tensor<8x4xf32>
  %late = arith.subf %t, %m3 : tensor<8x4xf32>
  return %early, %m3, %late : tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>
}
func.func @near_reads(%a: tensor<4x8xf32>) -> (tensor<8x4xf32>, tensor<8x4xf32>) {
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%a : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>)
      permutation = [1, 0]
  %x = arith.addf %t, %t : tensor<8x4xf32>
  %y = arith.mulf %t, %x : tensor<8x4xf32>
  return %x, %y : tensor<8x4xf32>, tensor<8x4xf32>
}

// -----

// A norm-like chain (a row reduction, then an elementwise op over the
// input and the row statistic) of an argument, read early and far later:
// the whole chain again before the late read, from the argument. A chain
// through a value that is dead at the late read (%p, read only early) is
// not repeated: %q keeps its buffer.
// CHECK-LABEL: func.func @chain
// CHECK-COUNT-2: linalg.reduce
// CHECK-LABEL: func.func @dead_leaf
// CHECK-COUNT-1: linalg.generic
// CHECK-NOT: linalg.generic
func.func @chain(%x: tensor<4x8xf32>, %w: tensor<8x4xf32>)
    -> (tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>
  %s = linalg.reduce ins(%x : tensor<4x8xf32>) outs(%f : tensor<4xf32>)
      dimensions = [1]
      (%in: f32, %acc: f32) {
        %sum = arith.addf %in, %acc : f32
        linalg.yield %sum : f32
      }
  %e2 = tensor.empty() : tensor<4x8xf32>
  %n = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>,
                                        affine_map<(i, j) -> (i)>,
                                        affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x, %s : tensor<4x8xf32>, tensor<4xf32>) outs(%e2 : tensor<4x8xf32>) {
    ^bb0(%a: f32, %b: f32, %o: f32):
      %d = arith.subf %a, %b : f32
      linalg.yield %d : f32
  } -> tensor<4x8xf32>
  %early = arith.addf %n, %n : tensor<4x8xf32>
  %m1 = arith.mulf %w, %w : tensor<8x4xf32>
  %m2 = arith.mulf %m1, %m1 : tensor<8x4xf32>
  %m3 = arith.mulf %m2, %m2 : tensor<8x4xf32>
  %late = arith.subf %n, %early : tensor<4x8xf32>
  return %early, %m3, %late : tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x8xf32>
}
func.func @dead_leaf(%x: tensor<4x8xf32>, %w: tensor<8x4xf32>)
    -> (tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x8xf32>) {
  %p = arith.mulf %x, %x : tensor<4x8xf32>
  %e = tensor.empty() : tensor<4x8xf32>
  %q = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>,
                                        affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%p : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
    ^bb0(%a: f32, %o: f32):
      %d = arith.negf %a : f32
      linalg.yield %d : f32
  } -> tensor<4x8xf32>
  %early = arith.addf %q, %q : tensor<4x8xf32>
  %m1 = arith.mulf %w, %w : tensor<8x4xf32>
  %m2 = arith.mulf %m1, %m1 : tensor<8x4xf32>
  %m3 = arith.mulf %m2, %m2 : tensor<8x4xf32>
  %late = arith.subf %q, %early : tensor<4x8xf32>
  return %early, %m3, %late : tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x8xf32>
}

// -----

// A norm left whole for its row kernel (bpt-norm-to-rowwise runs after this
// pass) is repeated like a linalg chain: the late read gets its own, with
// the strategy, so it becomes a second launch; the one whose input is dead
// by then is kept.
// CHECK-LABEL: func.func @row_kernel_norm
// CHECK-SAME: (%[[X:.+]]: tensor<16x256xbf16>, %[[G:.+]]: tensor<256xbf16>
// CHECK: %[[N1:.+]] = bpt.rms_norm %[[X]], %[[G]] {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_90a">}
// CHECK: arith.addf %[[N1]], %[[N1]]
// CHECK: %[[S:.+]] = arith.mulf
// CHECK: %[[N3:.+]] = bpt.rms_norm %[[S]]
// CHECK-COUNT-2: arith.mulf
// CHECK: %[[N2:.+]] = bpt.rms_norm %[[X]], %[[G]] {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_90a">}
// CHECK: arith.subf %[[N2]], %{{.+}}
// CHECK: arith.subf %[[N3]], %{{.+}}
// CHECK-NOT: bpt.rms_norm
func.func @row_kernel_norm(%x: tensor<16x256xbf16>, %g: tensor<256xbf16>,
                           %w: tensor<16x256xbf16>)
    -> (tensor<16x256xbf16>, tensor<16x256xbf16>, tensor<16x256xbf16>,
        tensor<16x256xbf16>) {
  %n = bpt.rms_norm %x, %g {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_90a">}
      : (tensor<16x256xbf16>, tensor<256xbf16>) -> tensor<16x256xbf16>
  %early = arith.addf %n, %n : tensor<16x256xbf16>
  %s = arith.mulf %w, %w : tensor<16x256xbf16>
  %n3 = bpt.rms_norm %s, %g {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_90a">}
      : (tensor<16x256xbf16>, tensor<256xbf16>) -> tensor<16x256xbf16>
  %early3 = arith.addf %n3, %n3 : tensor<16x256xbf16>
  %m1 = arith.mulf %w, %early3 : tensor<16x256xbf16>
  %m2 = arith.mulf %m1, %m1 : tensor<16x256xbf16>
  %late = arith.subf %n, %m2 : tensor<16x256xbf16>
  %late3 = arith.subf %n3, %m2 : tensor<16x256xbf16>
  return %early, %late, %late3, %early : tensor<16x256xbf16>, tensor<16x256xbf16>,
      tensor<16x256xbf16>, tensor<16x256xbf16>
}

// -----

// Two reads far from the first and near each other share one copy, the
// second through a view of its own (cloned onto the copy): before, the
// second read kept the original, alive across the gap all the same.
// CHECK-LABEL: func.func @near_late_reads
// CHECK-SAME: (%[[A:.+]]: tensor<4x8xf32>, %[[W:.+]]: tensor<8x4xf32>)
// CHECK: %[[T1:.+]] = linalg.transpose ins(%[[A]] : tensor<4x8xf32>)
// CHECK: arith.addf %[[T1]], %[[T1]]
// CHECK-COUNT-3: arith.mulf
// CHECK: %[[T2:.+]] = linalg.transpose ins(%[[A]] : tensor<4x8xf32>)
// CHECK: %[[L1:.+]] = arith.subf %[[T2]], %{{.+}}
// CHECK: %[[V2:.+]] = tensor.expand_shape %[[T2]]
// CHECK: arith.negf %[[V2]]
// CHECK-NOT: linalg.transpose
func.func @near_late_reads(%a: tensor<4x8xf32>, %w: tensor<8x4xf32>)
    -> (tensor<8x4xf32>, tensor<8x4xf32>, tensor<2x4x4xf32>) {
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%a : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>)
      permutation = [1, 0]
  %v = tensor.expand_shape %t [[0, 1], [2]] output_shape [2, 4, 4]
      : tensor<8x4xf32> into tensor<2x4x4xf32>
  %early = arith.addf %t, %t : tensor<8x4xf32>
  %m1 = arith.mulf %w, %early : tensor<8x4xf32>
  %m2 = arith.mulf %m1, %m1 : tensor<8x4xf32>
  %m3 = arith.mulf %m2, %m2 : tensor<8x4xf32>
  %late = arith.subf %t, %m3 : tensor<8x4xf32>
  %late2 = arith.negf %v : tensor<2x4x4xf32>
  return %early, %late, %late2 : tensor<8x4xf32>, tensor<8x4xf32>, tensor<2x4x4xf32>
}
