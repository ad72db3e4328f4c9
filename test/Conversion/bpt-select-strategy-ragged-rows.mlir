// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chunk-rows=2048 --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chunk-rows=1024 2>/dev/null | FileCheck %s --check-prefix=CHUNK
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_80 2>/dev/null | FileCheck %s --check-prefix=SM80

// Rows that are not multiples of 128 take the tensor-core GEMMs: a
// launch's last row tile is masked. An FFN of up to chunk-rows rows is one
// chunk; above, its chunk makes the fewest chunks of at most chunk-rows
// rows, as equal as whole 128-row tiles allow, and bpt-chunk-ffn makes the
// rows past the last whole chunk one shorter chunk
// (@whole_chunks_and_a_tail).
// CHECK-LABEL: func.func @ffn_rows
// CHECK: bpt.ffn {{.*}}bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 600>
// CHECK: bpt.ffn {{.*}}bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 1500>
// CHECK: bpt.ffn {{.*}}bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 1>
// CHECK: bpt.ffn {{.*}}bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 77>
// CHUNK-LABEL: func.func @ffn_rows
// CHUNK: chunk_rows = 600>
// CHUNK: chunk_rows = 768>
// SM80-LABEL: func.func @ffn_rows
// SM80: bpt.ffn {{.*}}bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", chunk_rows = 600>
// SM80: chunk_rows = 1500>
// SM80: chunk_rows = 1>
// SM80: chunk_rows = 77>
func.func @ffn_rows(%a: tensor<1x600x256xbf16>, %b: tensor<3x500x256xbf16>,
                    %c: tensor<1x1x256xbf16>, %d: tensor<77x256xbf16>,
                    %w1: tensor<256x512xbf16>, %w2: tensor<512x256xbf16>)
    -> (tensor<1x600x256xbf16>, tensor<3x500x256xbf16>, tensor<1x1x256xbf16>,
        tensor<77x256xbf16>) {
  %0 = bpt.ffn gelu %a, %w1, %w2
      : (tensor<1x600x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<1x600x256xbf16>
  %1 = bpt.ffn gelu %b, %w1, %w2
      : (tensor<3x500x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<3x500x256xbf16>
  %2 = bpt.ffn gelu %c, %w1, %w2
      : (tensor<1x1x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<1x1x256xbf16>
  %3 = bpt.ffn gelu %d, %w1, %w2
      : (tensor<77x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<77x256xbf16>
  return %0, %1, %2, %3 : tensor<1x600x256xbf16>, tensor<3x500x256xbf16>,
                          tensor<1x1x256xbf16>, tensor<77x256xbf16>
}

// -----

// 4100 rows take three chunks of at most 2048: two of 1408 (11 row tiles)
// and a tail of 1284 (11), 33 row tiles, the fewest 4100 rows take; with
// chunk-rows 1024, four of 896 and a tail of 516. A prime row count is no
// different, and no remark is made.
// CHECK-LABEL: func.func @whole_chunks_and_a_tail
// CHECK: chunk_rows = 1408>
// CHECK: chunk_rows = 1408>
// CHUNK-LABEL: func.func @whole_chunks_and_a_tail
// CHUNK: chunk_rows = 896>
func.func @whole_chunks_and_a_tail(%x: tensor<4100x256xbf16>,
                                   %p: tensor<4099x256xbf16>,
                                   %w1: tensor<256x512xbf16>,
                                   %w2: tensor<512x256xbf16>)
    -> (tensor<4100x256xbf16>, tensor<4099x256xbf16>) {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<4100x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<4100x256xbf16>
  %1 = bpt.ffn gelu %p, %w1, %w2
      : (tensor<4099x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<4099x256xbf16>
  return %0, %1 : tensor<4100x256xbf16>, tensor<4099x256xbf16>
}

// -----

// 17 row tiles (2176 rows): a chunk of 1152 and a tail of 1024, not 17
// chunks of 128 (the largest multiple of 128 dividing them), whose
// launches would each fill a fraction of the GPU.
// CHECK-LABEL: func.func @seventeen_row_tiles
// CHECK: chunk_rows = 1152>
func.func @seventeen_row_tiles(%x: tensor<1x2176x256xbf16>,
                               %w1: tensor<256x512xbf16>,
                               %w2: tensor<512x256xbf16>)
    -> tensor<1x2176x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<1x2176x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<1x2176x256xbf16>
  return %0 : tensor<1x2176x256xbf16>
}

// -----

// At most 1024 chunks are unrolled (the tail counts): 2100000 rows in
// chunks of 2048 would be 1026, so the chunk is raised to the multiple of
// 128 that gives 1024 (966 with 2176, the tail included).
// CHECK-LABEL: func.func @many_ragged_chunks
// CHECK: chunk_rows = 2176>
func.func @many_ragged_chunks(%x: tensor<2100000x128xbf16>,
                              %w1: tensor<128x128xbf16>,
                              %w2: tensor<128x128xbf16>)
    -> tensor<2100000x128xbf16> {
  // expected-remark @below {{chunk rows raised from 2048 to 2176: at most 1024 chunks are unrolled into launches}}
  %0 = bpt.ffn relu %x, %w1, %w2
      : (tensor<2100000x128xbf16>, tensor<128x128xbf16>, tensor<128x128xbf16>)
      -> tensor<2100000x128xbf16>
  return %0 : tensor<2100000x128xbf16>
}

// -----

// Projections: the wgmma GEMM on sm_90a, the mma.sync one on sm_80, at any
// row count; columns keep their rules (N a multiple of 128, K of 64).
// CHECK-LABEL: func.func @linear_rows
// CHECK: bpt.linear {{.*}}bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 9>
// CHECK: bpt.linear {{.*}}bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 9>
// CHECK: bpt.linear {{.*}}bpt.strategy = #bpt.strategy<portable, chip = "sm_90a">
// SM80-LABEL: func.func @linear_rows
// SM80: bpt.linear {{.*}}bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80">
// SM80: bpt.linear {{.*}}bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80">
// SM80: bpt.linear {{.*}}bpt.strategy = #bpt.strategy<portable, chip = "sm_80">
func.func @linear_rows(%x: tensor<2x300x256xbf16>, %one: tensor<1x256xf16>,
                       %w: tensor<256x384xbf16>, %wh: tensor<256x128xf16>,
                       %w96: tensor<256x96xbf16>)
    -> (tensor<2x300x384xbf16>, tensor<1x128xf16>, tensor<2x300x96xbf16>) {
  %0 = bpt.linear %x, %w
      : (tensor<2x300x256xbf16>, tensor<256x384xbf16>) -> tensor<2x300x384xbf16>
  %1 = bpt.linear %one, %wh
      : (tensor<1x256xf16>, tensor<256x128xf16>) -> tensor<1x128xf16>
  // expected-remark @below {{linear does not take the wgmma path: N = 96 must be a multiple of 128 and K = 256 of 64}}
  %2 = bpt.linear %x, %w96
      : (tensor<2x300x256xbf16>, tensor<256x96xbf16>) -> tensor<2x300x96xbf16>
  return %0, %1, %2 : tensor<2x300x384xbf16>, tensor<1x128xf16>,
                      tensor<2x300x96xbf16>
}
