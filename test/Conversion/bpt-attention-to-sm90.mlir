// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --bpt-tile-attention --bpt-attention-to-sm90 | FileCheck %s

// bf16 causal GQA, head dim 128: the host side views Q, K and V as [rows, D]
// tensors for TMA descriptors (boxes of 128 rows x 64 columns, 128-byte
// swizzle) and launches one 384-thread block per (query block, head, batch).
// CHECK-LABEL: func.func @gqa_causal_d128
// CHECK-NOT: bpt.attention
// CHECK: %[[Q:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<2x4x256x128xbf16> to memref<2x4x256x128xbf16>
// CHECK: %[[QROWS:.+]] = memref.collapse_shape %[[Q]] {{\[}}[0, 1, 2], [3]] : memref<2x4x256x128xbf16> into memref<2048x128xbf16>
// CHECK: %[[QU:.+]] = memref.cast %[[QROWS]] : memref<2048x128xbf16> to memref<*xbf16>
// CHECK: %[[DQ:.+]] = nvgpu.tma.create.descriptor %[[QU]] box[%{{.+}}, %{{.+}}] : memref<*xbf16> -> <tensor = memref<128x64xbf16, #gpu.address_space<workgroup>>, swizzle = swizzle_128b
// CHECK: memref.collapse_shape %{{.+}} : memref<2x2x256x128xbf16> into memref<1024x128xbf16>
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x4x256x128xbf16>
// CHECK-DAG: %[[C4:.+]] = arith.constant 4 : index
// CHECK-DAG: %[[C384:.+]] = arith.constant 384 : index
// CHECK-DAG: %[[SMEM:.+]] = arith.constant 164920 : i32
// CHECK: gpu.launch_func @bpt_sm90::@attention_sm90_d128_causal blocks in (%{{.+}}, %[[C4]], %{{.+}}) threads in (%[[C384]], %{{.+}}, %{{.+}}) dynamic_shared_memory_size %[[SMEM]] args(%[[DQ]] : {{.+}}, %{{.+}} : {{.+}}, %{{.+}} : {{.+}}, %[[OUT]] : memref<2x4x256x128xbf16>)
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
