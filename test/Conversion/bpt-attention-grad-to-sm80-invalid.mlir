// RUN: bpt-opt %s --split-input-file --bpt-attention-grad-to-sm80 --verify-diagnostics

// A key/value nest with an mma_sync strategy whose body is not the
// backward's is refused with a located error, not lowered to a kernel that
// would compute something else.
func.func @no_products(%k: tensor<1x1x128x64xbf16>)
    -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
  // expected-error @below {{malformed attention backward nest: expected Q·Kᵀ, dO·Vᵀ, Pᵀ·dO and dSᵀ·Q, and results dK, dV}}
  %r:2 = scf.forall (%i) in (1) shared_outs(%a = %k, %b = %k) -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
    scf.forall.in_parallel {
    }
  } {bpt.nest = #bpt.attention_grad_nest<key_value, causal = false, scale = 1.250000e-01>, bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", q_block = 64, kv_block = 128, stages = 2, warps = 8>}
  return %r#0, %r#1 : tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>
}

// -----

// A key/value nest with a wgmma strategy is not this pass's: left alone.
func.func @other_path(%k: tensor<1x1x128x64xbf16>)
    -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
  %r:2 = scf.forall (%i) in (1) shared_outs(%a = %k, %b = %k) -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
    scf.forall.in_parallel {
    }
  } {bpt.nest = #bpt.attention_grad_nest<key_value, causal = false, scale = 1.250000e-01>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 64, kv_block = 128, stages = 2, warps = 12>}
  return %r#0, %r#1 : tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>
}
