// RUN: bpt-opt %s --split-input-file --bpt-norm-to-rowwise --verify-diagnostics

// A rowwise strategy recorded by hand on rows the kernel cannot take
// (bpt-select-strategy rejects it too: bpt-select-strategy-invalid.mlir):
// an error, not a kernel that would read past the rows.
func.func @f32_rows(%x: tensor<4x512xf32>, %w: tensor<512xf32>) -> tensor<4x512xf32> {
  // expected-error @below {{the row kernel takes bf16 and f16 rows}}
  %0 = bpt.rms_norm %x, %w {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_90a">}
      : (tensor<4x512xf32>, tensor<512xf32>) -> tensor<4x512xf32>
  return %0 : tensor<4x512xf32>
}

// -----

func.func @narrow_rows(%x: tensor<4x320xbf16>, %w: tensor<320xbf16>,
                       %b: tensor<320xbf16>) -> tensor<4x320xbf16> {
  // expected-error @below {{rows of 320 elements: the row kernel takes multiples of 256 up to 4096}}
  %0 = bpt.layer_norm %x, %w, %b {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_90a">}
      : (tensor<4x320xbf16>, tensor<320xbf16>, tensor<320xbf16>) -> tensor<4x320xbf16>
  return %0 : tensor<4x320xbf16>
}
