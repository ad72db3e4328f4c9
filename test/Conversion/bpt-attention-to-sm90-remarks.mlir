// RUN: bpt-opt %s --split-input-file --bpt-attention-to-sm90 --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-attention-to-sm90="shared-memory=100000" 2>&1 >/dev/null | FileCheck %s --check-prefix=SMALL

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

// With a 100000-byte budget the head-dim-128 kernel (164920 bytes) does not
// fit.
// SMALL: remark: attention does not take the wgmma path: needs 164920 bytes of shared memory, 100000 available
// CHECK-LABEL: func.func @budget
// CHECK-NOT: bpt.attention
func.func @budget(%q: tensor<1x1x128x128xbf16>) -> tensor<1x1x128x128xbf16> {
  %0 = bpt.attention %q, %q, %q
      : (tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>)
      -> tensor<1x1x128x128xbf16>
  return %0 : tensor<1x1x128x128xbf16>
}
