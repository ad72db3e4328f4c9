// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --bpt-linear-to-sm90 --verify-diagnostics | FileCheck %s

// One wgmma GEMM launch over the [rows, K] view of the input, with TMA
// descriptors of it (128-row boxes) and of the weight (64-row boxes):
// 128-wide tiles, no activation, rows from 0 (A and C).
// CHECK-LABEL: func.func @linear
// CHECK-NOT: bpt.linear
// CHECK: %[[X:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2]] : memref<2x256x128xbf16> into memref<512x128xbf16>
// CHECK: %[[XMAP:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c128, %c64]
// CHECK: %[[WMAP:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c64{{.*}}, %c64{{.*}}]
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x256x384xbf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[OUT]]
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a512_c512_n384_k128 blocks in (%c3{{[_0-9]*}}, %c4{{[_0-9]*}}, %{{.+}}) threads in (%c384, {{.+}} args(%[[XMAP]] : {{.+}}, %[[WMAP]] : {{.+}}, %[[ROWS]] : memref<512x384xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: gpu.func @gemm_sm90_a512_c512_n384_k128(
// CHECK-NOT: scf.if {{.*}}slt
// CHECK-NOT: math.
// CHECK: nvvm.wgmma.mma_async
// CHECK: gpu.return
func.func @linear(%x: tensor<2x256x128xbf16>, %w: tensor<128x384xbf16>)
    -> tensor<2x256x384xbf16> {
  %0 = bpt.linear %x, %w
      : (tensor<2x256x128xbf16>, tensor<128x384xbf16>) -> tensor<2x256x384xbf16>
  return %0 : tensor<2x256x384xbf16>
}

// -----

// 77 rows: one row tile, whose rows past 77 TMA reads as zeros (the input's
// tensor map is 77 rows high) and the epilogue does not store: each
// consumer thread tests its two rows against the rows left from the tile's
// first (77 - m0).
// CHECK-LABEL: func.func @ragged
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a77_c77_n128_k256_ragged blocks in (%c1{{[_0-9]*}}, %c1{{[_0-9]*}}, %{{.+}})
// CHECK: gpu.func @gemm_sm90_a77_c77_n128_k256_ragged(
// CHECK: %[[LEFT:.+]] = arith.subi %c77_i32, %{{.+}} : i32
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// CHECK: %[[IN:.+]] = arith.cmpi slt, %{{.+}}, %[[LEFT]] : i32
// CHECK-NEXT: scf.if %[[IN]] {
// CHECK-COUNT-16: llvm.store
// CHECK: %[[IN2:.+]] = arith.cmpi slt, %{{.+}}, %[[LEFT]] : i32
// CHECK-NEXT: scf.if %[[IN2]] {
// CHECK-COUNT-16: llvm.store
// CHECK: gpu.return
func.func @ragged(%x: tensor<77x256xf16>, %w: tensor<256x128xf16>)
    -> tensor<77x128xf16> {
  %0 = bpt.linear %x, %w
      : (tensor<77x256xf16>, tensor<256x128xf16>) -> tensor<77x128xf16>
  return %0 : tensor<77x128xf16>
}

// -----

// CHECK-LABEL: func.func @not_eligible
// CHECK-COUNT-3: bpt.linear
// CHECK-NOT: gpu.launch_func
func.func @not_eligible(%x: tensor<128x128xbf16>, %w: tensor<128x128xbf16>,
                        %b: tensor<128xbf16>, %x96: tensor<128x96xbf16>,
                        %w96: tensor<96x128xbf16>, %x32: tensor<128x128xf32>,
                        %w32: tensor<128x128xf32>)
    -> (tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128x128xf32>) {
  // expected-remark @below {{linear does not take the wgmma path: a bias (the GEMM kernel has no bias epilogue)}}
  %0 = bpt.linear %x, %w, %b
      : (tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128xbf16>)
      -> tensor<128x128xbf16>
  // expected-remark @below {{linear does not take the wgmma path: N = 128 must be a multiple of 128 and K = 96 of 64}}
  %1 = bpt.linear %x96, %w96
      : (tensor<128x96xbf16>, tensor<96x128xbf16>) -> tensor<128x128xbf16>
  // expected-remark @below {{linear does not take the wgmma path: element type f32 (the wgmma path takes bf16 and f16)}}
  %2 = bpt.linear %x32, %w32
      : (tensor<128x128xf32>, tensor<128x128xf32>) -> tensor<128x128xf32>
  return %0, %1, %2 : tensor<128x128xbf16>, tensor<128x128xbf16>,
                      tensor<128x128xf32>
}
