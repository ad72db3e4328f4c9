// The portable path's GEMM tiling (bpt-tile-gemms) on the CPU: bpt-cpu-run
// --tile-gemms runs the pass as bpt-to-nvvm does (sm_90a's shared memory,
// 256 threads), so the tiled loops, the partial tiles of ragged rows and
// columns, the reduction steps and the padded operand buffers are checked
// against float64 here; the GPU tests run the same tiles with shared memory
// and register tiles (test/GPU/ffn-f32-gemm-tiles.test). The reduction runs
// in the same order tiled or not.
//
// bpt-cpu-run compiles and JITs every function of its module, so each
// function lives in its own split-file part (//--- NAME.mlir).

// RUN: rm -rf %t && split-file %s %t

//--- ffn_f32.mlir
// 2 x 100 rows, F = 176, hidden 64: on 132 multiprocessors these GEMMs take
// the smallest tiles, 32 x 32 (100 rows: three whole tiles and one of 4
// rows; 176 columns: five and one of 16), k in steps of 32 into F and of
// 16 out of it (176 = 11 · 16). The four GEMMs (x·w1 is shared by both
// FFNs after CSE) are tiled.
// RUN: bpt-opt %t/ffn_f32.mlir --pass-pipeline="builtin.module(bpt-to-cpu{tile-gemms=1})" --mlir-print-ir-after=bpt-tile-gemms -o /dev/null 2>&1 | FileCheck %s --check-prefix=TILED
// TILED: scf.forall ({{.+}}) in (2, 4, 6)
// TILED: bpt.thread_tile = array<i64: 4, 1>
// TILED: scf.forall ({{.+}}) in (2, 4, 2)
// TILED: scf.for %{{.+}} = %{{.+}} to %c176{{(_[0-9]+)?}} step %c16{{(_[0-9]+)?}}
// TILED: bpt.thread_tile = array<i64: 4, 1>
// TILED: scf.forall ({{.+}}) in (2, 4, 6)
// TILED: scf.forall ({{.+}}) in (2, 4, 2)
// RUN: bpt-cpu-run %t/ffn_f32.mlir --tile-gemms --seed=1401 | FileCheck %s --check-prefix=FFN-F32
// FFN-F32: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// FFN-F32: output 1 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// FFN-F32: {{^PASS$}}
func.func @ffn_f32(%x: tensor<2x100x64xf32>, %w1: tensor<64x176xf32>,
                   %w2: tensor<176x64xf32>, %w3: tensor<64x176xf32>)
    -> (tensor<2x100x64xf32>, tensor<2x100x64xf32>) {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2x100x64xf32>, tensor<64x176xf32>, tensor<176x64xf32>) -> tensor<2x100x64xf32>
  %1 = bpt.ffn swiglu %x, %w1, %w2, gate %w3
      : (tensor<2x100x64xf32>, tensor<64x176xf32>, tensor<176x64xf32>, tensor<64x176xf32>)
        -> tensor<2x100x64xf32>
  return %0, %1 : tensor<2x100x64xf32>, tensor<2x100x64xf32>
}

//--- ffn_bf16.mlir
// bf16 operands (buffers two elements wider), f32 accumulation.
// RUN: bpt-cpu-run %t/ffn_bf16.mlir --tile-gemms --seed=1402 | FileCheck %s --check-prefix=FFN-BF16
// FFN-BF16: output 0 tensor<300x96xbf16>: relative error {{.*}}: PASS
// FFN-BF16: {{^PASS$}}
func.func @ffn_bf16(%x: tensor<300x96xbf16>, %w1: tensor<96x384xbf16>,
                    %w2: tensor<384x96xbf16>) -> tensor<300x96xbf16> {
  %0 = bpt.ffn relu %x, %w1, %w2
      : (tensor<300x96xbf16>, tensor<96x384xbf16>, tensor<384x96xbf16>) -> tensor<300x96xbf16>
  return %0 : tensor<300x96xbf16>
}

//--- block_grad.mlir
// A block's training step: its gradient GEMMs read an operand transposed
// (dx = dy · Wᵀ, dW = xᵀ · dy); every gradient against float64 (and finite
// differences).
// RUN: bpt-opt %t/block_grad.mlir --bpt-build-backward | bpt-opt --pass-pipeline="builtin.module(bpt-to-cpu{tile-gemms=1})" --mlir-print-ir-after=bpt-tile-gemms -o /dev/null 2>&1 | FileCheck %s --check-prefix=GRAD-TILED
// GRAD-TILED-COUNT-30: bpt.thread_tile = array<i64: 4, 1>
// RUN: bpt-cpu-run %t/block_grad.mlir --backward --tile-gemms --block-sizes=32:32 --seed=1403 | FileCheck %s --check-prefix=GRAD
// GRAD: forward 0 {{.*}}: PASS
// GRAD-COUNT-9: gradient {{[0-9]+}} {{.*}}: PASS
// GRAD: {{^PASS$}}
func.func @block_grad(
    %x: tensor<2x72x64xf32>, %g1: tensor<64xf32>,
    %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>,
    %wo: tensor<64x64xf32>, %g2: tensor<64xf32>,
    %w1: tensor<64x160xf32>, %w2: tensor<160x64xf32>) -> tensor<2x72x64xf32> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2) heads(4) kv_heads(2) causal activation(gelu)
      norm(rms_norm)
      : (tensor<2x72x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>,
         tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x160xf32>,
         tensor<160x64xf32>) -> tensor<2x72x64xf32>
  return %y : tensor<2x72x64xf32>
}
