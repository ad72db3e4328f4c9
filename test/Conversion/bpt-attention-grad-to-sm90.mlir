// RUN: bpt-opt %s --bpt-select-strategy --bpt-tile-attention --bpt-attention-grad-to-sm90 | FileCheck %s

// bf16 causal GQA 4:2, head dim 64 (128-row query blocks). K, V, Q and dO
// get TMA descriptors with 128-row boxes; a pre-pass kernel computes the
// row sums D = rowsum(dO ∘ O) and zeroes the f32 dQ accumulator (it
// replaces the linalg pre-pass); one 384-thread block per (key block, kv
// head, batch) runs the kernel, which writes dK and dV and adds into the
// accumulator; a post-pass kernel writes dQ = 0.125 · accumulator in bf16.
// Both blockwise nests are gone.
// CHECK-LABEL: func.func @grad_gqa_causal
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<2x4x256x64xbf16>, %[[K:[^:]+]]: tensor<2x2x256x64xbf16>, %[[V:[^:]+]]: tensor<2x2x256x64xbf16>, %[[O:[^:]+]]: tensor<2x4x256x64xbf16>, %[[DO:[^:]+]]: tensor<2x4x256x64xbf16>, %[[LSE:[^:]+]]: tensor<2x4x256xf32>)
// CHECK-NOT: scf.forall
// CHECK-NOT: linalg.generic
// CHECK: bufferization.to_buffer %[[K]] read_only
// CHECK: %[[MK:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c128{{.*}}, %c64{{.*}}] : memref<*xbf16> -> <tensor = memref<128x64xbf16
// CHECK: bufferization.to_buffer %[[V]] read_only
// CHECK: %[[MV:.+]] = nvgpu.tma.create.descriptor
// CHECK: bufferization.to_buffer %[[Q]] read_only
// CHECK: %[[MQ:.+]] = nvgpu.tma.create.descriptor %{{.+}} : memref<*xbf16> -> <tensor = memref<128x64xbf16
// CHECK: %[[DOB:.+]] = bufferization.to_buffer %[[DO]] read_only
// CHECK: %[[MDO:.+]] = nvgpu.tma.create.descriptor %{{.+}} : memref<*xbf16> -> <tensor = memref<128x64xbf16
// CHECK: %[[LSEB:.+]] = bufferization.to_buffer %[[LSE]] read_only
// CHECK: %[[DB:.+]] = memref.alloc() {bpt.buffer_name = "delta"} : memref<2x4x256xf32>
// CHECK: %[[DOP:.+]] = bufferization.to_buffer %[[DO]] read_only
// CHECK: %[[OB:.+]] = bufferization.to_buffer %[[O]] read_only
// CHECK: %[[ACC:.+]] = memref.alloc() {bpt.buffer_name = "dq_accumulator"} : memref<2x4x256x64xf32>
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_prepare_d64 blocks in (%c64{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256, %c1{{.*}}, %c1{{.*}}) args(%[[DOP]] : memref<2x4x256x64xbf16>, %[[OB]] : memref<2x4x256x64xbf16>, %[[DB]] : memref<2x4x256xf32>, %[[ACC]] : memref<2x4x256x64xf32>)
// CHECK: %[[DK:.+]] = memref.alloc() : memref<2x2x256x64xbf16>
// CHECK: %[[DV:.+]] = memref.alloc() : memref<2x2x256x64xbf16>
// CHECK: %[[SMEM:.+]] = arith.constant 203848 : i32
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_sm90_d64_causal blocks in (%c8{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c384, %c1{{.*}}, %c1{{.*}}) dynamic_shared_memory_size %[[SMEM]] args(%[[MK]] : {{.+}}, %[[MV]] : {{.+}}, %[[MQ]] : {{.+}}, %[[MDO]] : {{.+}}, %[[LSEB]] : memref<2x4x256xf32>, %[[DB]] : memref<2x4x256xf32>, %[[ACC]] : memref<2x4x256x64xf32>, %[[DK]] : memref<2x2x256x64xbf16>, %[[DV]] : memref<2x2x256x64xbf16>)
// A block loads its K and V rows before it writes dK and dV there: dK
// (operand 7) and dV (8) may take the bytes of K (0) and V (1).
// CHECK-SAME: {bpt.writes_over = array<i64: 7, 0, 8, 1>}
// CHECK: %[[DQB:.+]] = memref.alloc() : memref<2x4x256x64xbf16>
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_finish_d64 blocks in (%c64{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%[[ACC]] : memref<2x4x256x64xf32>, %[[DQB]] : memref<2x4x256x64xbf16>)
// CHECK: %[[DKT:.+]] = bufferization.to_tensor %[[DK]] restrict writable
// CHECK: %[[DVT:.+]] = bufferization.to_tensor %[[DV]] restrict writable
// CHECK: %[[DQ:.+]] = bufferization.to_tensor %[[DQB]] restrict writable
// CHECK: return %[[DQ]], %[[DKT]], %[[DVT]]

// The kernel: barriers (K/V full, then full and empty per stage, the empty
// ones counting the 256 consumer threads, then per consumer its staging
// tile's full, counting its 128 threads, and empty, counting the 32 lanes of
// its writer warp); the producer copies K and V once, then per step Q and dO
// by TMA and the lse and D rows by bulk copy; warps 1 and 2 of the producer
// warpgroup, one a consumer, wait for its staged dQ piece, add it to the f32
// accumulator by bulk reductions (two rows a lane), wait until they have
// read the tile and free it; the consumers, each step from fresh copies of
// their descriptors, issue Sᵀ and dPᵀ (4 wgmma m64n128k16 each from shared
// memory) as two groups, wait for both, issue dV (8 m64n64k16 with A in
// registers) as a group, store dSᵀ (8 stmatrix .x4) for the async proxy (one
// of two tiles by step parity), meet the other consumer at barrier 1, issue
// their 64 query rows of dQ = dS·K over all 128 key rows (8 m64n64k16, A
// M-major), then dK (8 m64n64k16, A in registers), wait for dV and dQ only,
// wait for their staging tile to be free, stage dQ there for the async proxy
// and signal the writer while dK runs, wait for dK and release the stage.
// CHECK: gpu.func @attention_grad_sm90_d64_causal(%{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: memref<2x4x256xf32>, %{{.+}}: memref<2x4x256xf32>, %{{.+}}: memref<2x4x256x64xf32>, %{{.+}}: memref<2x2x256x64xbf16>, %{{.+}}: memref<2x2x256x64xbf16>) kernel attributes {nvvm.maxntid = array<i32: 384, 1, 1>, nvvm.minctasm = 1 : i32}
// CHECK-COUNT-2: nvvm.mbarrier.init %{{.+}}, %c1_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c256_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c1_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c256_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c128_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c32_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c128_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c32_i32
// CHECK: nvvm.setmaxregister decrease 24
// CHECK-COUNT-2: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: scf.for
// CHECK-COUNT-2: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK-COUNT-2: nvvm.cp.async.bulk.shared.cluster.global
// CHECK: scf.for
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK-COUNT-2: cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32
// CHECK-NEXT: cp.async.bulk.commit_group;\0A\09cp.async.bulk.wait_group.read 0;
// CHECK-NEXT: nvvm.mbarrier.arrive
// CHECK: cp.async.bulk.wait_group 0;
// CHECK: nvvm.setmaxregister increase 240
// CHECK: scf.for
// Each step takes fresh copies of the K, V and K-as-B descriptors (as
// loop invariants their advanced copies were hoisted and spilled).
// CHECK-COUNT-3: llvm.inline_asm has_side_effects asm_dialect = att "mov.b64 $0, $1;", "=l,l"
// CHECK-COUNT-4: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 128, k = 16>
// CHECK-NEXT: nvvm.wgmma.commit.group.sync.aligned
// CHECK-COUNT-4: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 128, k = 16>
// CHECK-NEXT: nvvm.wgmma.commit.group.sync.aligned
// CHECK: wgmma.wait_group.sync.aligned 0;
// CHECK-COUNT-8: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK-COUNT-8: nvvm.stmatrix {{.+}} {eltType = #nvvm.ld_st_matrix_elt_type<b16>, layout = #nvvm.mma_layout<row>, shape = #nvvm.ld_st_matrix_shape<m = 8, n = 8>} : !llvm.ptr<3>, i32, i32, i32, i32
// CHECK-NEXT: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK-NOT: cp.async.bulk.wait_group
// CHECK: nvvm.barrier id = %c1_i32{{.*}} number_of_threads = %c256_i32
// CHECK-COUNT-8: nvvm.wgmma.mma_async {{.+}} A[<bf16>, <one>, <col>], B[<bf16>, <one>, <row>]
// CHECK-NEXT: nvvm.wgmma.commit.group.sync.aligned
// CHECK-COUNT-8: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: wgmma.wait_group.sync.aligned 1;
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: nvvm.fence.proxy
// CHECK: nvvm.mbarrier.arrive
// CHECK-NEXT: wgmma.wait_group.sync.aligned 0;
// CHECK: nvvm.mbarrier.arrive
// CHECK-NOT: cp.reduce.async.bulk

// The pre-pass: 8 threads a row, 16-byte loads of dO and O, a shuffle sum
// over the row's threads, 16-byte zero stores.
// CHECK: gpu.func @attention_grad_prepare_d64(%{{.+}}: memref<2x4x256x64xbf16>, %{{.+}}: memref<2x4x256x64xbf16>, %{{.+}}: memref<2x4x256xf32>, %{{.+}}: memref<2x4x256x64xf32>) kernel attributes {nvvm.maxntid = array<i32: 256, 1, 1>
// CHECK-COUNT-2: llvm.load %{{.+}} {alignment = 16 : i64} : !llvm.ptr -> vector<8xbf16>
// CHECK-COUNT-3: nvvm.shfl.sync bfly
// CHECK-COUNT-2: llvm.store %{{.+}}, %{{.+}} {alignment = 16 : i64} : vector<4xf32>, !llvm.ptr
// The post-pass: two 16-byte loads of the accumulator, the scale, one
// 16-byte store of 8 bf16.
// CHECK: gpu.func @attention_grad_finish_d64(%{{.+}}: memref<2x4x256x64xf32>, %{{.+}}: memref<2x4x256x64xbf16>) kernel attributes {nvvm.maxntid = array<i32: 256, 1, 1>
// CHECK-COUNT-2: llvm.load %{{.+}} {alignment = 16 : i64} : !llvm.ptr -> vector<4xf32>
// CHECK: arith.constant 1.250000e-01 : f32
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr
func.func @grad_gqa_causal(%q: tensor<2x4x256x64xbf16>, %k: tensor<2x2x256x64xbf16>,
                           %v: tensor<2x2x256x64xbf16>, %o: tensor<2x4x256x64xbf16>,
                           %do: tensor<2x4x256x64xbf16>, %lse: tensor<2x4x256xf32>)
    -> (tensor<2x4x256x64xbf16>, tensor<2x2x256x64xbf16>, tensor<2x2x256x64xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      : (tensor<2x4x256x64xbf16>, tensor<2x2x256x64xbf16>, tensor<2x2x256x64xbf16>,
         tensor<2x4x256x64xbf16>, tensor<2x4x256x64xbf16>, tensor<2x4x256xf32>)
      -> (tensor<2x4x256x64xbf16>, tensor<2x2x256x64xbf16>, tensor<2x2x256x64xbf16>)
  return %dq, %dk, %dv
      : tensor<2x4x256x64xbf16>, tensor<2x2x256x64xbf16>, tensor<2x2x256x64xbf16>
}

