// RUN: bpt-opt %s --split-input-file --bpt-tile-attention -verify-diagnostics

// A split over the keys combines normalised partials; it returns no
// log-sum-exp (a training forward keeps the unsplit nest).
func.func @split_with_lse(%q: tensor<1x4x1x64xbf16>, %k: tensor<1x1x512x64xbf16>,
                          %v: tensor<1x1x512x64xbf16>)
    -> (tensor<1x4x1x64xbf16>, tensor<1x4x1xf32>) {
  // expected-error @+1 {{bpt-tile-attention: a split over the keys (kv_splits = 4) does not return the log-sum-exp}}
  %o, %lse = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<mma_sync,
      chip = "sm_90a", q_block = 16, kv_block = 64, stages = 2, warps = 1,
      kv_splits = 4>}
      : (tensor<1x4x1x64xbf16>, tensor<1x1x512x64xbf16>, tensor<1x1x512x64xbf16>)
        -> (tensor<1x4x1x64xbf16>, tensor<1x4x1xf32>)
  return %o, %lse : tensor<1x4x1x64xbf16>, tensor<1x4x1xf32>
}

// -----

// The split kernel is mma.sync's (or the portable loops): a wgmma strategy
// with splits names no kernel.
func.func @split_on_wgmma(%q: tensor<1x4x1x64xbf16>, %k: tensor<1x1x512x64xbf16>,
                          %v: tensor<1x1x512x64xbf16>) -> tensor<1x4x1x64xbf16> {
  // expected-error @+1 {{bpt-tile-attention: a split over the keys runs on the mma_sync or portable path, not wgmma}}
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<wgmma,
      chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12,
      kv_splits = 4>}
      : (tensor<1x4x1x64xbf16>, tensor<1x1x512x64xbf16>, tensor<1x1x512x64xbf16>)
        -> tensor<1x4x1x64xbf16>
  return %o : tensor<1x4x1x64xbf16>
}

// -----

// A negative split count is no strategy.
func.func @negative_splits(%q: tensor<1x4x1x64xbf16>, %k: tensor<1x1x512x64xbf16>,
                           %v: tensor<1x1x512x64xbf16>) -> tensor<1x4x1x64xbf16> {
  // expected-error @+1 {{strategy field kv_splits must not be negative, got -2}}
  %o = bpt.attention %q, %k, %v {bpt.strategy = #bpt.strategy<portable,
      chip = "sm_90a", kv_splits = -2>}
      : (tensor<1x4x1x64xbf16>, tensor<1x1x512x64xbf16>, tensor<1x1x512x64xbf16>)
        -> tensor<1x4x1x64xbf16>
  return %o : tensor<1x4x1x64xbf16>
}
