// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_86 --bpt-linear-to-sm80 --verify-diagnostics | FileCheck %s

// One GEMM launch over the [rows, K] view of the input: 128 x 128 tiles of
// 4 warps (384 columns do not divide into 256),
// no activation, rows from 0 (A and C).
// CHECK-LABEL: func.func @linear
// CHECK-NOT: bpt.linear
// CHECK: %[[X:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2]] : memref<2x256x128xf16> into memref<512x128xf16>
// CHECK: %[[W:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<128x384xf16>
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x256x384xf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[OUT]]
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a512_c512_n384_k128_t128x3w4 blocks in (%c3, %c4, %{{.+}}) threads in (%c128, {{.+}} args(%[[X]] : memref<512x128xf16>, %[[W]] : memref<128x384xf16>, %[[ROWS]] : memref<512x384xf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: gpu.func @gemm_sm80_a512_c512_n384_k128_t128x3w4(
// CHECK-NOT: math.
// CHECK: nvvm.mma.sync
func.func @linear(%x: tensor<2x256x128xf16>, %w: tensor<128x384xf16>)
    -> tensor<2x256x384xf16> {
  %0 = bpt.linear %x, %w
      : (tensor<2x256x128xf16>, tensor<128x384xf16>) -> tensor<2x256x384xf16>
  return %0 : tensor<2x256x384xf16>
}

// -----

// CHECK-LABEL: func.func @not_eligible
// CHECK-COUNT-3: bpt.linear
// CHECK-NOT: gpu.launch_func
func.func @not_eligible(%x: tensor<128x128xbf16>, %w: tensor<128x128xbf16>,
                        %b: tensor<128xbf16>, %w96: tensor<128x96xbf16>,
                        %x32: tensor<128x128xf32>, %w32: tensor<128x128xf32>)
    -> (tensor<128x128xbf16>, tensor<128x96xbf16>, tensor<128x128xf32>) {
  // expected-remark @below {{linear does not take the mma.sync path: a bias (the GEMM kernel has no bias epilogue)}}
  %0 = bpt.linear %x, %w, %b
      : (tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128xbf16>)
      -> tensor<128x128xbf16>
  // expected-remark @below {{linear does not take the mma.sync path: N = 96 must be a multiple of 128 and K = 128 of 64}}
  %1 = bpt.linear %x, %w96
      : (tensor<128x128xbf16>, tensor<128x96xbf16>) -> tensor<128x96xbf16>
  // expected-remark @below {{linear does not take the mma.sync path: element type f32 (the mma.sync path takes bf16 and f16)}}
  %2 = bpt.linear %x32, %w32
      : (tensor<128x128xf32>, tensor<128x128xf32>) -> tensor<128x128xf32>
  return %0, %1, %2 : tensor<128x128xbf16>, tensor<128x96xbf16>,
                      tensor<128x128xf32>
}
