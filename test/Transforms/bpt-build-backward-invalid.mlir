// RUN: bpt-opt %s --split-input-file --bpt-build-backward --verify-diagnostics
// RUN: not bpt-opt %s --bpt-build-backward=functions=missing 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: error: bpt-build-backward: no function named 'missing' with a body

// An op without a gradient rule that depends on an argument: an error that
// names it, and nothing is added.
func.func @exp(%x: tensor<8x32xf32>, %w: tensor<32x32xf32>) -> tensor<8x32xf32> {
  %y = bpt.linear %x, %w : (tensor<8x32xf32>, tensor<32x32xf32>) -> tensor<8x32xf32>
  // expected-error @+1 {{bpt-build-backward: no gradient for 'math.exp'}}
  %e = math.exp %y : tensor<8x32xf32>
  return %e : tensor<8x32xf32>
}

// -----

// The gradient of an attention's log-sum-exp is not defined by
// bpt.attention_grad.
func.func @lse_result(%q: tensor<1x2x16x8xf32>, %k: tensor<1x2x16x8xf32>,
                      %v: tensor<1x2x16x8xf32>) -> tensor<1x2x16xf32> {
  // expected-error @+1 {{bpt-build-backward: no gradient through the log-sum-exp result of 'bpt.attention'}}
  %o, %lse = bpt.attention %q, %k, %v
      : (tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>)
        -> (tensor<1x2x16x8xf32>, tensor<1x2x16xf32>)
  return %lse : tensor<1x2x16xf32>
}

// -----

// An argument that is not a float tensor has no gradient.
// expected-error @+1 {{bpt-build-backward: argument #1 of 'index_arg' has type 'index', which has no gradient (expected a ranked tensor of floats)}}
func.func @index_arg(%x: tensor<8x32xf32>, %i: index) -> tensor<8x32xf32> {
  return %x : tensor<8x32xf32>
}

// -----

// The names the pass would add are taken.
// expected-error @+1 {{bpt-build-backward: cannot add 'taken_grad': the module already has a symbol of that name}}
func.func @taken(%x: tensor<8x32xf32>) -> tensor<8x32xf32> {
  return %x : tensor<8x32xf32>
}
func.func private @taken_grad(tensor<8x32xf32>) -> tensor<8x32xf32>

// -----

// Control flow is not differentiated.
// expected-error @+1 {{bpt-build-backward: 'branchy' has more than one block; only straight-line functions can be differentiated}}
func.func @branchy(%x: tensor<8x32xf32>) -> tensor<8x32xf32> {
  cf.br ^next(%x : tensor<8x32xf32>)
^next(%y: tensor<8x32xf32>):
  return %y : tensor<8x32xf32>
}
