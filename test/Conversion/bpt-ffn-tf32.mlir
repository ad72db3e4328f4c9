// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=allow-tf32 --bpt-chunk-ffn --bpt-ffn-to-sm80 --verify-diagnostics | FileCheck %s
// The recorded mma.sync strategy on f32 is TF32 without the option too.
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=allow-tf32 --bpt-chunk-ffn --bpt-select-strategy --bpt-ffn-to-sm80 2>/dev/null | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_80 allow-tf32" --bpt-chunk-ffn --bpt-ffn-to-sm80 2>/dev/null | FileCheck %s --check-prefix=SM80
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy 2>&1 | FileCheck %s --check-prefix=OFF

// allow-tf32: an f32 FFN takes the mma.sync GEMMs with TF32 math (f32
// operands rounded to TF32 with cvt.rna, m16n8k8), also on sm_90a, whose
// wgmma would need the weights K-major for TF32. 32 f32 a 128-byte slice
// row: a stage is [128, 32] of A and [32, 256] of B (48 KiB). The
// intermediate and the output stay f32.
// CHECK-LABEL: func.func @gelu
// CHECK: bpt.buffer_name = "ffn_hidden"} : memref<600x512xf32>
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a600_c600_n512_k256_gelu_tf32_ragged_t256x4w8 blocks in (%c2{{.*}}, %c5{{.*}}, %{{.+}}) threads in (%c256{{.*}}, {{.+}} dynamic_shared_memory_size %c196736_i32
// CHECK: gpu.launch_func @bpt_sm80::@gemm_sm80_a600_c600_n256_k512_tf32_ragged_t256x4w8
// CHECK: gpu.func @gemm_sm80_a600_c600_n512_k256_gelu_tf32_ragged_t256x4w8(%{{.+}}: memref<600x256xf32>, %{{.+}}: memref<256x512xf32>, %{{.+}}: memref<600x512xf32>, %{{.+}}: i32, %{{.+}}: i32)
// A fragments from ldmatrix, each word rounded; then B's two words of a
// column tile, rounded, and its four m16n8k8 products.
// CHECK: nvvm.ldmatrix
// CHECK-COUNT-4: "cvt.rna.tf32.f32 $0, $1;"
// CHECK: llvm.load %{{.+}} {alignment = 4 : i64} : !llvm.ptr<3> -> i32
// CHECK: "cvt.rna.tf32.f32 $0, $1;"
// CHECK: llvm.load %{{.+}} {alignment = 4 : i64} : !llvm.ptr<3> -> i32
// CHECK: "cvt.rna.tf32.f32 $0, $1;"
// CHECK-COUNT-4: nvvm.mma.sync {{.+}} multiplicandAPtxType = #nvvm.mma_type<tf32>, multiplicandBPtxType = #nvvm.mma_type<tf32>, shape = #nvvm.shape<m = 16, n = 8, k = 8>}
// CHECK-NOT: nvvm.mma.sync {{.+}} k = 16
// The epilogue stores f32 pairs.
// CHECK: math.exp2
// CHECK: llvm.store %{{.+}} {alignment = 8 : i64} : vector<2xf32>, !llvm.ptr<1>

// sm_80's 163 KiB take three 48 KiB stages.
// SM80: gpu.launch_func @bpt_sm80::@gemm_sm80_a600_c600_n512_k256_gelu_tf32_ragged_t256x3w8

// OFF: remark: ffn does not take the wgmma path: element type f32 (the wgmma path takes bf16 and f16); allow-tf32 takes f32 FFNs as TF32 on the mma.sync path
// OFF: bpt.strategy = #bpt.strategy<portable
func.func @gelu(%x: tensor<2x300x256xf32>, %w1: tensor<256x512xf32>,
                %w2: tensor<512x256xf32>) -> tensor<2x300x256xf32> {
  // expected-remark @below {{ffn does not take the wgmma path: TF32 takes the mma.sync path (wgmma's TF32 needs K-major weights)}}
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2x300x256xf32>, tensor<256x512xf32>, tensor<512x256xf32>)
      -> tensor<2x300x256xf32>
  return %0 : tensor<2x300x256xf32>
}

// -----

// bf16 is unchanged by the option: the wgmma path.
// CHECK-LABEL: func.func @bf16
// CHECK: #bpt.strategy<wgmma
func.func @bf16(%x: tensor<1x128x128xbf16>, %w1: tensor<128x256xbf16>,
                %w2: tensor<256x128xbf16>) -> tensor<1x128x128xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<1x128x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>)
      -> tensor<1x128x128xbf16>
  return %0 : tensor<1x128x128xbf16>
}
