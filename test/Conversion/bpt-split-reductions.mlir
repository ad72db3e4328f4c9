// RUN: bpt-opt %s --split-input-file --bpt-split-reductions | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-split-reductions="min-parallelism=8192 min-elements=512" | FileCheck %s --check-prefix=SMALL
// RUN: not bpt-opt %s --bpt-split-reductions="min-elements=0" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: error: bpt-split-reductions: options min-parallelism and min-elements must be positive

// A row sum of 4096 rows of 2048: 32 partials per row (131072 threads), the
// row split as [64, 32] with the partials innermost, so that neighbouring
// threads read neighbouring elements; then the 32 partials summed.
// CHECK-LABEL: func.func @row_sums
// CHECK: %[[X:.+]] = tensor.expand_shape %{{.+}} {{\[\[}}0], [1, 2]] output_shape [4096, 64, 32]
// CHECK: %[[P:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[X]] : tensor<4096x64x32xf32>) outs(%{{.+}} : tensor<4096x32xf32>)
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]} ins(%[[P]] : tensor<4096x32xf32>) outs(%{{.+}} : tensor<4096xf32>)
// With fewer threads wanted and longer partial sums: 2 partials of 1024.
// SMALL-LABEL: func.func @row_sums
// SMALL: tensor.expand_shape %{{.+}} output_shape [4096, 1024, 2]
func.func @row_sums(%x: tensor<4096x2048xf32>) -> tensor<4096xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4096xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<4096xf32>) -> tensor<4096xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4096x2048xf32>) outs(%init : tensor<4096xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %sum = arith.addf %a, %acc : f32
    linalg.yield %sum : f32
  } -> tensor<4096xf32>
  return %s : tensor<4096xf32>
}

// -----

// A per-channel sum over 4096 rows of 2048 channels (a norm's weight
// gradient): 64 partials of 64 rows each, the partials outermost so that
// the channels stay innermost.
// CHECK-LABEL: func.func @channel_sums
// CHECK: %[[X:.+]] = tensor.expand_shape %{{.+}} {{\[\[}}0, 1], [2]] output_shape [64, 64, 2048]
// CHECK: %[[P:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[X]] : tensor<64x64x2048xbf16>) outs(%{{.+}} : tensor<64x2048xf32>)
// CHECK: linalg.generic {{.+}} iterator_types = ["reduction", "parallel"]} ins(%[[P]] : tensor<64x2048xf32>) outs(%{{.+}} : tensor<2048xf32>)
// SMALL-LABEL: func.func @channel_sums
// SMALL: tensor.expand_shape %{{.+}} output_shape [4, 1024, 2048]
func.func @channel_sums(%x: tensor<4096x2048xbf16>) -> tensor<2048xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2048xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<2048xf32>) -> tensor<2048xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>],
                       iterator_types = ["reduction", "parallel"]}
      ins(%x : tensor<4096x2048xbf16>) outs(%init : tensor<2048xf32>) {
  ^bb0(%a: bf16, %acc: f32):
    %w = arith.extf %a : bf16 to f32
    %sum = arith.addf %w, %acc : f32
    linalg.yield %sum : f32
  } -> tensor<2048xf32>
  return %s : tensor<2048xf32>
}

// -----

// Left alone: enough outputs already (262144 rows); a length with no
// power-of-two divisor (2047); a loop nest's body (one kernel already); a
// reduction with two outputs.
// CHECK-LABEL: func.func @unchanged
// CHECK-NOT: tensor.expand_shape
// CHECK: return
func.func @unchanged(%many: tensor<262144x64xf32>, %odd: tensor<64x2047xf32>,
                     %x: tensor<4096x2048xf32>)
    -> (tensor<262144xf32>, tensor<64xf32>, tensor<2x4096xf32>, tensor<4096xf32>, tensor<4096xf32>) {
  %zero = arith.constant 0.0 : f32
  %e0 = tensor.empty() : tensor<262144xf32>
  %i0 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<262144xf32>) -> tensor<262144xf32>
  %s0 = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                        iterator_types = ["parallel", "reduction"]}
      ins(%many : tensor<262144x64xf32>) outs(%i0 : tensor<262144xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %sum = arith.addf %a, %acc : f32
    linalg.yield %sum : f32
  } -> tensor<262144xf32>
  %e1 = tensor.empty() : tensor<64xf32>
  %i1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<64xf32>) -> tensor<64xf32>
  %s1 = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                        iterator_types = ["parallel", "reduction"]}
      ins(%odd : tensor<64x2047xf32>) outs(%i1 : tensor<64xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %sum = arith.addf %a, %acc : f32
    linalg.yield %sum : f32
  } -> tensor<64xf32>
  %e2 = tensor.empty() : tensor<2x4096xf32>
  %s2 = scf.forall (%b) in (2) shared_outs(%out = %e2) -> tensor<2x4096xf32> {
    %e = tensor.empty() : tensor<4096xf32>
    %i = linalg.fill ins(%zero : f32) outs(%e : tensor<4096xf32>) -> tensor<4096xf32>
    %s = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                         iterator_types = ["parallel", "reduction"]}
        ins(%x : tensor<4096x2048xf32>) outs(%i : tensor<4096xf32>) {
    ^bb0(%a: f32, %acc: f32):
      %sum = arith.addf %a, %acc : f32
      linalg.yield %sum : f32
    } -> tensor<4096xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %s into %out[%b, 0] [1, 4096] [1, 1]
          : tensor<4096xf32> into tensor<2x4096xf32>
    }
  }
  %e3 = tensor.empty() : tensor<4096xf32>
  %i3 = linalg.fill ins(%zero : f32) outs(%e3 : tensor<4096xf32>) -> tensor<4096xf32>
  %s3:2 = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>, affine_map<(i, j) -> (i)>],
                          iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4096x2048xf32>) outs(%i3, %i3 : tensor<4096xf32>, tensor<4096xf32>) {
  ^bb0(%a: f32, %acc: f32, %acc2: f32):
    %sum = arith.addf %a, %acc : f32
    %sq = arith.mulf %a, %a : f32
    %sum2 = arith.addf %sq, %acc2 : f32
    linalg.yield %sum, %sum2 : f32, f32
  } -> (tensor<4096xf32>, tensor<4096xf32>)
  return %s0, %s1, %s2, %s3#0, %s3#1
      : tensor<262144xf32>, tensor<64xf32>, tensor<2x4096xf32>, tensor<4096xf32>, tensor<4096xf32>
}
