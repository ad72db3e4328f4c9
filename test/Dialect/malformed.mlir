// RUN: not bpt-opt %s -split-input-file 2>&1 | FileCheck %s
// RUN: not bpt-opt %s --bpt-decompose-blok 2>&1 | FileCheck %s --check-prefix=FLAG

// FLAG: Unknown command line argument '--bpt-decompose-blok'
// FLAG: Did you mean '--bpt-decompose-block'?

// Malformed input a new user might write: each gives a located error and a
// non-zero exit, never a crash.

// CHECK: malformed.mlir:[[# @LINE + 2]]:8: error: custom op 'bpt.atention' is unknown
func.func @misspelt_op(%x: tensor<4x8xf32>) {
  %0 = bpt.atention %x : tensor<4x8xf32>
  return
}

// -----

// CHECK: malformed.mlir:[[# @LINE + 2]]:41: error: unknown attribute `bogus` in dialect `bpt`
func.func @unknown_dialect_attribute(%x: tensor<4x8xf32>, %g: tensor<8xf32>) {
  %0 = bpt.rms_norm %x, %g {test = #bpt.bogus} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

// CHECK: malformed.mlir:[[# @LINE + 2]]:8: error: custom op 'bpt.rms_norm' number of operands and types do not match: got 2 operands and 1 types
func.func @missing_type(%x: tensor<4x8xf32>, %g: tensor<8xf32>) {
  %0 = bpt.rms_norm %x, %g : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

// CHECK: malformed.mlir:[[# @LINE + 2]]:28: error: {{.*}} attribute 'epsilon' failed to satisfy constraint: 64-bit float attribute
func.func @wrong_attribute_type(%x: tensor<4x8xf32>, %g: tensor<8xf32>) {
  %0 = bpt.rms_norm %x, %g {epsilon = "small"} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

// CHECK: malformed.mlir:[[# @LINE + 2]]:32: error: expected ':'
func.func @misspelt_keyword(%q: tensor<1x1x8x8xf32>) {
  %0 = bpt.attention %q, %q, %q casual : (tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x1x8x8xf32>
  return
}

// -----

// The error points at the end of the input, where the '}' is missing.
// CHECK: malformed.mlir:{{[0-9]+}}:{{[0-9]+}}: error: expected operation name in quotes
func.func @unterminated(%x: tensor<4x8xf32>) {
  return
