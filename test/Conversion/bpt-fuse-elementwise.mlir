// RUN: bpt-opt %s --split-input-file --bpt-fuse-elementwise | FileCheck %s

// A norm gradient's f32 result, its rounding to bf16 and the residual add
// behind an expand_shape: one generic that reads the three inputs and writes
// the bf16 sum (the expand_shape moved above the first two), in place of the
// residual as before (its `outs` kept: bufferization reuses the buffer).
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%[[G:.+]]: tensor<4096x2048xf32>, %[[S:.+]]: tensor<4096xf32>, %[[R:.+]]: tensor<1x4096x2048xbf16>)
// CHECK-NOT: linalg.generic
// CHECK: %[[GE:.+]] = tensor.expand_shape %[[G]] {{\[\[}}0, 1], [2]] output_shape [1, 4096, 2048]
// CHECK-DAG: %[[SE:.+]] = tensor.expand_shape %[[S]] {{\[\[}}0, 1]] output_shape [1, 4096]
// CHECK: %[[Y:.+]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel"]
// CHECK-SAME: ins(%[[GE]], %[[SE]], %[[R]] : tensor<1x4096x2048xf32>, tensor<1x4096xf32>, tensor<1x4096x2048xbf16>)
// CHECK-SAME: outs(%[[R]] : tensor<1x4096x2048xbf16>)
// CHECK: arith.mulf
// CHECK: arith.truncf
// CHECK: arith.addf {{.+}} : bf16
// CHECK-NOT: linalg.generic
// CHECK: return %[[Y]]
#id2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
#id3 = affine_map<(b, i, j) -> (b, i, j)>
func.func @chain(%g: tensor<4096x2048xf32>, %s: tensor<4096xf32>,
                 %r: tensor<1x4096x2048xbf16>) -> tensor<1x4096x2048xbf16> {
  %e32 = tensor.empty() : tensor<4096x2048xf32>
  %dx = linalg.generic {indexing_maps = [#id2, #row, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%g, %s : tensor<4096x2048xf32>, tensor<4096xf32>) outs(%e32 : tensor<4096x2048xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<4096x2048xf32>
  %e16 = tensor.empty() : tensor<4096x2048xbf16>
  %t = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%dx : tensor<4096x2048xf32>) outs(%e16 : tensor<4096x2048xbf16>) {
  ^bb0(%a: f32, %o: bf16):
    %c = arith.truncf %a : f32 to bf16
    linalg.yield %c : bf16
  } -> tensor<4096x2048xbf16>
  %x = tensor.expand_shape %t [[0, 1], [2]] output_shape [1, 4096, 2048] : tensor<4096x2048xbf16> into tensor<1x4096x2048xbf16>
  %y = linalg.generic {indexing_maps = [#id3, #id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %r : tensor<1x4096x2048xbf16>, tensor<1x4096x2048xbf16>) outs(%r : tensor<1x4096x2048xbf16>) {
  ^bb0(%a: bf16, %b: bf16, %o: bf16):
    %sum = arith.addf %a, %b : bf16
    linalg.yield %sum : bf16
  } -> tensor<1x4096x2048xbf16>
  return %y : tensor<1x4096x2048xbf16>
}

// -----

// An elementwise producer into a row sum: one reduction generic.
// CHECK-LABEL: func.func @into_reduction
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]
// CHECK-SAME: ins(%{{.+}}, %{{.+}} : tensor<64x256xbf16>, tensor<64x256xbf16>)
// CHECK: arith.extf
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK-NOT: linalg.generic
#id2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @into_reduction(%a: tensor<64x256xbf16>, %b: tensor<64x256xbf16>) -> tensor<64xf32> {
  %e = tensor.empty() : tensor<64x256xf32>
  %p = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%a, %b : tensor<64x256xbf16>, tensor<64x256xbf16>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%x: bf16, %y: bf16, %o: f32):
    %xf = arith.extf %x : bf16 to f32
    %yf = arith.extf %y : bf16 to f32
    %m = arith.mulf %xf, %yf : f32
    linalg.yield %m : f32
  } -> tensor<64x256xf32>
  %zero = arith.constant 0.0 : f32
  %er = tensor.empty() : tensor<64xf32>
  %init = linalg.fill ins(%zero : f32) outs(%er : tensor<64xf32>) -> tensor<64xf32>
  %s = linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]}
      ins(%p : tensor<64x256xf32>) outs(%init : tensor<64xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %sum = arith.addf %x, %acc : f32
    linalg.yield %sum : f32
  } -> tensor<64xf32>
  return %s : tensor<64xf32>
}

// -----

// Left alone: a producer with a second use (fusing would compute it twice);
// a per-row statistic read by broadcast (its math would run for every
// element of the row); a reduction as the producer.
// CHECK-LABEL: func.func @left_alone
// CHECK-COUNT-5: linalg.generic
// CHECK-NOT: linalg.generic
#id2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
#id1 = affine_map<(i) -> (i)>
func.func @left_alone(%a: tensor<64x256xf32>, %s: tensor<64xf32>)
    -> (tensor<64x256xf32>, tensor<64x256xf32>, tensor<64x256xf32>, tensor<64xf32>) {
  %e = tensor.empty() : tensor<64x256xf32>
  %twice = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<64x256xf32>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%x: f32, %o: f32):
    %n = arith.negf %x : f32
    linalg.yield %n : f32
  } -> tensor<64x256xf32>
  %u = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%twice : tensor<64x256xf32>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%x: f32, %o: f32):
    %n = math.exp %x : f32
    linalg.yield %n : f32
  } -> tensor<64x256xf32>
  %es = tensor.empty() : tensor<64xf32>
  %rstd = linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]}
      ins(%s : tensor<64xf32>) outs(%es : tensor<64xf32>) {
  ^bb0(%x: f32, %o: f32):
    %r = math.rsqrt %x : f32
    linalg.yield %r : f32
  } -> tensor<64xf32>
  %scaled = linalg.generic {indexing_maps = [#id2, #row, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%a, %rstd : tensor<64x256xf32>, tensor<64xf32>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%x: f32, %r: f32, %o: f32):
    %m = arith.mulf %x, %r : f32
    linalg.yield %m : f32
  } -> tensor<64x256xf32>
  %zero = arith.constant 0.0 : f32
  %init = linalg.fill ins(%zero : f32) outs(%es : tensor<64xf32>) -> tensor<64xf32>
  %sum = linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]}
      ins(%a : tensor<64x256xf32>) outs(%init : tensor<64xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %t = arith.addf %x, %acc : f32
    linalg.yield %t : f32
  } -> tensor<64xf32>
  %es2 = tensor.empty() : tensor<64xf32>
  return %twice, %u, %scaled, %sum : tensor<64x256xf32>, tensor<64x256xf32>, tensor<64x256xf32>, tensor<64xf32>
}

// -----

// A loop nest's body is one kernel already: not touched.
// CHECK-LABEL: func.func @in_loop
// CHECK: scf.forall
// CHECK-COUNT-2: linalg.generic
#id1 = affine_map<(i) -> (i)>
func.func @in_loop(%a: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %r = scf.forall (%i) in (4) shared_outs(%o = %a) -> tensor<4x64xf32> {
    %s = tensor.extract_slice %a[%i, 0] [1, 64] [1, 1] : tensor<4x64xf32> to tensor<64xf32>
    %e = tensor.empty() : tensor<64xf32>
    %n = linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]}
        ins(%s : tensor<64xf32>) outs(%e : tensor<64xf32>) {
    ^bb0(%x: f32, %y: f32):
      %t = arith.negf %x : f32
      linalg.yield %t : f32
    } -> tensor<64xf32>
    %x = linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]}
        ins(%n : tensor<64xf32>) outs(%e : tensor<64xf32>) {
    ^bb0(%x: f32, %y: f32):
      %t = math.exp %x : f32
      linalg.yield %t : f32
    } -> tensor<64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %x into %o[%i, 0] [1, 64] [1, 1] : tensor<64xf32> into tensor<4x64xf32>
    }
  }
  return %r : tensor<4x64xf32>
}

// -----

// A sum of three gradients, the second add in place of the first sum (its
// `outs`, never read): the first add's own `outs` is forwarded, and the two
// adds become one.
// CHECK-LABEL: func.func @sum_of_three
// CHECK-SAME: (%[[A:.+]]: tensor<64x256xbf16>, %[[B:.+]]: tensor<64x256xbf16>, %[[C:.+]]: tensor<64x256xbf16>)
// CHECK: %[[S:.+]] = linalg.generic
// CHECK-SAME: ins(%[[A]], %[[B]], %[[C]] : {{.+}}) outs(%[[A]] : tensor<64x256xbf16>)
// CHECK-COUNT-2: arith.addf
// CHECK-NOT: linalg.generic
// CHECK: return %[[S]]
#id2 = affine_map<(i, j) -> (i, j)>
func.func @sum_of_three(%a: tensor<64x256xbf16>, %b: tensor<64x256xbf16>, %c: tensor<64x256xbf16>) -> tensor<64x256xbf16> {
  %ab = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%a, %b : tensor<64x256xbf16>, tensor<64x256xbf16>) outs(%a : tensor<64x256xbf16>) {
  ^bb0(%x: bf16, %y: bf16, %o: bf16):
    %s = arith.addf %x, %y : bf16
    linalg.yield %s : bf16
  } -> tensor<64x256xbf16>
  %abc = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%ab, %c : tensor<64x256xbf16>, tensor<64x256xbf16>) outs(%ab : tensor<64x256xbf16>) {
  ^bb0(%x: bf16, %y: bf16, %o: bf16):
    %s = arith.addf %x, %y : bf16
    linalg.yield %s : bf16
  } -> tensor<64x256xbf16>
  return %abc : tensor<64x256xbf16>
}
