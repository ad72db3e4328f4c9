// RUN: bpt-opt %s --bpt-select-strategy | FileCheck %s
// RUN: bpt-opt %s --bpt-select-strategy=chip=sm_80 | FileCheck %s --check-prefix=SM80
// RUN: bpt-opt %s --bpt-select-strategy="chunk-rows=2048" | FileCheck %s --check-prefix=PINNED

// A lone FFN's chunk on wgmma comes from its GEMMs' waves (chunk-rows 0,
// the default): of the chunkings into at most 4224-row chunks (32 rows a
// multiprocessor on sm_90a's 132), the one whose launches fill their waves
// best, the most chunks among those within 3% of it. The shapes are
// bench/shapes.txt's and the bench's 16k FFNs; the tiles are 128 x 128,
// 264 of them a wave (two blocks a multiprocessor), 132 for a gated GEMM.

// CHECK-LABEL: func.func @shapes
// 4099 rows, 33 row tiles: one chunk. Its down GEMM is 528 tiles (two
// whole waves), where three chunks of 11 row tiles (2048-row chunks
// evened out) each leave two thirds of a wave of K-8192 tiles.
// CHECK: bpt.ffn silu {{.+}}chunk_rows = 4099>
// Gated, 4100 rows: one chunk, 1452 tiles of the gated up GEMM = 11 waves.
// CHECK: bpt.ffn geglu {{.+}}chunk_rows = 4100>
// 2176 rows, 17 row tiles: no chunking fills the waves, but one chunk's
// down GEMM (136 tiles of 128 x 256, K 8192) has its last 4 tiles split
// along K (planTailSplit), which the model prices as a fraction of a wave:
// one chunk.
// CHECK: bpt.ffn gelu {{.+}}chunk_rows = 2176>
// 3000 rows of hidden 1024: one chunk.
// CHECK: bpt.ffn swiglu {{.+}}chunk_rows = 3000>
// 16k rows: eight chunks of 2048 fill their waves as four of 4096 do.
// CHECK: bpt.ffn gelu {{.+}}chunk_rows = 2048>
// Gated 16k rows: four chunks of 4096 (1408 tiles, 11 waves of the gated
// up GEMM each) against eight of 2048 (704 tiles, 6 waves each): 44 waves
// against 48.
// CHECK: bpt.ffn swiglu {{.+}}chunk_rows = 4096>
// CHECK: bpt.ffn gelu {{.+}}chunk_rows = 2048>

// mma.sync keeps chunks of at most 2048 rows, evened out.
// SM80-LABEL: func.func @shapes
// SM80: chunk_rows = 1408>
// SM80: chunk_rows = 1408>
// SM80: chunk_rows = 1152>
// SM80: chunk_rows = 1536>
// SM80: chunk_rows = 2048>
// SM80: chunk_rows = 2048>
// SM80: chunk_rows = 2048>

// A chunk-rows given is the largest chunk, evened out (as on mma.sync).
// PINNED-LABEL: func.func @shapes
// PINNED: chunk_rows = 1408>
// PINNED: chunk_rows = 1408>
// PINNED: chunk_rows = 1152>
// PINNED: chunk_rows = 1536>
// PINNED: chunk_rows = 2048>
// PINNED: chunk_rows = 2048>
// PINNED: chunk_rows = 2048>
func.func @shapes(%a: tensor<1x4099x2048xbf16>, %b: tensor<1x4100x2048xbf16>,
                  %c: tensor<1x2176x2048xbf16>, %d: tensor<3x1000x1024xbf16>,
                  %e: tensor<1x16384x2048xbf16>, %f: tensor<4x16384x2048xbf16>,
                  %wi: tensor<2048x8192xbf16>, %wo: tensor<8192x2048xbf16>,
                  %gi: tensor<2048x5632xbf16>, %go: tensor<5632x2048xbf16>,
                  %gg: tensor<2048x5632xbf16>, %si: tensor<1024x2816xbf16>,
                  %so: tensor<2816x1024xbf16>, %sg: tensor<1024x2816xbf16>) {
  %0 = bpt.ffn silu %a, %wi, %wo
      : (tensor<1x4099x2048xbf16>, tensor<2048x8192xbf16>,
         tensor<8192x2048xbf16>) -> tensor<1x4099x2048xbf16>
  %1 = bpt.ffn geglu %b, %gi, %go, gate %gg
      : (tensor<1x4100x2048xbf16>, tensor<2048x5632xbf16>,
         tensor<5632x2048xbf16>, tensor<2048x5632xbf16>)
      -> tensor<1x4100x2048xbf16>
  %2 = bpt.ffn gelu %c, %wi, %wo
      : (tensor<1x2176x2048xbf16>, tensor<2048x8192xbf16>,
         tensor<8192x2048xbf16>) -> tensor<1x2176x2048xbf16>
  %3 = bpt.ffn swiglu %d, %si, %so, gate %sg
      : (tensor<3x1000x1024xbf16>, tensor<1024x2816xbf16>,
         tensor<2816x1024xbf16>, tensor<1024x2816xbf16>)
      -> tensor<3x1000x1024xbf16>
  %4 = bpt.ffn gelu %e, %wi, %wo
      : (tensor<1x16384x2048xbf16>, tensor<2048x8192xbf16>,
         tensor<8192x2048xbf16>) -> tensor<1x16384x2048xbf16>
  %5 = bpt.ffn swiglu %e, %gi, %go, gate %gg
      : (tensor<1x16384x2048xbf16>, tensor<2048x5632xbf16>,
         tensor<5632x2048xbf16>, tensor<2048x5632xbf16>)
      -> tensor<1x16384x2048xbf16>
  %6 = bpt.ffn gelu %f, %wi, %wo
      : (tensor<4x16384x2048xbf16>, tensor<2048x8192xbf16>,
         tensor<8192x2048xbf16>) -> tensor<4x16384x2048xbf16>
  return
}
