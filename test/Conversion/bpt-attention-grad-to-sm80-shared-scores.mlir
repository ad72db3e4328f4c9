// RUN: bpt-opt %s --bpt-select-strategy=chip=sm_80 --bpt-tile-attention --bpt-attention-grad-to-sm80 --split-input-file | FileCheck %s

// Head dim 128 with 64-row query blocks on sm_80 (`_ps`): the warps work
// in pairs, each pair 32 key rows, each warp of it half of a step's 64
// query columns. Per step: wait, the step's first barrier, the next step's
// copies; Sᵀ and dPᵀ ([32, 32] a warp: 2 × 64 m16n8k16), P in exp2 (32);
// Pᵀ and dSᵀ into their shared tiles (16 stores of a register pair each);
// a second barrier; dV and dK for the warp's half of the head columns over
// all 64 queries (2 × 64 m16n8k16, A from the tiles by ldmatrix, B by
// ldmatrix.trans); the step's dQ piece (64 m16n8k16, 32
// red.global.add.f32), which the odd warp pairs take before dV and dK and
// the even ones after. After the loop no dQ is left and no barrier: each
// warp stores its [32, 64] of dK and of dV (2 × 32 pair stores).
// CHECK-LABEL: func.func @d128_causal
// CHECK: %[[SMEM:.+]] = arith.constant 164992 : i32
// CHECK: gpu.launch_func @bpt_sm80::@attention_grad_sm80_d128_causal_t64x128x2_ps blocks in (%c2{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256{{.*}}, %c1{{.*}}, %c1{{.*}}) dynamic_shared_memory_size %[[SMEM]]
// CHECK: gpu.func @attention_grad_sm80_d128_causal_t64x128x2_ps(
// CHECK: %[[KBC:.+]] = arith.index_castui %block_id_x
// CHECK-NOT: arith.remui %[[KBC]],
// CHECK: scf.for
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-NEXT: nvvm.barrier0
// CHECK: nvvm.cp.async.commit.group
// CHECK-NOT: nvvm.barrier0
// CHECK-COUNT-128: nvvm.mma.sync {{.+}} shape = #nvvm.shape<m = 16, n = 8, k = 16>
// CHECK-COUNT-32: llvm.nvvm.ex2.approx.ftz.f32
// CHECK-COUNT-32: llvm.store {{.+}} : i32, !llvm.ptr<3>
// CHECK-NOT: nvvm.mma.sync
// CHECK: nvvm.barrier0
// CHECK-NOT: nvvm.barrier0
// CHECK: %[[ODD:.+]] = arith.cmpi ne, %{{.+}}, %c0_i32{{.*}} : i32
// CHECK: scf.if %[[ODD]] {
// CHECK-COUNT-64: nvvm.mma.sync
// CHECK-COUNT-32: red.global.add.f32
// CHECK-NOT: nvvm.mma.sync
// CHECK: }
// CHECK: nvvm.ldmatrix {{.+}} layout = #nvvm.mma_layout<row>
// CHECK: nvvm.ldmatrix {{.+}} layout = #nvvm.mma_layout<col>
// CHECK-COUNT-128: nvvm.mma.sync
// CHECK-NOT: red.global.add.f32
// CHECK: %[[EVEN:.+]] = arith.cmpi eq, %{{.+}}, %c0_i32{{.*}} : i32
// CHECK: scf.if %[[EVEN]] {
// CHECK-COUNT-64: nvvm.mma.sync
// CHECK-COUNT-32: red.global.add.f32
// CHECK-NOT: nvvm.barrier0
// CHECK: scf.yield
// CHECK-NOT: nvvm.barrier0
// CHECK-NOT: nvvm.mma.sync
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-NOT: nvvm.barrier0
// CHECK-COUNT-64: llvm.store {{.+}} : i32, !llvm.ptr{{$}}
// CHECK-NOT: llvm.store
// CHECK: gpu.return
func.func @d128_causal(%q: tensor<1x2x256x128xbf16>, %k: tensor<1x1x256x128xbf16>,
                       %v: tensor<1x1x256x128xbf16>, %o: tensor<1x2x256x128xbf16>,
                       %do: tensor<1x2x256x128xbf16>, %lse: tensor<1x2x256xf32>)
    -> (tensor<1x2x256x128xbf16>, tensor<1x1x256x128xbf16>,
        tensor<1x1x256x128xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      : (tensor<1x2x256x128xbf16>, tensor<1x1x256x128xbf16>,
         tensor<1x1x256x128xbf16>, tensor<1x2x256x128xbf16>,
         tensor<1x2x256x128xbf16>, tensor<1x2x256xf32>)
      -> (tensor<1x2x256x128xbf16>, tensor<1x1x256x128xbf16>,
          tensor<1x1x256x128xbf16>)
  return %dq, %dk, %dv : tensor<1x2x256x128xbf16>, tensor<1x1x256x128xbf16>,
                         tensor<1x1x256x128xbf16>
}

// -----

// Not causal: key block n walks the query blocks from n on, modulo their
// count (4), so that the key blocks of a head in flight add into
// different dQ rows; the step's query block is (j mod 4 + n mod 4) mod 4.
// CHECK-LABEL: func.func @d128_rotated
// CHECK: gpu.func @attention_grad_sm80_d128_t64x128x2_ps(
// CHECK: %[[KB:.+]] = arith.index_castui %block_id_x
// CHECK: %[[ROT:.+]] = arith.remui %[[KB]], %[[FOUR:c4_i32[_0-9]*]] : i32
// CHECK: scf.for %[[J:.+]] = %{{.+}} to
// CHECK: %[[JB:.+]] = arith.remui %[[J]], %[[PER:[0-9]+]] : i32
// CHECK-NEXT: %[[SUM:.+]] = arith.addi %[[JB]], %[[ROT]] : i32
// CHECK-NEXT: arith.remui %[[SUM]], %[[PER]] : i32
func.func @d128_rotated(%q: tensor<1x2x256x128xbf16>, %k: tensor<1x1x256x128xbf16>,
                        %v: tensor<1x1x256x128xbf16>, %o: tensor<1x2x256x128xbf16>,
                        %do: tensor<1x2x256x128xbf16>, %lse: tensor<1x2x256xf32>)
    -> (tensor<1x2x256x128xbf16>, tensor<1x1x256x128xbf16>,
        tensor<1x1x256x128xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse
      : (tensor<1x2x256x128xbf16>, tensor<1x1x256x128xbf16>,
         tensor<1x1x256x128xbf16>, tensor<1x2x256x128xbf16>,
         tensor<1x2x256x128xbf16>, tensor<1x2x256xf32>)
      -> (tensor<1x2x256x128xbf16>, tensor<1x1x256x128xbf16>,
          tensor<1x1x256x128xbf16>)
  return %dq, %dk, %dv : tensor<1x2x256x128xbf16>, tensor<1x1x256x128xbf16>,
                         tensor<1x1x256x128xbf16>
}
