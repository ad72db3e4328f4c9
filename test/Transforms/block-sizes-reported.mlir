// Issue 15: a --q-block / --kv-block the chosen path cannot honour is
// reported, never silently dropped.
//
// Larger than the sequence it tiles: clamped to it (one block covers the
// sequence), with a remark naming the value used. Only sizes the user gave
// are reported: the default 64 on a 16-row sequence says nothing.
// RUN: bpt-opt %s --split-input-file --bpt-tile-attention="q-block=100000" 2>&1 >/dev/null | FileCheck %s --check-prefix=TILE
// RUN: bpt-opt %s --split-input-file --bpt-tile-attention="kv-block=300" 2>&1 >/dev/null | FileCheck %s --check-prefix=TILEKV
// RUN: bpt-opt %s --split-input-file --bpt-blockwise="q-block=100000 kv-block=100000 tensor-cores=false" 2>&1 >/dev/null | FileCheck %s --check-prefix=PIPE
// RUN: bpt-opt %s --split-input-file --bpt-tile-attention 2>&1 >/dev/null | count 0
// RUN: bpt-opt %s --split-input-file --bpt-blockwise="tensor-cores=false" 2>&1 >/dev/null | count 0
// RUN: bpt-opt %s --split-input-file --bpt-tile-attention="q-block=16 kv-block=16" 2>&1 >/dev/null | count 0
//
// Absurd values are located errors naming the option.
// RUN: not bpt-opt %s --split-input-file --bpt-tile-attention="q-block=3000000000" 2>&1 | FileCheck %s --check-prefix=HUGE
// RUN: not bpt-opt %s --split-input-file --bpt-fuse-ffn-residual="kv-block=2147483648" 2>&1 | FileCheck %s --check-prefix=HUGEFUSE
// RUN: not bpt-opt %s --split-input-file --bpt-select-strategy="q-block=2147483648" 2>&1 | FileCheck %s --check-prefix=HUGESELECT
//
// On a tensor-core path whose kernel picks its own tiling, a given
// q-block / kv-block is ignored, and bpt-select-strategy says so with the
// tiling used instead.
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="q-block=32" 2>&1 >/dev/null | FileCheck %s --check-prefix=IGNORED
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_80 kv-block=32" 2>&1 >/dev/null | FileCheck %s --check-prefix=IGNORED80
// RUN: bpt-opt %s --split-input-file --bpt-blockwise="q-block=32" 2>&1 >/dev/null | FileCheck %s --check-prefix=IGNORED
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy 2>&1 >/dev/null | FileCheck %s --check-prefix=QUIET
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_75 q-block=32" 2>&1 >/dev/null | count 0

// TILE-COUNT-2: block-sizes-reported.mlir:{{[0-9]+}}:8: remark: bpt-tile-attention: q-block=100000 is larger than the 256-row query sequence: clamped to 256 (one block covers it)
// TILE: block-sizes-reported.mlir:{{[0-9]+}}:8: remark: bpt-tile-attention: q-block=100000 is larger than the 16-row query sequence: clamped to 16 (one block covers it)
// Either size given, both are reported (the default kv-block 64 too).
// TILE: remark: bpt-tile-attention: kv-block=64 is larger than the 16-row key/value sequence: clamped to 16
// TILE-NOT: remark

// TILEKV: remark: bpt-tile-attention: kv-block=300 is larger than the 256-row key/value sequence: clamped to 256
// TILEKV: remark: bpt-tile-attention: kv-block=300 is larger than the 16-row key/value sequence: clamped to 16

// PIPE: remark: bpt-tile-attention: q-block=100000 is larger than the 256-row query sequence: clamped to 256
// PIPE: remark: bpt-tile-attention: kv-block=100000 is larger than the 256-row key/value sequence: clamped to 256

// HUGE: block-sizes-reported.mlir:{{[0-9]+}}:1: error: bpt-tile-attention: option q-block must be at most 2147483647, got 3000000000
// HUGEFUSE: error: bpt-fuse-ffn-residual: option kv-block must be at most 2147483647, got 2147483648
// HUGESELECT: error: bpt-select-strategy: q-block must be at most 2147483647, got 2147483648

// IGNORED: block-sizes-reported.mlir:{{[0-9]+}}:8: remark: q-block=32 / kv-block=64 ignored: attention takes the wgmma kernel, which picks its own tiling (q_block 128, kv_block {{64|128}})
// IGNORED-NOT: remark: q-block=32

// QUIET-NOT: ignored

// IGNORED80: remark: q-block=64 / kv-block=32 ignored: attention takes the mma_sync kernel, which picks its own tiling (q_block {{64|128}}, kv_block {{32|64|128}})

func.func @f32_attention(%q: tensor<1x2x256x64xf32>) -> tensor<1x2x256x64xf32> {
  %o = bpt.attention %q, %q, %q
      : (tensor<1x2x256x64xf32>, tensor<1x2x256x64xf32>, tensor<1x2x256x64xf32>)
        -> tensor<1x2x256x64xf32>
  return %o : tensor<1x2x256x64xf32>
}

// -----

func.func @bf16_attention(%q: tensor<1x2x256x64xbf16>) -> tensor<1x2x256x64xbf16> {
  %o = bpt.attention %q, %q, %q
      : (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>)
        -> tensor<1x2x256x64xbf16>
  return %o : tensor<1x2x256x64xbf16>
}

// -----

func.func @short(%q: tensor<1x1x16x8xf32>) -> tensor<1x1x16x8xf32> {
  %o = bpt.attention %q, %q, %q
      : (tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>)
        -> tensor<1x1x16x8xf32>
  return %o : tensor<1x1x16x8xf32>
}
