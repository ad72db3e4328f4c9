// RUN: bpt-opt %s --split-input-file --bpt-tile-attention --bpt-attention-to-sm80 -verify-diagnostics

// A hand-written split strategy whose row tile cannot hold the packed
// rows of a group (8 heads × 4 rows = 32 > 16) names no kernel.
func.func @tile_too_small(%q: tensor<1x8x4x64xbf16>, %k: tensor<1x1x512x64xbf16>,
                          %v: tensor<1x1x512x64xbf16>) -> tensor<1x8x4x64xbf16> {
  // expected-error @+1 {{bpt-attention-to-sm80: the split kernel's 16-row tile (q_block) does not hold the 32 packed query rows of a key/value group in 16-row warp tiles (at most 128)}}
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<mma_sync,
      chip = "sm_90a", q_block = 16, kv_block = 64, stages = 2, warps = 1,
      kv_splits = 4>}
      : (tensor<1x8x4x64xbf16>, tensor<1x1x512x64xbf16>, tensor<1x1x512x64xbf16>)
        -> tensor<1x8x4x64xbf16>
  return %o : tensor<1x8x4x64xbf16>
}
