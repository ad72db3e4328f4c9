// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --verify-diagnostics

// A short query that is not split says why (only short queries are
// considered: longer ones say nothing of it).

func.func @f32_decode(%q: tensor<1x8x1x64xf32>, %k: tensor<1x2x4096x64xf32>,
                      %v: tensor<1x2x4096x64xf32>) -> tensor<1x8x1x64xf32> {
  // expected-remark @+3 {{attention does not take the split-K/V path: element type f32 (the mma.sync path takes bf16 and f16)}}
  // expected-remark @+2 {{attention does not take the wgmma path: element type f32 (the wgmma path takes bf16 and f16)}}
  // expected-remark @+1 {{attention does not take the mma.sync path: element type f32 (the mma.sync path takes bf16 and f16)}}
  %o = bpt.attention %q, %k, %v
      : (tensor<1x8x1x64xf32>, tensor<1x2x4096x64xf32>, tensor<1x2x4096x64xf32>)
        -> tensor<1x8x1x64xf32>
  return %o : tensor<1x8x1x64xf32>
}

// -----

func.func @decode_with_lse(%q: tensor<1x8x1x64xbf16>, %k: tensor<1x2x4096x64xbf16>,
                           %v: tensor<1x2x4096x64xbf16>)
    -> (tensor<1x8x1x64xbf16>, tensor<1x8x1xf32>) {
  // expected-remark @+1 {{attention does not take the split-K/V path: the log-sum-exp is asked for (a training forward keeps the unsplit kernels)}}
  %o, %lse = bpt.attention %q, %k, %v
      : (tensor<1x8x1x64xbf16>, tensor<1x2x4096x64xbf16>, tensor<1x2x4096x64xbf16>)
        -> (tensor<1x8x1x64xbf16>, tensor<1x8x1xf32>)
  return %o, %lse : tensor<1x8x1x64xbf16>, tensor<1x8x1xf32>
}

// -----

func.func @too_many_rows(%q: tensor<1x16x16x64xbf16>, %k: tensor<1x1x4096x64xbf16>,
                         %v: tensor<1x1x4096x64xbf16>) -> tensor<1x16x16x64xbf16> {
  // expected-remark @+1 {{attention does not take the split-K/V path: 16 query heads of 16 rows a key/value group are 256 rows (at most 128 are packed)}}
  %o = bpt.attention %q, %k, %v
      : (tensor<1x16x16x64xbf16>, tensor<1x1x4096x64xbf16>, tensor<1x1x4096x64xbf16>)
        -> tensor<1x16x16x64xbf16>
  return %o : tensor<1x16x16x64xbf16>
}
