// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_86 --bpt-chunk-ffn --bpt-ffn-to-sm80 --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_80 --bpt-chunk-ffn --bpt-ffn-to-sm80 --verify-diagnostics | FileCheck %s --check-prefix=BIG
// RUN: not bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_86 chunk-rows=100" 2>&1 | FileCheck %s --check-prefix=BAD

// RUN: not bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_86 sm80-gemm-block-n=64" 2>&1 | FileCheck %s --check-prefix=BADN
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_86 sm80-gemm-block-n=128" --bpt-chunk-ffn --bpt-ffn-to-sm80 2>/dev/null | FileCheck %s --check-prefix=NARROW
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_86 chunk-rows=1024" --bpt-chunk-ffn --bpt-ffn-to-sm80 2>/dev/null | FileCheck %s --check-prefix=TAIL

// BAD: error: bpt-select-strategy: chunk-rows must be 0 or a positive multiple of 128, got 100
// BADN: error: bpt-select-strategy: sm80-gemm-block-n must be 0, 128 or 256, got 64
// NARROW-LABEL: func.func @gelu
// NARROW: gpu.launch_func @bpt_sm80::@gemm_sm80_a4096_c2048_n512_k256_gelu_t128x3w4 blocks in (%c4, %c16, %{{.+}}) threads in (%c128,

// 4096 rows in chunks of 2048: per chunk, u = gelu(x[chunk] W_in) into a
// [2048, 512] buffer (never [4096, 512]), then y[chunk] = u W_out, both
// mma.sync GEMMs on plain memrefs; the row offsets are the launches' two
// i32 arguments (A's first row, C's). 128 x 256 tiles (N allows), 256
// threads; 2 stages of 48 KiB fit the default 99 KiB (3 with 163 KiB).
// CHECK-LABEL: func.func @gelu
// CHECK-NOT: bpt.ffn
// CHECK: %[[X:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2]] : memref<2x2048x256xbf16> into memref<4096x256xbf16>
// CHECK: %[[W1:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<256x512xbf16>
// CHECK: %[[W2:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<512x256xbf16>
// CHECK: %[[U:.+]] = memref.alloc() {bpt.buffer_name = "ffn_hidden"} : memref<2048x512xbf16>
// CHECK-NOT: memref.alloc() {{.*}}: memref<4096x512xbf16>
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x2048x256xbf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[OUT]]
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a4096_c2048_n512_k256_gelu_t256x2w8 blocks in (%c2, %c16, %{{.+}}) threads in (%c256, {{.+}} dynamic_shared_memory_size %c98432_i32 args(%[[X]] : memref<4096x256xbf16>, %[[W1]] : memref<256x512xbf16>, %[[U]] : memref<2048x512xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a2048_c4096_n256_k512_t256x2w8 blocks in (%c1{{.*}}, {{.+}} args(%[[U]] : memref<2048x512xbf16>, %[[W2]] : memref<512x256xbf16>, %[[ROWS]] : memref<4096x256xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a4096_c2048_n512_k256_gelu_t256x2w8 {{.+}}, %c2048_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a2048_c4096_n256_k512_t256x2w8 {{.+}}, %c0_i32{{.*}} : i32, %c2048_i32{{.*}} : i32)
// CHECK-NOT: gpu.launch_func
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable

// The GEMM: with 2 stages, 1 slice in flight before the loop; per 64-deep
// slice, wait, barrier, prefetch, then 4 k16 steps of ldmatrix (A),
// ldmatrix.trans (B)
// and 32 mma.sync a warp (a 64 x 64 sub-tile); GELU (erf) in f32 on the
// accumulators, then 4-byte stores of bf16 pairs.
// CHECK: gpu.func @gemm_sm80_a4096_c2048_n512_k256_gelu_t256x2w8(%{{.+}}: memref<4096x256xbf16>, %{{.+}}: memref<256x512xbf16>, %{{.+}}: memref<2048x512xbf16>, %{{.+}}: i32, %{{.+}}: i32) kernel attributes {nvvm.maxntid = array<i32: 256, 1, 1>, nvvm.minctasm = 1 : i32}
// CHECK: nvvm.cp.async.commit.group
// CHECK-NOT: nvvm.cp.async.commit.group
// CHECK: scf.for
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-NEXT: nvvm.barrier0
// CHECK: nvvm.cp.async.commit.group
// CHECK: nvvm.ldmatrix %{{.+}} {{.+}}layout = #nvvm.mma_layout<row>
// CHECK: nvvm.ldmatrix %{{.+}} {{.+}}layout = #nvvm.mma_layout<col>
// CHECK-COUNT-8: nvvm.mma.sync
// CHECK: nvvm.ldmatrix %{{.+}} {{.+}}layout = #nvvm.mma_layout<col>
// CHECK-COUNT-8: nvvm.mma.sync
// CHECK: scf.yield
// CHECK: math.exp2
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : i32, !llvm.ptr<1>
// CHECK: gpu.func @gemm_sm80_a2048_c4096_n256_k512_t256x2w8(
// BIG-LABEL: func.func @gelu
// BIG: gpu.launch_func @bpt_sm80::@gemm_sm80_a4096_c2048_n512_k256_gelu_t256x3w8 {{.+}} dynamic_shared_memory_size %c147584_i32
func.func @gelu(%x: tensor<2x2048x256xbf16>, %w1: tensor<256x512xbf16>,
                %w2: tensor<512x256xbf16>) -> tensor<2x2048x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2x2048x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x2048x256xbf16>
  return %0 : tensor<2x2048x256xbf16>
}

// -----

// A gated activation: W_in and W_gate in one kernel (8 warps of 64 x 32,
// two B tiles a stage, 48 KiB: 2 stages in 99 KiB), silu(x W_gate) *
// (x W_in) in the epilogue.
// CHECK-LABEL: func.func @swiglu
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a256_c256_n384_k128_swiglu_gated_t128x2w8 {{.+}} threads in (%c256, {{.+}} dynamic_shared_memory_size %c98432_i32 args(%{{.+}} : memref<256x128xf16>, %{{.+}} : memref<128x384xf16>, %{{.+}} : memref<128x384xf16>, %{{.+}} : memref<256x384xf16>,
// The second GEMM (not gated, N = 128) takes 4 warps of 64 x 64 and its own
// block size.
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a256_c256_n128_k384_t128x3w4 {{.+}} threads in (%c128,
// CHECK: gpu.func @gemm_sm80_a256_c256_n384_k128_swiglu_gated_t128x2w8(
// CHECK: nvvm.ldmatrix %{{.+}} {{.+}}layout = #nvvm.mma_layout<col>
// CHECK: nvvm.mma.sync {{.+}} : (vector<2xf16>, vector<2xf16>, f32)
// CHECK: scf.yield
// CHECK: math.exp
// CHECK: arith.mulf
func.func @swiglu(%x: tensor<256x128xf16>, %w1: tensor<128x384xf16>,
                  %w2: tensor<384x128xf16>, %wg: tensor<128x384xf16>)
    -> tensor<256x128xf16> {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %wg
      : (tensor<256x128xf16>, tensor<128x384xf16>, tensor<384x128xf16>,
         tensor<128x384xf16>) -> tensor<256x128xf16>
  return %0 : tensor<256x128xf16>
}

// -----

// 1500 rows (not a multiple of 128): grids of 12 row tiles. The copy of A
// zero-fills the rows past the launch's (1500 - m0 from the tile's first)
// instead of reading them (they may lie past A's end), and the epilogue
// stores only rows below them.
// CHECK-LABEL: func.func @ragged
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a1500_c1500_n512_k256_gelu_ragged_t256x2w8 blocks in (%c2{{[_0-9]*}}, %c12{{[_0-9]*}}, %{{.+}})
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a1500_c1500_n256_k512_ragged_t256x2w8 blocks in (%c1{{.*}}, %c12{{[_0-9]*}}, %{{.+}})
// CHECK: gpu.func @gemm_sm80_a1500_c1500_n512_k256_gelu_ragged_t256x2w8(
// CHECK: %[[LEFT:.+]] = arith.subi %c1500_i32{{.*}}, %{{.+}} : i32
// CHECK: %[[VALID:.+]] = arith.cmpi slt, %{{.+}}, %[[LEFT]] : i32
// CHECK: %[[BYTES:.+]] = arith.select %[[VALID]], %c16_i32{{.*}}, %c0_i32{{.*}} : i32
// CHECK: nvvm.cp.async.shared.global %{{.+}}, %{{.+}}, 16, cache = cg, %[[BYTES]]
// CHECK: scf.yield
// CHECK: %[[IN:.+]] = arith.cmpi slt, %{{.+}}, %[[LEFT]] : i32
// CHECK-NEXT: scf.if %[[IN]] {
// CHECK: math.exp2
// CHECK: llvm.store
// With chunk-rows 1024: a chunk of 768 rows, then the tail's 732 through
// the intermediate's leading rows, A's and C's first rows at 768.
// TAIL-LABEL: func.func @ragged
// TAIL: %[[U:.+]] = memref.alloc() {bpt.buffer_name = "ffn_hidden"} : memref<768x512xbf16>
// TAIL: gpu.launch_func @bpt_sm80::@gemm_sm80_a1500_c768_n512_k256_gelu_t256x2w8 blocks in (%c2{{[_0-9]*}}, %c6{{[_0-9]*}}, {{.+}}, %[[U]] : memref<768x512xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// TAIL: gpu.launch_func @bpt_sm80::@gemm_sm80_a768_c1500_n256_k512_t256x2w8 {{.+}} args(%[[U]] : memref<768x512xbf16>, {{.+}}, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// TAIL: %[[SUB:.+]] = memref.subview %[[U]][0, 0] [732, 512] [1, 1]
// TAIL: %[[T:.+]] = memref.cast %[[SUB]] : memref<732x512xbf16, strided<[512, 1]>> to memref<732x512xbf16>
// TAIL: gpu.launch_func @bpt_sm80::@gemm_sm80_a1500_c732_n512_k256_gelu_ragged_t256x2w8 blocks in (%c2{{[_0-9]*}}, %c6{{[_0-9]*}}, {{.+}}, %[[T]] : memref<732x512xbf16>, %c768_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// TAIL: gpu.launch_func @bpt_sm80::@gemm_sm80_a732_c1500_n256_k512_ragged_t256x2w8 {{.+}} args(%[[T]] : memref<732x512xbf16>, {{.+}}, %c0_i32{{.*}} : i32, %c768_i32{{.*}} : i32)
// TAIL-NEXT: bufferization.to_tensor
func.func @ragged(%x: tensor<3x500x256xbf16>, %w1: tensor<256x512xbf16>,
                  %w2: tensor<512x256xbf16>) -> tensor<3x500x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<3x500x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<3x500x256xbf16>
  return %0 : tensor<3x500x256xbf16>
}

// -----

// What the kernel does not cover stays for the portable path, with a
// remark saying why.
// CHECK-LABEL: func.func @not_eligible
// CHECK-COUNT-2: bpt.ffn
// CHECK-NOT: gpu.launch_func
func.func @not_eligible(%x64: tensor<1x128x64xbf16>, %u1: tensor<64x256xbf16>,
                        %u2: tensor<256x64xbf16>, %x32: tensor<1x128x128xf32>,
                        %v1: tensor<128x256xf32>, %v2: tensor<256x128xf32>)
    -> (tensor<1x128x64xbf16>, tensor<1x128x128xf32>) {
  // expected-remark @below {{ffn does not take the mma.sync path: hidden 64 and ffn 256 must be multiples of 128}}
  %0 = bpt.ffn relu %x64, %u1, %u2
      : (tensor<1x128x64xbf16>, tensor<64x256xbf16>, tensor<256x64xbf16>)
      -> tensor<1x128x64xbf16>
  // expected-remark @below {{ffn does not take the mma.sync path: element type f32 (the mma.sync path takes bf16 and f16); allow-tf32 takes f32 FFNs as TF32 on the mma.sync path}}
  %1 = bpt.ffn relu %x32, %v1, %v2
      : (tensor<1x128x128xf32>, tensor<128x256xf32>, tensor<256x128xf32>)
      -> tensor<1x128x128xf32>
  return %0, %1 : tensor<1x128x64xbf16>, tensor<1x128x128xf32>
}
