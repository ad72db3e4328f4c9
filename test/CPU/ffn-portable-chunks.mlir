// A portable FFN by chunks of rows (bpt-convert-to-linalg unrolls the
// chunks of its recorded strategy; test/Conversion/bpt-portable-ffn-chunks.mlir)
// matches float64 as the whole op does, on a ragged last chunk (600 rows:
// 256 + 256 + 88), forward and backward. Its intermediates exist one chunk
// at a time: the whole op's peak is its two [600, 320] f32 products (up and
// gate, 1536000 bytes); by chunks it is three [256, 320] f32 buffers (up,
// gate, and the zero fill that CSE shares between the chunks' products),
// 983040 bytes, whatever the row count.

// RUN: rm -rf %t && split-file %s %t
// RUN: bpt-cpu-run %t/whole.mlir --seed=5 | FileCheck %s --check-prefix=WHOLE
// RUN: bpt-cpu-run %t/chunks.mlir --seed=5 | FileCheck %s --check-prefix=CHUNKS
// RUN: bpt-cpu-run %t/chunks.mlir --seed=6 --backward | FileCheck %s --check-prefix=BACKWARD
// WHOLE: output 0 tensor<2x300x64xf32>: relative error {{.*}} (tolerance 1e-05): PASS
// WHOLE: memory: peak 1536000 bytes
// WHOLE: {{^PASS$}}
// CHUNKS: output 0 tensor<2x300x64xf32>: relative error {{.*}} (tolerance 1e-05): PASS
// CHUNKS: memory: peak 983040 bytes
// CHUNKS: {{^PASS$}}
// The gradient by chunks too: bpt-cpu-run's --chunk-rows (bpt-blockwise's
// chunk-rows) chunks the forward and the FFN's gradient alike.
// RUN: bpt-cpu-run %t/whole.mlir --seed=7 --backward --chunk-rows=256 | FileCheck %s --check-prefix=GRAD-CHUNKS
// GRAD-CHUNKS-COUNT-4: gradient {{[0-3]}} tensor<{{.*}}>: relative error {{.*}}: PASS
// GRAD-CHUNKS: {{^PASS$}}
// RUN: not bpt-cpu-run %t/whole.mlir --chunk-rows=100 2>&1 | FileCheck %s --check-prefix=BAD-CHUNK --implicit-check-not=PASS
// BAD-CHUNK: error: bpt-select-strategy: chunk-rows must be 0 or a positive multiple of 128, got 100
// BACKWARD: forward 0 tensor<2x300x64xf32>: relative error {{.*}}: PASS
// BACKWARD: gradient 3 tensor<64x320xf32>: relative error {{.*}}: PASS
// BACKWARD: {{^PASS$}}

//--- whole.mlir
func.func @ffn(%x: tensor<2x300x64xf32>, %w1: tensor<64x320xf32>,
               %w2: tensor<320x64xf32>, %g: tensor<64x320xf32>)
    -> tensor<2x300x64xf32> {
  %y = bpt.ffn swiglu %x, %w1, %w2, gate %g
      : (tensor<2x300x64xf32>, tensor<64x320xf32>, tensor<320x64xf32>,
         tensor<64x320xf32>) -> tensor<2x300x64xf32>
  return %y : tensor<2x300x64xf32>
}

//--- chunks.mlir
func.func @ffn(%x: tensor<2x300x64xf32>, %w1: tensor<64x320xf32>,
               %w2: tensor<320x64xf32>, %g: tensor<64x320xf32>)
    -> tensor<2x300x64xf32> {
  %y = bpt.ffn swiglu %x, %w1, %w2, gate %g
      {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", chunk_rows = 256>}
      : (tensor<2x300x64xf32>, tensor<64x320xf32>, tensor<320x64xf32>,
         tensor<64x320xf32>) -> tensor<2x300x64xf32>
  return %y : tensor<2x300x64xf32>
}
