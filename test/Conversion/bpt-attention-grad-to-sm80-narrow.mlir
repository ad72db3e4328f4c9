// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_86 --verify-diagnostics | FileCheck %s --check-prefix=STRATEGY
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_86 --bpt-tile-attention --bpt-attention-grad-to-sm80 2>/dev/null | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_86 --bpt-select-strategy=chip=sm_86 2>&1 | FileCheck %s --check-prefix=AGAIN

// Head dim 128 on sm_86 (99 KiB of shared memory a block): the backward's
// 64 × 128 tiling needs 161 KiB, so it takes 32-row query blocks and
// 64-row key blocks (4 warps, 74 KiB), a strategy that a second selection
// keeps (a recorded mma.sync backward pins its tiling through the
// sm80-grad-* options, which the 32 × 64 tiling fits).
// STRATEGY-LABEL: func.func @d128
// STRATEGY: bpt.attention_grad {{.*}}bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_86", q_block = 32, kv_block = 64, stages = 2, warps = 4>
// AGAIN-LABEL: func.func @d128
// AGAIN-NOT: error
// AGAIN: q_block = 32, kv_block = 64
// CHECK-LABEL: func.func @d128
// CHECK: %[[SMEM:.+]] = arith.constant 74368 : i32
// CHECK: gpu.launch_func @bpt_sm80::@attention_grad_sm80_d128_causal_t32x64x2 blocks in (%c4{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c128{{.*}}, %c1{{.*}}, %c1{{.*}}) dynamic_shared_memory_size %[[SMEM]]
// CHECK: gpu.func @attention_grad_sm80_d128_causal_t32x64x2({{.*}} kernel attributes {nvvm.maxntid = array<i32: 128, 1, 1>
func.func @d128(%q: tensor<1x2x256x128xf16>, %k: tensor<1x1x256x128xf16>,
                %v: tensor<1x1x256x128xf16>, %o: tensor<1x2x256x128xf16>,
                %do: tensor<1x2x256x128xf16>, %lse: tensor<1x2x256xf32>)
    -> (tensor<1x2x256x128xf16>, tensor<1x1x256x128xf16>,
        tensor<1x1x256x128xf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      : (tensor<1x2x256x128xf16>, tensor<1x1x256x128xf16>,
         tensor<1x1x256x128xf16>, tensor<1x2x256x128xf16>,
         tensor<1x2x256x128xf16>, tensor<1x2x256xf32>)
      -> (tensor<1x2x256x128xf16>, tensor<1x1x256x128xf16>,
          tensor<1x1x256x128xf16>)
  return %dq, %dk, %dv : tensor<1x2x256x128xf16>, tensor<1x1x256x128xf16>,
                         tensor<1x1x256x128xf16>
}

// -----

// Head dim 64 fits the 64 × 128 tiling there.
// STRATEGY-LABEL: func.func @d64
// STRATEGY: q_block = 64, kv_block = 128, stages = 2, warps = 8
func.func @d64(%q: tensor<1x2x256x64xf16>, %k: tensor<1x2x256x64xf16>,
               %v: tensor<1x2x256x64xf16>, %o: tensor<1x2x256x64xf16>,
               %do: tensor<1x2x256x64xf16>, %lse: tensor<1x2x256xf32>)
    -> (tensor<1x2x256x64xf16>, tensor<1x2x256x64xf16>,
        tensor<1x2x256x64xf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse
      : (tensor<1x2x256x64xf16>, tensor<1x2x256x64xf16>,
         tensor<1x2x256x64xf16>, tensor<1x2x256x64xf16>,
         tensor<1x2x256x64xf16>, tensor<1x2x256xf32>)
      -> (tensor<1x2x256x64xf16>, tensor<1x2x256x64xf16>,
          tensor<1x2x256x64xf16>)
  return %dq, %dk, %dv : tensor<1x2x256x64xf16>, tensor<1x2x256x64xf16>,
                         tensor<1x2x256x64xf16>
}
