// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chunk-rows=2048 --bpt-chunk-ffn --bpt-ffn-to-sm90 --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chunk-rows=1024 --bpt-chunk-ffn --bpt-ffn-to-sm90 --verify-diagnostics | FileCheck %s --check-prefix=CHUNK
// The strategies recorded on a chunk loop and its tail are what selection
// chooses again (a second run checks them).
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chunk-rows=1024 --bpt-chunk-ffn --bpt-select-strategy --bpt-ffn-to-sm90 --verify-diagnostics | FileCheck %s --check-prefix=CHUNK
// RUN: not bpt-opt %s --split-input-file --bpt-select-strategy="chunk-rows=100" 2>&1 | FileCheck %s --check-prefix=BAD

// 4096 rows in chunks of 2048: per chunk, u = gelu(x[chunk] W_in) into a
// [2048, 512] buffer (never [4096, 512]), then y[chunk] = u W_out. The row
// offsets are the launches' two i32 arguments (A's first row, C's).
// CHECK-LABEL: func.func @gelu
// CHECK-NOT: bpt.ffn
// CHECK: memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2]] : memref<2x2048x256xbf16> into memref<4096x256xbf16>
// CHECK: nvgpu.tma.create.descriptor
// CHECK: %[[U:.+]] = memref.alloc() {bpt.buffer_name = "ffn_hidden"} : memref<2048x512xbf16>
// CHECK-NOT: memref.alloc() {{.*}}: memref<4096x512xbf16>
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x2048x256xbf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[OUT]]
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a4096_c2048_n512_k256_gelu blocks in (%c4, %c16, %{{.+}}) threads in (%c288, {{.+}} args({{.+}}, %[[U]] : memref<2048x512xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a2048_c4096_n256_k512 {{.+}} args({{.+}}, %[[ROWS]] : memref<4096x256xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a4096_c2048_n512_k256_gelu {{.+}}, %c2048_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a2048_c4096_n256_k512 {{.+}}, %c0_i32{{.*}} : i32, %c2048_i32{{.*}} : i32)
// CHECK-NOT: gpu.launch_func
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable

// The GEMM (by default 128-wide tiles in three stages, two blocks a
// multiprocessor: 288 threads, the two consumer warpgroups then one
// producer warp, no setmaxnreg); 4 k16 steps per 64-wide K block, B
// transposed (MN-major, layout row); GELU (erf) on the accumulators before
// the one rounding, staged through shared memory; then the producer's TMA
// loads.
// CHECK: gpu.func @gemm_sm90_a4096_c2048_n512_k256_gelu({{.+}}, %{{.+}}: memref<2048x512xbf16>, %{{.+}}: i32, %{{.+}}: i32) kernel attributes {nvvm.maxntid = array<i32: 288, 1, 1>, nvvm.minctasm = 2
// CHECK-NOT: nvvm.setmaxregister
// CHECK: arith.cmpi ult, %{{.+}}, %c256_i32
// CHECK-COUNT-4: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 128, k = 16>, D[<f32>, <one>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <row>]
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// CHECK: nvvm.mbarrier.arrive
// GELU in the epilogue's form (bpt/Conversion/EpilogueActivation.h): one
// exp2 (flush-to-zero allowed: afn) of a polynomial in min(|x|, 5), no erf.
// CHECK-NOT: math.erf
// CHECK: %[[ABS:.+]] = math.absf
// CHECK: %[[CLAMP:.+]] = arith.minimumf %[[ABS]], %cst{{.*}} : f32
// CHECK-COUNT-8: math.fma
// CHECK: %[[SQUARE:.+]] = arith.mulf %[[ABS]], %[[ABS]] : f32
// CHECK: %[[EXPONENT:.+]] = math.fma %[[SQUARE]]
// CHECK: %[[TAIL:.+]] = math.exp2 %[[EXPONENT]] fastmath<afn> : f32
// CHECK: %[[RELU:.+]] = arith.maximumf
// CHECK: %[[NEG:.+]] = arith.negf %[[CLAMP]] : f32
// CHECK: math.fma %[[NEG]], %[[TAIL]], %[[RELU]] : f32
// CHECK-NOT: math.erf
// CHECK: llvm.store {{.+}} : i32, !llvm.ptr<3>
// CHECK: llvm.store {{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr
// CHECK: arith.cmpi eq, %{{.+}}, %c256_i32
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c32768_i32
// CHECK-COUNT-3: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: gpu.func @gemm_sm90_a2048_c4096_n256_k512(
// CHECK-NOT: math.erf
// CHECK: gpu.return

// CHUNK-LABEL: func.func @gelu
// CHUNK: memref.alloc() {bpt.buffer_name = "ffn_hidden"} : memref<1024x512xbf16>
// CHUNK-COUNT-8: gpu.launch_func

// BAD: error: bpt-select-strategy: chunk-rows must be 0 or a positive multiple of 128, got 100

func.func @gelu(%x: tensor<2x2048x256xbf16>, %w1: tensor<256x512xbf16>,
                %w2: tensor<512x256xbf16>) -> tensor<2x2048x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2x2048x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x2048x256xbf16>
  return %0 : tensor<2x2048x256xbf16>
}

// -----

// 1500 rows (not a multiple of 128): one chunk, grids of 12 row tiles. TMA
// reads A's rows past the tensor maps' (x: 1500 rows; the intermediate:
// 1500) as zeros; each consumer thread stores its two rows only where they
// are below the rows left from the tile's first (1500 - m0). With
// chunk-rows 1024, two chunks as equal as whole row tiles allow: one of 768
// rows and a tail of 732, whose intermediate is the leading rows of the
// chunk's, whose GEMMs are kernels of 732 rows (ragged), the first rows of
// A and C at 768.
// CHECK-LABEL: func.func @ragged
// CHECK: memref.alloc() {bpt.buffer_name = "ffn_hidden"} : memref<1500x512xbf16>
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a1500_c1500_n512_k256_gelu_ragged blocks in (%c4{{[_0-9]*}}, %c12{{[_0-9]*}}, %{{.+}})
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a1500_c1500_n256_k512_ragged blocks in (%c2{{[_0-9]*}}, %c12{{[_0-9]*}}, %{{.+}})
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.func @gemm_sm90_a1500_c1500_n512_k256_gelu_ragged(
// CHECK: %[[LEFT:.+]] = arith.subi %c1500_i32{{.*}}, %{{.+}} : i32
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// CHECK: %[[IN:.+]] = arith.cmpi slt, %{{.+}}, %[[LEFT]] : i32
// CHECK-NEXT: scf.if %[[IN]] {
// CHECK: math.exp2
// CHECK: llvm.store
// CHUNK-LABEL: func.func @ragged
// CHUNK: %[[U:.+]] = memref.alloc() {bpt.buffer_name = "ffn_hidden"} : memref<768x512xbf16>
// CHUNK: gpu.launch_func @bpt_sm90::@gemm_sm90_a1500_c768_n512_k256_gelu blocks in (%c4{{[_0-9]*}}, %c6{{[_0-9]*}}, %{{.+}}) {{.+}}, %[[U]] : memref<768x512xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHUNK: gpu.launch_func @bpt_sm90::@gemm_sm90_a768_c1500_n256_k512 blocks in (%c2{{[_0-9]*}}, %c6{{[_0-9]*}}, %{{.+}}) {{.+}}, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHUNK: %[[SUB:.+]] = memref.subview %[[U]][0, 0] [732, 512] [1, 1]
// CHUNK: %[[TAIL:.+]] = memref.cast %[[SUB]] : memref<732x512xbf16, strided<[512, 1]>> to memref<732x512xbf16>
// CHUNK: %[[TAILANY:.+]] = memref.cast %[[TAIL]] : memref<732x512xbf16> to memref<*xbf16>
// CHUNK: %[[TAILMAP:.+]] = nvgpu.tma.create.descriptor %[[TAILANY]]
// CHUNK: gpu.launch_func @bpt_sm90::@gemm_sm90_a1500_c732_n512_k256_gelu_ragged blocks in (%c4{{[_0-9]*}}, %c6{{[_0-9]*}}, %{{.+}}) {{.+}}, %[[TAIL]] : memref<732x512xbf16>, %c768_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHUNK: gpu.launch_func @bpt_sm90::@gemm_sm90_a732_c1500_n256_k512_ragged blocks in (%c2{{[_0-9]*}}, %c6{{[_0-9]*}}, {{.+}} args(%[[TAILMAP]] : {{.+}}, %c0_i32{{.*}} : i32, %c768_i32{{.*}} : i32)
// CHUNK-NEXT: bufferization.to_tensor
func.func @ragged(%x: tensor<3x500x256xbf16>, %w1: tensor<256x512xbf16>,
                  %w2: tensor<512x256xbf16>) -> tensor<3x500x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<3x500x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<3x500x256xbf16>
  return %0 : tensor<3x500x256xbf16>
}

// -----

// What the GEMM path does not cover stays for the portable path, with a
// remark saying why.
// CHECK-LABEL: func.func @not_eligible
// CHECK-COUNT-2: bpt.ffn
// CHECK-NOT: gpu.launch_func
func.func @not_eligible(%x64: tensor<1x128x64xbf16>, %u1: tensor<64x256xbf16>,
                        %u2: tensor<256x64xbf16>, %x32: tensor<1x128x128xf32>,
                        %v1: tensor<128x256xf32>, %v2: tensor<256x128xf32>)
    -> (tensor<1x128x64xbf16>, tensor<1x128x128xf32>) {
  // expected-remark @below {{ffn does not take the wgmma path: hidden 64 and ffn 256 must be multiples of 128}}
  %0 = bpt.ffn relu %x64, %u1, %u2
      : (tensor<1x128x64xbf16>, tensor<64x256xbf16>, tensor<256x64xbf16>)
      -> tensor<1x128x64xbf16>
  // expected-remark @below {{ffn does not take the wgmma path: element type f32 (the wgmma path takes bf16 and f16); allow-tf32 takes f32 FFNs as TF32 on the mma.sync path}}
  %1 = bpt.ffn relu %x32, %v1, %v2
      : (tensor<1x128x128xf32>, tensor<128x256xf32>, tensor<256x128xf32>)
      -> tensor<1x128x128xf32>
  return %0, %1 : tensor<1x128x64xbf16>, tensor<1x128x128xf32>
}

// -----

// SwiGLU: the first GEMM takes W_in and W_gate (a third tensor map), keeps
// two accumulators and writes silu(x W_gate) * (x W_in); 128-wide tiles,
// 4 stages of 48 KiB.
// CHECK-LABEL: func.func @swiglu
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c128_n256_k128_swiglu_gated_t128x4 {{.+}} args(%{{.+}} : {{.+}}, %{{.+}} : {{.+}}, %{{.+}} : {{.+}}, %{{.+}} : memref<128x256xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.func @gemm_sm90_a128_c128_n256_k128_swiglu_gated_t128x4(
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c49152_i32
// CHECK-COUNT-5: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK-COUNT-8: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 128, k = 16>
// CHECK: math.exp
// CHECK: arith.mulf
func.func @swiglu(%x: tensor<1x128x128xbf16>, %w1: tensor<128x256xbf16>,
                  %w2: tensor<256x128xbf16>) -> tensor<1x128x128xbf16> {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %w1
      : (tensor<1x128x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<128x256xbf16>) -> tensor<1x128x128xbf16>
  return %0 : tensor<1x128x128xbf16>
}
