// The attention backward through the registered pipelines: bpt-blockwise
// records the sm_90a strategy on both tagged nests, and bpt-to-nvvm lowers
// them to the pre-pass, backward and post-pass kernels, the same PTX as
// bpt-compile gives for this file; with chip sm_80 the mma.sync backward.
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise)" | FileCheck %s --check-prefix=BLOCKWISE
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise,bpt-to-nvvm)" > %t.sm90.mlir
// RUN: FileCheck %s --check-prefix=SM90 --input-file=%t.sm90.mlir
// RUN: python3 %S/Inputs/ptx-of.py < %t.sm90.mlir > %t.sm90.ptx
// RUN: bpt-compile %s -o %t.compiled
// RUN: diff %t.sm90.ptx %t.compiled.ptx

// sm_80: the mma.sync backward, the same as bpt-compile --chip=sm_80.
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise{chip=sm_80})" | FileCheck %s --check-prefix=BLOCKWISE80
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise{chip=sm_80},bpt-to-nvvm{chip=sm_80})" > %t.sm80.mlir
// RUN: FileCheck %s --check-prefix=SM80 --input-file=%t.sm80.mlir
// RUN: python3 %S/Inputs/ptx-of.py < %t.sm80.mlir > %t.sm80.ptx
// RUN: bpt-compile %s --chip=sm_80 -o %t.compiled80
// RUN: diff %t.sm80.ptx %t.compiled80.ptx

// BLOCKWISE: scf.forall
// BLOCKWISE: bpt.nest = #bpt.attention_grad_nest<key_value, causal = true, scale = 1.250000e-01>, bpt.q_block = 128 : i64, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12>
// BLOCKWISE: scf.forall
// BLOCKWISE: bpt.nest = #bpt.attention_grad_nest<query, causal = true, scale = 1.250000e-01>, bpt.q_block = 128 : i64, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12>

// SM90: gpu.launch_func @bpt_kernels::@attention_grad_prepare_d64
// SM90: gpu.launch_func @bpt_kernels::@attention_grad_sm90_d64_causal
// SM90: gpu.launch_func @bpt_kernels::@attention_grad_finish_d64
// SM90: gpu.binary @bpt_kernels
// SM90-SAME: chip = "sm_90a"
// SM90-SAME: cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32
// BLOCKWISE80: bpt.nest = #bpt.attention_grad_nest<key_value, causal = true, scale = 1.250000e-01>{{.*}}bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80"
// BLOCKWISE80: bpt.nest = #bpt.attention_grad_nest<query, causal = true, scale = 1.250000e-01>{{.*}}bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80"

// SM80: gpu.launch_func @bpt_kernels::@attention_grad_prepare_d64
// SM80: gpu.launch_func @bpt_kernels::@attention_grad_sm80_d64_causal_t64x128x2_qs2
// SM80: gpu.launch_func @bpt_kernels::@attention_grad_finish_d64
// SM80: gpu.binary @bpt_kernels
// SM80-SAME: chip = "sm_80"
// SM80-SAME: red.global.add.f32
func.func @grad(%q: tensor<1x4x256x64xbf16>, %k: tensor<1x2x256x64xbf16>,
                %v: tensor<1x2x256x64xbf16>, %o: tensor<1x4x256x64xbf16>,
                %do: tensor<1x4x256x64xbf16>, %lse: tensor<1x4x256xf32>)
    -> (tensor<1x4x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      : (tensor<1x4x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>,
         tensor<1x4x256x64xbf16>, tensor<1x4x256x64xbf16>, tensor<1x4x256xf32>)
      -> (tensor<1x4x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>)
  return %dq, %dk, %dv
      : tensor<1x4x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>
}
