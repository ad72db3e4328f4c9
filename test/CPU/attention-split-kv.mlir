// Attention split over its keys (decode and short queries: the strategy's
// kv_splits), run blockwise on the CPU and checked against the float64
// reference (bpt-cpu-run, random inputs). The partial nest packs the query
// heads of a key/value group as the rows of one tile and runs the online
// softmax over its split's key blocks; the combine nest merges the splits
// by their log-sum-exp. The cases: GQA and MQA decode (one query row), a
// short causal query (bottom-right aligned: the diagonal moves with the
// row's position, which repeats per packed head), a ragged key length (not
// a multiple of the key block), Sq > Skv causal (rows that see no key give
// 0), and a split that covers no key block (5 splits over 7 blocks of 2:
// the last is empty and must weigh nothing). Strategies are written by
// hand, as bpt-select-strategy records them for sm_90a (mma_sync, checked
// against the rule with its fields pinned) or for the portable path.

// RUN: rm -rf %t && split-file %s %t

//--- gqa_decode.mlir
// GQA 8:2, one query row, 1000 keys (15 blocks of 64 and 40), 4 splits.
// RUN: bpt-cpu-run %t/gqa_decode.mlir --seed=151 | FileCheck %s --check-prefix=GQA
// GQA: output 0 tensor<2x8x1x128xbf16>: relative error {{.*}}: PASS
// GQA: {{^PASS$}}
func.func @gqa_decode(%q: tensor<2x8x1x128xbf16>, %k: tensor<2x2x1000x128xbf16>,
                      %v: tensor<2x2x1000x128xbf16>) -> tensor<2x8x1x128xbf16> {
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<mma_sync,
      chip = "sm_90a", q_block = 16, kv_block = 64, stages = 2, warps = 1,
      kv_splits = 4>}
      : (tensor<2x8x1x128xbf16>, tensor<2x2x1000x128xbf16>,
         tensor<2x2x1000x128xbf16>) -> tensor<2x8x1x128xbf16>
  return %o : tensor<2x8x1x128xbf16>
}

//--- mqa_decode.mlir
// MQA 16:1, one query row: the 16 heads are one 16-row tile; 8 splits.
// RUN: bpt-cpu-run %t/mqa_decode.mlir --seed=152 | FileCheck %s --check-prefix=MQA
// MQA: output 0 tensor<1x16x1x64xf16>: relative error {{.*}}: PASS
// MQA: {{^PASS$}}
func.func @mqa_decode(%q: tensor<1x16x1x64xf16>, %k: tensor<1x1x2048x64xf16>,
                      %v: tensor<1x1x2048x64xf16>) -> tensor<1x16x1x64xf16> {
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<mma_sync,
      chip = "sm_90a", q_block = 16, kv_block = 64, stages = 2, warps = 1,
      kv_splits = 8>}
      : (tensor<1x16x1x64xf16>, tensor<1x1x2048x64xf16>,
         tensor<1x1x2048x64xf16>) -> tensor<1x16x1x64xf16>
  return %o : tensor<1x16x1x64xf16>
}

//--- causal_short.mlir
// 16 causal query rows, GQA 8:2 (64 packed rows), 700 keys (ragged), 3
// splits: row i sees keys 0 .. 684 + i, the last split masks its tail.
// RUN: bpt-cpu-run %t/causal_short.mlir --seed=153 | FileCheck %s --check-prefix=CAUSAL
// CAUSAL: output 0 tensor<1x8x16x64xbf16>: relative error {{.*}}: PASS
// CAUSAL: {{^PASS$}}
func.func @causal_short(%q: tensor<1x8x16x64xbf16>, %k: tensor<1x2x700x64xbf16>,
                        %v: tensor<1x2x700x64xbf16>) -> tensor<1x8x16x64xbf16> {
  %o = bpt.attention %q, %k, %v causal {bpt.strategy = #bpt.strategy<mma_sync,
      chip = "sm_90a", q_block = 64, kv_block = 64, stages = 2, warps = 4,
      kv_splits = 3>}
      : (tensor<1x8x16x64xbf16>, tensor<1x2x700x64xbf16>,
         tensor<1x2x700x64xbf16>) -> tensor<1x8x16x64xbf16>
  return %o : tensor<1x8x16x64xbf16>
}

//--- sq_gt_skv.mlir
// f32, portable, causal with 16 queries and 10 keys: rows 0 .. 5 see no
// key and must be 0; 3 key blocks of 4 in 2 splits.
// RUN: bpt-cpu-run %t/sq_gt_skv.mlir --seed=154 | FileCheck %s --check-prefix=SQGT
// SQGT: output 0 tensor<1x4x16x32xf32>: relative error {{.*}}: PASS
// SQGT: {{^PASS$}}
func.func @sq_gt_skv(%q: tensor<1x4x16x32xf32>, %k: tensor<1x2x10x32xf32>,
                     %v: tensor<1x2x10x32xf32>) -> tensor<1x4x16x32xf32> {
  %o = bpt.attention %q, %k, %v causal {bpt.strategy = #bpt.strategy<portable,
      chip = "sm_90a", q_block = 16, kv_block = 4, kv_splits = 2>}
      : (tensor<1x4x16x32xf32>, tensor<1x2x10x32xf32>, tensor<1x2x10x32xf32>)
        -> tensor<1x4x16x32xf32>
  return %o : tensor<1x4x16x32xf32>
}

//--- empty_split.mlir
// f32, portable, MQA 2:1 with 3 query rows, 100 keys in 7 blocks of 16:
// 5 splits of 2 blocks, the fifth empty.
// RUN: bpt-cpu-run %t/empty_split.mlir --seed=155 | FileCheck %s --check-prefix=EMPTY
// EMPTY: output 0 tensor<1x2x3x32xf32>: relative error {{.*}}: PASS
// EMPTY: {{^PASS$}}
func.func @empty_split(%q: tensor<1x2x3x32xf32>, %k: tensor<1x1x100x32xf32>,
                       %v: tensor<1x1x100x32xf32>) -> tensor<1x2x3x32xf32> {
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<portable,
      chip = "sm_90a", q_block = 16, kv_block = 16, kv_splits = 5>}
      : (tensor<1x2x3x32xf32>, tensor<1x1x100x32xf32>, tensor<1x1x100x32xf32>)
        -> tensor<1x2x3x32xf32>
  return %o : tensor<1x2x3x32xf32>
}
