// RUN: bpt-opt %s --bpt-blockwise="q-block=32 kv-block=32" | FileCheck %s --check-prefix=FUSED
// RUN: bpt-opt %s --bpt-blockwise="q-block=32 kv-block=32 fuse=false" | FileCheck %s --check-prefix=UNFUSED
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise{q-block=32 kv-block=32},bpt-to-cpu)" | FileCheck %s --check-prefix=CPU

// A whole block through the named pipelines.

// bpt-blockwise: decomposed, fused, tiled, cleaned up. One loop over (batch,
// query block), the heads and the key/value blocks inside it, the FFN on
// [32, 1024] tiles.
// FUSED-LABEL: func.func @block
// FUSED-NOT: bpt.transformer_block
// FUSED-NOT: bpt.attention
// FUSED: scf.forall (%{{.+}}, %{{.+}}) in (2, 4) shared_outs
// FUSED: scf.for {{.+}} -> (tensor<32x64xf32>)
// FUSED: scf.for {{.+}} -> (tensor<32xf32>, tensor<32xf32>, tensor<32x32xf32>)
// FUSED: bpt.ffn gelu %{{.+}} : (tensor<32x64xf32>, tensor<64x1024xf32>, tensor<1024x64xf32>) -> tensor<32x64xf32>
// The loop carries the block's strategy: f32 takes the portable path.
// FUSED: } {bpt.kv_block = 32 : i64, bpt.q_block = 32 : i64, bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", q_block = 32, kv_block = 32>}
// FUSED-NOT: bpt.ffn

// fuse=false: attention tiled on its own over (batch, head, query block);
// the FFN stays on the whole sequence.
// UNFUSED-LABEL: func.func @block
// UNFUSED: scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (2, 2, 4) shared_outs
// UNFUSED: } {bpt.kv_block = 32 : i64, bpt.nest = #bpt.attention_nest<causal = true, scale = 0.17677669529663687>, bpt.q_block = 32 : i64, bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", q_block = 32, kv_block = 32>}
// UNFUSED: bpt.ffn gelu %{{.+}} : (tensor<2x128x64xf32>, tensor<64x1024xf32>, tensor<1024x64xf32>) -> tensor<2x128x64xf32>

// bpt-to-cpu: an LLVM function over bare pointers, inputs then the output;
// erf from libm, exp2 and sqrt as intrinsics.
// CPU: llvm.func @erff(f32) -> f32
// CPU: llvm.func @block(%{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr)
// CPU-NOT: memref<
// CPU-NOT: tensor<
// CPU-DAG: llvm.intr.exp2
// CPU-DAG: llvm.intr.sqrt
// CPU-DAG: llvm.call @erff
func.func @block(%x: tensor<2x128x64xf32>, %g: tensor<64xf32>, %w: tensor<64x64xf32>,
    %w1: tensor<64x1024xf32>, %w2: tensor<1024x64xf32>) -> tensor<2x128x64xf32> {
  %y = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w1, %w2) heads(2) kv_heads(2) causal activation(gelu) norm(rms_norm)
      : (tensor<2x128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x64xf32>,
         tensor<64x64xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x1024xf32>,
         tensor<1024x64xf32>) -> tensor<2x128x64xf32>
  return %y : tensor<2x128x64xf32>
}
