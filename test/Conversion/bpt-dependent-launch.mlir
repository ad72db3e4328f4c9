// RUN: bpt-opt %s --bpt-dependent-launch | FileCheck %s
// RUN: bpt-opt %s --bpt-dependent-launch=chip=sm_90 | FileCheck %s
// RUN: bpt-opt %s --bpt-dependent-launch=chip=sm_80 | FileCheck %s --check-prefix=SM80
// RUN: not bpt-opt %s --bpt-dependent-launch=chip=hopper 2>&1 | FileCheck %s --check-prefix=BAD

// On sm_90 and later each launched kernel begins with the wait for its
// predecessor, then lets its own dependents be scheduled (once per kernel,
// however often it is launched), and every launch of it is marked for the
// manifest. A kernel that is never launched is left alone.

// CHECK-LABEL: gpu.func @gemm
// CHECK-NEXT:    nvvm.griddepcontrol wait
// CHECK-NEXT:    nvvm.griddepcontrol launch_dependents
// CHECK-NEXT:    gpu.thread_id x
// CHECK-NOT:     nvvm.griddepcontrol
// CHECK:       gpu.func @norm
// CHECK-NEXT:    nvvm.griddepcontrol wait
// CHECK-NEXT:    nvvm.griddepcontrol launch_dependents
// CHECK-NEXT:    gpu.return
// CHECK:       gpu.func @unused
// CHECK-NEXT:    gpu.return
// CHECK-LABEL: func.func @step
// CHECK:         gpu.launch_func @kernels::@gemm {{.*}} {bpt.dependent_launch}
// CHECK-NEXT:    gpu.launch_func @kernels::@norm {{.*}} {bpt.dependent_launch}
// CHECK-NEXT:    gpu.launch_func @kernels::@gemm {{.*}} {bpt.dependent_launch}

// Before sm_90 (no griddepcontrol) nothing changes.
// SM80-NOT: griddepcontrol
// SM80-NOT: bpt.dependent_launch

// BAD: error: bpt-dependent-launch: 'hopper' is not a chip name (sm_XY or sm_XYa)

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @gemm() kernel {
      %t = gpu.thread_id x
      gpu.return
    }
    gpu.func @norm() kernel {
      gpu.return
    }
    gpu.func @unused() kernel {
      gpu.return
    }
  }
  func.func @step() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @kernels::@gemm blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @kernels::@norm blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @kernels::@gemm blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
}
