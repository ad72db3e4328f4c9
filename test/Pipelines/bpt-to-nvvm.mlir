// The registered pipelines give the tensor-core kernels: what an MLIR user
// (or a compiler embedding bpt) gets from bpt-blockwise and bpt-to-nvvm is
// what bpt-compile gets, PTX byte for byte.
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise,bpt-to-nvvm)" > %t.sm90.mlir
// RUN: FileCheck %s --check-prefix=SM90 --input-file=%t.sm90.mlir
// RUN: python3 %S/Inputs/ptx-of.py < %t.sm90.mlir > %t.sm90.ptx
// RUN: bpt-compile %s -o %t.compiled
// RUN: diff %t.sm90.ptx %t.compiled.ptx
// RUN: FileCheck %s --check-prefix=MANIFEST --input-file=%t.compiled.json
// The whole lowering from the model level is the same pipeline.
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-to-nvvm)" | python3 %S/Inputs/ptx-of.py | diff - %t.compiled.ptx
// sm_80: mma.sync, the same as bpt-compile --chip=sm_80.
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise{chip=sm_80},bpt-to-nvvm{chip=sm_80})" > %t.sm80.mlir
// RUN: FileCheck %s --check-prefix=SM80 --input-file=%t.sm80.mlir
// RUN: python3 %S/Inputs/ptx-of.py < %t.sm80.mlir > %t.sm80.ptx
// RUN: bpt-compile %s --chip=sm_80 -o %t.compiled80
// RUN: diff %t.sm80.ptx %t.compiled80.ptx
// A nest tiled for sm_90a's kernel is not lowered for sm_80.
// RUN: not bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise,bpt-to-nvvm{chip=sm_80})" 2>&1 | FileCheck %s --check-prefix=MISMATCH
// bpt-compile's blockwise stage: the nest with its strategy, no launch yet.
// RUN: bpt-compile %s --emit=mlir --stage=blockwise | FileCheck %s --check-prefix=BLOCKWISE

// SM90: gpu.launch_func @bpt_kernels::@attention_sm90_d128_causal blocks in (%{{.+}}, %{{.+}}, %{{.+}}) threads in (%{{.+}}, %{{.+}}, %{{.+}}) dynamic_shared_memory_size
// SM90: gpu.binary @bpt_kernels
// SM90-SAME: chip = "sm_90a"
// SM90-SAME: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// SM90-SAME: cp.async.bulk.tensor.2d.shared::cluster.global
// MANIFEST: "block": [
// MANIFEST-NEXT: 384,
// MANIFEST: "dynamic_shared_memory": 164920,
// MANIFEST-NEXT: "grid": [
// MANIFEST-NEXT: 512,
// MANIFEST-NEXT: 1,
// MANIFEST-NEXT: 1
// MANIFEST-NEXT: ],
// MANIFEST-NEXT: "kernel": "attention_sm90_d128_causal"
// SM80: gpu.launch_func @bpt_kernels::@attention_sm80_d128_causal_t
// SM80: gpu.binary @bpt_kernels
// SM80-SAME: chip = "sm_80"
// SM80-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// SM80-NOT: wgmma
// MISMATCH: error: bpt-select-strategy: this loop nest was tiled for the wgmma kernel of sm_90a, not for sm_80; run bpt-blockwise with chip=sm_80
// BLOCKWISE-LABEL: func.func @attention
// BLOCKWISE-NOT: gpu.launch_func
// BLOCKWISE: scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (1, 16, 32)
// BLOCKWISE: scf.for
// BLOCKWISE: linalg.matmul
// BLOCKWISE: math.exp2
// BLOCKWISE: } {bpt.kv_block = {{64|128}} : i64, bpt.nest = #bpt.attention_nest<causal = true, scale = 0.088388347648318433>, bpt.q_block = 128 : i64, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = {{64|128}}, stages = {{[2-4]}}, warps = 12>}
// BLOCKWISE-NOT: gpu.launch_func
func.func @attention(%query: tensor<1x16x4096x128xbf16>, %key: tensor<1x16x4096x128xbf16>,
                     %value: tensor<1x16x4096x128xbf16>) -> tensor<1x16x4096x128xbf16> {
  %0 = bpt.attention %query, %key, %value causal
      : (tensor<1x16x4096x128xbf16>, tensor<1x16x4096x128xbf16>, tensor<1x16x4096x128xbf16>)
      -> tensor<1x16x4096x128xbf16>
  return %0 : tensor<1x16x4096x128xbf16>
}
