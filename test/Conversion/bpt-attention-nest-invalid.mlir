// RUN: bpt-opt %s --split-input-file --bpt-attention-to-sm90 --verify-diagnostics

// A nest whose strategy names the wgmma kernel but no tiling is refused
// with a located error (the kernel would divide by its block sizes).
func.func @no_tiling(%q: tensor<1x1x128x64xbf16>) -> tensor<1x1x128x64xbf16> {
  %e = tensor.empty() : tensor<1x1x128x64xbf16>
  %c0 = arith.constant 0 : index
  // expected-error @below {{malformed attention nest: its strategy records no kernel tiling}}
  %0 = scf.forall (%b, %h, %i) in (1, 1, 1) shared_outs(%o = %e) -> (tensor<1x1x128x64xbf16>) {
    %t = tensor.extract_slice %q[%b, %h, %c0, 0] [1, 1, 128, 64] [1, 1, 1, 1] : tensor<1x1x128x64xbf16> to tensor<128x64xbf16>
    %s0 = tensor.empty() : tensor<128x128xf32>
    %a0 = tensor.empty() : tensor<128x64xf32>
    %r = scf.for %j = %c0 to %c0 step %c0 iter_args(%acc = %a0) -> (tensor<128x64xf32>) {
      %s = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>] ins(%t, %t : tensor<128x64xbf16>, tensor<128x64xbf16>) outs(%s0 : tensor<128x128xf32>) -> tensor<128x128xf32>
      %p = tensor.empty() : tensor<128x128xbf16>
      %n = linalg.matmul ins(%p, %t : tensor<128x128xbf16>, tensor<128x64xbf16>) outs(%acc : tensor<128x64xf32>) -> tensor<128x64xf32>
      scf.yield %n : tensor<128x64xf32>
    }
    scf.forall.in_parallel {
    }
  } {bpt.nest = #bpt.attention_nest<causal = false, scale = 1.250000e-01>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a">}
  return %0 : tensor<1x1x128x64xbf16>
}

// -----

// A second result is the rows' log-sum-exp, [B, H, Sq] f32; anything else
// is refused.
func.func @bad_lse(%q: tensor<1x1x128x64xbf16>)
    -> (tensor<1x1x128x64xbf16>, tensor<1x1x128xf16>) {
  %e = tensor.empty() : tensor<1x1x128x64xbf16>
  %el = tensor.empty() : tensor<1x1x128xf16>
  %c0 = arith.constant 0 : index
  // expected-error @below {{malformed attention nest: its second result is not a log-sum-exp 'tensor<1x1x128xf32>'}}
  %0:2 = scf.forall (%b, %h, %i) in (1, 1, 1) shared_outs(%o = %e, %l = %el) -> (tensor<1x1x128x64xbf16>, tensor<1x1x128xf16>) {
    %t = tensor.extract_slice %q[%b, %h, %c0, 0] [1, 1, 128, 64] [1, 1, 1, 1] : tensor<1x1x128x64xbf16> to tensor<128x64xbf16>
    %s0 = tensor.empty() : tensor<128x128xf32>
    %a0 = tensor.empty() : tensor<128x64xf32>
    %r = scf.for %j = %c0 to %c0 step %c0 iter_args(%acc = %a0) -> (tensor<128x64xf32>) {
      %s = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>] ins(%t, %t : tensor<128x64xbf16>, tensor<128x64xbf16>) outs(%s0 : tensor<128x128xf32>) -> tensor<128x128xf32>
      %p = tensor.empty() : tensor<128x128xbf16>
      %n = linalg.matmul ins(%p, %t : tensor<128x128xbf16>, tensor<128x64xbf16>) outs(%acc : tensor<128x64xf32>) -> tensor<128x64xf32>
      scf.yield %n : tensor<128x64xf32>
    }
    scf.forall.in_parallel {
    }
  } {bpt.nest = #bpt.attention_nest<causal = false, scale = 1.250000e-01>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12>}
  return %0#0, %0#1 : tensor<1x1x128x64xbf16>, tensor<1x1x128xf16>
}
