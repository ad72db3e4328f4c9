// Decode and short queries (at most 64 rows) are split over their keys on
// the mma.sync split kernel: the query heads of a key/value group packed
// as one tile (q_block = packed rows rounded up to 16, warps of 16 rows),
// key blocks of 32 above D 64, two stages, and kv_splits from the chip's
// multiprocessors and the blocks resident on one (chooseKVSplits), at most
// Skv / (16 × packed rows) so that the partials' traffic stays within 1/8
// of K and V's. The
// bench's four decode shapes (bench/shapes.txt) on sm_90a and sm_80.
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_80" | FileCheck %s --check-prefix=SM80
// kv-splits pins the count (1: never split).
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="kv-splits=1" | FileCheck %s --check-prefix=NOSPLIT
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="kv-splits=48" 2>&1 | FileCheck %s --check-prefix=PINNED
// RUN: not bpt-opt %s --bpt-select-strategy="kv-splits=1025" 2>&1 | FileCheck %s --check-prefix=RANGE
// Without tensor cores nothing is split (the portable loops).
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="tensor-cores=false" | FileCheck %s --check-prefix=PORTABLE

// RANGE: error: bpt-select-strategy: kv-splits must be in [0, 1024], got 1025

// decode-q1-k4096-gqa: 8 groups of 4 heads, 128 key blocks of 32.
// CHECK-LABEL: func.func @q1_k4096_gqa
// CHECK: #bpt.strategy<mma_sync, chip = "sm_90a", q_block = 16, kv_block = 32, stages = 2, warps = 1, kv_splits = 64>
// SM80-LABEL: func.func @q1_k4096_gqa
// SM80: #bpt.strategy<mma_sync, chip = "sm_80", q_block = 16, kv_block = 32, stages = 2, warps = 1, kv_splits = {{[0-9]+}}>
// PORTABLE-LABEL: func.func @q1_k4096_gqa
// PORTABLE: #bpt.strategy<portable, chip = "sm_90a", q_block = 64, kv_block = 64>}
// NOSPLIT-LABEL: func.func @q1_k4096_gqa
// Unsplit, the wgmma kernel takes it (any sequence length).
// NOSPLIT: #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = {{[0-9]+}}, stages = {{[0-9]+}}, warps = 12>
// PINNED: remark: kv-splits=48 over 128 key blocks of 32 rows: 43 splits cover them (none empty)
// PINNED-LABEL: func.func @q1_k4096_gqa
// PINNED: kv_splits = 43>
func.func @q1_k4096_gqa(%q: tensor<1x32x1x128xbf16>, %k: tensor<1x8x4096x128xbf16>,
                        %v: tensor<1x8x4096x128xbf16>) -> tensor<1x32x1x128xbf16> {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x32x1x128xbf16>, tensor<1x8x4096x128xbf16>,
         tensor<1x8x4096x128xbf16>) -> tensor<1x32x1x128xbf16>
  return %o : tensor<1x32x1x128xbf16>
}

// -----

// decode-q1-k32768-gqa: 32 groups.
// CHECK-LABEL: func.func @q1_k32768_gqa
// CHECK: #bpt.strategy<mma_sync, chip = "sm_90a", q_block = 16, kv_block = 32, stages = 2, warps = 1, kv_splits = 21>
func.func @q1_k32768_gqa(%q: tensor<4x32x1x128xbf16>, %k: tensor<4x8x32768x128xbf16>,
                         %v: tensor<4x8x32768x128xbf16>) -> tensor<4x32x1x128xbf16> {
  %o = bpt.attention %q, %k, %v
      : (tensor<4x32x1x128xbf16>, tensor<4x8x32768x128xbf16>,
         tensor<4x8x32768x128xbf16>) -> tensor<4x32x1x128xbf16>
  return %o : tensor<4x32x1x128xbf16>
}

// -----

// decode-q1-k131072-mqa: one group of 16 heads (one 16-row tile); the
// splits fill the chip (456 of 4096 key blocks: 9 each; six blocks a
// multiprocessor are 792 slots, and the partials' traffic bounds the
// splits at 512).
// CHECK-LABEL: func.func @q1_k131072_mqa
// CHECK: #bpt.strategy<mma_sync, chip = "sm_90a", q_block = 16, kv_block = 32, stages = 2, warps = 1, kv_splits = 456>
func.func @q1_k131072_mqa(%q: tensor<1x16x1x128xbf16>, %k: tensor<1x1x131072x128xbf16>,
                          %v: tensor<1x1x131072x128xbf16>) -> tensor<1x16x1x128xbf16> {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x16x1x128xbf16>, tensor<1x1x131072x128xbf16>,
         tensor<1x1x131072x128xbf16>) -> tensor<1x16x1x128xbf16>
  return %o : tensor<1x16x1x128xbf16>
}

// -----

// decode-q16-k16384-causal: 4 heads × 16 rows = 64 packed rows, 4 warps;
// at most 16384 / (16 × 64) = 16 splits for the partials' traffic.
// CHECK-LABEL: func.func @q16_k16384_causal
// CHECK: #bpt.strategy<mma_sync, chip = "sm_90a", q_block = 64, kv_block = 32, stages = 2, warps = 4, kv_splits = 14>
func.func @q16_k16384_causal(%q: tensor<2x32x16x128xbf16>, %k: tensor<2x8x16384x128xbf16>,
                             %v: tensor<2x8x16384x128xbf16>) -> tensor<2x32x16x128xbf16> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<2x32x16x128xbf16>, tensor<2x8x16384x128xbf16>,
         tensor<2x8x16384x128xbf16>) -> tensor<2x32x16x128xbf16>
  return %o : tensor<2x32x16x128xbf16>
}

// -----

// A grid of batch × key/value heads that fills a wave already is not
// split: the unsplit kernel needs no combine.
// CHECK-LABEL: func.func @full_grid
// CHECK-NOT: kv_splits
// CHECK: return
func.func @full_grid(%q: tensor<128x32x1x64xbf16>, %k: tensor<128x8x1024x64xbf16>,
                     %v: tensor<128x8x1024x64xbf16>) -> tensor<128x32x1x64xbf16> {
  %o = bpt.attention %q, %k, %v
      : (tensor<128x32x1x64xbf16>, tensor<128x8x1024x64xbf16>,
         tensor<128x8x1024x64xbf16>) -> tensor<128x32x1x64xbf16>
  return %o : tensor<128x32x1x64xbf16>
}

// -----

// A split strategy recorded by hand is kept when it is the rule's with its
// count pinned.
// CHECK-LABEL: func.func @recorded
// CHECK: #bpt.strategy<mma_sync, chip = "sm_90a", q_block = 16, kv_block = 64, stages = 2, warps = 1, kv_splits = 8>
func.func @recorded(%q: tensor<1x16x1x64xf16>, %k: tensor<1x1x2048x64xf16>,
                    %v: tensor<1x1x2048x64xf16>) -> tensor<1x16x1x64xf16> {
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<mma_sync,
      chip = "sm_90a", q_block = 16, kv_block = 64, stages = 2, warps = 1,
      kv_splits = 8>}
      : (tensor<1x16x1x64xf16>, tensor<1x1x2048x64xf16>,
         tensor<1x1x2048x64xf16>) -> tensor<1x16x1x64xf16>
  return %o : tensor<1x16x1x64xf16>
}
