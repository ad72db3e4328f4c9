// RUN: bpt-opt %s --bpt-select-strategy --verify-diagnostics

// A nest tiled for one chip's kernel is not lowered for another.
func.func @retarget(%q: tensor<1x1x128x64xbf16>) -> tensor<1x1x128x64xbf16> {
  %e = tensor.empty() : tensor<1x1x128x64xbf16>
  // expected-error @below {{bpt-select-strategy: this loop nest was tiled for the mma_sync kernel of sm_80, not for sm_90a; run bpt-blockwise with chip=sm_90a}}
  %0 = scf.forall (%i) in (1) shared_outs(%o = %e) -> (tensor<1x1x128x64xbf16>) {
    scf.forall.in_parallel {
    }
  } {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", q_block = 64, kv_block = 64, stages = 2, warps = 4>}
  return %0 : tensor<1x1x128x64xbf16>
}
