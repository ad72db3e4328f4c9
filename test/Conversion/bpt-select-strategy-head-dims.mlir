// RUN: bpt-opt %s --bpt-select-strategy 2>&1 | FileCheck %s
// RUN: bpt-opt %s --bpt-select-strategy="sm90-kv-block=128" 2>&1 | FileCheck %s --check-prefix=PINNED
// RUN: bpt-opt %s --bpt-select-strategy="chip=sm_80" 2>&1 | FileCheck %s --check-prefix=SM80

// Head dims on the wgmma forward (issue 15), the bench rows' shapes: 192
// and 256 with the cost model's narrower key blocks (FlashAttention-3's
// 112 and 80: two stages of 128 keys would not fit shared memory beside Q),
// 80, 96 and 32 padded to whole 64-column blocks (128, 128, 64) with the
// blocks of D 128 / 64. Other multiples of 16 keep mma.sync, with a remark.
// CHECK: remark: attention does not take the wgmma path: head dimension 112 (32, 64, 80, 96, 128, 192 and 256 are supported)
// CHECK-NOT: remark
// CHECK-LABEL: func.func @head_dims
// CHECK: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 112, stages = 2, warps = 12>} : (tensor<2x8x4096x192xbf16>
// CHECK: bpt.attention {{.+}} causal {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 80, stages = 2, warps = 12>} : (tensor<2x8x4096x256xbf16>
// CHECK: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12>} : (tensor<2x16x4096x80xbf16>
// CHECK: bpt.attention {{.+}} causal {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12>} : (tensor<2x16x4096x96xbf16>
// CHECK: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12>} : (tensor<4x32x2048x32xf16>
// CHECK: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_90a", {{.+}}} : (tensor<1x2x512x112xbf16>
// Pinned to 128-key blocks, D 192 and 256 do not fit: the remark gives the
// bytes, and mma.sync takes them.
// PINNED: remark: attention does not take the wgmma path: needs 246840 bytes of shared memory, 232448 available
// PINNED: remark: attention does not take the wgmma path: needs 328760 bytes of shared memory, 232448 available
// PINNED-LABEL: func.func @head_dims
// PINNED: #bpt.strategy<mma_sync, chip = "sm_90a"{{.+}} : (tensor<2x8x4096x192xbf16>
// PINNED: #bpt.strategy<mma_sync, chip = "sm_90a"{{.+}} : (tensor<2x8x4096x256xbf16>
// PINNED: #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128{{.+}} : (tensor<2x16x4096x80xbf16>
// SM80-LABEL: func.func @head_dims
// SM80-COUNT-6: #bpt.strategy<mma_sync, chip = "sm_80"
func.func @head_dims(%q192: tensor<2x8x4096x192xbf16>, %q256: tensor<2x8x4096x256xbf16>,
                     %q80: tensor<2x16x4096x80xbf16>, %q96: tensor<2x16x4096x96xbf16>,
                     %q32: tensor<4x32x2048x32xf16>, %q112: tensor<1x2x512x112xbf16>)
    -> (tensor<2x8x4096x192xbf16>, tensor<2x8x4096x256xbf16>, tensor<2x16x4096x80xbf16>,
        tensor<2x16x4096x96xbf16>, tensor<4x32x2048x32xf16>, tensor<1x2x512x112xbf16>) {
  %0 = bpt.attention %q192, %q192, %q192
      : (tensor<2x8x4096x192xbf16>, tensor<2x8x4096x192xbf16>, tensor<2x8x4096x192xbf16>)
      -> tensor<2x8x4096x192xbf16>
  %1 = bpt.attention %q256, %q256, %q256 causal
      : (tensor<2x8x4096x256xbf16>, tensor<2x8x4096x256xbf16>, tensor<2x8x4096x256xbf16>)
      -> tensor<2x8x4096x256xbf16>
  %2 = bpt.attention %q80, %q80, %q80
      : (tensor<2x16x4096x80xbf16>, tensor<2x16x4096x80xbf16>, tensor<2x16x4096x80xbf16>)
      -> tensor<2x16x4096x80xbf16>
  %3 = bpt.attention %q96, %q96, %q96 causal
      : (tensor<2x16x4096x96xbf16>, tensor<2x16x4096x96xbf16>, tensor<2x16x4096x96xbf16>)
      -> tensor<2x16x4096x96xbf16>
  %4 = bpt.attention %q32, %q32, %q32
      : (tensor<4x32x2048x32xf16>, tensor<4x32x2048x32xf16>, tensor<4x32x2048x32xf16>)
      -> tensor<4x32x2048x32xf16>
  %5 = bpt.attention %q112, %q112, %q112
      : (tensor<1x2x512x112xbf16>, tensor<1x2x512x112xbf16>, tensor<1x2x512x112xbf16>)
      -> tensor<1x2x512x112xbf16>
  return %0, %1, %2, %3, %4, %5 : tensor<2x8x4096x192xbf16>, tensor<2x8x4096x256xbf16>, tensor<2x16x4096x80xbf16>,
        tensor<2x16x4096x96xbf16>, tensor<4x32x2048x32xf16>, tensor<1x2x512x112xbf16>
}
