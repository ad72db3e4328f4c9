// RUN: bpt-opt %s --bpt-math-to-intrinsics | FileCheck %s
// RUN: bpt-opt %s --bpt-math-to-intrinsics --convert-gpu-to-nvvm | FileCheck %s --check-prefix=NVVM --implicit-check-not=__nv_

// The f32 math ops that convert-gpu-to-nvvm would turn into libdevice calls
// become calls of the intrinsics NVPTX selects (libdevice's own, without
// flush-to-zero unless `afn` allows it for exp2), fast-math flags included;
// other widths are left alone.
// After convert-gpu-to-nvvm no __nv_ function is declared or called.

// CHECK-LABEL: func.func @math
// CHECK-SAME: (%[[A:.+]]: f32, %[[B:.+]]: f32, %[[C:.+]]: f32)
// CHECK: %[[FMA:.+]] = llvm.call_intrinsic "llvm.fma.f32"(%[[A]], %[[B]], %[[C]]) : (f32, f32, f32) -> f32
// CHECK: %[[ABS:.+]] = llvm.call_intrinsic "llvm.fabs.f32"(%[[FMA]]) : (f32) -> f32
// CHECK: %[[SIGN:.+]] = llvm.call_intrinsic "llvm.copysign.f32"(%[[ABS]], %[[B]]) : (f32, f32) -> f32
// CHECK: %[[MAX:.+]] = llvm.call_intrinsic "llvm.maxnum.f32"(%[[SIGN]], %[[C]]) : (f32, f32) -> f32
// CHECK: %[[MIN:.+]] = llvm.call_intrinsic "llvm.minnum.f32"(%[[MAX]], %[[A]]) : (f32, f32) -> f32
// CHECK: %[[SQRT:.+]] = llvm.call_intrinsic "llvm.nvvm.sqrt.approx.f"(%[[MIN]]) : (f32) -> f32
// CHECK: %[[EXP2:.+]] = llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"(%[[SQRT]]) : (f32) -> f32
// CHECK: %[[LOG2:.+]] = llvm.call_intrinsic "llvm.nvvm.lg2.approx.f"(%[[EXP2]]) : (f32) -> f32
// CHECK: %[[FAST:.+]] = llvm.call_intrinsic "llvm.fma.f32"(%[[LOG2]], %[[B]], %[[C]]) {fastmathFlags = #llvm.fastmath<contract>} : (f32, f32, f32) -> f32
// CHECK: return %[[FAST]]
// CHECK-NOT: math.
// CHECK-NOT: arith.maxnumf
// CHECK-NOT: arith.minnumf
func.func @math(%a: f32, %b: f32, %c: f32) -> f32 {
  %fma = math.fma %a, %b, %c : f32
  %abs = math.absf %fma : f32
  %sign = math.copysign %abs, %b : f32
  %max = arith.maxnumf %sign, %c : f32
  %min = arith.minnumf %max, %a : f32
  %sqrt = math.sqrt %min : f32
  %exp2 = math.exp2 %sqrt : f32
  %log2 = math.log2 %exp2 : f32
  %fast = math.fma %log2, %b, %c fastmath<contract> : f32
  return %fast : f32
}

// An exp2 that allows an approximate function (the GEMM epilogues') is the
// flush-to-zero form; the other flags stay as they are.
// CHECK-LABEL: func.func @approximate_exp2
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"(%{{.+}}) {fastmathFlags = #llvm.fastmath<afn>} : (f32) -> f32
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"(%{{.+}}) {fastmathFlags = #llvm.fastmath<contract>} : (f32) -> f32
func.func @approximate_exp2(%a: f32) -> (f32, f32) {
  %approximate = math.exp2 %a fastmath<afn> : f32
  %exact = math.exp2 %a fastmath<contract> : f32
  return %approximate, %exact : f32, f32
}

// CHECK-LABEL: func.func @other_widths
// CHECK: math.fma %{{.+}} : f64
// CHECK: math.absf %{{.+}} : f16
// CHECK: math.exp2 %{{.+}} : vector<4xf32>
func.func @other_widths(%d: f64, %h: f16, %v: vector<4xf32>)
    -> (f64, f16, vector<4xf32>) {
  %fma = math.fma %d, %d, %d : f64
  %abs = math.absf %h : f16
  %exp2 = math.exp2 %v : vector<4xf32>
  return %fma, %abs, %exp2 : f64, f16, vector<4xf32>
}

// NVVM-LABEL: gpu.module @kernels
// NVVM: llvm.func @kernel_math
// NVVM-COUNT-8: llvm.call_intrinsic
// NVVM-NOT: llvm.call @
// NVVM: llvm.return
gpu.module @kernels {
  func.func @kernel_math(%a: f32, %b: f32, %c: f32) -> f32 {
    %fma = math.fma %a, %b, %c : f32
    %abs = math.absf %fma : f32
    %sign = math.copysign %abs, %b : f32
    %max = arith.maxnumf %sign, %c : f32
    %min = arith.minnumf %max, %a : f32
    %sqrt = math.sqrt %min : f32
    %exp2 = math.exp2 %sqrt : f32
    %log2 = math.log2 %exp2 : f32
    return %log2 : f32
  }
}
