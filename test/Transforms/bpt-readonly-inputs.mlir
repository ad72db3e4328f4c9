// RUN: bpt-opt %s --bpt-readonly-inputs | FileCheck %s
// RUN: bpt-opt %s --bpt-readonly-inputs --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" | FileCheck %s --check-prefix=BUF

// RUN: bpt-opt %s --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" | FileCheck %s --check-prefix=INPLACE

// Tensor arguments of public functions are marked not writable, so
// bufferization never computes a result in a caller's input buffer.

// CHECK-LABEL: func.func @residual
// CHECK-SAME: (%{{.+}}: tensor<4x8xf32> {bufferization.writable = false}, %{{.+}}: tensor<4x8xf32> {bufferization.writable = false}, %{{.+}}: index)
// The elementwise add would otherwise run in place of %x.
// BUF-LABEL: func.func @residual
// BUF: %[[NEW:.+]] = memref.alloc
// BUF: linalg.generic {{.+}} outs(%[[NEW]] : memref<4x8xf32>)
// BUF: return %[[NEW]]
// Without the pass, the caller's %x is overwritten:
// INPLACE-LABEL: func.func @residual
// INPLACE-SAME: (%[[X:[^:]+]]: memref<4x8xf32>
// INPLACE: linalg.generic {{.+}} outs(%[[X]] : memref<4x8xf32>)
func.func @residual(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>, %n: index) -> tensor<4x8xf32> {
  %0 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%y : tensor<4x8xf32>) outs(%x : tensor<4x8xf32>) {
  ^bb0(%a: f32, %b: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// Private functions are left as they are (their callers are in the module).
// CHECK-LABEL: func.func private @helper
// CHECK-SAME: (%{{.+}}: tensor<4xf32>)
func.func private @helper(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
