// An FFN whose strategy takes a tensor-core path is, at the blockwise
// level, a loop over chunks of rows with the FFN of one chunk in its body
// (#bpt.chunk_loop<ffn>): the loop that bpt-ffn-to-sm90 / -sm80 map to GEMM
// launches. The CPU runs the same loop; checked here against the float64
// reference (bpt-cpu-run, random inputs).

// RUN: rm -rf %t && split-file %s %t

//--- wgmma_gelu.mlir
// wgmma, bf16, [2, 256, 256] in 4 chunks of 128 rows.
// RUN: bpt-opt %t/wgmma_gelu.mlir --bpt-blockwise="tensor-cores=false" | FileCheck %s --check-prefix=LOOP
// RUN: bpt-cpu-run %t/wgmma_gelu.mlir --seed=71 | FileCheck %s --check-prefix=GELU
// GELU: output 0 tensor<2x256x256xbf16>: relative error {{.*}}: PASS
// GELU: {{^PASS$}}
func.func @wgmma_gelu(%x: tensor<2x256x256xbf16>, %w1: tensor<256x512xbf16>,
                      %w2: tensor<512x256xbf16>) -> tensor<2x256x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2 {bpt.strategy = #bpt.strategy<wgmma,
      chip = "sm_90a", chunk_rows = 128>}
      : (tensor<2x256x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x256x256xbf16>
  return %0 : tensor<2x256x256xbf16>
}

//--- mma_sync_swiglu.mlir
// mma.sync (chosen by hand on sm_90a), gated, f16, [384, 128] rows in 3
// chunks.
// RUN: bpt-opt %t/mma_sync_swiglu.mlir --bpt-blockwise="tensor-cores=false" | FileCheck %s --check-prefix=LOOP
// RUN: bpt-cpu-run %t/mma_sync_swiglu.mlir --seed=72 | FileCheck %s --check-prefix=SWIGLU
// SWIGLU: output 0 tensor<384x128xf16>: relative error {{.*}}: PASS
// SWIGLU: {{^PASS$}}
func.func @mma_sync_swiglu(%x: tensor<384x128xf16>, %w1: tensor<128x256xf16>,
                           %w2: tensor<256x128xf16>, %w3: tensor<128x256xf16>)
    -> tensor<384x128xf16> {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %w3 {bpt.strategy =
      #bpt.strategy<mma_sync, chip = "sm_90a", chunk_rows = 128>}
      : (tensor<384x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>,
         tensor<128x256xf16>) -> tensor<384x128xf16>
  return %0 : tensor<384x128xf16>
}

//--- wgmma_ragged.mlir
// wgmma, 300 rows (not a multiple of 128) in 2 chunks of 150: on the GPU
// each chunk's last row tile is masked; the loop is the same.
// RUN: bpt-opt %t/wgmma_ragged.mlir --bpt-blockwise="tensor-cores=false" | FileCheck %s --check-prefix=LOOP
// RUN: bpt-cpu-run %t/wgmma_ragged.mlir --seed=73 | FileCheck %s --check-prefix=RAGGED
// RAGGED: output 0 tensor<3x100x128xbf16>: relative error {{.*}}: PASS
// RAGGED: {{^PASS$}}
func.func @wgmma_ragged(%x: tensor<3x100x128xbf16>, %w1: tensor<128x256xbf16>,
                        %w2: tensor<256x128xbf16>) -> tensor<3x100x128xbf16> {
  %0 = bpt.ffn silu %x, %w1, %w2 {bpt.strategy = #bpt.strategy<wgmma,
      chip = "sm_90a", chunk_rows = 150>}
      : (tensor<3x100x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>)
      -> tensor<3x100x128xbf16>
  return %0 : tensor<3x100x128xbf16>
}

//--- wgmma_tail.mlir
// wgmma, 300 rows in chunks of 128: two whole chunks in the loop, then a
// tail of 44 rows (an FFN of its own, inserted into the loop's result).
// RUN: bpt-opt %t/wgmma_tail.mlir --bpt-blockwise="tensor-cores=false" | FileCheck %s --check-prefix=TAILLOOP
// RUN: bpt-cpu-run %t/wgmma_tail.mlir --seed=74 | FileCheck %s --check-prefix=TAIL
// TAILLOOP: scf.forall (%{{.+}}) in (2)
// TAILLOOP: bpt.nest = #bpt.chunk_loop<ffn>
// TAILLOOP: bpt.ffn silu {{.+}} chunk_rows = 44>} : (tensor<44x128xbf16>
// TAILLOOP: tensor.insert_slice %{{.+}} into %{{.+}}[256, 0] [44, 128] [1, 1]
// TAIL: output 0 tensor<3x100x128xbf16>: relative error {{.*}}: PASS
// TAIL: {{^PASS$}}
func.func @wgmma_tail(%x: tensor<3x100x128xbf16>, %w1: tensor<128x256xbf16>,
                      %w2: tensor<256x128xbf16>) -> tensor<3x100x128xbf16> {
  %0 = bpt.ffn silu %x, %w1, %w2 {bpt.strategy = #bpt.strategy<wgmma,
      chip = "sm_90a", chunk_rows = 128>}
      : (tensor<3x100x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>)
      -> tensor<3x100x128xbf16>
  return %0 : tensor<3x100x128xbf16>
}

//--- mma_sync_tail.mlir
// mma.sync, gated, f16, 257 rows in chunks of 128: a one-row tail.
// RUN: bpt-cpu-run %t/mma_sync_tail.mlir --seed=75 | FileCheck %s --check-prefix=ONEROW
// ONEROW: output 0 tensor<257x128xf16>: relative error {{.*}}: PASS
// ONEROW: {{^PASS$}}
func.func @mma_sync_tail(%x: tensor<257x128xf16>, %w1: tensor<128x256xf16>,
                         %w2: tensor<256x128xf16>, %w3: tensor<128x256xf16>)
    -> tensor<257x128xf16> {
  %0 = bpt.ffn geglu %x, %w1, %w2, gate %w3 {bpt.strategy =
      #bpt.strategy<mma_sync, chip = "sm_90a", chunk_rows = 128>}
      : (tensor<257x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>,
         tensor<128x256xf16>) -> tensor<257x128xf16>
  return %0 : tensor<257x128xf16>
}

// LOOP: scf.forall
// LOOP: bpt.ffn
// LOOP: bpt.nest = #bpt.chunk_loop<ffn>
