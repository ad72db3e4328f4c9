// RUN: bpt-opt %s --split-input-file --bpt-distinct-results --verify-diagnostics | FileCheck %s

// A buffer returned twice: the repeat is a copy of its own, so that
// buffer-results-to-out-params (which crashed on it) gives each result an
// out-parameter.
// CHECK-LABEL: func.func @twice(
// CHECK-SAME: %[[A:.*]]: memref<4xf32>, %[[B:.*]]: memref<4xf32>)
// CHECK: %[[C1:.*]] = memref.alloc() : memref<4xf32>
// CHECK: memref.copy %[[A]], %[[C1]]
// CHECK: %[[C2:.*]] = memref.alloc() : memref<4xf32>
// CHECK: memref.copy %[[A]], %[[C2]]
// CHECK: return %[[A]], %[[B]], %[[C1]], %[[C2]]
func.func @twice(%a: memref<4xf32>, %b: memref<4xf32>)
    -> (memref<4xf32>, memref<4xf32>, memref<4xf32>, memref<4xf32>) {
  return %a, %b, %a, %a : memref<4xf32>, memref<4xf32>, memref<4xf32>, memref<4xf32>
}

// -----

// Distinct results are left alone.
// CHECK-LABEL: func.func @distinct
// CHECK-NOT: memref.copy
// CHECK: return
func.func @distinct(%a: memref<4xf32>, %b: memref<4xf32>) -> (memref<4xf32>, memref<4xf32>) {
  return %a, %b : memref<4xf32>, memref<4xf32>
}

// -----

// CHECK-LABEL: func.func @dynamic(
// CHECK: %[[N:.*]] = memref.dim
// CHECK: memref.alloc(%[[N]]) : memref<?xf32>
func.func @dynamic(%a: memref<?xf32>) -> (memref<?xf32>, memref<?xf32>) {
  return %a, %a : memref<?xf32>, memref<?xf32>
}

// -----

func.func @strided(%a: memref<4xf32, strided<[2]>>)
    -> (memref<4xf32, strided<[2]>>, memref<4xf32, strided<[2]>>) {
  // expected-error @+1 {{bpt-distinct-results: result 1 repeats an earlier result of type 'memref<4xf32, strided<[2]>>', which cannot be copied into a buffer of its own (needs a ranked memref with the identity layout)}}
  return %a, %a : memref<4xf32, strided<[2]>>, memref<4xf32, strided<[2]>>
}
