// RUN: bpt-opt %s --bpt-select-strategy="sm90-kv-block=80" --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --bpt-select-strategy="sm90-kv-block=128" | FileCheck %s --check-prefix=WHOLE

// The block's token-major attention kernel takes whole key blocks: a
// pinned key block that does not divide the sequence (80 of 256 rows)
// sends the block to the mma.sync expansion, with a remark; the expanded
// (head-major) attention then takes the wgmma kernel with that key block
// and a masked tail. 128 divides it: the wgmma block.
// CHECK-LABEL: func.func @block
// CHECK: bpt.transformer_block {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_90a">}
// WHOLE-LABEL: func.func @block
// WHOLE: bpt.transformer_block {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128,
func.func @block(%x: tensor<2x256x256xbf16>, %g: tensor<256xbf16>,
                 %wq: tensor<256x256xbf16>, %wkv: tensor<256x128xbf16>,
                 %wo: tensor<256x256xbf16>, %w1: tensor<256x512xbf16>,
                 %w2: tensor<512x256xbf16>) -> tensor<2x256x256xbf16> {
  // expected-remark @below {{transformer_block does not take the wgmma path: sequence length 256 is not a multiple of the 80-row key block (the block's token-major attention kernel takes whole blocks only)}}
  // expected-remark @below {{transformer_block takes the mma.sync path instead: expanded, its attention, projections and FFN take strategies of their own}}
  %y = bpt.transformer_block %x norm1(%g) attention(%wq, %wkv, %wkv, %wo)
      norm2(%g) ffn(%w1, %w2) heads(4) kv_heads(2) causal activation(gelu)
      norm(rms_norm)
      : (tensor<2x256x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x128xbf16>, tensor<256x128xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x256x256xbf16>
  return %y : tensor<2x256x256xbf16>
}
