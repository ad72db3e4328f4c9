// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_86 --bpt-decompose-block --bpt-select-strategy=chip=sm_86 --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --split-input-file --pass-pipeline="builtin.module(bpt-blockwise{chip=sm_86},bpt-attention-to-sm80,bpt-ffn-to-sm80,bpt-linear-to-sm80,bpt-norm-to-rowwise)" 2>/dev/null | FileCheck %s --check-prefix=LOWERED

// The block on a chip with mma.sync but no wgmma (sm_86): its strategy
// says mma_sync, bpt-decompose-block expands it, and each piece gets a
// strategy of its own; the mma.sync passes then take its four projections,
// the attention (as a blockwise nest) and the FFN, the row kernel the norms,
// leaving head transposes and residual additions to the portable path.
// CHECK-LABEL: func.func @block
// CHECK-NOT: bpt.transformer_block
// CHECK: bpt.rms_norm {{.+}} {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_86">}
// CHECK-COUNT-3: bpt.linear {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_86">}
// CHECK: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_86", q_block = 64, kv_block = {{[0-9]+}}, stages = {{[0-9]}}, warps = 4>}
// CHECK: bpt.linear {{.+}}mma_sync
// CHECK: arith.addf
// CHECK: bpt.rms_norm {{.+}}rowwise
// CHECK: bpt.ffn {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_86", chunk_rows = 512>}
// CHECK: arith.addf
// LOWERED-LABEL: func.func @block
// LOWERED-NOT: bpt.linear
// LOWERED-NOT: bpt.attention
// LOWERED-NOT: bpt.ffn
// LOWERED: gpu.launch_func @bpt_rows::@rms_norm_bf16_x512_o512_h256_eps1em05 blocks in (%c64
// LOWERED: gpu.launch_func @bpt_sm80::@gemm_sm80_a512_c512_n256_k256_t256x2w8
// K and V are the same product here (one weight): CSE keeps one.
// LOWERED: gpu.launch_func @bpt_sm80::@gemm_sm80_a512_c512_n128_k256_t128x3w4
// LOWERED-NOT: gemm_sm80_a512_c512_n128_k256
// LOWERED: gpu.launch_func @bpt_sm80::@attention_sm80_d64_causal_t
// LOWERED: gpu.launch_func @bpt_sm80::@gemm_sm80_a512_c512_n256_k256_t256x2w8
// LOWERED: gpu.launch_func @bpt_sm80::@gemm_sm80_a512_c512_n512_k256_gelu_t256x2w8
// LOWERED: gpu.launch_func @bpt_sm80::@gemm_sm80_a512_c512_n256_k512_t256x2w8
func.func @block(%x: tensor<2x256x256xbf16>, %g: tensor<256xbf16>,
                 %wq: tensor<256x256xbf16>, %wkv: tensor<256x128xbf16>,
                 %wo: tensor<256x256xbf16>, %w1: tensor<256x512xbf16>,
                 %w2: tensor<512x256xbf16>) -> tensor<2x256x256xbf16> {
  %y = bpt.transformer_block %x norm1(%g) attention(%wq, %wkv, %wkv, %wo)
      norm2(%g) ffn(%w1, %w2) heads(4) kv_heads(2) causal activation(gelu)
      norm(rms_norm)
      : (tensor<2x256x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x128xbf16>, tensor<256x128xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x256x256xbf16>
  return %y : tensor<2x256x256xbf16>
}

// -----

// Any row count: a block of 100 tokens is expanded as well; its
// projections and FFN (one chunk of 100 rows) take the mma.sync GEMMs, whose
// last row tile is masked, and its attention the ragged mma.sync kernel.
// CHECK-LABEL: func.func @ragged_rows
// CHECK-NOT: bpt.transformer_block
// CHECK-COUNT-3: bpt.linear {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_86">}
// CHECK: bpt.attention {{.+}}mma_sync
// CHECK: bpt.linear {{.+}}mma_sync
// CHECK: bpt.ffn {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_86", chunk_rows = 100>}
// LOWERED-LABEL: func.func @ragged_rows
// LOWERED: gpu.launch_func @bpt_sm80::@gemm_sm80_a100_c100_n256_k256_ragged_t256x2w8 blocks in (%c1{{[_0-9]*}}, %c1{{[_0-9]*}},
// LOWERED: gpu.launch_func @bpt_sm80::@attention_sm80_d128_t
// LOWERED: gpu.launch_func @bpt_sm80::@gemm_sm80_a100_c100_n256_k256_relu_ragged_t256x2w8
func.func @ragged_rows(%x: tensor<1x100x256xbf16>, %g: tensor<256xbf16>,
                       %w: tensor<256x256xbf16>) -> tensor<1x100x256xbf16> {
  %y = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w)
      norm2(%g) ffn(%w, %w) heads(2) kv_heads(2) activation(relu)
      norm(rms_norm)
      : (tensor<1x100x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x256xbf16>, tensor<256x256xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x256xbf16>, tensor<256x256xbf16>)
      -> tensor<1x100x256xbf16>
  return %y : tensor<1x100x256xbf16>
}

// -----

// What the mma.sync kernels do not cover is portable, and so are its
// pieces: the portable path fuses them.
// CHECK-LABEL: func.func @not_eligible
// CHECK-NOT: mma_sync
// CHECK-COUNT-2: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_86", q_block = 64, kv_block = 64>}
func.func @not_eligible(%x: tensor<1x128x128xbf16>, %g: tensor<128xbf16>,
                        %w: tensor<128x128xbf16>,
                        %x3: tensor<1x128x128xf32>, %g3: tensor<128xf32>,
                        %w3: tensor<128x128xf32>)
    -> (tensor<1x128x128xbf16>, tensor<1x128x128xf32>) {
  // expected-remark @below {{transformer_block does not take the mma.sync path: head dimension 32 (64 and 128 are supported)}}
  %0 = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w, %w) heads(4) kv_heads(4) activation(relu) norm(rms_norm)
      : (tensor<1x128x128xbf16>, tensor<128xbf16>, tensor<128x128xbf16>,
         tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128x128xbf16>,
         tensor<128xbf16>, tensor<128x128xbf16>, tensor<128x128xbf16>)
      -> tensor<1x128x128xbf16>
  // expected-remark @below {{transformer_block does not take the mma.sync path: element type f32 (the mma.sync path takes bf16 and f16)}}
  %2 = bpt.transformer_block %x3 norm1(%g3) attention(%w3, %w3, %w3, %w3)
      norm2(%g3) ffn(%w3, %w3) heads(2) kv_heads(2) activation(relu)
      norm(rms_norm)
      : (tensor<1x128x128xf32>, tensor<128xf32>, tensor<128x128xf32>,
         tensor<128x128xf32>, tensor<128x128xf32>, tensor<128x128xf32>,
         tensor<128xf32>, tensor<128x128xf32>, tensor<128x128xf32>)
      -> tensor<1x128x128xf32>
  return %0, %2 : tensor<1x128x128xbf16>, tensor<1x128x128xf32>
}
