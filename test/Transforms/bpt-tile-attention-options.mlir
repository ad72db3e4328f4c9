// Invalid block-size options are rejected with a located error and a
// non-zero exit, for both passes that tile and for the pipeline.
// RUN: not bpt-opt %s --bpt-tile-attention="q-block=0" 2>&1 | FileCheck %s --check-prefix=ZERO
// RUN: not bpt-opt %s --bpt-tile-attention="kv-block=-4" 2>&1 | FileCheck %s --check-prefix=NEG
// RUN: not bpt-opt %s --bpt-fuse-ffn-residual="q-block=-1" 2>&1 | FileCheck %s --check-prefix=FUSE
// RUN: not bpt-opt %s --bpt-blockwise="kv-block=0" 2>&1 | FileCheck %s --check-prefix=PIPE
// RUN: not bpt-opt %s --bpt-tile-attention="q-block=many" 2>&1 | FileCheck %s --check-prefix=PARSE

// ZERO: bpt-tile-attention-options.mlir:[[# @LINE + 5]]:1: error: bpt-tile-attention: option q-block must be positive, got 0
// NEG: bpt-tile-attention-options.mlir:[[# @LINE + 4]]:1: error: bpt-tile-attention: option kv-block must be positive, got -4
// FUSE: bpt-tile-attention-options.mlir:[[# @LINE + 3]]:1: error: bpt-fuse-ffn-residual: option q-block must be positive, got -1
// PIPE: error: bpt-select-strategy: kv-block must be positive, got 0
// PARSE: for the --q-block option: 'many' value invalid for long argument!
func.func @f(%q: tensor<1x1x16x8xf32>) -> tensor<1x1x16x8xf32> {
  %o = bpt.attention %q, %q, %q
      : (tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>)
        -> tensor<1x1x16x8xf32>
  return %o : tensor<1x1x16x8xf32>
}
