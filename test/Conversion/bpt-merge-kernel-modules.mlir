// RUN: bpt-opt %s --split-input-file --bpt-merge-kernel-modules | FileCheck %s

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

// -----

// Names that are no PTX identifiers (NVPTX aborts on them) become ones: a
// kernel outlined from func.func @"my-attention" and one from @"0.start".
// CHECK: // -----
// CHECK: gpu.module @bpt_kernels
// CHECK-DAG: gpu.func @my_attention_kernel() kernel
// CHECK-DAG: gpu.func @_0_start_kernel() kernel
// CHECK: func.func @"my-attention"
// CHECK: gpu.launch_func @bpt_kernels::@my_attention_kernel blocks
// CHECK: gpu.launch_func @bpt_kernels::@_0_start_kernel blocks
module attributes {gpu.container_module} {
  gpu.module @"my-attention_kernel" [#nvvm.target<chip = "sm_90a">] {
    gpu.func @"my-attention_kernel"() kernel {
      gpu.return
    }
  }
  gpu.module @"0.start_kernel" [#nvvm.target<chip = "sm_90a">] {
    gpu.func @"0.start_kernel"() kernel {
      gpu.return
    }
  }
  func.func @"my-attention"() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @"my-attention_kernel"::@"my-attention_kernel" blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @"0.start_kernel"::@"0.start_kernel" blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
}
