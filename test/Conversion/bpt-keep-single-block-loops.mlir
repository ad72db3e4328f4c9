// RUN: bpt-opt %s --bpt-keep-single-block-loops | FileCheck %s
// RUN: bpt-opt %s --bpt-keep-single-block-loops --canonicalize | FileCheck %s --check-prefix=CANON

// A loop whose dimensions all have one iteration gets a block mapping, so
// that canonicalization keeps it (it becomes a launch of one block); a loop
// with more iterations is left as it is and its unit dimensions fold.
// CHECK-LABEL: func.func @loops
// CHECK: scf.forall
// CHECK: } {mapping = [#gpu.block<linear_dim_0>, #gpu.block<linear_dim_1>, #gpu.block<linear_dim_2>]}
// CHECK: scf.forall
// CHECK-NOT: mapping
// CHECK: return
// CANON-LABEL: func.func @loops
// CANON: scf.forall (%{{.*}}, %{{.*}}, %{{.*}}) in (1, 1, 1)
// CANON: scf.forall (%{{.*}}) in (4)
func.func @loops(%a: tensor<1x4x8xf32>) -> (tensor<1x4x8xf32>, tensor<1x4x8xf32>) {
  %0 = scf.forall (%b, %h, %i) in (1, 1, 1) shared_outs(%o = %a) -> tensor<1x4x8xf32> {
    %s = tensor.extract_slice %o[%b, %h, %i] [1, 4, 8] [1, 1, 1] : tensor<1x4x8xf32> to tensor<1x4x8xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %s into %o[%b, %h, %i] [1, 4, 8] [1, 1, 1] : tensor<1x4x8xf32> into tensor<1x4x8xf32>
    }
  }
  %1 = scf.forall (%b, %h) in (1, 4) shared_outs(%o = %a) -> tensor<1x4x8xf32> {
    %s = tensor.extract_slice %o[%b, %h, 0] [1, 1, 8] [1, 1, 1] : tensor<1x4x8xf32> to tensor<1x1x8xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %s into %o[%b, %h, 0] [1, 1, 8] [1, 1, 1] : tensor<1x1x8xf32> into tensor<1x4x8xf32>
    }
  }
  return %0, %1 : tensor<1x4x8xf32>, tensor<1x4x8xf32>
}
