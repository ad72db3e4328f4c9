// A block whose strategy takes the wgmma path is, at the blockwise level,
// two loops over chunks of rows (#bpt.chunk_loop): the loops that
// bpt-block-to-sm90 maps to kernel launches. The CPU runs the same loops;
// here they are checked against the float64 reference (bpt-cpu-run, random
// inputs), with several chunks per sequence so that the causal diagonal
// moves with the chunk's position, and more than one sequence so that a
// chunk reads only its own sequence's keys.

// RUN: rm -rf %t && split-file %s %t

//--- gqa_causal.mlir
// GQA 4:2 with head dim 64, causal, rms_norm, gelu, bf16; two sequences of
// two chunks each.
// RUN: bpt-opt %t/gqa_causal.mlir --bpt-blockwise="tensor-cores=false" | FileCheck %s --check-prefix=LOOPS
// RUN: bpt-cpu-run %t/gqa_causal.mlir --seed=61 | FileCheck %s --check-prefix=GQA
// GQA: output 0 tensor<2x256x256xbf16>: relative error {{.*}}: PASS
// GQA: {{^PASS$}}
func.func @gqa_causal(%x: tensor<2x256x256xbf16>, %g: tensor<256xbf16>,
                      %wq: tensor<256x256xbf16>, %wk: tensor<256x128xbf16>,
                      %wv: tensor<256x128xbf16>, %wo: tensor<256x256xbf16>,
                      %w1: tensor<256x512xbf16>, %w2: tensor<512x256xbf16>)
    -> tensor<2x256x256xbf16> {
  %y = bpt.transformer_block %x norm1(%g) attention(%wq, %wk, %wv, %wo)
      norm2(%g) ffn(%w1, %w2) heads(4) kv_heads(2) causal activation(gelu)
      norm(rms_norm) {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a",
        q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>}
      : (tensor<2x256x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x128xbf16>, tensor<256x128xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x256x256xbf16>
  return %y : tensor<2x256x256xbf16>
}

//--- mha_layer_norm_swiglu.mlir
// MHA with head dim 128, not causal, layer_norm, swiglu, f16; one sequence
// of three chunks, key/value blocks of 64.
// RUN: bpt-opt %t/mha_layer_norm_swiglu.mlir --bpt-blockwise="tensor-cores=false" | FileCheck %s --check-prefix=LOOPS
// RUN: bpt-cpu-run %t/mha_layer_norm_swiglu.mlir --seed=62 | FileCheck %s --check-prefix=MHA
// MHA: output 0 tensor<1x384x256xf16>: relative error {{.*}}: PASS
// MHA: {{^PASS$}}
func.func @mha_layer_norm_swiglu(
    %x: tensor<1x384x256xf16>, %g1: tensor<256xf16>, %b1: tensor<256xf16>,
    %wq: tensor<256x256xf16>, %wk: tensor<256x256xf16>, %wv: tensor<256x256xf16>,
    %wo: tensor<256x256xf16>, %g2: tensor<256xf16>, %b2: tensor<256xf16>,
    %w1: tensor<256x384xf16>, %w2: tensor<384x256xf16>, %wg: tensor<256x384xf16>)
    -> tensor<1x384x256xf16> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2, gate %wg) heads(2) kv_heads(2)
      activation(swiglu) norm(layer_norm) {bpt.strategy = #bpt.strategy<wgmma,
        chip = "sm_90a", q_block = 128, kv_block = 64, stages = 3, warps = 12,
        chunk_rows = 128>}
      : (tensor<1x384x256xf16>, tensor<256xf16>, tensor<256xf16>, tensor<256x256xf16>,
         tensor<256x256xf16>, tensor<256x256xf16>, tensor<256x256xf16>, tensor<256xf16>,
         tensor<256xf16>, tensor<256x384xf16>, tensor<384x256xf16>, tensor<256x384xf16>)
      -> tensor<1x384x256xf16>
  return %y : tensor<1x384x256xf16>
}

// LOOPS-NOT: bpt.transformer_block
// LOOPS: bpt.nest = #bpt.chunk_loop<kv_projection>
// LOOPS: bpt.nest = #bpt.attention_nest
// LOOPS: bpt.nest = #bpt.chunk_loop<block>
