// RUN: bpt-opt %s --bpt-select-strategy --bpt-tile-attention --bpt-attention-grad-to-sm90 | FileCheck %s

// Model-level work between the point where dO, O and lse exist and the
// backward (here the keys' norm; in the block step q, k and v computed
// again): D is computed there, so that O can die before it, and the
// accumulator is zeroed by a kernel of its own just before the main one.
// CHECK-LABEL: func.func @grad_work_between
// CHECK: %[[DB:.+]] = memref.alloc() {bpt.buffer_name = "delta"} : memref<1x2x256xf32>
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_dots_d64 {{.+}} args(%{{.+}} : memref<1x2x256x64xbf16>, %{{.+}} : memref<1x2x256x64xbf16>, %[[DB]] : memref<1x2x256xf32>)
// CHECK: bpt.rms_norm
// CHECK: %[[ACC:.+]] = memref.alloc() {bpt.buffer_name = "dq_accumulator"} : memref<1x2x256x64xf32>
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_zero_d64 {{.+}} args(%[[ACC]] : memref<1x2x256x64xf32>)
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_sm90_d64
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_finish_d64
// CHECK: gpu.func @attention_grad_dots_d64(%{{.+}}: memref<1x2x256x64xbf16>, %{{.+}}: memref<1x2x256x64xbf16>, %{{.+}}: memref<1x2x256xf32>) kernel
// CHECK-NOT: vector<4xf32>
// CHECK: gpu.return
// CHECK: gpu.func @attention_grad_zero_d64(%{{.+}}: memref<1x2x256x64xf32>) kernel
// CHECK-NOT: llvm.load
// CHECK-COUNT-2: llvm.store %{{.+}}, %{{.+}} {alignment = 16 : i64} : vector<4xf32>, !llvm.ptr
// CHECK: gpu.return
func.func @grad_work_between(%q: tensor<1x2x256x64xbf16>, %k: tensor<1x2x256x64xbf16>,
                             %v: tensor<1x2x256x64xbf16>, %o: tensor<1x2x256x64xbf16>,
                             %do: tensor<1x2x256x64xbf16>, %lse: tensor<1x2x256xf32>,
                             %w: tensor<64xbf16>)
    -> (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>) {
  %kn = bpt.rms_norm %k, %w : (tensor<1x2x256x64xbf16>, tensor<64xbf16>) -> tensor<1x2x256x64xbf16>
  %dq, %dk, %dv = bpt.attention_grad %q, %kn, %v, %o, %do, %lse
      : (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>,
         tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256xf32>)
      -> (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>)
  return %dq, %dk, %dv
      : tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>
}
