// RUN: bpt-opt %s --bpt-tile-attention --bpt-attention-grad-to-sm90 --verify-diagnostics

// A wgmma strategy written by hand with a query block the kernel does not
// take (D 128 takes 80-row blocks; bpt-select-strategy would have refused
// to record this one) gets a located error, not a kernel built for
// another tiling.
func.func @q64_at_d128(%q: tensor<1x2x128x128xbf16>, %k: tensor<1x1x128x128xbf16>,
                       %o: tensor<1x2x128x128xbf16>, %lse: tensor<1x2x128xf32>)
    -> (tensor<1x2x128x128xbf16>, tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>) {
  // expected-error @below {{bpt-attention-grad-to-sm90: the kernel does not take query blocks of 64 rows at D = 128 (128 rows at D = 64, 80 at D = 128)}}
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %k, %o, %o, %lse
      {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 64, kv_block = 128, stages = 2, warps = 12>}
      : (tensor<1x2x128x128xbf16>, tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>,
         tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>, tensor<1x2x128xf32>)
      -> (tensor<1x2x128x128xbf16>, tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>)
  return %dq, %dk, %dv
      : tensor<1x2x128x128xbf16>, tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>
}
