// RUN: bpt-opt %s --bpt-select-strategy="chunk-rows=128" --bpt-decompose-block --bpt-select-strategy="chunk-rows=128" --bpt-chunk-ffn | FileCheck %s

// A strategy on a loop covers its body: after a wgmma block becomes its
// chunk loops, the second selection (as in bpt-blockwise) leaves the norms,
// projections and FFN inside them without strategies of their own, and
// bpt-chunk-ffn does not tile the FFN of a block loop again. The loops carry
// the block's strategy.
// CHECK-LABEL: func.func @block
// CHECK: scf.forall
// CHECK-NOT: bpt.strategy
// CHECK: } {bpt.nest = #bpt.chunk_loop<kv_projection>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>}
// CHECK: scf.forall
// CHECK-NOT: bpt.strategy
// CHECK: bpt.ffn gelu %{{.+}} : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
// CHECK-NOT: bpt.strategy
// CHECK-NOT: chunk_loop<ffn>
// CHECK: } {bpt.nest = #bpt.chunk_loop<block>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>}
func.func @block(%x: tensor<2x256x256xbf16>, %g: tensor<256xbf16>,
                 %wq: tensor<256x256xbf16>, %wk: tensor<256x128xbf16>,
                 %wv: tensor<256x128xbf16>, %wo: tensor<256x256xbf16>,
                 %w1: tensor<256x512xbf16>, %w2: tensor<512x256xbf16>)
    -> tensor<2x256x256xbf16> {
  %y = bpt.transformer_block %x norm1(%g) attention(%wq, %wk, %wv, %wo)
      norm2(%g) ffn(%w1, %w2) heads(4) kv_heads(2) causal activation(gelu)
      norm(rms_norm)
      : (tensor<2x256x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x128xbf16>, tensor<256x128xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x256x256xbf16>
  return %y : tensor<2x256x256xbf16>
}
