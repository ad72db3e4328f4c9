// Ordinary inputs that the GPU pipeline used to crash on or reject:
// loops of one iteration (bpt-compile --op=attention --heads=1 --seq=64),
// a value returned twice (buffer-results-to-out-params segfaulted), and a
// function name that is no PTX identifier (NVPTX aborted with "Symbol name
// with unsupported characters").
// RUN: bpt-opt %s --split-input-file --bpt-to-nvvm 2>&1 | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-to-nvvm=chip=sm_80 2>&1 | FileCheck %s --check-prefix=SM80
// RUN: bpt-opt %s --split-input-file --bpt-to-cpu 2>&1 | FileCheck %s --check-prefix=CPU

// The forall of one iteration stays a loop and becomes a launch of one block.
// CHECK-LABEL: func.func @one_block
// CHECK: gpu.launch_func @bpt_kernels::@one_block_kernel blocks in (%{{.*}}, %{{.*}}, %{{.*}})
// CHECK: gpu.binary @bpt_kernels
// SM80-LABEL: func.func @one_block
// SM80: gpu.launch_func
// CPU-LABEL: llvm.func @one_block
func.func @one_block(%q: tensor<1x1x64x64xf32>, %k: tensor<1x1x64x64xf32>,
                     %v: tensor<1x1x64x64xf32>) -> tensor<1x1x64x64xf32> {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>)
        -> tensor<1x1x64x64xf32>
  return %o : tensor<1x1x64x64xf32>
}

// -----

// Each result gets its own out-parameter; the repeat is a copy.
// CHECK-LABEL: func.func @twice(
// CHECK-SAME: %{{.*}}: memref<1x2x64x64xf32>, %{{.*}}: memref<1x2x64x64xf32>, %{{.*}}: memref<1x2x64x64xf32>, %[[OUT0:[a-z0-9_]+]]: memref<1x2x64x64xf32>, %[[OUT1:[a-z0-9_]+]]: memref<1x2x64x64xf32>)
// CHECK: gpu.launch_func {{.*}} args({{.*}}%[[OUT0]] : memref<1x2x64x64xf32>)
// CHECK: gpu.launch_func {{.*}} args(%[[OUT0]] : memref<1x2x64x64xf32>, %[[OUT1]] : memref<1x2x64x64xf32>)
// SM80-LABEL: func.func @twice(
// CPU-LABEL: llvm.func @twice(
func.func @twice(%q: tensor<1x2x64x64xf32>, %k: tensor<1x2x64x64xf32>,
                 %v: tensor<1x2x64x64xf32>)
    -> (tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>) {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>)
        -> tensor<1x2x64x64xf32>
  return %o, %o : tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>
}

// -----

// The wgmma and mma.sync kernels, and the copy of the repeated result.
// CHECK-LABEL: func.func @twice_tensor_cores
// CHECK-COUNT-2: gpu.launch_func
// SM80-LABEL: func.func @twice_tensor_cores
// SM80-COUNT-2: gpu.launch_func
func.func @twice_tensor_cores(%q: tensor<1x2x128x64xbf16>)
    -> (tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>) {
  %o = bpt.attention %q, %q, %q causal
      : (tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>)
        -> tensor<1x2x128x64xbf16>
  return %o, %o : tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>
}

// -----

// Kernels outlined from the function are named after it, made PTX
// identifiers.
// CHECK-LABEL: func.func @"my-attention"
// CHECK: gpu.launch_func @bpt_kernels::@my_attention_kernel
// CHECK: gpu.binary @bpt_kernels
// SM80-LABEL: func.func @"my-attention"
// SM80: gpu.launch_func @bpt_kernels::@my_attention_kernel
// CPU-LABEL: llvm.func @"my-attention"
func.func @"my-attention"(%q: tensor<1x2x64x64xf32>) -> tensor<1x2x64x64xf32> {
  %o = bpt.attention %q, %q, %q
      : (tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>)
        -> tensor<1x2x64x64xf32>
  return %o : tensor<1x2x64x64xf32>
}

// -----

// CHECK-LABEL: func.func @"0.start"
// CHECK: gpu.launch_func @bpt_kernels::@_0_start_kernel
// CHECK: gpu.binary @bpt_kernels
func.func @"0.start"(%x: tensor<4x64xf32>, %g: tensor<64xf32>) -> tensor<4x64xf32> {
  %y = bpt.rms_norm %x, %g : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xf32>
  return %y : tensor<4x64xf32>
}

// -----

// An elementwise kernel over 2^46 points (2^44 vectors of 4): the grid is
// capped at CUDA's 2^31 - 1 blocks along x (the threads stride over the
// rest), not 2^36. The first launch (the row sums' zero fill, 2^40 / 4
// vectors) needs no cap.
// CHECK-LABEL: func.func @huge_rows
// CHECK: gpu.launch_func @bpt_kernels::@huge_rows_kernel blocks in (%c1073741824,
// CHECK: %[[GRID:.*]] = arith.constant 2147483647 : index
// CHECK: gpu.launch_func @bpt_kernels::@huge_rows_kernel_0 blocks in (%[[GRID]],
func.func @huge_rows(%x: tensor<1099511627776x64xf32>, %g: tensor<64xf32>)
    -> tensor<1099511627776x64xf32> {
  %y = bpt.rms_norm %x, %g : (tensor<1099511627776x64xf32>, tensor<64xf32>)
      -> tensor<1099511627776x64xf32>
  return %y : tensor<1099511627776x64xf32>
}
