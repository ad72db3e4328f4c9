// RUN: bpt-opt %s --bpt-select-strategy=chip=sm_80 --bpt-tile-attention --bpt-attention-grad-to-sm80 | FileCheck %s

// bf16 causal GQA 4:2, head dim 64, on sm_80: a pre-pass kernel computes
// the row sums D = rowsum(dO ∘ O) and zeroes the f32 dQ accumulator (it
// replaces the linalg pre-pass); one 256-thread block per (key block of
// 128, kv head, batch) runs the mma.sync kernel on plain buffers, which
// writes dK and dV and adds into the accumulator; a post-pass kernel
// writes dQ = 0.125 · accumulator in bf16. Both blockwise nests are gone.
// CHECK-LABEL: func.func @grad_gqa_causal
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<2x4x256x64xbf16>, %[[K:[^:]+]]: tensor<2x2x256x64xbf16>, %[[V:[^:]+]]: tensor<2x2x256x64xbf16>, %[[O:[^:]+]]: tensor<2x4x256x64xbf16>, %[[DO:[^:]+]]: tensor<2x4x256x64xbf16>, %[[LSE:[^:]+]]: tensor<2x4x256xf32>)
// CHECK-NOT: scf.forall
// CHECK-NOT: linalg.generic
// CHECK: %[[QB:.+]] = bufferization.to_buffer %[[Q]] read_only
// CHECK: %[[KB:.+]] = bufferization.to_buffer %[[K]] read_only
// CHECK: %[[VB:.+]] = bufferization.to_buffer %[[V]] read_only
// CHECK: %[[DOB:.+]] = bufferization.to_buffer %[[DO]] read_only
// CHECK: %[[LSEB:.+]] = bufferization.to_buffer %[[LSE]] read_only
// CHECK: %[[DB:.+]] = memref.alloc() {bpt.buffer_name = "delta"} : memref<2x4x256xf32>
// CHECK: %[[DOP:.+]] = bufferization.to_buffer %[[DO]] read_only
// CHECK: %[[OB:.+]] = bufferization.to_buffer %[[O]] read_only
// CHECK: %[[ACC:.+]] = memref.alloc() {bpt.buffer_name = "dq_accumulator"} : memref<2x4x256x64xf32>
// CHECK: gpu.launch_func @bpt_sm80::@attention_grad_prepare_d64 blocks in (%c64{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256, %c1{{.*}}, %c1{{.*}}) args(%[[DOP]] : memref<2x4x256x64xbf16>, %[[OB]] : memref<2x4x256x64xbf16>, %[[DB]] : memref<2x4x256xf32>, %[[ACC]] : memref<2x4x256x64xf32>)
// CHECK: %[[DK:.+]] = memref.alloc() : memref<2x2x256x64xbf16>
// CHECK: %[[DV:.+]] = memref.alloc() : memref<2x2x256x64xbf16>
// CHECK: %[[SMEM:.+]] = arith.constant 99456 : i32
// CHECK: gpu.launch_func @bpt_sm80::@attention_grad_sm80_d64_causal_t64x128x2_qs2 blocks in (%c2{{.*}}, %c2{{.*}}, %c2{{.*}}) threads in (%c256{{.*}}, %c1{{.*}}, %c1{{.*}}) dynamic_shared_memory_size %[[SMEM]] args(%[[QB]] : memref<2x4x256x64xbf16>, %[[KB]] : memref<2x2x256x64xbf16>, %[[VB]] : memref<2x2x256x64xbf16>, %[[DOB]] : memref<2x4x256x64xbf16>, %[[LSEB]] : memref<2x4x256xf32>, %[[DB]] : memref<2x4x256xf32>, %[[ACC]] : memref<2x4x256x64xf32>, %[[DK]] : memref<2x2x256x64xbf16>, %[[DV]] : memref<2x2x256x64xbf16>)
// A block copies its K and V rows before it writes dK and dV there: dK
// (operand 7) and dV (8) may take the bytes of K (1) and V (2).
// CHECK-SAME: {bpt.writes_over = array<i64: 7, 1, 8, 2>}
// CHECK: %[[DQB:.+]] = memref.alloc() : memref<2x4x256x64xbf16>
// CHECK: gpu.launch_func @bpt_sm80::@attention_grad_finish_d64 blocks in (%c64{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%[[ACC]] : memref<2x4x256x64xf32>, %[[DQB]] : memref<2x4x256x64xbf16>)
// CHECK: %[[DKT:.+]] = bufferization.to_tensor %[[DK]] restrict writable
// CHECK: %[[DVT:.+]] = bufferization.to_tensor %[[DV]] restrict writable
// CHECK: %[[DQ:.+]] = bufferization.to_tensor %[[DQB]] restrict writable
// CHECK: return %[[DQ]], %[[DKT]], %[[DVT]]

// The kernels, in the order built: the pre-pass (as the sm_90a path's).
// CHECK: gpu.module @bpt_sm80
// CHECK: gpu.func @attention_grad_prepare_d64(%{{.+}}: memref<2x4x256x64xbf16>, %{{.+}}: memref<2x4x256x64xbf16>, %{{.+}}: memref<2x4x256xf32>, %{{.+}}: memref<2x4x256x64xf32>) kernel attributes {nvvm.maxntid = array<i32: 256, 1, 1>

// The main kernel (`_qs2`: at head dim 64 the warps work in pairs, each
// pair 32 key rows, each warp of it half of a step's 64 query columns):
// the threads copy K and V (128 rows × 8 chunks: 4 each) and step 0's Q
// and dO (2 each) and lse and D rows (threads 0-31), one group; per step:
// wait, the step's one barrier, the next step's copies; the previous
// step's dQ (from step 1 on; even warp pairs here, odd ones after the
// exponentials): its [16, 32] piece over the 128 key rows (32 m16n8k16,
// A and B by ldmatrix.trans) added by 16 red.global.add.f32 after one lane
// exchange each pair; Sᵀ and dPᵀ ([32, 32] a warp: 2 × 32 m16n8k16, A by
// ldmatrix from the pair's K/V rows, B from the warp's half of Q/dO); P
// in exp2; partial dV and dK over the half (2 × 32, B by
// ldmatrix.trans); dSᵀ into the step's shared tile (16 stores of a
// register pair). After the loop: a barrier, the last step's dQ (its
// reductions at one address a lane, their elements' offsets in the
// instruction); then the
// pair swaps partial sums through shared memory (a barrier, 64 f32
// stores, a barrier, 64 loads) and each warp stores one of dK and dV
// (32 pair stores).
// CHECK: gpu.func @attention_grad_sm80_d64_causal_t64x128x2_qs2(%{{.+}}: memref<2x4x256x64xbf16>, %{{.+}}: memref<2x2x256x64xbf16>, %{{.+}}: memref<2x2x256x64xbf16>, %{{.+}}: memref<2x4x256x64xbf16>, %{{.+}}: memref<2x4x256xf32>, %{{.+}}: memref<2x4x256xf32>, %{{.+}}: memref<2x4x256x64xf32>, %{{.+}}: memref<2x2x256x64xbf16>, %{{.+}}: memref<2x2x256x64xbf16>) kernel attributes {nvvm.maxntid = array<i32: 256, 1, 1>, nvvm.minctasm = 1 : i32}
// CHECK-COUNT-13: nvvm.cp.async.shared.global
// CHECK: nvvm.cp.async.commit.group
// CHECK: scf.for
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-NEXT: nvvm.barrier0
// CHECK-COUNT-5: nvvm.cp.async.shared.global
// CHECK: nvvm.cp.async.commit.group
// CHECK: %[[EARLY:.+]] = arith.andi %[[STARTED:.+]], %{{.+}} : i1
// CHECK: %[[LATE:.+]] = arith.andi %[[STARTED]], %{{.+}} : i1
// CHECK: scf.if %[[EARLY]] {
// CHECK-COUNT-32: nvvm.mma.sync
// CHECK: nvvm.shfl.sync bfly
// CHECK-COUNT-16: red.global.add.f32
// CHECK-NOT: nvvm.barrier0
// CHECK-COUNT-64: nvvm.mma.sync {{.+}} shape = #nvvm.shape<m = 16, n = 8, k = 16>
// CHECK-COUNT-32: llvm.nvvm.ex2.approx.ftz.f32
// CHECK: scf.if %[[LATE]] {
// CHECK-COUNT-32: nvvm.mma.sync
// CHECK: nvvm.shfl.sync bfly
// CHECK-COUNT-16: red.global.add.f32
// CHECK-NOT: nvvm.barrier0
// CHECK: nvvm.ldmatrix {{.+}} layout = #nvvm.mma_layout<col>
// CHECK-COUNT-64: nvvm.mma.sync
// CHECK-COUNT-16: llvm.store {{.+}} : i32, !llvm.ptr<3>
// CHECK-NOT: nvvm.barrier0
// CHECK: scf.yield
// CHECK: nvvm.barrier0
// CHECK: scf.if
// CHECK-COUNT-32: nvvm.mma.sync
// CHECK: "red.global.add.f32 [$0+0], $1;", "l,f" %[[DQROW:[^,]+]],
// CHECK-NEXT: "red.global.add.f32 [$0+256], $1;", "l,f" %[[DQROW]],
// CHECK: "red.global.add.f32 [$0+2048], $1;", "l,f" %[[DQROW]],
// CHECK-NEXT: "red.global.add.f32 [$0+2304], $1;", "l,f" %[[DQROW]],
// CHECK: "red.global.add.f32 [$0+32], $1;", "l,f" %[[DQROW]],
// CHECK-NEXT: "red.global.add.f32 [$0+288], $1;", "l,f" %[[DQROW]],
// CHECK: "red.global.add.f32 [$0+2080], $1;", "l,f" %[[DQROW]],
// CHECK-NEXT: "red.global.add.f32 [$0+2336], $1;", "l,f" %[[DQROW]],
// CHECK: "red.global.add.f32 [$0+64], $1;", "l,f" %[[DQROW]],
// CHECK-NEXT: "red.global.add.f32 [$0+320], $1;", "l,f" %[[DQROW]],
// CHECK: "red.global.add.f32 [$0+2112], $1;", "l,f" %[[DQROW]],
// CHECK-NEXT: "red.global.add.f32 [$0+2368], $1;", "l,f" %[[DQROW]],
// CHECK: "red.global.add.f32 [$0+96], $1;", "l,f" %[[DQROW]],
// CHECK-NEXT: "red.global.add.f32 [$0+352], $1;", "l,f" %[[DQROW]],
// CHECK: "red.global.add.f32 [$0+2144], $1;", "l,f" %[[DQROW]],
// CHECK-NEXT: "red.global.add.f32 [$0+2400], $1;", "l,f" %[[DQROW]],
// CHECK: nvvm.cp.async.wait.group 0
// CHECK: nvvm.barrier0
// CHECK-COUNT-64: llvm.store {{.+}} : f32, !llvm.ptr<3>
// CHECK: nvvm.barrier0
// CHECK-COUNT-64: llvm.load {{.+}} -> f32
// CHECK-COUNT-32: llvm.store {{.+}} : i32, !llvm.ptr{{$}}

// The post-pass: dQ = 0.125 · accumulator.
// CHECK: gpu.func @attention_grad_finish_d64(%{{.+}}: memref<2x4x256x64xf32>, %{{.+}}: memref<2x4x256x64xbf16>) kernel attributes {nvvm.maxntid = array<i32: 256, 1, 1>
// CHECK: arith.constant 1.250000e-01 : f32
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
