// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --verify-diagnostics
// RUN: not bpt-opt %s --split-input-file --bpt-select-strategy 2>/dev/null | FileCheck %s

// A strategy written by hand is kept when its kernel takes the op with
// that tiling: mma.sync on sm_90a (instead of wgmma) is a legitimate choice.
// CHECK-LABEL: func.func @forced_mma_sync
// CHECK: #bpt.strategy<mma_sync, chip = "sm_90a", q_block = 64, kv_block = 64, stages = 2, warps = 4>
func.func @forced_mma_sync(%q: tensor<1x2x256x64xbf16>) -> tensor<1x2x256x64xbf16> {
  %0 = bpt.attention %q, %q, %q {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_90a", q_block = 64, kv_block = 64, stages = 2, warps = 4>}
      : (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>)
      -> tensor<1x2x256x64xbf16>
  return %0 : tensor<1x2x256x64xbf16>
}

// -----

// The wgmma kernel does not take f32: the conversions would build what the
// strategy says, so a strategy they cannot honour is an error, not a crash.
func.func @wgmma_f32(%q: tensor<1x2x128x64xf32>) -> tensor<1x2x128x64xf32> {
  // expected-error @below {{bpt-select-strategy: recorded strategy #bpt.strategy<wgmma, chip = "sm_90a"> is not one its kernel takes for this op; with its tiling pinned the choice is #bpt.strategy<portable, chip = "sm_90a", q_block = 64, kv_block = 64>}}
  %0 = bpt.attention %q, %q, %q {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a">}
      : (tensor<1x2x128x64xf32>, tensor<1x2x128x64xf32>, tensor<1x2x128x64xf32>)
      -> tensor<1x2x128x64xf32>
  return %0 : tensor<1x2x128x64xf32>
}

// -----

// Nor does the norms' row kernel.
func.func @rowwise_f32(%x: tensor<4x512xf32>, %w: tensor<512xf32>) -> tensor<4x512xf32> {
  // expected-error @below {{bpt-select-strategy: recorded strategy #bpt.strategy<rowwise, chip = "sm_90a"> is not one its kernel takes for this op; with its tiling pinned the choice is #bpt.strategy<portable, chip = "sm_90a">}}
  %0 = bpt.rms_norm %x, %w {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_90a">}
      : (tensor<4x512xf32>, tensor<512xf32>) -> tensor<4x512xf32>
  return %0 : tensor<4x512xf32>
}

// -----

// A tiling out of the kernel's range is reported as such.
func.func @bad_tiling(%q: tensor<1x2x256x64xbf16>) -> tensor<1x2x256x64xbf16> {
  // expected-error @below {{bpt-select-strategy: recorded strategy #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 72, stages = 2, warps = 12> is out of range: sm90-kv-block must be 0, 64, 80, 96, 112 or 128, got 72}}
  %0 = bpt.attention %q, %q, %q {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 72, stages = 2, warps = 12>}
      : (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>)
      -> tensor<1x2x256x64xbf16>
  return %0 : tensor<1x2x256x64xbf16>
}

// -----

// The attribute must be a strategy.
// expected-error @below {{'func.func' op attribute 'bpt.strategy' must be a #bpt.strategy}}
func.func @not_a_strategy() attributes {bpt.strategy = 3 : i64} {
  return
}
