// RUN: bpt-opt %s --bpt-approximate-math | FileCheck %s

// erf and tanh become polynomial approximations in arith (no libdevice call
// is needed on the GPU); other math ops are left to the NVVM lowering.

// CHECK-LABEL: func.func @gelu_parts
// CHECK-NOT: math.erf
// CHECK-NOT: math.tanh
// CHECK: arith.mulf
// CHECK: math.exp2
// CHECK: return
func.func @gelu_parts(%x: f32) -> (f32, f32, f32) {
  %e = math.erf %x : f32
  %t = math.tanh %x : f32
  %k = math.exp2 %x : f32
  return %e, %t, %k : f32, f32, f32
}
