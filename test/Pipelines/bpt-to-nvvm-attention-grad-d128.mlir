// The attention backward at head dim 128 through the registered pipelines:
// bpt-blockwise records the sm_90a strategy with 80-row query blocks, and
// bpt-to-nvvm lowers the nests to the transposed-dQ kernel, whose
// accumulator is a tensor map added to by TMA reductions: the same PTX as
// bpt-compile gives for this file; with chip sm_80 the mma.sync backward.
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise)" | FileCheck %s --check-prefix=BLOCKWISE
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise,bpt-to-nvvm)" > %t.mlir
// RUN: FileCheck %s --check-prefix=SM90 --input-file=%t.mlir
// RUN: python3 %S/Inputs/ptx-of.py < %t.mlir > %t.ptx
// RUN: bpt-compile %s -o %t.compiled
// RUN: diff %t.ptx %t.compiled.ptx

// BLOCKWISE: bpt.nest = #bpt.attention_grad_nest<key_value, causal = false, scale = {{.+}}>{{.*}}bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 80, kv_block = 128, stages = 2, warps = 12>
// BLOCKWISE: bpt.nest = #bpt.attention_grad_nest<query, causal = false, scale = {{.+}}>{{.*}}bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 80, kv_block = 128, stages = 2, warps = 12>

// SM90: gpu.launch_func @bpt_kernels::@attention_grad_prepare_d128
// SM90: gpu.launch_func @bpt_kernels::@attention_grad_sm90_d128_q80
// SM90: gpu.launch_func @bpt_kernels::@attention_grad_finish_d128
// SM90: gpu.binary @bpt_kernels
// SM90-SAME: chip = "sm_90a"
// SM90-SAME: cp.reduce.async.bulk.tensor.2d.global.shared::cta.add.tile.bulk_group

// sm_80: the mma.sync backward with Pᵀ and dSᵀ through shared memory
// (`_ps`; not causal, so it walks the query blocks from its key block's
// index), the same PTX as bpt-compile --chip=sm_80.
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise{chip=sm_80})" | FileCheck %s --check-prefix=BLOCKWISE80
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise{chip=sm_80},bpt-to-nvvm{chip=sm_80})" > %t.sm80.mlir
// RUN: FileCheck %s --check-prefix=SM80 --input-file=%t.sm80.mlir
// RUN: python3 %S/Inputs/ptx-of.py < %t.sm80.mlir > %t.sm80.ptx
// RUN: bpt-compile %s --chip=sm_80 -o %t.compiled80
// RUN: diff %t.sm80.ptx %t.compiled80.ptx
// BLOCKWISE80: bpt.nest = #bpt.attention_grad_nest<key_value, causal = false, scale = {{.+}}>{{.*}}bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", q_block = 64, kv_block = 128, stages = 2, warps = 8>
// BLOCKWISE80: bpt.nest = #bpt.attention_grad_nest<query, causal = false, scale = {{.+}}>{{.*}}bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", q_block = 64, kv_block = 128, stages = 2, warps = 8>
// SM80: gpu.launch_func @bpt_kernels::@attention_grad_prepare_d128_padded
// SM80: gpu.launch_func @bpt_kernels::@attention_grad_sm80_d128_t64x128x2_ps_ragged
// SM80: gpu.launch_func @bpt_kernels::@attention_grad_finish_d128_padded
// SM80: gpu.binary @bpt_kernels
// SM80-SAME: chip = "sm_80"
func.func @grad(%q: tensor<1x2x160x128xbf16>, %k: tensor<1x1x256x128xbf16>,
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
