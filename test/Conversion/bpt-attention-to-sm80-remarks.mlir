// RUN: bpt-opt %s --split-input-file --bpt-attention-to-sm80 --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-attention-to-sm80="shared-memory=40000" 2>&1 >/dev/null | FileCheck %s --check-prefix=SMALL
// RUN: not bpt-opt %s --bpt-attention-to-sm80="q-block=32" 2>&1 | FileCheck %s --check-prefix=QBLOCK
// RUN: not bpt-opt %s --bpt-attention-to-sm80="kv-block=48" 2>&1 | FileCheck %s --check-prefix=KVBLOCK
// RUN: not bpt-opt %s --bpt-attention-to-sm80="stages=5" 2>&1 | FileCheck %s --check-prefix=STAGES

// QBLOCK: error: bpt-attention-to-sm80: q-block must be 0, 64 or 128, got 32
// KVBLOCK: error: bpt-attention-to-sm80: kv-block must be 0, 32, 64 or 128, got 48
// STAGES: error: bpt-attention-to-sm80: stages must be 0 or in [2, 4], got 5

// What the mma.sync kernel does not cover stays for the portable path, with
// a remark saying why. Ragged sequences it does cover (100 rows: one
// launch).
// CHECK-LABEL: func.func @not_eligible
// CHECK-COUNT-2: bpt.attention
// CHECK: gpu.launch_func
// CHECK-NOT: bpt.attention
func.func @not_eligible(%q32: tensor<1x2x128x64xf32>, %q: tensor<1x2x128x96xbf16>,
                        %r: tensor<1x2x100x64xbf16>)
    -> (tensor<1x2x128x64xf32>, tensor<1x2x128x96xbf16>, tensor<1x2x100x64xbf16>) {
  // expected-remark @below {{attention does not take the mma.sync path: element type f32 (the mma.sync path takes bf16 and f16)}}
  %0 = bpt.attention %q32, %q32, %q32
      : (tensor<1x2x128x64xf32>, tensor<1x2x128x64xf32>, tensor<1x2x128x64xf32>)
      -> tensor<1x2x128x64xf32>
  // expected-remark @below {{attention does not take the mma.sync path: head dimension 96 (64 and 128 are supported)}}
  %1 = bpt.attention %q, %q, %q
      : (tensor<1x2x128x96xbf16>, tensor<1x2x128x96xbf16>, tensor<1x2x128x96xbf16>)
      -> tensor<1x2x128x96xbf16>
  %2 = bpt.attention %r, %r, %r
      : (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>)
      -> tensor<1x2x100x64xbf16>
  return %0, %1, %2 : tensor<1x2x128x64xf32>, tensor<1x2x128x96xbf16>, tensor<1x2x100x64xbf16>
}

// -----

// With a 40000-byte budget no head-dim-128 tiling fits (the smallest, 32-row
// key blocks, needs 49280 bytes); the remark names the default tiling's
// need (16 KiB of Q, 2 x 2 x 16 KiB of K/V, 128 bytes of slack).
// SMALL: remark: attention does not take the mma.sync path: needs 82048 bytes of shared memory, 40000 available
// CHECK-LABEL: func.func @budget
// CHECK-NOT: bpt.attention
func.func @budget(%q: tensor<1x1x128x128xbf16>) -> tensor<1x1x128x128xbf16> {
  %0 = bpt.attention %q, %q, %q
      : (tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>)
      -> tensor<1x1x128x128xbf16>
  return %0 : tensor<1x1x128x128xbf16>
}
