// Shapes whose blockwise loops have a single iteration (batch 1, one head,
// one query block), which bpt-compile used to reject on the GPU path, and
// functions that return one value twice (after CSE merges two equal ops),
// which crashed buffer-results-to-out-params: checked against the float64
// reference on the CPU (bpt-cpu-run, random inputs). The GPU side is in
// test/Pipelines/bpt-to-nvvm-single-iteration.mlir and test/GPU.
//
// RUN: rm -rf %t && split-file %s %t

//--- attention_one_block.mlir
// bpt-compile --op=attention --heads=1 --seq=64 --dtype=f32.
// RUN: bpt-cpu-run %t/attention_one_block.mlir --seed=11 | FileCheck %s --check-prefix=ATT
// RUN: bpt-cpu-run %t/attention_one_block.mlir --q-block=64 --kv-block=64 --seed=12 | FileCheck %s --check-prefix=ATT
// ATT: output 0 tensor<1x1x64x64xf32>: relative error {{.*}}: PASS
// ATT: {{^PASS$}}
func.func @attention(%q: tensor<1x1x64x64xf32>, %k: tensor<1x1x64x64xf32>,
                     %v: tensor<1x1x64x64xf32>) -> tensor<1x1x64x64xf32> {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>)
        -> tensor<1x1x64x64xf32>
  return %o : tensor<1x1x64x64xf32>
}

//--- block_one_block.mlir
// bpt-compile --op=block --hidden=256 --heads=4 --seq=64 (bf16, rms_norm,
// gelu, ffn 4 x hidden).
// RUN: bpt-cpu-run %t/block_one_block.mlir --seed=13 | FileCheck %s --check-prefix=BLOCK
// RUN: bpt-cpu-run %t/block_one_block.mlir --seed=13 --no-fuse | FileCheck %s --check-prefix=BLOCK
// BLOCK: output 0 tensor<1x64x256xbf16>: relative error {{.*}}: PASS
// BLOCK: {{^PASS$}}
func.func @block(
    %x: tensor<1x64x256xbf16>, %g1: tensor<256xbf16>, %wq: tensor<256x256xbf16>,
    %wk: tensor<256x256xbf16>, %wv: tensor<256x256xbf16>, %wo: tensor<256x256xbf16>,
    %g2: tensor<256xbf16>, %w1: tensor<256x1024xbf16>, %w2: tensor<1024x256xbf16>)
    -> tensor<1x64x256xbf16> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2) heads(4) kv_heads(4) activation(gelu)
      norm(rms_norm)
      : (tensor<1x64x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x256xbf16>, tensor<256x256xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x1024xbf16>, tensor<1024x256xbf16>)
        -> tensor<1x64x256xbf16>
  return %y : tensor<1x64x256xbf16>
}

//--- duplicate_results.mlir
// The second case of test/Conversion/bpt-attention-to-sm80.mlir once CSE
// has merged its two attentions: one value returned twice, and an input
// returned as a result.
// RUN: bpt-cpu-run %t/duplicate_results.mlir --seed=14 | FileCheck %s --check-prefix=DUP
// DUP: output 0 tensor<1x2x64x128xf16>: relative error {{.*}}: PASS
// DUP: output 1 tensor<1x2x64x128xf16>: relative error {{.*}}: PASS
// DUP: output 2 tensor<1x2x64x128xf16>: relative error {{.*}}: PASS
// DUP: {{^PASS$}}
func.func @duplicate_results(%q: tensor<1x2x64x128xf16>, %kv: tensor<1x2x192x128xf16>)
    -> (tensor<1x2x64x128xf16>, tensor<1x2x64x128xf16>, tensor<1x2x64x128xf16>) {
  %0 = bpt.attention %q, %kv, %kv causal
      : (tensor<1x2x64x128xf16>, tensor<1x2x192x128xf16>, tensor<1x2x192x128xf16>)
        -> tensor<1x2x64x128xf16>
  return %0, %0, %q : tensor<1x2x64x128xf16>, tensor<1x2x64x128xf16>, tensor<1x2x64x128xf16>
}
