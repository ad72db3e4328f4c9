// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="sm90-gemm-stages=3 chunk-rows=2048" --bpt-chunk-ffn --bpt-ffn-to-sm90 | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chunk-rows=2048 --bpt-chunk-ffn --bpt-ffn-to-sm90 | FileCheck %s --check-prefix=DEFAULT
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="sm90-gemm-stages=2 chunk-rows=2048" --bpt-chunk-ffn --bpt-ffn-to-sm90 | FileCheck %s --check-prefix=TWO
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="sm90-gemm-stages=4 chunk-rows=2048" --bpt-chunk-ffn --bpt-ffn-to-sm90 | FileCheck %s --check-prefix=ONE

// Three stages of 32 KiB (128-wide tiles) fit twice in a multiprocessor's
// shared memory, the default tiling where the epilogue allows it (so the
// kernels' names carry no tiling): the GEMM kernels take 288 threads (two consumer
// warpgroups, then one producer warp), two blocks a multiprocessor, no
// setmaxnreg (ptxas would size every role by the 80 registers a
// 384-thread block starts with at two a multiprocessor).
// CHECK-LABEL: func.func @gelu
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a4096_c2048_n512_k256_gelu blocks in (%c4, %c16, %{{.+}}) threads in (%c288,
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a2048_c4096_n256_k512 blocks in (%c2{{.*}}, %c16{{.*}}, %{{.+}}) threads in (%c288{{.*}},
// CHECK: gpu.func @gemm_sm90_a4096_c2048_n512_k256_gelu({{.+}}) kernel attributes {nvvm.maxntid = array<i32: 288, 1, 1>, nvvm.minctasm = 2 : i32}
// CHECK-NOT: nvvm.setmaxregister
// The consumers are threads 0 to 255, the producer thread 256.
// CHECK: arith.cmpi ult, %{{.+}}, %c256_i32
// CHECK: nvvm.wgmma.mma_async
// CHECK: arith.cmpi eq, %{{.+}}, %c256_i32
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: gpu.func @gemm_sm90_a2048_c4096_n256_k512({{.+}}) kernel attributes {nvvm.maxntid = array<i32: 288, 1, 1>, nvvm.minctasm = 2 : i32}
// CHECK-NOT: nvvm.setmaxregister

// DEFAULT-LABEL: func.func @gelu
// DEFAULT: gpu.launch_func @bpt_sm90::@gemm_sm90_a4096_c2048_n512_k256_gelu blocks in ({{.+}}) threads in (%c288,
// DEFAULT: gpu.launch_func @bpt_sm90::@gemm_sm90_a2048_c4096_n256_k512 blocks in ({{.+}}) threads in (%c288{{.*}},
// The gated GEMM keeps as many stages as fit (four), one block, by default.
// DEFAULT-LABEL: func.func @swiglu
// DEFAULT: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c128_n256_k128_swiglu_gated_t128x4 {{.+}} threads in (%c384,
// DEFAULT: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c128_n128_k256 {{.+}} threads in (%c288,

// TWO: gpu.launch_func @bpt_sm90::@gemm_sm90_a4096_c2048_n512_k256_gelu_t128x2_b2 {{.+}} threads in (%c288,

// Four stages fit once: one 384-thread block a multiprocessor.
// ONE: gpu.launch_func @bpt_sm90::@gemm_sm90_a4096_c2048_n512_k256_gelu_t128x4 {{.+}} threads in (%c384,
// ONE: gpu.func @gemm_sm90_a4096_c2048_n512_k256_gelu_t128x4({{.+}}) kernel attributes {nvvm.maxntid = array<i32: 384, 1, 1>, nvvm.minctasm = 1 : i32}
// ONE: nvvm.setmaxregister decrease 24
func.func @gelu(%x: tensor<2x2048x256xbf16>, %w1: tensor<256x512xbf16>,
                %w2: tensor<512x256xbf16>) -> tensor<2x2048x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2x2048x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x2048x256xbf16>
  return %0 : tensor<2x2048x256xbf16>
}

// -----

// A gated GEMM holds two accumulators (128 registers a consumer thread):
// one block a multiprocessor at any stage count; its down GEMM takes two.
// CHECK-LABEL: func.func @swiglu
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c128_n256_k128_swiglu_gated_t128x3 {{.+}} threads in (%c384,
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c128_n128_k256 {{.+}} threads in (%c288,
// CHECK: gpu.func @gemm_sm90_a128_c128_n256_k128_swiglu_gated_t128x3({{.+}}) kernel attributes {nvvm.maxntid = array<i32: 384, 1, 1>, nvvm.minctasm = 1 : i32}
// CHECK: nvvm.setmaxregister decrease 24
func.func @swiglu(%x: tensor<1x128x128xbf16>, %w1: tensor<128x256xbf16>,
                  %wg: tensor<128x256xbf16>, %w2: tensor<256x128xbf16>)
    -> tensor<1x128x128xbf16> {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %wg
      : (tensor<1x128x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<128x256xbf16>) -> tensor<1x128x128xbf16>
  return %0 : tensor<1x128x128xbf16>
}
