// bpt-cpu-run --backward --recompute-projections: the training backward
// with the attention's query, key and value projections computed again
// where its gradient reads them (bpt-blockwise's recompute-projections:
// the first norm, each projection and its head transpose repeated, marked
// bpt.recomputed, just before the attention backward's nests). Every output
// and gradient against float64, the float64 gradients against finite
// differences, as test/CPU/block-grad.mlir (whose blocks these are): MHA and
// GQA, causal, both norms, f32 and bf16. The CPU's own CSE merges the
// repeats back (its memory is not the point), so what the numbers check is
// the rewiring: each repeat must reach the gradient in its own operand's
// place, and both nests of the backward must read the same repeat.

// RUN: rm -rf %t && split-file %S/block-grad.mlir %t
// RUN: bpt-opt %t/gqa_rms_norm_swiglu.mlir --pass-pipeline='builtin.module(bpt-build-backward,bpt-blockwise{tensor-cores=false recompute-projections})' 2>/dev/null | FileCheck %s --check-prefix=IR
// IR-LABEL: func.func @gqa_rms_norm_swiglu_grad
// IR: bpt.ffn_grad
// IR: %[[N:.+]] = bpt.rms_norm %arg0, %arg1 {bpt.recomputed
// IR: %[[Q:.+]] = bpt.linear %[[N]], %arg2 {bpt.recomputed
// IR: linalg.transpose ins(%{{.+}} : tensor<1x100x8x16xf32>) {{.*}}{bpt.recomputed}
// IR: bpt.linear %{{.+}}, %arg3 {bpt.recomputed
// IR: bpt.linear %{{.+}}, %arg4 {bpt.recomputed
// IR: scf.forall
// IR: bpt.nest = #bpt.attention_grad_nest<key_value
// IR: bpt.nest = #bpt.attention_grad_nest<query

// RUN: bpt-cpu-run %t/gqa_rms_norm_swiglu.mlir --backward --recompute-projections --block-sizes=32:32 --seed=63 | FileCheck %s
// RUN: bpt-cpu-run %t/mha_layer_norm_causal.mlir --backward --recompute-projections --block-sizes=32:16 --seed=62 | FileCheck %s
// RUN: bpt-cpu-run %t/gqa_rms_norm_swiglu_bf16.mlir --backward --recompute-projections --block-sizes=32:32 --seed=67 | FileCheck %s
// CHECK-NOT: FAIL
// CHECK: gradient 0 {{.*}}: PASS
// CHECK: finite differences, argument 0: {{.*}}: PASS
// CHECK: {{^PASS$}}

// RUN: not bpt-cpu-run %t/gqa_rms_norm_swiglu.mlir --recompute-projections 2>&1 | FileCheck %s --check-prefix=NO-BACKWARD
// NO-BACKWARD: bpt-cpu-run: --recompute-projections recomputes for the backward; it needs --backward
