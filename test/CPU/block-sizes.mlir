// Property test: the block sizes are a schedule, not a semantics. Several
// query/key-value block sizes run on the same random inputs (--block-sizes)
// must each match the float64 reference and the first configuration: for
// bpt.attention (causal GQA with Sq = Skv, causal MQA with Sq > Skv and its
// fully masked rows, and bf16) and for a whole bpt.transformer_block
// (fused). The configurations mix divisors of S, non-divisors (7:13, 24:9),
// single rows (1:...), and blocks larger than S (128:256, 512:512).
//
// The same property for an unfused block (--no-fuse) and for a batch-1 block
// whose query block covers S is in block-sizes-clobber.mlir.disabled: it
// FAILS because the compiled function writes into its input buffers, so the
// second configuration runs on corrupted inputs (see that file).
//
// bpt-cpu-run compiles and JITs every function of its module, so each
// function lives in its own split-file part (//--- NAME.mlir).

// RUN: rm -rf %t && split-file %s %t

//--- attention_gqa.mlir
// GQA (8 query heads over 2), D = 64, causal, S = 100.
// RUN: bpt-cpu-run %t/attention_gqa.mlir --function=attention_gqa --block-sizes=16:16,7:13,100:100,128:256,1:64,24:9 --seed=61 | FileCheck %s --check-prefix=ATTN
// ATTN: q-block 16, kv-block 16:
// ATTN-NEXT: output 0 tensor<1x8x100x64xf32>: relative error {{.*}}: PASS
// ATTN: q-block 7, kv-block 13:
// ATTN-NEXT: output 0 tensor<1x8x100x64xf32>: relative error {{.*}}: PASS
// ATTN: q-block 100, kv-block 100:
// ATTN-NEXT: output 0 tensor<1x8x100x64xf32>: relative error {{.*}}: PASS
// ATTN: q-block 128, kv-block 256:
// ATTN-NEXT: output 0 tensor<1x8x100x64xf32>: relative error {{.*}}: PASS
// ATTN: q-block 1, kv-block 64:
// ATTN-NEXT: output 0 tensor<1x8x100x64xf32>: relative error {{.*}}: PASS
// ATTN: q-block 24, kv-block 9:
// ATTN-NEXT: output 0 tensor<1x8x100x64xf32>: relative error {{.*}}: PASS
// ATTN: {{^PASS$}}
func.func @attention_gqa(%q: tensor<1x8x100x64xf32>, %k: tensor<1x2x100x64xf32>,
                         %v: tensor<1x2x100x64xf32>) -> tensor<1x8x100x64xf32> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<1x8x100x64xf32>, tensor<1x2x100x64xf32>, tensor<1x2x100x64xf32>)
        -> tensor<1x8x100x64xf32>
  return %o : tensor<1x8x100x64xf32>
}

//--- attention_mqa_sq_gt_skv.mlir
// MQA, D = 32, causal, Sq = 120 > Skv = 50: rows 0 .. 69 see no key.
// RUN: bpt-cpu-run %t/attention_mqa_sq_gt_skv.mlir --function=attention_mqa_sq_gt_skv --block-sizes=32:32,7:13,70:50,256:256,5:1 --seed=62 | FileCheck %s --check-prefix=ATTN-MQA
// ATTN-MQA: q-block 32, kv-block 32:
// ATTN-MQA-NEXT: output 0 tensor<2x4x120x32xf32>: relative error {{.*}}: PASS
// ATTN-MQA: q-block 7, kv-block 13:
// ATTN-MQA-NEXT: output 0 tensor<2x4x120x32xf32>: relative error {{.*}}: PASS
// ATTN-MQA: q-block 70, kv-block 50:
// ATTN-MQA-NEXT: output 0 tensor<2x4x120x32xf32>: relative error {{.*}}: PASS
// ATTN-MQA: q-block 256, kv-block 256:
// ATTN-MQA-NEXT: output 0 tensor<2x4x120x32xf32>: relative error {{.*}}: PASS
// ATTN-MQA: q-block 5, kv-block 1:
// ATTN-MQA-NEXT: output 0 tensor<2x4x120x32xf32>: relative error {{.*}}: PASS
// ATTN-MQA: {{^PASS$}}
func.func @attention_mqa_sq_gt_skv(%q: tensor<2x4x120x32xf32>, %k: tensor<2x1x50x32xf32>,
                                   %v: tensor<2x1x50x32xf32>) -> tensor<2x4x120x32xf32> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<2x4x120x32xf32>, tensor<2x1x50x32xf32>, tensor<2x1x50x32xf32>)
        -> tensor<2x4x120x32xf32>
  return %o : tensor<2x4x120x32xf32>
}

//--- attention_bf16.mlir
// bf16 MHA, D = 128, not causal, Sq = 64 < Skv = 100.
// RUN: bpt-cpu-run %t/attention_bf16.mlir --function=attention_bf16 --block-sizes=16:32,7:13,64:100,512:512 --seed=63 | FileCheck %s --check-prefix=ATTN-BF16
// ATTN-BF16: q-block 16, kv-block 32:
// ATTN-BF16-NEXT: output 0 tensor<1x2x64x128xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// ATTN-BF16: q-block 7, kv-block 13:
// ATTN-BF16-NEXT: output 0 tensor<1x2x64x128xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// ATTN-BF16: q-block 64, kv-block 100:
// ATTN-BF16-NEXT: output 0 tensor<1x2x64x128xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// ATTN-BF16: q-block 512, kv-block 512:
// ATTN-BF16-NEXT: output 0 tensor<1x2x64x128xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// ATTN-BF16: {{^PASS$}}
func.func @attention_bf16(%q: tensor<1x2x64x128xbf16>, %k: tensor<1x2x100x128xbf16>,
                          %v: tensor<1x2x100x128xbf16>) -> tensor<1x2x64x128xbf16> {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x2x64x128xbf16>, tensor<1x2x100x128xbf16>, tensor<1x2x100x128xbf16>)
        -> tensor<1x2x64x128xbf16>
  return %o : tensor<1x2x64x128xbf16>
}

//--- block.mlir
// A GQA rms_norm swiglu causal block, batch 2, S = 100, fused (the default).
// RUN: bpt-cpu-run %t/block.mlir --function=block --block-sizes=32:32,7:13,100:100,128:256,1:50 --seed=64 | FileCheck %s --check-prefix=BLOCK
// BLOCK: q-block 32, kv-block 32:
// BLOCK-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// BLOCK: q-block 7, kv-block 13:
// BLOCK-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// BLOCK: q-block 100, kv-block 100:
// BLOCK-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// BLOCK: q-block 128, kv-block 256:
// BLOCK-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// BLOCK: q-block 1, kv-block 50:
// BLOCK-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// BLOCK: {{^PASS$}}
func.func @block(%x: tensor<2x100x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>,
                 %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>,
                 %g2: tensor<64xf32>, %w1: tensor<64x176xf32>, %w2: tensor<176x64xf32>,
                 %w3: tensor<64x176xf32>) -> tensor<2x100x64xf32> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2, gate %w3) heads(4) kv_heads(2) causal
      activation(swiglu) norm(rms_norm)
      : (tensor<2x100x64xf32>, tensor<64xf32>, tensor<64x64xf32>,
         tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>,
         tensor<64xf32>, tensor<64x176xf32>, tensor<176x64xf32>,
         tensor<64x176xf32>) -> tensor<2x100x64xf32>
  return %y : tensor<2x100x64xf32>
}
