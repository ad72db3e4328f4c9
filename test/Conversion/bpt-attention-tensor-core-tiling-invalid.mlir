// RUN: bpt-opt %s --split-input-file --bpt-tile-attention --bpt-attention-to-sm80 --bpt-attention-to-sm90 -verify-diagnostics

// Hand-written strategies the tensor-core attention conversions refuse, with
// the rule each breaks (bpt-select-strategy never records them).

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

// -----

// A hand-written tiling the kernel does not take (found by the IR fuzzer:
// a 65535-row key block, now the dialect's error, was unrolled for
// minutes): the key block and stages follow bpt-select-strategy's rules.
func.func @key_block(%q: tensor<2x8x1x64xbf16>, %k: tensor<2x2x1000x64xbf16>,
                     %v: tensor<2x2x1000x64xbf16>) -> tensor<2x8x1x64xbf16> {
  // expected-error @+1 {{bpt-attention-to-sm80: the strategy's tiling #bpt.strategy<mma_sync, chip = "sm_90a", q_block = 16, kv_block = 256, stages = 8, warps = 32, kv_splits = 4> is not one the kernel takes: a 256-row key block (kv_block: 32, 64 or 128)}}
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<mma_sync,
      chip = "sm_90a", q_block = 16, kv_block = 256, stages = 8, warps = 32,
      kv_splits = 4>}
      : (tensor<2x8x1x64xbf16>, tensor<2x2x1000x64xbf16>,
         tensor<2x2x1000x64xbf16>) -> tensor<2x8x1x64xbf16>
  return %o : tensor<2x8x1x64xbf16>
}

// -----

func.func @stages(%q: tensor<1x2x128x64xbf16>, %k: tensor<1x2x128x64xbf16>,
                  %v: tensor<1x2x128x64xbf16>) -> tensor<1x2x128x64xbf16> {
  // expected-error @+1 {{is not one the kernel takes: 8 stages (2 to 4)}}
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<mma_sync,
      chip = "sm_80", q_block = 64, kv_block = 64, stages = 8, warps = 4>}
      : (tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>,
         tensor<1x2x128x64xbf16>) -> tensor<1x2x128x64xbf16>
  return %o : tensor<1x2x128x64xbf16>
}

// -----

// The same rules on the wgmma kernel: key blocks of 64 to 128 rows.
func.func @wgmma_key_block(%q: tensor<1x2x512x64xbf16>, %k: tensor<1x2x512x64xbf16>,
                           %v: tensor<1x2x512x64xbf16>) -> tensor<1x2x512x64xbf16> {
  // expected-error @+1 {{bpt-attention-to-sm90: the strategy's tiling #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 256, stages = 2, warps = 12> is not one the kernel takes: a 256-row key block (kv_block: 64 to 128, a multiple of 16)}}
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<wgmma,
      chip = "sm_90a", q_block = 128, kv_block = 256, stages = 2, warps = 12>}
      : (tensor<1x2x512x64xbf16>, tensor<1x2x512x64xbf16>,
         tensor<1x2x512x64xbf16>) -> tensor<1x2x512x64xbf16>
  return %o : tensor<1x2x512x64xbf16>
}
