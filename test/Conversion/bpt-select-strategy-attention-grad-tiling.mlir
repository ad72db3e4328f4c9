// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_80 sm80-grad-q-block=32 sm80-grad-kv-block=128" | FileCheck %s --check-prefix=PIN
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_80 sm80-grad-q-block=32 sm80-grad-stages=3" --bpt-tile-attention --bpt-attention-grad-to-sm80 | FileCheck %s --check-prefix=STAGES
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_80 sm80-grad-q-block=32 sm80-grad-kv-block=128" --bpt-select-strategy=chip=sm_80 2>&1 | FileCheck %s --check-prefix=AGAIN
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_86 sm80-grad-q-block=64 sm80-grad-kv-block=128" 2>&1 | FileCheck %s --check-prefix=NOFIT
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="sm80-grad-q-block=32" | FileCheck %s --check-prefix=WGMMA
// RUN: not bpt-opt %s --bpt-select-strategy="sm80-grad-q-block=128" 2>&1 | FileCheck %s --check-prefix=QRANGE
// RUN: not bpt-opt %s --bpt-select-strategy="sm80-grad-kv-block=32" 2>&1 | FileCheck %s --check-prefix=KVRANGE
// RUN: not bpt-opt %s --bpt-select-strategy="sm80-grad-stages=5" 2>&1 | FileCheck %s --check-prefix=STAGERANGE

// The mma.sync attention backward's tiling is pinned by its own options
// (the forward's sm80-q-block and friends do not reach it): the strategy
// records it, the kernel is built for it, and a second selection keeps it.
// PIN-LABEL: func.func @grad
// PIN: bpt.attention_grad {{.*}}bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", q_block = 32, kv_block = 128, stages = 2, warps = 8>
// AGAIN-LABEL: func.func @grad
// AGAIN-NOT: error
// AGAIN: q_block = 32, kv_block = 128, stages = 2, warps = 8
// STAGES-LABEL: func.func @grad
// STAGES: gpu.launch_func @bpt_sm80::@attention_grad_sm80_d128_causal_t32x128x3 {{.*}} threads in (%c256
// STAGES: gpu.func @attention_grad_sm80_d128_causal_t32x128x3(
// A pinned tiling that the chip's shared memory does not hold is refused
// with the reason (here: sm_86's 99 KiB at head dim 128), not shrunk.
// NOFIT: remark: attention_grad does not take the mma.sync path: the pinned 64 x 128 x 2 tiling needs 164992 bytes of shared memory, 101376 available
// The wgmma backward's tiling follows from the head dim (80-row query
// blocks at D 128): the options do not change it.
// WGMMA: #bpt.strategy<wgmma, chip = "sm_90a", q_block = 80, kv_block = 128, stages = 2, warps = 12>
// QRANGE: error: bpt-select-strategy: sm80-grad-q-block must be 0, 32 or 64, got 128
// KVRANGE: error: bpt-select-strategy: sm80-grad-kv-block must be 0, 64 or 128, got 32
// STAGERANGE: error: bpt-select-strategy: sm80-grad-stages must be 0 or in [2, 4], got 5
func.func @grad(%q: tensor<1x2x256x128xbf16>, %k: tensor<1x2x256x128xbf16>,
                %v: tensor<1x2x256x128xbf16>, %o: tensor<1x2x256x128xbf16>,
                %do: tensor<1x2x256x128xbf16>, %lse: tensor<1x2x256xf32>)
    -> (tensor<1x2x256x128xbf16>, tensor<1x2x256x128xbf16>,
        tensor<1x2x256x128xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      : (tensor<1x2x256x128xbf16>, tensor<1x2x256x128xbf16>,
         tensor<1x2x256x128xbf16>, tensor<1x2x256x128xbf16>,
         tensor<1x2x256x128xbf16>, tensor<1x2x256xf32>)
      -> (tensor<1x2x256x128xbf16>, tensor<1x2x256x128xbf16>,
          tensor<1x2x256x128xbf16>)
  return %dq, %dk, %dv : tensor<1x2x256x128xbf16>, tensor<1x2x256x128xbf16>,
                         tensor<1x2x256x128xbf16>
}
