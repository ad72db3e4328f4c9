// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chunk-rows=2048 sm90-gemm-stages=3" --bpt-chunk-ffn --bpt-ffn-to-sm90 | FileCheck %s

// Three stages pinned: 128-row tiles (256-row ones stage twice the rows:
// bpt-gemm-tall-tiles.mlir).

// The wgmma GEMM's epilogue through shared memory (16-bit C): after its
// last wgmmas each consumer writes its 64 x 128 accumulator pairs (32
// 4-byte stores a thread) into its own A rows of the first stages, waits
// at its warpgroup's named barrier (1 or 2; 0 is the block's), then stores
// whole rows: 64 rows of 16 chunks of 16 bytes over 128 threads, 8 16-byte
// stores a thread, instead of 32 4-byte stores to global memory.
// CHECK-LABEL: gpu.func @gemm_sm90_a4096_c2048_n512_k256_gelu(
// CHECK: nvvm.wgmma.mma_async
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// CHECK-COUNT-32: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : i32, !llvm.ptr<3>
// CHECK-NOT: llvm.store
// CHECK: "bar.sync 2, 128;"
// CHECK: "bar.sync 1, 128;"
// CHECK-COUNT-8: llvm.store %{{.+}}, %{{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr
// CHECK-NOT: llvm.store
// CHECK: gpu.return
// CHECK-LABEL: gpu.func @gemm_sm90_a2048_c4096_n256_k512(
// CHECK: "bar.sync 1, 128;"
// CHECK-COUNT-8: llvm.store %{{.+}}, %{{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr
func.func @gelu(%x: tensor<2x2048x256xbf16>, %w1: tensor<256x512xbf16>,
                %w2: tensor<512x256xbf16>) -> tensor<2x2048x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2x2048x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x2048x256xbf16>
  return %0 : tensor<2x2048x256xbf16>
}

// -----

// Ragged rows (300 = 2 · 128 + 44): the staged rows past the launch's end
// are not stored (each 16-byte store under the row test).
// CHECK-LABEL: gpu.func @gemm_sm90_a300_c300_n512_k256_gelu_ragged(
// CHECK: "bar.sync 1, 128;"
// CHECK: %[[BELOW:.+]] = arith.cmpi slt, %{{.+}}, %{{.+}} : i32
// CHECK-NEXT: scf.if %[[BELOW]] {
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr
func.func @ragged(%x: tensor<300x256xbf16>, %w1: tensor<256x512xbf16>,
                  %w2: tensor<512x256xbf16>) -> tensor<300x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<300x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<300x256xbf16>
  return %0 : tensor<300x256xbf16>
}
