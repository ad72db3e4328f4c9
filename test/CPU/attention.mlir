// bpt.attention compiled blockwise for the CPU and checked against the
// float64 reference (bpt-cpu-run, random inputs): causal and not; Sq < Skv
// and Sq > Skv (bottom-right causal alignment, whose first Sq - Skv rows see
// no key and must be 0, including query blocks that are entirely masked);
// MHA, GQA and MQA; ragged sequence lengths, not a multiple of the query or
// the key/value block; head dims 32, 64 and 128; f32, f16 and bf16; a custom
// scale. These are the cases where tiling and the online softmax can go
// wrong: partial last blocks, masked tiles, head mapping, low precision.
//
// bpt-cpu-run compiles and JITs every function of its module, so each
// function lives in its own split-file part (//--- NAME.mlir) to keep a run
// from compiling all the others.

// RUN: rm -rf %t && split-file %s %t

//--- mha_causal.mlir
// MHA, Sq = Skv = 100: ragged for both q-block 16 and kv-block 32 (4 rows
// left over), a q-block of one row, and blocks larger than the sequence.
// RUN: bpt-cpu-run %t/mha_causal.mlir --function=mha_causal --q-block=16 --kv-block=32 --seed=1 | FileCheck %s --check-prefix=MHA-CAUSAL
// RUN: bpt-cpu-run %t/mha_causal.mlir --function=mha_causal --q-block=1 --kv-block=7 --seed=2 | FileCheck %s --check-prefix=MHA-CAUSAL
// RUN: bpt-cpu-run %t/mha_causal.mlir --function=mha_causal --q-block=128 --kv-block=256 --seed=3 | FileCheck %s --check-prefix=MHA-CAUSAL
// MHA-CAUSAL: output 0 tensor<2x4x100x64xf32>: relative error {{.*}}: PASS
// MHA-CAUSAL: {{^PASS$}}
func.func @mha_causal(%q: tensor<2x4x100x64xf32>, %k: tensor<2x4x100x64xf32>,
                      %v: tensor<2x4x100x64xf32>) -> tensor<2x4x100x64xf32> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<2x4x100x64xf32>, tensor<2x4x100x64xf32>, tensor<2x4x100x64xf32>)
        -> tensor<2x4x100x64xf32>
  return %o : tensor<2x4x100x64xf32>
}

//--- mha.mlir
// MHA, not causal, Sq = Skv = 100, divisible and ragged blocks.
// RUN: bpt-cpu-run %t/mha.mlir --function=mha --q-block=20 --kv-block=50 --seed=4 | FileCheck %s --check-prefix=MHA
// RUN: bpt-cpu-run %t/mha.mlir --function=mha --q-block=24 --kv-block=9 --seed=5 | FileCheck %s --check-prefix=MHA
// MHA: output 0 tensor<2x4x100x64xf32>: relative error {{.*}}: PASS
// MHA: {{^PASS$}}
func.func @mha(%q: tensor<2x4x100x64xf32>, %k: tensor<2x4x100x64xf32>,
               %v: tensor<2x4x100x64xf32>) -> tensor<2x4x100x64xf32> {
  %o = bpt.attention %q, %k, %v
      : (tensor<2x4x100x64xf32>, tensor<2x4x100x64xf32>, tensor<2x4x100x64xf32>)
        -> tensor<2x4x100x64xf32>
  return %o : tensor<2x4x100x64xf32>
}

//--- sq_lt_skv.mlir
// Sq < Skv (60 queries, 200 keys), D = 32, causal and not on the same
// inputs (two outputs). Causal: query i sees keys 0 .. i + 140.
// RUN: bpt-cpu-run %t/sq_lt_skv.mlir --function=sq_lt_skv --q-block=16 --kv-block=48 --seed=6 | FileCheck %s --check-prefix=SQ-LT
// RUN: bpt-cpu-run %t/sq_lt_skv.mlir --function=sq_lt_skv --q-block=64 --kv-block=13 --seed=7 | FileCheck %s --check-prefix=SQ-LT
// SQ-LT: output 0 tensor<1x4x60x32xf32>: relative error {{.*}}: PASS
// SQ-LT: output 1 tensor<1x4x60x32xf32>: relative error {{.*}}: PASS
// SQ-LT: {{^PASS$}}
func.func @sq_lt_skv(%q: tensor<1x4x60x32xf32>, %k: tensor<1x4x200x32xf32>,
                     %v: tensor<1x4x200x32xf32>)
    -> (tensor<1x4x60x32xf32>, tensor<1x4x60x32xf32>) {
  %c = bpt.attention %q, %k, %v causal
      : (tensor<1x4x60x32xf32>, tensor<1x4x200x32xf32>, tensor<1x4x200x32xf32>)
        -> tensor<1x4x60x32xf32>
  %n = bpt.attention %q, %k, %v
      : (tensor<1x4x60x32xf32>, tensor<1x4x200x32xf32>, tensor<1x4x200x32xf32>)
        -> tensor<1x4x60x32xf32>
  return %c, %n : tensor<1x4x60x32xf32>, tensor<1x4x60x32xf32>
}

//--- sq_gt_skv.mlir
// Sq > Skv (200 queries, 70 keys), causal: query i sees keys 0 .. i - 130,
// so rows 0 .. 129 see nothing and must be 0 (not NaN, not the mean of V).
// With q-block 48, blocks 0 and 1 are wholly masked and block 2 partly; with
// q-block 7 the boundary row 130 falls inside a block; with kv-block 16 the
// last key block is ragged (70 = 4·16 + 6); with q-block 26 the first
// unmasked row starts a block (130 = 5·26). Also not causal (all rows see
// all keys), as a second output.
// RUN: bpt-cpu-run %t/sq_gt_skv.mlir --function=sq_gt_skv --q-block=48 --kv-block=16 --seed=8 | FileCheck %s --check-prefix=SQ-GT
// RUN: bpt-cpu-run %t/sq_gt_skv.mlir --function=sq_gt_skv --q-block=7 --kv-block=64 --seed=9 | FileCheck %s --check-prefix=SQ-GT
// RUN: bpt-cpu-run %t/sq_gt_skv.mlir --function=sq_gt_skv --q-block=26 --kv-block=35 --seed=23 | FileCheck %s --check-prefix=SQ-GT
// RUN: bpt-cpu-run %t/sq_gt_skv.mlir --function=sq_gt_skv --q-block=256 --kv-block=128 --seed=10 | FileCheck %s --check-prefix=SQ-GT
// SQ-GT: output 0 tensor<2x2x200x64xf32>: relative error {{.*}}: PASS
// SQ-GT: output 1 tensor<2x2x200x64xf32>: relative error {{.*}}: PASS
// SQ-GT: {{^PASS$}}
func.func @sq_gt_skv(%q: tensor<2x2x200x64xf32>, %k: tensor<2x2x70x64xf32>,
                     %v: tensor<2x2x70x64xf32>)
    -> (tensor<2x2x200x64xf32>, tensor<2x2x200x64xf32>) {
  %c = bpt.attention %q, %k, %v causal
      : (tensor<2x2x200x64xf32>, tensor<2x2x70x64xf32>, tensor<2x2x70x64xf32>)
        -> tensor<2x2x200x64xf32>
  %n = bpt.attention %q, %k, %v
      : (tensor<2x2x200x64xf32>, tensor<2x2x70x64xf32>, tensor<2x2x70x64xf32>)
        -> tensor<2x2x200x64xf32>
  return %c, %n : tensor<2x2x200x64xf32>, tensor<2x2x200x64xf32>
}

//--- sq_gt_skv_gqa.mlir
// Sq > Skv with GQA (4 query heads per key/value head), D = 32, causal: 30
// of 50 rows are masked; with q-block 8 the boundary (row 30) falls inside a
// block, with kv-block 5 every key block is masked for some rows.
// RUN: bpt-cpu-run %t/sq_gt_skv_gqa.mlir --function=sq_gt_skv_gqa --q-block=8 --kv-block=8 --seed=11 | FileCheck %s --check-prefix=SQ-GT-GQA
// RUN: bpt-cpu-run %t/sq_gt_skv_gqa.mlir --function=sq_gt_skv_gqa --q-block=32 --kv-block=5 --seed=12 | FileCheck %s --check-prefix=SQ-GT-GQA
// SQ-GT-GQA: output 0 tensor<1x8x50x32xf32>: relative error {{.*}}: PASS
// SQ-GT-GQA: {{^PASS$}}
func.func @sq_gt_skv_gqa(%q: tensor<1x8x50x32xf32>, %k: tensor<1x2x20x32xf32>,
                         %v: tensor<1x2x20x32xf32>) -> tensor<1x8x50x32xf32> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<1x8x50x32xf32>, tensor<1x2x20x32xf32>, tensor<1x2x20x32xf32>)
        -> tensor<1x8x50x32xf32>
  return %o : tensor<1x8x50x32xf32>
}

//--- gqa_d128.mlir
// GQA, 8 query heads over 2 key/value heads, D = 128, causal, S = 96.
// RUN: bpt-cpu-run %t/gqa_d128.mlir --function=gqa_d128 --q-block=32 --kv-block=32 --seed=13 | FileCheck %s --check-prefix=GQA
// RUN: bpt-cpu-run %t/gqa_d128.mlir --function=gqa_d128 --q-block=40 --kv-block=28 --seed=14 | FileCheck %s --check-prefix=GQA
// GQA: output 0 tensor<1x8x96x128xf32>: relative error {{.*}}: PASS
// GQA: {{^PASS$}}
func.func @gqa_d128(%q: tensor<1x8x96x128xf32>, %k: tensor<1x2x96x128xf32>,
                    %v: tensor<1x2x96x128xf32>) -> tensor<1x8x96x128xf32> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<1x8x96x128xf32>, tensor<1x2x96x128xf32>, tensor<1x2x96x128xf32>)
        -> tensor<1x8x96x128xf32>
  return %o : tensor<1x8x96x128xf32>
}

//--- gqa_group3.mlir
// GQA with 3 query heads per key/value head (6 over 2), batch 2, not causal,
// D = 64, Sq = 130 > Skv = 90.
// RUN: bpt-cpu-run %t/gqa_group3.mlir --function=gqa_group3 --q-block=32 --kv-block=32 --seed=15 | FileCheck %s --check-prefix=GQA3
// GQA3: output 0 tensor<2x6x130x64xf32>: relative error {{.*}}: PASS
// GQA3: {{^PASS$}}
func.func @gqa_group3(%q: tensor<2x6x130x64xf32>, %k: tensor<2x2x90x64xf32>,
                      %v: tensor<2x2x90x64xf32>) -> tensor<2x6x130x64xf32> {
  %o = bpt.attention %q, %k, %v
      : (tensor<2x6x130x64xf32>, tensor<2x2x90x64xf32>, tensor<2x2x90x64xf32>)
        -> tensor<2x6x130x64xf32>
  return %o : tensor<2x6x130x64xf32>
}

//--- mqa.mlir
// MQA, 4 query heads over one key/value head, D = 32, ragged S = 130,
// causal and not.
// RUN: bpt-cpu-run %t/mqa.mlir --function=mqa --q-block=32 --kv-block=64 --seed=16 | FileCheck %s --check-prefix=MQA
// RUN: bpt-cpu-run %t/mqa.mlir --function=mqa --q-block=17 --kv-block=3 --seed=17 | FileCheck %s --check-prefix=MQA
// MQA: output 0 tensor<2x4x130x32xf32>: relative error {{.*}}: PASS
// MQA: output 1 tensor<2x4x130x32xf32>: relative error {{.*}}: PASS
// MQA: {{^PASS$}}
func.func @mqa(%q: tensor<2x4x130x32xf32>, %k: tensor<2x1x130x32xf32>,
               %v: tensor<2x1x130x32xf32>)
    -> (tensor<2x4x130x32xf32>, tensor<2x4x130x32xf32>) {
  %c = bpt.attention %q, %k, %v causal
      : (tensor<2x4x130x32xf32>, tensor<2x1x130x32xf32>, tensor<2x1x130x32xf32>)
        -> tensor<2x4x130x32xf32>
  %n = bpt.attention %q, %k, %v
      : (tensor<2x4x130x32xf32>, tensor<2x1x130x32xf32>, tensor<2x1x130x32xf32>)
        -> tensor<2x4x130x32xf32>
  return %c, %n : tensor<2x4x130x32xf32>, tensor<2x4x130x32xf32>
}

//--- scaled.mlir
// Custom scales: larger than 1/sqrt(D) (sharper softmax, a stress for the
// running maximum) and smaller, causal and not, D = 64.
// RUN: bpt-cpu-run %t/scaled.mlir --function=scaled --q-block=16 --kv-block=24 --seed=18 | FileCheck %s --check-prefix=SCALED
// SCALED: output 0 tensor<1x2x80x64xf32>: relative error {{.*}}: PASS
// SCALED: output 1 tensor<1x2x80x64xf32>: relative error {{.*}}: PASS
// SCALED: {{^PASS$}}
func.func @scaled(%q: tensor<1x2x80x64xf32>, %k: tensor<1x2x80x64xf32>,
                  %v: tensor<1x2x80x64xf32>)
    -> (tensor<1x2x80x64xf32>, tensor<1x2x80x64xf32>) {
  %a = bpt.attention %q, %k, %v causal scale(2.5)
      : (tensor<1x2x80x64xf32>, tensor<1x2x80x64xf32>, tensor<1x2x80x64xf32>)
        -> tensor<1x2x80x64xf32>
  %b = bpt.attention %q, %k, %v scale(0.03)
      : (tensor<1x2x80x64xf32>, tensor<1x2x80x64xf32>, tensor<1x2x80x64xf32>)
        -> tensor<1x2x80x64xf32>
  return %a, %b : tensor<1x2x80x64xf32>, tensor<1x2x80x64xf32>
}

//--- mha_causal_f16.mlir
// f16: MHA causal, D = 64, ragged S = 100.
// RUN: bpt-cpu-run %t/mha_causal_f16.mlir --function=mha_causal_f16 --q-block=16 --kv-block=32 --seed=19 | FileCheck %s --check-prefix=F16
// F16: output 0 tensor<1x4x100x64xf16>: relative error {{.*}} (tolerance 1e-02): PASS
// F16: {{^PASS$}}
func.func @mha_causal_f16(%q: tensor<1x4x100x64xf16>, %k: tensor<1x4x100x64xf16>,
                          %v: tensor<1x4x100x64xf16>) -> tensor<1x4x100x64xf16> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<1x4x100x64xf16>, tensor<1x4x100x64xf16>, tensor<1x4x100x64xf16>)
        -> tensor<1x4x100x64xf16>
  return %o : tensor<1x4x100x64xf16>
}

//--- gqa_scaled_f16.mlir
// f16: GQA, D = 128, causal, scale(0.125), Sq = 100 > Skv = 60.
// RUN: bpt-cpu-run %t/gqa_scaled_f16.mlir --function=gqa_scaled_f16 --q-block=32 --kv-block=16 --seed=20 | FileCheck %s --check-prefix=F16-GQA
// F16-GQA: output 0 tensor<1x8x100x128xf16>: relative error {{.*}} (tolerance 1e-02): PASS
// F16-GQA: {{^PASS$}}
func.func @gqa_scaled_f16(%q: tensor<1x8x100x128xf16>, %k: tensor<1x2x60x128xf16>,
                          %v: tensor<1x2x60x128xf16>) -> tensor<1x8x100x128xf16> {
  %o = bpt.attention %q, %k, %v causal scale(0.125)
      : (tensor<1x8x100x128xf16>, tensor<1x2x60x128xf16>, tensor<1x2x60x128xf16>)
        -> tensor<1x8x100x128xf16>
  return %o : tensor<1x8x100x128xf16>
}

//--- mqa_bf16.mlir
// bf16: MQA, D = 32, causal, Sq = 16 < Skv = 64 (the ops.mlir example).
// RUN: bpt-cpu-run %t/mqa_bf16.mlir --function=mqa_bf16 --q-block=8 --kv-block=24 --seed=21 | FileCheck %s --check-prefix=BF16-MQA
// BF16-MQA: output 0 tensor<1x8x16x32xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// BF16-MQA: {{^PASS$}}
func.func @mqa_bf16(%q: tensor<1x8x16x32xbf16>, %kv: tensor<1x1x64x32xbf16>)
    -> tensor<1x8x16x32xbf16> {
  %o = bpt.attention %q, %kv, %kv causal
      : (tensor<1x8x16x32xbf16>, tensor<1x1x64x32xbf16>, tensor<1x1x64x32xbf16>)
        -> tensor<1x8x16x32xbf16>
  return %o : tensor<1x8x16x32xbf16>
}

//--- gqa_sq_gt_bf16.mlir
// bf16: GQA, D = 64, batch 2, Sq = 90 > Skv = 40 causal (masked rows),
// ragged blocks.
// RUN: bpt-cpu-run %t/gqa_sq_gt_bf16.mlir --function=gqa_sq_gt_bf16 --q-block=16 --kv-block=12 --seed=22 | FileCheck %s --check-prefix=BF16-GQA
// BF16-GQA: output 0 tensor<2x4x90x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// BF16-GQA: {{^PASS$}}
func.func @gqa_sq_gt_bf16(%q: tensor<2x4x90x64xbf16>, %k: tensor<2x2x40x64xbf16>,
                          %v: tensor<2x2x40x64xbf16>) -> tensor<2x4x90x64xbf16> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<2x4x90x64xbf16>, tensor<2x2x40x64xbf16>, tensor<2x2x40x64xbf16>)
        -> tensor<2x4x90x64xbf16>
  return %o : tensor<2x4x90x64xbf16>
}
