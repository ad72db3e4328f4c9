// RUN: bpt-opt %s --bpt-approximate-math | FileCheck %s

// erf, tanh and exp become approximations in arith and math ops that
// bpt-math-to-intrinsics lowers to NVPTX's instructions (no libdevice call is
// needed on the GPU): f32 erf as Abramowitz and Stegun's 7.1.26 (t = 1 / (1 +
// p·|x|) with an approximate division, a degree-4 polynomial in t, exp(−x²)
// as exp2, the sign of x); tanh as MLIR's polynomial approximation; f32
// exp(x) as exp2(x·log2 e); other math ops and widths are left alone.

// CHECK-LABEL: func.func @gelu_parts
// CHECK-NOT: math.erf
// CHECK-NOT: math.tanh
// CHECK: %[[AX:.+]] = math.absf %[[X:.+]] : f32
// CHECK: %[[D:.+]] = math.fma %{{.+}}, %[[AX]], %{{.+}} : f32
// CHECK: %[[T:.+]] = arith.divf %{{.+}}, %[[D]] fastmath<afn> : f32
// CHECK-COUNT-4: math.fma %{{.+}}, %[[T]]
// CHECK: math.exp2
// CHECK: %[[E:.+]] = math.copysign %{{.+}}, %[[X]] : f32
// CHECK: %[[K:.+]] = math.exp2 %[[X]] : f32
// CHECK: return %[[E]], %{{.+}}, %[[K]]
func.func @gelu_parts(%x: f32) -> (f32, f32, f32) {
  %e = math.erf %x : f32
  %t = math.tanh %x : f32
  %k = math.exp2 %x : f32
  return %e, %t, %k : f32, f32, f32
}

// CHECK-LABEL: func.func @exp
// CHECK-SAME: (%[[X:.+]]: f32, %[[D:.+]]: f64)
// CHECK: %[[LOG2E:.+]] = arith.constant 1.44269502 : f32
// CHECK: %[[S:.+]] = arith.mulf %[[X]], %[[LOG2E]] : f32
// CHECK: %[[E:.+]] = math.exp2 %[[S]] : f32
// CHECK: %[[ED:.+]] = math.exp %[[D]] : f64
// CHECK: return %[[E]], %[[ED]]
func.func @exp(%x: f32, %d: f64) -> (f32, f64) {
  %e = math.exp %x : f32
  %ed = math.exp %d : f64
  return %e, %ed : f32, f64
}
