// RUN: bpt-opt %s --split-input-file --bpt-attention-to-sm90 --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-attention-to-sm90="shared-memory=90000" 2>&1 >/dev/null | FileCheck %s --check-prefix=SMALL
// RUN: bpt-opt %s --split-input-file --bpt-attention-to-sm90="shared-memory=100000" 2>/dev/null | FileCheck %s --check-prefix=FITS
// RUN: not bpt-opt %s --bpt-attention-to-sm90="kv-block=96" 2>&1 | FileCheck %s --check-prefix=KVBLOCK
// RUN: not bpt-opt %s --bpt-attention-to-sm90="stages=1" 2>&1 | FileCheck %s --check-prefix=STAGES

// KVBLOCK: error: bpt-attention-to-sm90: kv-block must be 0, 64 or 128, got 96
// STAGES: error: bpt-attention-to-sm90: stages must be 0 or in [2, 4], got 1

// What the sm_90a kernel does not cover stays for the portable path, with a
// remark saying why.
// CHECK-LABEL: func.func @not_eligible
// CHECK-COUNT-3: bpt.attention
// CHECK-NOT: gpu.launch_func
func.func @not_eligible(%q32: tensor<1x2x128x64xf32>, %q: tensor<1x2x128x32xbf16>,
                        %r: tensor<1x2x100x64xbf16>)
    -> (tensor<1x2x128x64xf32>, tensor<1x2x128x32xbf16>, tensor<1x2x100x64xbf16>) {
  // expected-remark @below {{attention does not take the wgmma path: element type f32 (the wgmma path takes bf16 and f16)}}
  %0 = bpt.attention %q32, %q32, %q32
      : (tensor<1x2x128x64xf32>, tensor<1x2x128x64xf32>, tensor<1x2x128x64xf32>)
      -> tensor<1x2x128x64xf32>
  // expected-remark @below {{attention does not take the wgmma path: head dimension 32 (64 and 128 are supported)}}
  %1 = bpt.attention %q, %q, %q
      : (tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>)
      -> tensor<1x2x128x32xbf16>
  // expected-remark @below {{attention does not take the wgmma path: sequence lengths 100 and 100 are not multiples of the 128-row query block and 128-row key block}}
  %2 = bpt.attention %r, %r, %r
      : (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>)
      -> tensor<1x2x100x64xbf16>
  return %0, %1, %2 : tensor<1x2x128x64xf32>, tensor<1x2x128x32xbf16>, tensor<1x2x100x64xbf16>
}

// -----

// With a 90000-byte budget no head-dim-128 tiling fits; the remark names the
// default's need (128-row key blocks, 2 stages). With 100000 bytes the cost
// model takes 64-row key blocks (99384 bytes) rather than giving up.
// SMALL: remark: attention does not take the wgmma path: needs 164920 bytes of shared memory, 90000 available
// FITS-LABEL: func.func @budget
// FITS: gpu.launch_func @bpt_sm90::@attention_sm90_d128_t64x2 {{.+}} dynamic_shared_memory_size %c99384_i32
// CHECK-LABEL: func.func @budget
// CHECK-NOT: bpt.attention
func.func @budget(%q: tensor<1x1x128x128xbf16>) -> tensor<1x1x128x128xbf16> {
  %0 = bpt.attention %q, %q, %q
      : (tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>)
      -> tensor<1x1x128x128xbf16>
  return %0 : tensor<1x1x128x128xbf16>
}
