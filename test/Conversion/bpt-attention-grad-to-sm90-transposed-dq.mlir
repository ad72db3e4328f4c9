// RUN: bpt-opt %s --bpt-select-strategy --bpt-tile-attention --bpt-attention-grad-to-sm90 | FileCheck %s

// Head dim 128 takes 80-row query blocks with dQ computed transposed
// (bf16, not causal, GQA 2:1, Sq 160 = two whole blocks, Skv 256). Q and
// dO boxes are [80, 64]; the kernel adds into the f32 accumulator through
// a tensor map of its rows with [80, 32] boxes (128 bytes of f32, the
// 128-byte swizzle); 231752 bytes of shared memory (K, V, two stages of Q
// and dO, two dS tiles, the two consumers' staging boxes, lse and D,
// barriers).
// CHECK-LABEL: func.func @grad_q80
// CHECK: nvgpu.tma.create.descriptor %{{.+}} box[%c80{{.*}}, %c64{{.*}}] : memref<*xbf16> -> <tensor = memref<80x64xbf16
// CHECK: bpt.buffer_name = "dq_accumulator"} : memref<1x2x160x128xf32>
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_prepare_d128 blocks
// CHECK: memref.collapse_shape %{{.+}} {{\[}}[0, 1, 2], [3]] : memref<1x2x160x128xf32> into memref<320x128xf32>
// CHECK: %[[MACC:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c80{{.*}}, %c32{{.*}}] : memref<*xf32> -> <tensor = memref<80x32xf32
// CHECK: %[[SMEM:.+]] = arith.constant 231752 : i32
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_sm90_d128_q80 blocks in (%c2{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c384{{.*}}) dynamic_shared_memory_size %[[SMEM]] args({{.+}}, %[[MACC]] : !nvgpu.tensormap.descriptor<tensor = memref<80x32xf32
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_finish_d128 blocks

// The kernel. Its accumulator argument is the map. Each consumer's
// staging tile is freed by one thread (the writer warp's first lane),
// which waits for the staged piece, adds its two [80, 32] boxes at head
// columns 64·c and 64·c + 32 by TMA reductions, waits until they have
// read shared memory and frees the tile. The consumers: Sᵀ and dPᵀ (8
// m64n80k16 each, from shared memory), dV += Pᵀ·dO (5 m64n128k16, A in
// registers), dS stored query-major (5 stmatrix .x4 .trans) for the async
// proxy, both consumers meet at barrier 1, dQᵀ = Kᵀ·dSᵀ (8 m64n80k16, K
// M-major, dS K-major), dK += dSᵀ·Q (5 m64n128k16), then dQᵀ's 40 values
// a thread stored one by one into the swizzled staging boxes.
// CHECK: gpu.func @attention_grad_sm90_d128_q80(%{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: !nvgpu.tensormap.descriptor<{{.+}}>, %{{.+}}: memref<1x2x160xf32>, %{{.+}}: memref<1x2x160xf32>, %{{.+}}: !nvgpu.tensormap.descriptor<tensor = memref<80x32xf32, {{.+}}>, %{{.+}}: memref<1x1x256x128xbf16>, %{{.+}}: memref<1x1x256x128xbf16>)
// CHECK-COUNT-2: nvvm.mbarrier.init %{{.+}}, %c1_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c256_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c1_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c256_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c128_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c1_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c128_i32
// CHECK: nvvm.mbarrier.init %{{.+}}, %c1_i32
// CHECK-NEXT: nvvm.fence.mbarrier.init
// CHECK: nvvm.setmaxregister decrease 24
// CHECK: %[[LANE0:.+]] = arith.cmpi eq, %{{.+}}, %c0_i32
// CHECK-NEXT: scf.if %[[LANE0]] {
// CHECK: scf.for
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: nvvm.cp.async.bulk.tensor.reduce %{{.+}}, %{{.+}}, box[%{{.+}}, %{{.+}}] {redKind = #nvvm.tma_redux_kind<add>}
// CHECK: nvvm.cp.async.bulk.tensor.reduce %{{.+}}, %{{.+}}, box[%{{.+}}, %{{.+}}] {redKind = #nvvm.tma_redux_kind<add>}
// CHECK-NEXT: cp.async.bulk.commit_group;\0A\09cp.async.bulk.wait_group.read 0;
// CHECK-NEXT: nvvm.mbarrier.arrive
// CHECK: cp.async.bulk.wait_group 0;
// CHECK-NOT: cp.reduce.async.bulk.global
// CHECK: nvvm.setmaxregister increase 240
// CHECK: scf.for
// CHECK-COUNT-8: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 80, k = 16>, {{.+}} A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// CHECK-NEXT: nvvm.wgmma.commit.group.sync.aligned
// CHECK-COUNT-8: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 80, k = 16>, {{.+}} A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// CHECK-NEXT: nvvm.wgmma.commit.group.sync.aligned
// CHECK: wgmma.wait_group.sync.aligned 1;
// CHECK: wgmma.wait_group.sync.aligned 0;
// CHECK-COUNT-5: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK-COUNT-5: nvvm.stmatrix {{.+}} {eltType = #nvvm.ld_st_matrix_elt_type<b16>, layout = #nvvm.mma_layout<col>, shape = #nvvm.ld_st_matrix_shape<m = 8, n = 8>}
// CHECK-NEXT: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK: nvvm.barrier id = %c1_i32{{.*}} number_of_threads = %c256_i32
// CHECK-COUNT-8: nvvm.wgmma.mma_async {{.+}} <m = 64, n = 80, k = 16>, {{.+}} A[<bf16>, <one>, <col>], B[<bf16>, <one>, <col>]
// CHECK-NEXT: nvvm.wgmma.commit.group.sync.aligned
// CHECK-COUNT-5: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: wgmma.wait_group.sync.aligned 1;
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK-COUNT-40: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : f32, !llvm.ptr<3>
// CHECK-NEXT: nvvm.fence.proxy
// CHECK: nvvm.mbarrier.arrive
// CHECK-NEXT: wgmma.wait_group.sync.aligned 0;
func.func @grad_q80(%q: tensor<1x2x160x128xbf16>, %k: tensor<1x1x256x128xbf16>,
                    %v: tensor<1x1x256x128xbf16>, %o: tensor<1x2x160x128xbf16>,
                    %do: tensor<1x2x160x128xbf16>, %lse: tensor<1x2x160xf32>)
    -> (tensor<1x2x160x128xbf16>, tensor<1x1x256x128xbf16>, tensor<1x1x256x128xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse
      : (tensor<1x2x160x128xbf16>, tensor<1x1x256x128xbf16>, tensor<1x1x256x128xbf16>,
         tensor<1x2x160x128xbf16>, tensor<1x2x160x128xbf16>, tensor<1x2x160xf32>)
      -> (tensor<1x2x160x128xbf16>, tensor<1x1x256x128xbf16>, tensor<1x1x256x128xbf16>)
  return %dq, %dk, %dv
      : tensor<1x2x160x128xbf16>, tensor<1x1x256x128xbf16>, tensor<1x1x256x128xbf16>
}
