// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --bpt-tile-attention --bpt-attention-to-sm90 | FileCheck %s

// bf16 causal GQA, head dim 128: the host side views Q, K and V as [rows, D]
// tensors for TMA descriptors (boxes of 128 rows x 64 columns, 128-byte
// swizzle) and launches one 384-thread block per (query block, head, batch):
// causal, on a grid of one dimension, whose order (the heaviest query
// blocks of a group of heads first) the kernel decodes.
// CHECK-LABEL: func.func @gqa_causal_d128
// CHECK-NOT: bpt.attention
// CHECK: %[[Q:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<2x4x256x128xbf16> to memref<2x4x256x128xbf16>
// CHECK: %[[QROWS:.+]] = memref.collapse_shape %[[Q]] {{\[}}[0, 1, 2], [3]] : memref<2x4x256x128xbf16> into memref<2048x128xbf16>
// CHECK: %[[QU:.+]] = memref.cast %[[QROWS]] : memref<2048x128xbf16> to memref<*xbf16>
// CHECK: %[[DQ:.+]] = nvgpu.tma.create.descriptor %[[QU]] box[%{{.+}}, %{{.+}}] : memref<*xbf16> -> <tensor = memref<128x64xbf16, #gpu.address_space<workgroup>>, swizzle = swizzle_128b
// CHECK: memref.collapse_shape %{{.+}} : memref<2x2x256x128xbf16> into memref<1024x128xbf16>
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x4x256x128xbf16>
// CHECK-DAG: %[[C16:.+]] = arith.constant 16 : index
// CHECK-DAG: %[[C384:.+]] = arith.constant 384 : index
// CHECK-DAG: %[[SMEM:.+]] = arith.constant 164920 : i32
// CHECK: gpu.launch_func @bpt_sm90::@attention_sm90_d128_causal blocks in (%[[C16]], %{{.+}}, %{{.+}}) threads in (%[[C384]], %{{.+}}, %{{.+}}) dynamic_shared_memory_size %[[SMEM]] args(%[[DQ]] : {{.+}}, %{{.+}} : {{.+}}, %{{.+}} : {{.+}}, %[[OUT]] : memref<2x4x256x128xbf16>)
// CHECK: %[[R:.+]] = bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: return %[[R]]

// The kernel: a register cap at entry; one thread initialises the
// barriers (Q, then K full, V full and empty per stage: 256 consumer
// arrivals); the producer warpgroup gives registers away and copies tiles;
// the consumers take them and run wgmma on the stages.
// CHECK: gpu.module @bpt_sm90 attributes {bpt.keep_kernel_names}
// CHECK: llvm.mlir.global external @bpt_sm90_shared() {addr_space = 3 : i32, alignment = 1024 : i64}
// CHECK: gpu.func @attention_sm90_d128_causal(%{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: memref<2x4x256x128xbf16>) kernel attributes {nvvm.maxntid = array<i32: 384, 1, 1>, nvvm.minctasm = 1 : i32}
// CHECK-COUNT-4: nvvm.mbarrier.init %{{.+}}, %{{.+}} : !llvm.ptr<3>, i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c256_i32
// CHECK: nvvm.fence.mbarrier.init
// CHECK: nvvm.barrier0
// CHECK: nvvm.setmaxregister decrease 24
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c32768_i32
// CHECK-COUNT-2: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: scf.for
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: nvvm.mbarrier.arrive.expect_tx
// CHECK-COUNT-2: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: nvvm.mbarrier.arrive.expect_tx
// CHECK-COUNT-2: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: nvvm.setmaxregister increase 240
// S = Q K^T: 8 k16 steps over D = 128, both operands from shared memory.
// CHECK: scf.for {{.+}} iter_args
// CHECK: nvvm.wgmma.fence.aligned
// CHECK: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 128, k = 16>, D[<f32>, <zero>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// CHECK-COUNT-7: nvvm.wgmma.mma_async {{.+}} D[<f32>, <one>]
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// Diagonal blocks only are masked.
// CHECK: scf.if
// CHECK: arith.select
// CHECK: nvvm.shfl.sync bfly
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// O += P V: P from registers, V transposed (MN-major), 8 k16 steps.
// CHECK: nvvm.wgmma.fence.aligned
// CHECK-COUNT-8: "{\0A.reg .pred p;\0Asetp.ne.b32 p, $133, 0;\0Awgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: nvvm.mbarrier.arrive
// CHECK: scf.yield
// CHECK: llvm.store

func.func @gqa_causal_d128(%q: tensor<2x4x256x128xbf16>, %k: tensor<2x2x256x128xbf16>,
                           %v: tensor<2x2x256x128xbf16>) -> tensor<2x4x256x128xbf16> {
  %0 = bpt.attention %q, %k, %v causal
      : (tensor<2x4x256x128xbf16>, tensor<2x2x256x128xbf16>, tensor<2x2x256x128xbf16>)
      -> tensor<2x4x256x128xbf16>
  return %0 : tensor<2x4x256x128xbf16>
}

// -----

// Not causal, f16, head dim 64: no masking, n = 64 for P V; 83000 bytes of
// shared memory (Q 16 KiB, 2 stages of K and V 16 KiB each, 7 barriers,
// 1 KiB of alignment slack).
// CHECK-LABEL: func.func @mha_f16_d64
// CHECK: arith.constant 83000 : i32
// CHECK: gpu.launch_func @bpt_sm90::@attention_sm90_d64 blocks in
// CHECK: gpu.func @attention_sm90_d64(
// CHECK-NOT: scf.if {{.+}} -> (f32
// CHECK: D[<f32>, <zero>], A[<f16>, <one>, <row>], B[<f16>, <one>, <col>]
// CHECK: wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16
func.func @mha_f16_d64(%q: tensor<1x2x128x64xf16>, %k: tensor<1x2x128x64xf16>,
                       %v: tensor<1x2x128x64xf16>) -> tensor<1x2x128x64xf16> {
  %0 = bpt.attention %q, %k, %v
      : (tensor<1x2x128x64xf16>, tensor<1x2x128x64xf16>, tensor<1x2x128x64xf16>)
      -> tensor<1x2x128x64xf16>
  return %0 : tensor<1x2x128x64xf16>
}

// -----

// With its log-sum-exp (the forward a backward pass needs): the launch
// passes a fresh [B, H, S] f32 buffer after the output, and the kernel
// (named _lse) stores, from one thread of each quad, scale · m + ln(l) of
// its two rows: ln(l) as lg2(l) · ln 2, -inf where no key was seen.
// CHECK-LABEL: func.func @with_lse
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<1x2x256x64xbf16>
// CHECK: %[[LSE:.+]] = memref.alloc() : memref<1x2x256xf32>
// CHECK: gpu.launch_func @bpt_sm90::@attention_sm90_d64_causal_lse blocks in {{.+}} args({{.+}}, %[[OUT]] : memref<1x2x256x64xbf16>, %[[LSE]] : memref<1x2x256xf32>)
// CHECK: %[[O:.+]] = bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: %[[L:.+]] = bufferization.to_tensor %[[LSE]] restrict writable
// CHECK: return %[[O]], %[[L]]
// CHECK: gpu.func @attention_sm90_d64_causal_lse(%{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: memref<1x2x256x64xbf16>, %[[LSEARG:.+]]: memref<1x2x256xf32>)
// CHECK: memref.extract_aligned_pointer_as_index %[[LSEARG]]
// CHECK: scf.for {{.+}} iter_args
// CHECK: scf.yield
// CHECK: nvvm.shfl.sync bfly
// CHECK: nvvm.shfl.sync bfly
// CHECK: scf.if
// CHECK: %[[LG2:.+]] = llvm.call_intrinsic "llvm.nvvm.lg2.approx.f"
// CHECK: %[[LN:.+]] = arith.mulf %[[LG2]], %{{.+}} : f32
// CHECK: %[[SUM:.+]] = llvm.intr.fma(%{{.+}}, %{{.+}}, %[[LN]]) : (f32, f32, f32) -> f32
// CHECK: %[[SEEN:.+]] = arith.cmpf ogt
// CHECK: %[[V:.+]] = arith.select %[[SEEN]], %[[SUM]], %{{.+}} : f32
// CHECK: %[[P:.+]] = llvm.getelementptr %{{.+}}[%{{.+}}] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK: llvm.store %[[V]], %[[P]] {alignment = 4 : i64} : f32, !llvm.ptr
// CHECK: llvm.call_intrinsic "llvm.nvvm.lg2.approx.f"
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : f32, !llvm.ptr
// The output's epilogue follows.
// CHECK: nvvm.barrier id
func.func @with_lse(%q: tensor<1x2x256x64xbf16>)
    -> (tensor<1x2x256x64xbf16>, tensor<1x2x256xf32>) {
  %o, %lse = bpt.attention %q, %q, %q causal
      : (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>,
         tensor<1x2x256x64xbf16>)
      -> (tensor<1x2x256x64xbf16>, tensor<1x2x256xf32>)
  return %o, %lse : tensor<1x2x256x64xbf16>, tensor<1x2x256xf32>
}

// -----

// Ragged sequences (issue 15): 1000 queries against 1531 keys, causal, GQA
// 8:2, D 128. Q, K and V are viewed as [B · heads, S, D] for 3-D tensor
// maps (boxes of 1 x 128 x 64): a block that runs past its head's end reads
// TMA's zero fill, not the next head's rows. The grid rounds the query
// blocks up (8); the kernel (named _ragged) copies with three coordinates
// (column, row, head), masks the last key block (keys past 1531; 12 blocks)
// besides the diagonal blocks, and stores only the rows inside Sq (1000 -
// the block's first row).
// CHECK-LABEL: func.func @ragged_causal_gqa
// CHECK: %[[QV:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : memref<1x8x1000x128xbf16> into memref<8x1000x128xbf16>
// CHECK: %[[QU:.+]] = memref.cast %[[QV]] : memref<8x1000x128xbf16> to memref<*xbf16>
// CHECK: %[[DQ:.+]] = nvgpu.tma.create.descriptor %[[QU]] box[%{{.+}}, %{{.+}}, %{{.+}}] : memref<*xbf16> -> <tensor = memref<1x128x64xbf16, #gpu.address_space<workgroup>>, swizzle = swizzle_128b, l2promo = l2promo_128b, oob = zero
// CHECK: memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : memref<1x2x1531x128xbf16> into memref<2x1531x128xbf16>
// CHECK: nvgpu.tma.create.descriptor {{.+}} -> <tensor = memref<1x128x64xbf16
// CHECK: memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : memref<1x2x1531x128xbf16> into memref<2x1531x128xbf16>
// CHECK: nvgpu.tma.create.descriptor {{.+}} -> <tensor = memref<1x128x64xbf16
// CHECK-DAG: %[[C64:.+]] = arith.constant 64 : index
// CHECK: gpu.launch_func @bpt_sm90::@attention_sm90_d128_causal_ragged blocks in (%[[C64]], %{{.+}}, %{{.+}}) threads in
// CHECK: gpu.func @attention_sm90_d128_causal_ragged(%{{.+}}: !nvgpu.tensormap.descriptor<tensor = memref<1x128x64xbf16
// CHECK: %[[LEFT:.+]] = arith.subi %c1000_i32{{.*}}, %{{.+}} : i32
// CHECK: arith.minsi %{{.+}}, %c12_i32 : i32
// CHECK: nvvm.setmaxregister decrease 24
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.+}}, %{{.+}}, %{{.+}}, box[%{{.+}}, %{{.+}}, %{{.+}}]
// CHECK: nvvm.setmaxregister increase 240
// CHECK: scf.for {{.+}} iter_args
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// The diagonal blocks or the last one (j == 11): both limits, the smaller.
// CHECK: %[[LAST:.+]] = arith.cmpi eq, %{{.+}}, %c11_i32 : i32
// CHECK: %[[MASK:.+]] = arith.ori %{{.+}}, %[[LAST]] : i1
// CHECK: scf.if %[[MASK]] -> (f32
// CHECK: arith.minsi
// CHECK: arith.select
// CHECK: scf.yield
// The epilogue: each 16-byte store only for a row inside the sequence.
// CHECK: nvvm.barrier id
// CHECK: llvm.load {{.+}} -> vector<4xi32>
// CHECK: %[[IN:.+]] = arith.cmpi slt, %{{.+}}, %[[LEFT]] : i32
// CHECK: scf.if %[[IN]] {
// CHECK: llvm.store {{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr
func.func @ragged_causal_gqa(%q: tensor<1x8x1000x128xbf16>, %k: tensor<1x2x1531x128xbf16>,
                             %v: tensor<1x2x1531x128xbf16>) -> tensor<1x8x1000x128xbf16> {
  %0 = bpt.attention %q, %k, %v causal
      : (tensor<1x8x1000x128xbf16>, tensor<1x2x1531x128xbf16>, tensor<1x2x1531x128xbf16>)
      -> tensor<1x8x1000x128xbf16>
  return %0 : tensor<1x8x1000x128xbf16>
}

// -----

// Only K and V ragged (Sq 256, Skv 200), not causal, with the lse: Q keeps
// its 2-D map (whole blocks), K and V take 3-D ones; the only mask is the
// last (and only) key block's, and every row is stored (no guard).
// CHECK-LABEL: func.func @ragged_keys_lse
// CHECK: memref.collapse_shape %{{.+}} {{\[}}[0, 1, 2], [3]] : memref<1x2x256x64xbf16> into memref<512x64xbf16>
// CHECK: nvgpu.tma.create.descriptor {{.+}} -> <tensor = memref<128x64xbf16
// CHECK: memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : memref<1x1x200x64xbf16> into memref<1x200x64xbf16>
// CHECK: nvgpu.tma.create.descriptor {{.+}} -> <tensor = memref<1x{{64|128}}x64xbf16
// CHECK: gpu.launch_func @bpt_sm90::@attention_sm90_d64_lse{{.*}}_ragged
// CHECK: gpu.func @attention_sm90_d64_lse{{.*}}_ragged(%{{.+}}: !nvgpu.tensormap.descriptor<tensor = memref<128x64xbf16
// CHECK-NOT: arith.cmpi slt
// CHECK: scf.for {{.+}} iter_args
// CHECK: arith.cmpi eq
// CHECK-NEXT: scf.if %{{.+}} -> (f32
// CHECK-NOT: arith.cmpi slt
// CHECK: gpu.return
func.func @ragged_keys_lse(%q: tensor<1x2x256x64xbf16>, %kv: tensor<1x1x200x64xbf16>)
    -> (tensor<1x2x256x64xbf16>, tensor<1x2x256xf32>) {
  %o, %lse = bpt.attention %q, %kv, %kv
      : (tensor<1x2x256x64xbf16>, tensor<1x1x200x64xbf16>, tensor<1x1x200x64xbf16>)
      -> (tensor<1x2x256x64xbf16>, tensor<1x2x256xf32>)
  return %o, %lse : tensor<1x2x256x64xbf16>, tensor<1x2x256xf32>
}

// -----

// Head dim 256 (issue 15), here with 80-key blocks recorded by hand (the
// cost model's choice at long sequences): K and V boxes of 80 rows, four
// 64-column boxes a tile; 230456 bytes of shared memory (Q 64 KiB, two
// stages of K and V at 40 KiB each, barriers, 1 KiB of slack); expect_tx
// of 64 KiB (Q) and 40 KiB (K or V); S = Q·Kᵀ as 16 k16 steps of
// m64n80k16, O += P·V as 5 of m64n256k16 (P from registers); the
// epilogue's 16 16-byte stores a thread.
// CHECK-LABEL: func.func @wide_d256_causal
// CHECK: nvgpu.tma.create.descriptor {{.+}} -> <tensor = memref<128x64xbf16
// CHECK: nvgpu.tma.create.descriptor {{.+}} -> <tensor = memref<80x64xbf16
// CHECK: nvgpu.tma.create.descriptor {{.+}} -> <tensor = memref<80x64xbf16
// CHECK-DAG: %[[SMEM:.+]] = arith.constant 230456 : i32
// CHECK: gpu.launch_func @bpt_sm90::@attention_sm90_d256_causal_t80x2 blocks in {{.+}} dynamic_shared_memory_size %[[SMEM]]
// CHECK: gpu.func @attention_sm90_d256_causal_t80x2(
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c65536_i32
// CHECK-COUNT-4: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c40960_i32
// CHECK-COUNT-4: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c40960_i32
// CHECK-COUNT-4: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 80, k = 16>, D[<f32>, <zero>]
// CHECK-COUNT-15: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 80, k = 16>, D[<f32>, <one>]
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: scf.if
// CHECK: arith.select
// CHECK-COUNT-5: wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16
// CHECK-NOT: wgmma.mma_async.sync.aligned
// CHECK: nvvm.barrier id
// CHECK-COUNT-16: llvm.store {{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr
// CHECK-NOT: llvm.store {{.+}} vector<4xi32>
// CHECK: gpu.return
func.func @wide_d256_causal(%q: tensor<1x2x640x256xbf16>) -> tensor<1x2x640x256xbf16> {
  %0 = bpt.attention %q, %q, %q causal {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 80, stages = 2, warps = 12>}
      : (tensor<1x2x640x256xbf16>, tensor<1x2x640x256xbf16>, tensor<1x2x640x256xbf16>)
      -> tensor<1x2x640x256xbf16>
  return %0 : tensor<1x2x640x256xbf16>
}

// -----

// Head dim 80: tiles of 128 columns (two 64-column boxes, the second half
// TMA's zero fill: the map's shape is [rows, 80]), so Q's and each K/V
// stage's expect_tx is 128 x 128 x 2 bytes, as at D 128; S = Q·Kᵀ takes
// 5 k16 steps (the 80 real columns), P·V is m64n128k16 (8 steps of the
// 128-key block; the padded output columns are zeros, never stored); the
// epilogue stores 80-column rows, 64 x 10 chunks of 16 bytes over 128
// threads: 5 a thread.
// CHECK-LABEL: func.func @padded_d80
// CHECK: memref.collapse_shape %{{.+}} {{\[}}[0, 1, 2], [3]] : memref<1x2x256x80xf16> into memref<512x80xf16>
// CHECK: nvgpu.tma.create.descriptor {{.+}} -> <tensor = memref<128x64xf16
// CHECK: gpu.launch_func @bpt_sm90::@attention_sm90_d80 blocks in
// CHECK: gpu.func @attention_sm90_d80(
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c32768_i32
// CHECK-COUNT-2: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c32768_i32
// CHECK-COUNT-2: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 128, k = 16>, D[<f32>, <zero>]
// CHECK-COUNT-4: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 128, k = 16>, D[<f32>, <one>]
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK-COUNT-8: wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16
// CHECK-NOT: wgmma.mma_async.sync.aligned
// CHECK: nvvm.barrier id
// CHECK-COUNT-5: llvm.store {{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr
// CHECK-NOT: llvm.store {{.+}} vector<4xi32>
// CHECK: gpu.return
func.func @padded_d80(%q: tensor<1x2x256x80xf16>) -> tensor<1x2x256x80xf16> {
  %0 = bpt.attention %q, %q, %q
      : (tensor<1x2x256x80xf16>, tensor<1x2x256x80xf16>, tensor<1x2x256x80xf16>)
      -> tensor<1x2x256x80xf16>
  return %0 : tensor<1x2x256x80xf16>
}
