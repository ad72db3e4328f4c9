// RUN: bpt-opt %s --bpt-merge-kernel-modules | FileCheck %s

// Outlined kernels (one gpu.module each, every kernel named like its
// function) are gathered into one module, named after their old modules,
// and the launches follow.

// CHECK: gpu.module @bpt_kernels [#nvvm.target<chip = "sm_90a">]
// CHECK-DAG: gpu.func @f_kernel() kernel
// CHECK-DAG: gpu.func @f_kernel_0() kernel
// CHECK-NOT: gpu.module @f_kernel
// CHECK: func.func @f
// CHECK: gpu.launch_func @bpt_kernels::@f_kernel blocks
// CHECK: gpu.launch_func @bpt_kernels::@f_kernel_0 blocks
module attributes {gpu.container_module} {
  gpu.module @f_kernel [#nvvm.target<chip = "sm_90a">] {
    gpu.func @f_kernel() kernel {
      gpu.return
    }
  }
  gpu.module @f_kernel_0 [#nvvm.target<chip = "sm_90a">] {
    gpu.func @f_kernel() kernel {
      gpu.return
    }
  }
  func.func @f() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @f_kernel::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @f_kernel_0::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
}
