// RUN: bpt-opt %s --split-input-file --bpt-tile-attention --bpt-attention-to-sm80 | FileCheck %s

// The partial nest of a split over the keys becomes one launch of the
// split kernel over (splits, key/value heads, batch) writing the partials
// into buffers the manifest names; the combine nest becomes a launch of
// the combine kernel that reads them.
// CHECK-LABEL: func.func @decode
// CHECK-DAG: %[[Q:.+]] = bufferization.to_buffer %arg0 read_only
// CHECK-DAG: %[[K:.+]] = bufferization.to_buffer %arg1 read_only
// CHECK-DAG: %[[V:.+]] = bufferization.to_buffer %arg2 read_only
// CHECK: %[[PART:.+]] = memref.alloc() {bpt.buffer_name = "split_kv_partials"} : memref<2x2x4x4x64xf32>
// CHECK: %[[LSE:.+]] = memref.alloc() {bpt.buffer_name = "split_kv_lse"} : memref<2x2x4x4xf32>
// CHECK: %[[C4:.+]] = arith.constant 4 : index
// CHECK: gpu.launch_func @bpt_sm80::@attention_split_kv_sm80_d64_g4_t16x64x2 blocks in (%[[C4]], %{{.+}}, %{{.+}}) threads in (%{{.+}}, %{{.+}}, %{{.+}}) dynamic_shared_memory_size %{{.+}} args(%[[Q]] : memref<2x8x1x64xbf16>, %[[K]] : memref<2x2x1000x64xbf16>, %[[V]] : memref<2x2x1000x64xbf16>, %[[PART]] : memref<2x2x4x4x64xf32>, %[[LSE]] : memref<2x2x4x4xf32>)
// The combine nest: a launch of the combine kernel over the 16-column
// slices of the output rows (2 × 8 × 1 rows × 4 slices); one warp takes
// a slice's 4 splits, so a thread block takes four slices (16 blocks of
// 128 threads), reading the partials.
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x8x1x64xbf16>
// CHECK: %[[C16:.+]] = arith.constant 16 : index
// CHECK: gpu.launch_func @bpt_sm80::@attention_split_kv_combine_d64_s4_w1x4 blocks in (%[[C16]], %{{.+}}, %{{.+}}) threads in (%{{.+}}, %{{.+}}, %{{.+}}) dynamic_shared_memory_size %{{.+}} args(%[[PART]] : memref<2x2x4x4x64xf32>, %[[LSE]] : memref<2x2x4x4xf32>, %[[OUT]] : memref<2x8x1x64xbf16>)
// CHECK: %[[R:.+]] = bufferization.to_tensor %[[OUT]]
// CHECK-NOT: scf.forall
// CHECK: return %[[R]]
// The kernel: one warp (16 packed rows), the group's Q rows, K and V
// through cp.async, mma.sync, f32 pairs and the lse stored.
// CHECK: gpu.func @attention_split_kv_sm80_d64_g4_t16x64x2(%{{.+}}: memref<2x8x1x64xbf16>, %{{.+}}: memref<2x2x1000x64xbf16>, %{{.+}}: memref<2x2x1000x64xbf16>, %{{.+}}: memref<2x2x4x4x64xf32>, %{{.+}}: memref<2x2x4x4xf32>) kernel attributes {nvvm.maxntid = array<i32: 32, 1, 1>
// CHECK: nvvm.cp.async.shared.global
// CHECK: nvvm.mma.sync
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 8 : i64} : vector<2xf32>, !llvm.ptr<1>
// The combine: four splits' loads a round (an lse and four f32 columns
// each) before their exp2 weights, the split lanes merged by butterfly
// shuffles over lane bits 2-4, then split lane 0 of each column group
// stores its four columns as 16-bit pairs (one warp: no shared memory).
// CHECK: gpu.func @attention_split_kv_combine_d64_s4_w1x4(%{{.+}}: memref<2x2x4x4x64xf32>, %{{.+}}: memref<2x2x4x4xf32>, %{{.+}}: memref<2x8x1x64xbf16>) kernel attributes {nvvm.maxntid = array<i32: 128, 1, 1>
// CHECK: scf.for
// CHECK-COUNT-4: llvm.load %{{.+}} {alignment = 16 : i64} : !llvm.ptr<1> -> vector<4xf32>
// CHECK: llvm.nvvm.ex2.approx.ftz.f32
// CHECK: scf.yield
// CHECK: nvvm.shfl.sync bfly %{{.+}}, %{{.+}}, %[[S4:.+]], %{{.+}}
// CHECK: nvvm.shfl.sync bfly %{{.+}}, %{{.+}}, %[[S8:.+]], %{{.+}}
// CHECK: nvvm.shfl.sync bfly %{{.+}}, %{{.+}}, %[[S16:.+]], %{{.+}}
// CHECK-NOT: nvvm.barrier0
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 8 : i64} : vector<2xi32>, !llvm.ptr<1>
// CHECK: gpu.return
func.func @decode(%q: tensor<2x8x1x64xbf16>, %k: tensor<2x2x1000x64xbf16>,
                  %v: tensor<2x2x1000x64xbf16>) -> tensor<2x8x1x64xbf16> {
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<mma_sync,
      chip = "sm_90a", q_block = 16, kv_block = 64, stages = 2, warps = 1,
      kv_splits = 4>}
      : (tensor<2x8x1x64xbf16>, tensor<2x2x1000x64xbf16>,
         tensor<2x2x1000x64xbf16>) -> tensor<2x8x1x64xbf16>
  return %o : tensor<2x8x1x64xbf16>
}
