// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_86 sm80-q-block=64 sm80-kv-block=64 sm80-stages=2" --bpt-tile-attention --bpt-attention-to-sm80 | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_86 sm80-q-block=128 sm80-kv-block=32 sm80-stages=3" --bpt-tile-attention --bpt-attention-to-sm80 2>/dev/null | FileCheck %s --check-prefix=TILES
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_80" --bpt-tile-attention --bpt-attention-to-sm80 2>/dev/null | FileCheck %s --check-prefix=MODEL
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_80 sm80-kv-block=32" --bpt-tile-attention --bpt-attention-to-sm80 2>/dev/null | FileCheck %s --check-prefix=PINNED

// bf16 causal GQA, head dim 64: the host side passes Q, K and V as they are
// and launches one 128-thread block (4 warps of 16 query rows) per (query
// block, head, batch) with Q, K and V tiles in shared memory: 64 x 128 bytes
// for Q, then two stages of K and of V, plus 128 bytes of alignment slack.
// CHECK-LABEL: func.func @gqa_causal_d64
// CHECK-NOT: bpt.attention
// CHECK: %[[Q:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<2x4x128x64xbf16> to memref<2x4x128x64xbf16>
// CHECK: %[[K:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<2x2x256x64xbf16> to memref<2x2x256x64xbf16>
// CHECK: %[[V:.+]] = bufferization.to_buffer %{{.+}} read_only
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x4x128x64xbf16>
// CHECK-DAG: %[[C2:.+]] = arith.constant 2 : index
// CHECK-DAG: %[[C4:.+]] = arith.constant 4 : index
// CHECK-DAG: %[[C128:.+]] = arith.constant 128 : index
// CHECK-DAG: %[[SMEM:.+]] = arith.constant 41088 : i32
// CHECK: gpu.launch_func @bpt_sm80::@attention_sm80_d64_causal_t64x64x2 blocks in (%[[C2]], %[[C4]], %{{.+}}) threads in (%[[C128]], %{{.+}}, %{{.+}}) dynamic_shared_memory_size %[[SMEM]] args(%[[Q]] : memref<2x4x128x64xbf16>, %[[K]] : memref<2x2x256x64xbf16>, %[[V]] : memref<2x2x256x64xbf16>, %[[OUT]] : memref<2x4x128x64xbf16>)
// CHECK: %[[R:.+]] = bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: return %[[R]]

// The kernel: Q and the first K/V block copied with cp.async (16 bytes a
// thread, bypassing L1), one group each; Q kept as A fragments (ldmatrix);
// per key block: wait for it, barrier, prefetch the next, then S = Q·Kᵀ
// with mma.sync on K fragments, the online softmax (quad shuffles, exp2),
// and O += P·V on V fragments from ldmatrix.trans; the epilogue goes
// through shared memory to 16-byte stores.
// CHECK: gpu.module @bpt_sm80 attributes {bpt.keep_kernel_names}
// CHECK: llvm.mlir.global external @bpt_sm80_shared() {addr_space = 3 : i32, alignment = 128 : i64}
// CHECK: gpu.func @attention_sm80_d64_causal_t64x64x2(%{{.+}}: memref<2x4x128x64xbf16>, %{{.+}}: memref<2x2x256x64xbf16>, %{{.+}}: memref<2x2x256x64xbf16>, %{{.+}}: memref<2x4x128x64xbf16>) kernel attributes {nvvm.maxntid = array<i32: 128, 1, 1>, nvvm.minctasm = 1 : i32}
// CHECK-COUNT-4: nvvm.cp.async.shared.global %{{.+}}, %{{.+}}, 16, cache = cg : !llvm.ptr<3>, !llvm.ptr<1>
// CHECK: nvvm.cp.async.commit.group
// CHECK: scf.if
// CHECK-COUNT-8: nvvm.cp.async.shared.global
// CHECK: nvvm.cp.async.commit.group
// CHECK: nvvm.cp.async.wait.group 1
// CHECK: nvvm.barrier0
// CHECK-COUNT-4: nvvm.ldmatrix %{{.+}} {eltType = #nvvm.ld_st_matrix_elt_type<b16>, layout = #nvvm.mma_layout<row>, num = 4 : i32, shape = #nvvm.ld_st_matrix_shape<m = 8, n = 8>}
// CHECK: scf.for
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-NEXT: nvvm.barrier0
// CHECK: scf.if
// CHECK: nvvm.cp.async.commit.group
// CHECK: nvvm.ldmatrix %{{.+}} {{.+}}layout = #nvvm.mma_layout<row>
// CHECK: nvvm.mma.sync A[{{.+}}] B[{{.+}}] C[{{.+}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// Causal: only blocks that straddle the diagonal are masked.
// CHECK: scf.if %{{.+}} -> (f32,
// CHECK: nvvm.shfl.sync bfly
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK: nvvm.ldmatrix %{{.+}} {{.+}}layout = #nvvm.mma_layout<col>
// CHECK: nvvm.mma.sync
// CHECK: scf.yield
// CHECK: nvvm.shfl.sync bfly
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : i32, !llvm.ptr<3>
// CHECK: nvvm.bar.warp.sync
// CHECK: llvm.load %{{.+}} {alignment = 16 : i64} : !llvm.ptr<3> -> vector<4xi32>
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr<1>

// Other tiles: 8 warps for 128 query rows (one block here), 32-row key
// blocks, three stages (two blocks in flight: wait until one is left).
// TILES-LABEL: func.func @gqa_causal_d64
// TILES: gpu.launch_func @bpt_sm80::@attention_sm80_d64_causal_t128x32x3 blocks in (%{{.+}}, %c4, %c2) threads in (%c256,
// TILES: gpu.func @attention_sm80_d64_causal_t128x32x3
// TILES-SAME: nvvm.maxntid = array<i32: 256, 1, 1>
// TILES: nvvm.cp.async.wait.group 2
// TILES: scf.for
// TILES: nvvm.cp.async.wait.group 1
func.func @gqa_causal_d64(%q: tensor<2x4x128x64xbf16>, %k: tensor<2x2x256x64xbf16>,
                          %v: tensor<2x2x256x64xbf16>) -> tensor<2x4x128x64xbf16> {
  %0 = bpt.attention %q, %k, %v causal
      : (tensor<2x4x128x64xbf16>, tensor<2x2x256x64xbf16>, tensor<2x2x256x64xbf16>)
      -> tensor<2x4x128x64xbf16>
  return %0 : tensor<2x4x128x64xbf16>
}

// -----

// f16, head dim 128, not causal: f16 operands are vector<2xf16> registers;
// no mask. Each op gets its own kernel.
// CHECK-LABEL: func.func @f16_d128
// CHECK: gpu.launch_func @bpt_sm80::@attention_sm80_d128_t64x64x2 blocks
// CHECK: gpu.launch_func @bpt_sm80::@attention_sm80_d128_t64x64x2_0 blocks
// CHECK: gpu.func @attention_sm80_d128_t64x64x2(
// CHECK-NOT: scf.if %{{.+}} -> (f32,
// CHECK: nvvm.mma.sync {{.+}} : (vector<2xf16>, vector<2xf16>, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// CHECK: gpu.func @attention_sm80_d128_t64x64x2_0(
func.func @f16_d128(%q: tensor<1x2x64x128xf16>, %kv: tensor<1x2x192x128xf16>)
    -> (tensor<1x2x64x128xf16>, tensor<1x2x64x128xf16>) {
  %0 = bpt.attention %q, %kv, %kv
      : (tensor<1x2x64x128xf16>, tensor<1x2x192x128xf16>, tensor<1x2x192x128xf16>)
      -> tensor<1x2x64x128xf16>
  %1 = bpt.attention %q, %kv, %kv
      : (tensor<1x2x64x128xf16>, tensor<1x2x192x128xf16>, tensor<1x2x192x128xf16>)
      -> tensor<1x2x64x128xf16>
  return %0, %1 : tensor<1x2x64x128xf16>, tensor<1x2x64x128xf16>
}

// -----

// Without tiling options the cost model chooses per op: at S 4096 (many
// thread blocks), 128-row key blocks for head dim 64; for head dim 128 they
// would spill registers, so 64. Its choice among the candidates that agree
// with a pinned option: kv-block=32 keeps the model's 64 query rows and 2
// stages.
// MODEL-LABEL: func.func @model
// MODEL: gpu.launch_func @bpt_sm80::@attention_sm80_d64_causal_t64x128x2 blocks in (%c64, %c32, %c4)
// MODEL: gpu.launch_func @bpt_sm80::@attention_sm80_d128_t64x64x2 blocks
// PINNED-LABEL: func.func @model
// PINNED: gpu.launch_func @bpt_sm80::@attention_sm80_d64_causal_t64x32x2
// PINNED: gpu.launch_func @bpt_sm80::@attention_sm80_d128_t64x32x2
func.func @model(%q64: tensor<4x32x4096x64xbf16>, %q128: tensor<4x16x4096x128xbf16>)
    -> (tensor<4x32x4096x64xbf16>, tensor<4x16x4096x128xbf16>) {
  %0 = bpt.attention %q64, %q64, %q64 causal
      : (tensor<4x32x4096x64xbf16>, tensor<4x32x4096x64xbf16>, tensor<4x32x4096x64xbf16>)
      -> tensor<4x32x4096x64xbf16>
  %1 = bpt.attention %q128, %q128, %q128
      : (tensor<4x16x4096x128xbf16>, tensor<4x16x4096x128xbf16>, tensor<4x16x4096x128xbf16>)
      -> tensor<4x16x4096x128xbf16>
  return %0, %1 : tensor<4x32x4096x64xbf16>, tensor<4x16x4096x128xbf16>
}

// -----

// Ragged sequences (100 rows: one full and one partial 64-row block): the
// grid rounds up; copies of rows past the end read 0 bytes (cp.async's
// source size) so that the tile is zero-filled; the last key block's
// columns past the end are masked with the causal ones (min of the two
// limits); the epilogue stores only rows inside the sequence.
// PINNED-LABEL: func.func @ragged
// PINNED: gpu.launch_func @bpt_sm80::@attention_sm80_d64_causal_t64x32x2 blocks in (%c2,
// CHECK-LABEL: func.func @ragged
// CHECK: gpu.launch_func @bpt_sm80::@attention_sm80_d64_causal_t64x64x2 blocks in (%c2,
// CHECK: gpu.func @attention_sm80_d64_causal_t64x64x2(
// CHECK: nvvm.cp.async.shared.global %{{.+}}, %{{.+}}, 16, cache = cg, %{{.+}} : !llvm.ptr<3>, !llvm.ptr<1>, i32
// CHECK: scf.for
// CHECK: arith.ori
// CHECK: scf.if %{{.+}} -> (f32,
// CHECK: arith.minsi
// CHECK: scf.yield
// CHECK: scf.if %{{.+}} {
// CHECK-NEXT: llvm.store %{{.+}}, %{{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr<1>
func.func @ragged(%q: tensor<1x2x100x64xbf16>) -> tensor<1x2x100x64xbf16> {
  %0 = bpt.attention %q, %q, %q causal
      : (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>)
      -> tensor<1x2x100x64xbf16>
  return %0 : tensor<1x2x100x64xbf16>
}

// -----

// With its log-sum-exp (the forward a backward pass needs), ragged: the
// launch passes a fresh [B, H, S] f32 buffer after the output; the kernel
// (named _lse) stores, from the first thread of each quad, scale · m +
// ln(l) of its two rows (-inf where no key was seen), only for rows inside
// the sequence.
// CHECK-LABEL: func.func @ragged_lse
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<1x2x100x64xbf16>
// CHECK: %[[LSE:.+]] = memref.alloc() : memref<1x2x100xf32>
// CHECK: gpu.launch_func @bpt_sm80::@attention_sm80_d64_causal_lse_t64x64x2 blocks in {{.+}} args({{.+}}, %[[OUT]] : memref<1x2x100x64xbf16>, %[[LSE]] : memref<1x2x100xf32>)
// CHECK: %[[O:.+]] = bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: %[[L:.+]] = bufferization.to_tensor %[[LSE]] restrict writable
// CHECK: return %[[O]], %[[L]]
// CHECK: gpu.func @attention_sm80_d64_causal_lse_t64x64x2(%{{.+}}: memref<1x2x100x64xbf16>, %{{.+}}: memref<1x2x100x64xbf16>, %{{.+}}: memref<1x2x100x64xbf16>, %{{.+}}: memref<1x2x100x64xbf16>, %[[LSEARG:.+]]: memref<1x2x100xf32>)
// CHECK: memref.extract_aligned_pointer_as_index %[[LSEARG]]
// CHECK: scf.for {{.+}} iter_args
// CHECK: scf.yield
// CHECK: nvvm.shfl.sync bfly
// CHECK: nvvm.shfl.sync bfly
// CHECK: scf.if
// CHECK: scf.if
// CHECK: %[[LG2:.+]] = llvm.call_intrinsic "llvm.nvvm.lg2.approx.f"
// CHECK: %[[LN:.+]] = arith.mulf %[[LG2]], %{{.+}} : f32
// CHECK: %[[SUM:.+]] = llvm.intr.fma(%{{.+}}, %{{.+}}, %[[LN]]) : (f32, f32, f32) -> f32
// CHECK: %[[SEEN:.+]] = arith.cmpf ogt
// CHECK: %[[V:.+]] = arith.select %[[SEEN]], %[[SUM]], %{{.+}} : f32
// CHECK: %[[P:.+]] = llvm.getelementptr %{{.+}}[%{{.+}}] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, f32
// CHECK: llvm.store %[[V]], %[[P]] {alignment = 4 : i64} : f32, !llvm.ptr<1>
// CHECK: scf.if
// CHECK: llvm.call_intrinsic "llvm.nvvm.lg2.approx.f"
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : f32, !llvm.ptr<1>
// The output's epilogue follows.
// CHECK: nvvm.bar.warp.sync
func.func @ragged_lse(%q: tensor<1x2x100x64xbf16>)
    -> (tensor<1x2x100x64xbf16>, tensor<1x2x100xf32>) {
  %o, %lse = bpt.attention %q, %q, %q causal
      : (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>,
         tensor<1x2x100x64xbf16>)
      -> (tensor<1x2x100x64xbf16>, tensor<1x2x100xf32>)
  return %o, %lse : tensor<1x2x100x64xbf16>, tensor<1x2x100xf32>
}
