// RUN: bpt-opt %s --bpt-select-strategy --bpt-decompose-block --bpt-select-strategy --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --pass-pipeline="builtin.module(bpt-blockwise,bpt-block-to-sm90,bpt-attention-to-sm90,bpt-ffn-to-sm90,bpt-linear-to-sm90,bpt-attention-to-sm80,bpt-ffn-to-sm80,bpt-linear-to-sm80,bpt-norm-to-rowwise)" 2>/dev/null | FileCheck %s --check-prefix=LOWERED
// RUN: bpt-opt %s --bpt-select-strategy=tensor-cores=false --bpt-decompose-block --bpt-select-strategy=tensor-cores=false | FileCheck %s --check-prefix=PORTABLE

// A block of 600 tokens on sm_90a (bf16, SwiGLU, causal GQA 8:4, hidden
// 512, head dim 64): the wgmma block kernels need sequences in multiples of
// 128, so the block falls through to the mma.sync expansion (a remark says
// why and what was chosen), and each piece gets a strategy of its own: the
// four projections and the FFN the wgmma GEMMs (600 rows, the last row tile
// masked; the FFN is one chunk of 600 rows), the attention the wgmma
// kernel (head-major, ragged sequence: 3-D tensor maps, masked tail), the
// norms the row kernel (600 rows: 75 blocks of 8 warps), head transposes
// and residuals portable.
// CHECK-LABEL: func.func @block
// CHECK-NOT: bpt.transformer_block
// CHECK: bpt.rms_norm {{.+}} {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_90a">}
// CHECK: bpt.linear {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 9>} : (tensor<1x600x512xbf16>, tensor<512x512xbf16>)
// CHECK-COUNT-2: bpt.linear {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 9>} : (tensor<1x600x512xbf16>, tensor<512x256xbf16>)
// CHECK: bpt.attention {{.+}} causal {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = {{[0-9]+}}, stages = {{[0-9]}}, warps = 12>} : (tensor<1x8x600x64xbf16>, tensor<1x4x600x64xbf16>
// CHECK: bpt.linear {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 9>}
// CHECK: arith.addf
// CHECK: bpt.rms_norm {{.+}} {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_90a">}
// CHECK: bpt.ffn swiglu {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 600>}
// CHECK: arith.addf
// LOWERED-LABEL: func.func @block
// LOWERED-NOT: bpt.linear
// LOWERED-NOT: bpt.attention
// LOWERED-NOT: bpt.ffn
// LOWERED: gpu.launch_func @bpt_rows::@rms_norm_bf16_x600_o600_h512_eps1em05 blocks in (%c75{{[_0-9]*}}, %c1{{[_0-9]*}}, %c1{{[_0-9]*}}) threads in (%c256
// Five row tiles of 128, the last one 88 rows.
// LOWERED: gpu.launch_func @bpt_sm90::@gemm_sm90_a600_c600_n512_k512_ragged blocks in (%c4{{[_0-9]*}}, %c5{{[_0-9]*}},
// LOWERED-COUNT-2: gpu.launch_func @bpt_sm90::@gemm_sm90_a600_c600_n256_k512_ragged blocks in (%c2{{[_0-9]*}}, %c5{{[_0-9]*}},
// LOWERED: gpu.launch_func @bpt_sm90::@attention_sm90_d64_causal_{{.*}}ragged
// LOWERED: gpu.launch_func @bpt_sm90::@gemm_sm90_a600_c600_n512_k512_ragged
// LOWERED: gpu.launch_func @bpt_rows::@rms_norm_bf16_x600_o600_h512_eps1em05
// LOWERED: gpu.launch_func @bpt_sm90::@gemm_sm90_a600_c600_n1408_k512_swiglu_gated_ragged
// LOWERED: gpu.launch_func @bpt_sm90::@gemm_sm90_a600_c600_n512_k1408_ragged
// LOWERED-NOT: gpu.launch_func
// Pinned portable (tensor-cores=false), the pieces stay portable.
// PORTABLE-LABEL: func.func @block
// PORTABLE-NOT: wgmma
// PORTABLE-NOT: mma_sync
// PORTABLE-NOT: rowwise
// PORTABLE: bpt.attention {{.+}}#bpt.strategy<portable
// PORTABLE: bpt.ffn {{.+}}#bpt.strategy<portable
func.func @block(%x: tensor<1x600x512xbf16>, %g: tensor<512xbf16>,
                 %wq: tensor<512x512xbf16>, %wk: tensor<512x256xbf16>,
                 %wv: tensor<512x256xbf16>, %wo: tensor<512x512xbf16>,
                 %w1: tensor<512x1408xbf16>, %w2: tensor<1408x512xbf16>,
                 %w3: tensor<512x1408xbf16>) -> tensor<1x600x512xbf16> {
  // expected-remark @below {{transformer_block does not take the wgmma path: sequence length 600 is not a multiple of 128 (the block's token-major attention kernel takes whole 128-row blocks only)}}
  // expected-remark @below {{transformer_block takes the mma.sync path instead: expanded, its attention, projections and FFN take strategies of their own}}
  %y = bpt.transformer_block %x norm1(%g) attention(%wq, %wk, %wv, %wo)
      norm2(%g) ffn(%w1, %w2, gate %w3) heads(8) kv_heads(4) causal
      activation(swiglu) norm(rms_norm)
      : (tensor<1x600x512xbf16>, tensor<512xbf16>, tensor<512x512xbf16>,
         tensor<512x256xbf16>, tensor<512x256xbf16>, tensor<512x512xbf16>,
         tensor<512xbf16>, tensor<512x1408xbf16>, tensor<1408x512xbf16>,
         tensor<512x1408xbf16>) -> tensor<1x600x512xbf16>
  return %y : tensor<1x600x512xbf16>
}
