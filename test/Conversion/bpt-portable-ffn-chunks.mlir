// A portable FFN of more rows than a chunk goes by chunks of rows, so that
// its [rows, ffn] f32 intermediates (two for a gated FFN) exist one chunk
// at a time: bpt-select-strategy records the chunk rows (chunk-rows, 2048
// by default, raised so that at most 1024 chunks are unrolled) and
// bpt-convert-to-linalg unrolls the chunks, each slice of rows through
// the whole FFN and into its rows of the result. The CPU runs it in
// test/CPU/ffn-portable-chunks.mlir.

// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chunk-rows=256" | FileCheck %s --check-prefix=SELECT
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy | FileCheck %s --check-prefix=DEFAULT
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chunk-rows=256" --bpt-convert-to-linalg | FileCheck %s --check-prefix=LINALG
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chunk-rows=128" 2>&1 >/dev/null | FileCheck %s --check-prefix=RAISED

// f32 (the tensor cores take f32 FFNs only with allow-tf32): 600 rows in
// chunks of 256, 256 and 88.
// SELECT-LABEL: func.func @swiglu_f32
// SELECT: bpt.ffn swiglu {{.*}}{bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", chunk_rows = 256>}
// Fewer rows than the default chunk: the whole op.
// DEFAULT-LABEL: func.func @swiglu_f32
// DEFAULT: bpt.ffn swiglu {{.*}}{bpt.strategy = #bpt.strategy<portable, chip = "sm_90a">}
// LINALG-LABEL: func.func @swiglu_f32
// LINALG-NOT: tensor<600x320xf32>
// LINALG: tensor.extract_slice %{{.*}}[0, 0] [256, 64] [1, 1] : tensor<600x64xf32> to tensor<256x64xf32>
// LINALG: linalg.generic {{.*}} outs(%{{.*}} : tensor<256x320xf32>)
// LINALG: tensor.insert_slice %{{.*}} into %{{.*}}[0, 0] [256, 64] [1, 1]
// LINALG: tensor.extract_slice %{{.*}}[256, 0] [256, 64] [1, 1]
// LINALG: tensor.insert_slice %{{.*}} into %{{.*}}[256, 0] [256, 64] [1, 1]
// LINALG: tensor.extract_slice %{{.*}}[512, 0] [88, 64] [1, 1] : tensor<600x64xf32> to tensor<88x64xf32>
// LINALG: linalg.generic {{.*}} outs(%{{.*}} : tensor<88x320xf32>)
// LINALG: tensor.insert_slice %{{.*}} into %{{.*}}[512, 0] [88, 64] [1, 1]
// LINALG-NOT: tensor<600x320xf32>
// LINALG: return
func.func @swiglu_f32(%x: tensor<2x300x64xf32>, %w1: tensor<64x320xf32>,
                      %w2: tensor<320x64xf32>, %g: tensor<64x320xf32>)
    -> tensor<2x300x64xf32> {
  %y = bpt.ffn swiglu %x, %w1, %w2, gate %g
      : (tensor<2x300x64xf32>, tensor<64x320xf32>, tensor<320x64xf32>,
         tensor<64x320xf32>) -> tensor<2x300x64xf32>
  return %y : tensor<2x300x64xf32>
}

// -----

// bf16 with an FFN width the wgmma GEMMs do not take (not a multiple of
// 128): portable, chunked all the same.
// SELECT-LABEL: func.func @gelu_bf16_width_320
// SELECT: bpt.ffn gelu {{.*}}{bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", chunk_rows = 256>}
func.func @gelu_bf16_width_320(%x: tensor<512x128xbf16>,
                               %w1: tensor<128x320xbf16>,
                               %w2: tensor<320x128xbf16>)
    -> tensor<512x128xbf16> {
  %y = bpt.ffn gelu %x, %w1, %w2
      : (tensor<512x128xbf16>, tensor<128x320xbf16>, tensor<320x128xbf16>)
        -> tensor<512x128xbf16>
  return %y : tensor<512x128xbf16>
}

// -----

// 131200 rows in chunks of 128 would be 1025 unrolled chunks: raised to
// 256 (whole 128-row steps), with a remark.
// RAISED: remark: chunk rows raised from 128 to 256: at most 1024 chunks are unrolled
// SELECT-LABEL: func.func @many_rows
// SELECT: bpt.ffn relu {{.*}}{bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", chunk_rows = 256>}
func.func @many_rows(%x: tensor<131200x8xf32>, %w1: tensor<8x16xf32>,
                     %w2: tensor<16x8xf32>) -> tensor<131200x8xf32> {
  %y = bpt.ffn relu %x, %w1, %w2
      : (tensor<131200x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>)
        -> tensor<131200x8xf32>
  return %y : tensor<131200x8xf32>
}
