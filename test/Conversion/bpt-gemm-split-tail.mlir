// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --bpt-chunk-ffn --bpt-ffn-to-sm90 | FileCheck %s
// The strategy's gemm_split: at most 3 parts, or none.
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=sm90-gemm-split=3 --bpt-chunk-ffn --bpt-ffn-to-sm90 | FileCheck %s --check-prefix=THREE
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=sm90-gemm-split=1 --bpt-chunk-ffn --bpt-ffn-to-sm90 | FileCheck %s --check-prefix=NONE
// RUN: not bpt-opt %s --split-input-file --bpt-select-strategy=sm90-gemm-split=9 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: error: bpt-select-strategy: sm90-gemm-split must be 0 or in [1, 8], got 9

// planTailSplit: a GEMM whose last wave would leave most multiprocessors
// idle, with a long K, has that wave's tiles split along K. The 300-row
// FFN's down GEMM (N 128, K 8192: 128 steps) is 3 tiles against 264 slots
// (two blocks a multiprocessor on 132): each is split into 8 parts of 16
// steps, 24 blocks that store f32 partial sums into a workspace, then a
// reduce launch of 3 blocks sums each tile's 8 parts in order and runs
// the epilogue. The up GEMM (K 128) stays whole.
// CHECK-LABEL: func.func @split
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a300_c300_n8192_k128_relu_ragged blocks in (%c64{{[_0-9]*}}, %c3
// CHECK: %[[P:.+]] = memref.alloc() {bpt.buffer_name = "gemm_partials"} : memref<393216xf32>
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a300_c300_n128_k8192_ragged_split3x8 blocks in (%c24{{[_0-9]*}}, %c1{{[_0-9]*}}, %c1{{[_0-9]*}}) {{.+}}, %[[P]] : memref<393216xf32>)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a300_c300_n128_k8192_ragged_split3x8_reduce blocks in (%c3{{[_0-9]*}}, %c1{{[_0-9]*}}, %c1{{[_0-9]*}}) {{.+}}, %[[P]] : memref<393216xf32>)
// CHECK-NOT: gpu.launch_func
// THREE-LABEL: func.func @split
// THREE: gpu.launch_func @bpt_sm90::@gemm_sm90_a300_c300_n128_k8192_ragged_split3x3 blocks in (%c9{{[_0-9]*}},
// THREE: gpu.launch_func @bpt_sm90::@gemm_sm90_a300_c300_n128_k8192_ragged_split3x3_reduce blocks in (%c3{{[_0-9]*}},
// NONE-LABEL: func.func @split
// NONE-NOT: memref<{{[0-9]+}}xf32>
// NONE: gpu.launch_func @bpt_sm90::@gemm_sm90_a300_c300_n128_k8192_ragged blocks in (%c1{{[_0-9]*}}, %c3
// NONE-NOT: _split

// The main kernel: blocks past the whole tiles (none here) are parts; a
// part runs K steps [16 s, min(16 s + 16, 128)) and stores its
// accumulators as 16-byte chunks, the epilogue only for whole tiles.
// CHECK: gpu.func @gemm_sm90_a300_c300_n128_k8192_ragged_split3x8({{.+}}, %{{.+}}: memref<393216xf32>)
// CHECK: %[[PART:.+]] = arith.cmpi uge, %{{.+}}, %c0_i32
// CHECK: arith.remui %{{.+}}, %c8_i32
// CHECK: arith.minui %{{.+}}, %c128_i32
// CHECK: nvvm.wgmma.mma_async
// CHECK: scf.if %[[PART]] {
// CHECK-COUNT-16: llvm.store {{.+}} {alignment = 16 : i64} : vector<4xf32>, !llvm.ptr
// CHECK: } else {
// CHECK: llvm.store {{.+}} : i32, !llvm.ptr<3>
// CHECK: gpu.return
// The reduce kernel loads no tiles: its consumers sum the 8 parts.
// CHECK: gpu.func @gemm_sm90_a300_c300_n128_k8192_ragged_split3x8_reduce(
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK-NOT: nvvm.cp.async.bulk.tensor
// CHECK: scf.for %{{.+}} = %c0_i32{{.*}} to %c8_i32
// CHECK-COUNT-16: llvm.load {{.+}} {alignment = 16 : i64} : !llvm.ptr -> vector<4xf32>
// CHECK: gpu.return
func.func @split(%x: tensor<2x150x128xbf16>, %w_in: tensor<128x8192xbf16>, %w_out: tensor<8192x128xbf16>) -> tensor<2x150x128xbf16> {
  %y = bpt.ffn relu %x, %w_in, %w_out : (tensor<2x150x128xbf16>, tensor<128x8192xbf16>, tensor<8192x128xbf16>) -> tensor<2x150x128xbf16>
  return %y : tensor<2x150x128xbf16>
}

// -----

// Not split: the same FFN with K 1024 (16 steps a tile): the split would
// cost more than the tail's steps (the parts' fills and the reduce launch,
// measured about 20 µs), and a 2048-row FFN whose GEMMs fill their waves.
// CHECK-LABEL: func.func @short_k
// CHECK-NOT: memref<{{[0-9]+}}xf32>
// CHECK-NOT: _split
// CHECK: return
func.func @short_k(%x: tensor<2x150x128xbf16>, %w_in: tensor<128x1024xbf16>, %w_out: tensor<1024x128xbf16>) -> tensor<2x150x128xbf16> {
  %y = bpt.ffn relu %x, %w_in, %w_out : (tensor<2x150x128xbf16>, tensor<128x1024xbf16>, tensor<1024x128xbf16>) -> tensor<2x150x128xbf16>
  return %y : tensor<2x150x128xbf16>
}

// -----

// CHECK-LABEL: func.func @full_waves
// CHECK-NOT: _split
// CHECK: return
func.func @full_waves(%x: tensor<1x2048x2048xbf16>, %w_in: tensor<2048x8192xbf16>, %w_out: tensor<8192x2048xbf16>) -> tensor<1x2048x2048xbf16> {
  %y = bpt.ffn gelu %x, %w_in, %w_out : (tensor<1x2048x2048xbf16>, tensor<2048x8192xbf16>, tensor<8192x2048xbf16>) -> tensor<1x2048x2048xbf16>
  return %y : tensor<1x2048x2048xbf16>
}

// -----

// A recorded gemm_split is kept (selection runs again after decomposition,
// and a user may write one): 1, so the FFN of @split stays whole.
// CHECK-LABEL: func.func @recorded
// CHECK-NOT: _split
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a300_c300_n128_k8192_ragged blocks in (%c1{{[_0-9]*}}, %c3
// CHECK-NOT: _split
// CHECK: return
func.func @recorded(%x: tensor<2x150x128xbf16>, %w_in: tensor<128x8192xbf16>, %w_out: tensor<8192x128xbf16>) -> tensor<2x150x128xbf16> {
  %y = bpt.ffn relu %x, %w_in, %w_out {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 300, gemm_split = 1>} : (tensor<2x150x128xbf16>, tensor<128x8192xbf16>, tensor<8192x128xbf16>) -> tensor<2x150x128xbf16>
  return %y : tensor<2x150x128xbf16>
}
