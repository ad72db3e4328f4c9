// RUN: bpt-opt %s -split-input-file -verify-diagnostics
// Every verifier (and custom parser) error of the bpt dialect, one per split.

// Dynamic shapes are rejected: bpt compiles for given shapes.
func.func @f(%q: tensor<2x8x?x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{'bpt.attention' op query must be a statically shaped tensor of f32, f16 or bf16, got 'tensor<2x8x?x64xf32>'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x?x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x?x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xi32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{query must be a statically shaped tensor of f32, f16 or bf16, got 'tensor<2x8x128x64xi32>'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xi32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xi32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf64>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{query must be a statically shaped tensor of f32, f16 or bf16, got 'tensor<2x8x128x64xf64>'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf64>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf64>
  return
}

// -----

func.func @f(%q: tensor<8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{query must have rank 4 ([batch, heads, seq, head_dim]), got 'tensor<8x128x64xf32>'}}
  %0 = bpt.attention %q, %k, %v : (tensor<8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x0x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{query must have no zero-sized dimension, got 'tensor<2x8x0x64xf32>'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x0x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x0x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{key must have rank 4 ([batch, kv_heads, kv_seq, head_dim]), got 'tensor<2x96x64xf32>'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf16>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{key element type 'f16' does not match query's 'f32'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf16>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<3x2x96x64xf32>, %v: tensor<3x2x96x64xf32>) {
  // expected-error @+1 {{key dim 0 (batch) must be 2 to match query, got 3}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<3x2x96x64xf32>, tensor<3x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x32xf32>, %v: tensor<2x2x96x32xf32>) {
  // expected-error @+1 {{key dim 3 (head_dim) must be 64 to match query, got 32}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x2x96x32xf32>, tensor<2x2x96x32xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x64x64xf32>) {
  // expected-error @+1 {{value dim 2 (kv_seq) must be 96 to match key, got 64}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x64x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x4x96x64xf32>) {
  // expected-error @+1 {{value dim 1 (kv_heads) must be 2 to match key, got 4}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x4x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xbf16>) {
  // expected-error @+1 {{value element type 'bf16' does not match query's 'f32'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xbf16>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64x1xf32>) {
  // expected-error @+1 {{value must have rank 4 ([batch, kv_heads, kv_seq, head_dim]), got 'tensor<2x2x96x64x1xf32>'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64x1xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x3x96x64xf32>, %v: tensor<2x3x96x64xf32>) {
  // expected-error @+1 {{query heads (8) must be a multiple of key/value heads (3)}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x3x96x64xf32>, tensor<2x3x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{scale must be finite and in [2^-126, 2^16] (applied in f32 in the online softmax), got 0}}
  %0 = bpt.attention %q, %k, %v scale(0.0) : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{scale must be finite and in [2^-126, 2^16] (applied in f32 in the online softmax), got -1.250000e-01}}
  %0 = bpt.attention %q, %k, %v scale(-0.125) : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{scale must be finite and in [2^-126, 2^16] (applied in f32 in the online softmax), got INF}}
  %0 = bpt.attention %q, %k, %v {scale = 0x7FF0000000000000 : f64} : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{result must be 'tensor<2x8x128x64xf32>' (the query's shape), got 'tensor<2x8x96x64xf32>'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x96x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{result must be 'tensor<2x8x128x64xf32>' (the query's shape), got 'tensor<2x8x128x64xf16>'}}
  %0 = bpt.attention %q, %k, %v : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf16>
  return
}

// -----

// A misspelt attribute must not silently change the meaning.
func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>, %v: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{'bpt.attention' op has unknown attribute 'casual'; known attributes: causal, scale}}
  %0 = bpt.attention %q, %k, %v {casual} : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

// Operands that are not ranked tensors are rejected by the op's type constraints.
func.func @f(%q: memref<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of any type values, but got 'memref<2x8x128x64xf32>'}}
  %0 = "bpt.attention"(%q, %k, %k) : (memref<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%q: tensor<*xf32>, %k: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of any type values, but got 'tensor<*xf32>'}}
  %0 = "bpt.attention"(%q, %k, %k) : (tensor<*xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

// A wrongly typed inherent attribute.
func.func @f(%q: tensor<2x8x128x64xf32>, %k: tensor<2x2x96x64xf32>) {
  // expected-error @+1 {{attribute 'scale' failed to satisfy constraint: 64-bit float attribute}}
  %0 = bpt.attention %q, %k, %k {scale = 1 : i32} : (tensor<2x8x128x64xf32>, tensor<2x2x96x64xf32>, tensor<2x2x96x64xf32>) -> tensor<2x8x128x64xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<64x32xf32>) {
  // expected-error @+1 {{'bpt.linear' op input must have rank >= 1 ([..., in_features]), got 'tensor<f32>'}}
  %0 = bpt.linear %x, %w : (tensor<f32>, tensor<64x32xf32>) -> tensor<32xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<64x32x1xf32>) {
  // expected-error @+1 {{weight must have rank 2 ([in_features, out_features]), got 'tensor<64x32x1xf32>'}}
  %0 = bpt.linear %x, %w : (tensor<2x16x64xf32>, tensor<64x32x1xf32>) -> tensor<2x16x32xf32>
  return
}

// -----

// The weight is [in, out]: the transpose of nn.Linear.weight.
func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<32x64xf32>) {
  // expected-error @+1 {{weight dim 0 (in_features) must be 64 to match input's last dimension, got 32}}
  %0 = bpt.linear %x, %w : (tensor<2x16x64xf32>, tensor<32x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<64x32xf16>) {
  // expected-error @+1 {{weight element type 'f16' does not match input's 'f32'}}
  %0 = bpt.linear %x, %w : (tensor<2x16x64xf32>, tensor<64x32xf16>) -> tensor<2x16x32xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<64x32xf32>, %b: tensor<16xf32>) {
  // expected-error @+1 {{bias dim 0 (out_features) must be 32 to match weight, got 16}}
  %0 = bpt.linear %x, %w, %b : (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<16xf32>) -> tensor<2x16x32xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<64x32xf32>, %b: tensor<1x32xf32>) {
  // expected-error @+1 {{bias must have rank 1 ([out_features]), got 'tensor<1x32xf32>'}}
  %0 = bpt.linear %x, %w, %b : (tensor<2x16x64xf32>, tensor<64x32xf32>, tensor<1x32xf32>) -> tensor<2x16x32xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<64x32xf32>) {
  // expected-error @+1 {{result must be 'tensor<2x16x32xf32>' (the input's shape with out_features last), got 'tensor<2x16x64xf32>'}}
  %0 = bpt.linear %x, %w : (tensor<2x16x64xf32>, tensor<64x32xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{'bpt.ffn' op activation 'swiglu' is gated and needs a gate matrix (w_gate)}}
  %0 = bpt.ffn swiglu %x, %w1, %w2 : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{activation 'geglu' is gated and needs a gate matrix (w_gate)}}
  %0 = bpt.ffn geglu %x, %w1, %w2 : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>, %g: tensor<64x256xf32>) {
  // expected-error @+1 {{activation 'relu' takes no gate matrix; w_gate is only for swiglu and geglu}}
  %0 = bpt.ffn relu %x, %w1, %w2, gate %g : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>, tensor<64x256xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<32x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{w_in dim 0 (hidden) must be 64 to match input's last dimension, got 32}}
  %0 = bpt.ffn gelu %x, %w1, %w2 : (tensor<2x16x64xf32>, tensor<32x256xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{w_in must have rank 2 ([hidden, ffn]), got 'tensor<64xf32>'}}
  %0 = bpt.ffn gelu %x, %w1, %w2 : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<128x64xf32>) {
  // expected-error @+1 {{w_out dim 0 (ffn) must be 256 to match w_in, got 128}}
  %0 = bpt.ffn gelu %x, %w1, %w2 : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<128x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x32xf32>) {
  // expected-error @+1 {{w_out dim 1 (hidden) must be 64 to match input's last dimension, got 32}}
  %0 = bpt.ffn gelu %x, %w1, %w2 : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x32xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>, %g: tensor<64x128xf32>) {
  // expected-error @+1 {{w_gate dim 1 (ffn) must be 256 to match w_in, got 128}}
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %g : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>, tensor<64x128xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>, %g: tensor<16x256xf32>) {
  // expected-error @+1 {{w_gate dim 0 (hidden) must be 64 to match input's last dimension, got 16}}
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %g : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>, tensor<16x256xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xbf16>) {
  // expected-error @+1 {{w_out element type 'bf16' does not match input's 'f32'}}
  %0 = bpt.ffn silu %x, %w1, %w2 : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xbf16>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{result must be 'tensor<2x16x64xf32>' (the input's shape), got 'tensor<2x16x256xf32>'}}
  %0 = bpt.ffn gelu_tanh %x, %w1, %w2 : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x16x256xf32>
  return
}

// -----

// Unknown activations are parse errors that list the valid ones.
func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{expected an activation, one of: gelu, gelu_tanh, relu, silu, swiglu, geglu}}
  %0 = bpt.ffn swish %x, %w1, %w2 : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<32xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'bpt.layer_norm' op weight dim 0 (hidden) must be 64 to match input's last dimension, got 32}}
  %0 = bpt.layer_norm %x, %g, %b : (tensor<2x16x64xf32>, tensor<32xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{bias dim 0 (hidden) must be 64 to match input's last dimension, got 128}}
  %0 = bpt.layer_norm %x, %g, %b : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<128xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf16>) {
  // expected-error @+1 {{bias element type 'f16' does not match input's 'f32'}}
  %0 = bpt.layer_norm %x, %g, %b : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf16>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be finite and in [0, 1], got -1}}
  %0 = bpt.layer_norm %x, %g, %b {epsilon = -1.0} : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be finite and in [0, 1], got nan}}
  %0 = bpt.layer_norm %x, %g, %b {epsilon = 0x7FF8000000000000 : f64} : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{result must be 'tensor<2x16x64xf32>' (the input's shape), got 'tensor<2x16x64xf16>'}}
  %0 = bpt.layer_norm %x, %g, %b : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf16>
  return
}

// -----

func.func @f(%x: tensor<?x16x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{input must be a statically shaped tensor of f32, f16 or bf16, got 'tensor<?x16x64xf32>'}}
  %0 = bpt.layer_norm %x, %g, %b : (tensor<?x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<1x64xf32>) {
  // expected-error @+1 {{'bpt.rms_norm' op weight must have rank 1 ([hidden]), got 'tensor<1x64xf32>'}}
  %0 = bpt.rms_norm %x, %g : (tensor<2x16x64xf32>, tensor<1x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be finite and in [0, 1], got INF}}
  %0 = bpt.rms_norm %x, %g {epsilon = 0x7FF0000000000000 : f64} : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{result must be 'tensor<2x16x64xf32>' (the input's shape), got 'tensor<16x64xf32>'}}
  %0 = bpt.rms_norm %x, %g : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{input must have rank >= 1 ([..., hidden]), got 'tensor<f32>'}}
  %0 = bpt.rms_norm %x, %g : (tensor<f32>, tensor<64xf32>) -> tensor<f32>
  return
}

// -----

func.func @f(%x: tensor<32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{'bpt.transformer_block' op input must have rank 3 ([batch, seq, hidden]), got 'tensor<32x64xf32>'}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{heads (0) and kv_heads (4) must be positive}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(0) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{heads (8) and kv_heads (-2) must be positive}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(-2) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{heads (8) must be a multiple of kv_heads (3)}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(3) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %b2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{norm 'layer_norm' needs norm1_bias}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2, %b2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(layer_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %b1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{norm 'layer_norm' needs norm2_bias}}
  %0 = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(layer_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %b1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{norm 'rms_norm' takes no bias, but norm1_bias is given}}
  %0 = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<32xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{norm2_weight dim 0 (hidden) must be 64 to match input, got 32}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<32xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %b1: tensor<16xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %b2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{norm1_bias dim 0 (hidden) must be 64 to match input, got 16}}
  %0 = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo) norm2(%g2, %b2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(layer_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<16xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{epsilon must be finite and in [0, 1], got -1.000000e-03}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm) {epsilon = -1.0e-3}
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<32x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{w_q dim 0 (hidden) must be 64 to match input, got 32}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<32x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x60xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{w_q dim 1 (60) must be a multiple of heads (8)}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x60xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x64xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{w_k dim 1 (kv_heads * head_dim) must be 32 to match kv_heads and w_q's head_dim, got 64}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<128x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{w_v dim 0 (hidden) must be 64 to match input, got 128}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<128x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<32x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{w_o dim 0 (heads * head_dim) must be 64 to match w_q, got 32}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<32x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x128xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{w_o dim 1 (hidden) must be 64 to match input, got 128}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x128xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<64x64xf32>) {
  // expected-error @+1 {{w_out dim 0 (ffn) must be 256 to match w_in, got 64}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<64x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{activation 'swiglu' is gated and needs a gate matrix (w_gate)}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(swiglu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>, %w3: tensor<64x256xf32>) {
  // expected-error @+1 {{activation 'gelu' takes no gate matrix; w_gate is only for swiglu and geglu}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2, gate %w3) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>, tensor<64x256xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xbf16>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{w_in element type 'bf16' does not match input's 'f32'}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xbf16>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+1 {{result must be 'tensor<2x32x64xf32>' (the input's shape), got 'tensor<2x32x128xf32>'}}
  %0 = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo) norm2(%g2)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(rms_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x128xf32>
  return
}

// -----

func.func @f(%x: tensor<2x32x64xf32>, %g: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wo: tensor<64x64xf32>, %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) {
  // expected-error @+2 {{expected a norm kind, one of: layer_norm, rms_norm}}
  %0 = bpt.transformer_block %x norm1(%g) attention(%wq, %wk, %wk, %wo) norm2(%g)
      ffn(%w1, %w2) heads(8) kv_heads(4) activation(gelu) norm(batch_norm)
      : (tensor<2x32x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x32x64xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x16x8xf32>, %k: tensor<1x2x16x8xf32>) {
  // expected-error @+1 {{lse result must be 'tensor<1x4x16xf32>' ([batch, heads, seq] in f32), got 'tensor<1x4x16xbf16>'}}
  %o, %lse = bpt.attention %q, %k, %k : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) -> (tensor<1x4x16x8xf32>, tensor<1x4x16xbf16>)
  return
}

// -----

func.func @f(%q: tensor<1x4x16x8xf32>, %k: tensor<1x2x16x8xf32>) {
  // expected-error @+1 {{lse result must be 'tensor<1x4x16xf32>' ([batch, heads, seq] in f32), got 'tensor<1x4x8xf32>'}}
  %o, %lse = bpt.attention %q, %k, %k : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) -> (tensor<1x4x16x8xf32>, tensor<1x4x8xf32>)
  return
}

// -----

func.func @f(%q: tensor<1x4x16x8xf32>, %k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>, %o: tensor<1x4x16x8xbf16>, %do: tensor<1x4x16x8xf32>, %lse: tensor<1x4x16xf32>) {
  // expected-error @+1 {{output must have the query's type 'tensor<1x4x16x8xf32>', got 'tensor<1x4x16x8xbf16>'}}
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse
      : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x4x16x8xbf16>, tensor<1x4x16x8xf32>, tensor<1x4x16xf32>) -> (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>)
  return
}

// -----

func.func @f(%q: tensor<1x4x16x8xf32>, %k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>, %o: tensor<1x4x16x8xf32>, %do: tensor<1x4x16x8xf32>, %lse: tensor<1x2x16xf32>) {
  // expected-error @+1 {{lse must be 'tensor<1x4x16xf32>' ([batch, heads, seq] in f32), got 'tensor<1x2x16xf32>'}}
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse
      : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x4x16x8xf32>, tensor<1x4x16x8xf32>, tensor<1x2x16xf32>) -> (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>)
  return
}

// -----

func.func @f(%q: tensor<1x4x16x8xf32>, %k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>, %o: tensor<1x4x16x8xf32>, %do: tensor<1x4x16x8xf32>, %lse: tensor<1x4x16xf32>) {
  // expected-error @+1 {{query_grad must have the type 'tensor<1x4x16x8xf32>' of its operand, got 'tensor<1x4x16x4xf32>'}}
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse
      : (tensor<1x4x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x4x16x8xf32>, tensor<1x4x16x8xf32>, tensor<1x4x16xf32>) -> (tensor<1x4x16x4xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>)
  return
}

// -----

func.func @f(%q: tensor<1x4x16x8xf32>, %k: tensor<1x3x16x8xf32>, %o: tensor<1x4x16x8xf32>, %lse: tensor<1x4x16xf32>) {
  // expected-error @+1 {{query heads (4) must be a multiple of key/value heads (3)}}
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %k, %o, %o, %lse
      : (tensor<1x4x16x8xf32>, tensor<1x3x16x8xf32>, tensor<1x3x16x8xf32>, tensor<1x4x16x8xf32>, tensor<1x4x16x8xf32>, tensor<1x4x16xf32>)
      -> (tensor<1x4x16x8xf32>, tensor<1x3x16x8xf32>, tensor<1x3x16x8xf32>)
  return
}

// -----

// A scale that overflows f32 once multiplied by log2(e) (gave relative
// error 1.0 instead of an error).
func.func @f(%q: tensor<1x1x64x64xf32>) {
  // expected-error @+1 {{scale must be finite and in [2^-126, 2^16] (applied in f32 in the online softmax), got 3.000000e+38}}
  %0 = bpt.attention %q, %q, %q scale(3.0e+38) : (tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>) -> tensor<1x1x64x64xf32>
  return
}

// -----

func.func @f(%q: tensor<1x1x64x64xf32>) {
  // expected-error @+1 {{scale must be finite and in [2^-126, 2^16] (applied in f32 in the online softmax), got 1.000000e-40}}
  %0 = bpt.attention %q, %q, %q scale(1.0e-40) : (tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>) -> tensor<1x1x64x64xf32>
  return
}

// -----

func.func @f(%q: tensor<1x1x64x64xf32>, %o: tensor<1x1x64x64xf32>, %lse: tensor<1x1x64xf32>) {
  // expected-error @+1 {{scale must be finite and in [2^-126, 2^16] (applied in f32 in the online softmax), got 1.000000e+05}}
  %0:3 = bpt.attention_grad %q, %q, %q, %o, %o, %lse scale(1.0e+05) : (tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64xf32>) -> (tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>)
  return
}

// -----

// Element counts and byte sizes that overflow int64 verified and went
// through every pipeline.
func.func @f(%q: tensor<4611686018427387904x4x128x64xf32>) {
  // expected-error @+1 {{query must hold at most 2^62 bytes (element offsets and byte sizes are 64-bit), got 'tensor<4611686018427387904x4x128x64xf32>'}}
  %0 = bpt.attention %q, %q, %q : (tensor<4611686018427387904x4x128x64xf32>, tensor<4611686018427387904x4x128x64xf32>, tensor<4611686018427387904x4x128x64xf32>) -> tensor<4611686018427387904x4x128x64xf32>
  return
}

// -----

// 2^60 elements of 4 bytes: 2^62 bytes is the limit, one more row is over.
func.func @f(%x: tensor<1152921504606846977x1xf32>, %w: tensor<1x1xf32>) {
  // expected-error @+1 {{input must hold at most 2^62 bytes}}
  %0 = bpt.linear %x, %w : (tensor<1152921504606846977x1xf32>, tensor<1x1xf32>) -> tensor<1152921504606846977x1xf32>
  return
}

// -----

func.func @f(%x: tensor<1x1x256xbf16>, %w: tensor<256x1152921504606846976xbf16>, %w2: tensor<1152921504606846976x256xbf16>) {
  // expected-error @+1 {{w_in must hold at most 2^62 bytes}}
  %0 = bpt.ffn gelu %x, %w, %w2 : (tensor<1x1x256xbf16>, tensor<256x1152921504606846976xbf16>, tensor<1152921504606846976x256xbf16>) -> tensor<1x1x256xbf16>
  return
}

// -----

// The kernels read a nest's scale as it is.
func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{attribute 'bpt.nest' has scale 1.000000e+30; it must be finite and in [2^-126, 2^16] (applied in f32 in the online softmax)}}
  %r = scf.forall (%i) in (1) shared_outs(%o = %a) -> tensor<4xf32> {
  } {bpt.nest = #bpt.attention_nest<causal = false, scale = 1.0e+30>}
  return %r : tensor<4xf32>
}

// -----

// The same for the nests of an attention split over its keys.
func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{attribute 'bpt.nest' has scale 0.000000e+00; it must be finite and in [2^-126, 2^16] (applied in f32 in the online softmax)}}
  %r = scf.forall (%i) in (1) shared_outs(%o = %a) -> tensor<4xf32> {
  } {bpt.nest = #bpt.split_kv_nest<combine, causal = true, scale = 0.0>}
  return %r : tensor<4xf32>
}

// -----

// An epsilon above f32's range became inf and every output 0.
func.func @f(%x: tensor<1x100x64xbf16>, %g: tensor<64xbf16>) {
  // expected-error @+1 {{epsilon must be finite and in [0, 1], got 1.000000e+300}}
  %0 = bpt.rms_norm %x, %g {epsilon = 1.0e+300} : (tensor<1x100x64xbf16>, tensor<64xbf16>) -> tensor<1x100x64xbf16>
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be finite and in [0, 1], got 2}}
  %0 = bpt.layer_norm %x, %g, %b {epsilon = 2.0} : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// bpt.buffer_name (what a kernel set's host allocation holds, listed by the
// manifest) is a plain identifier.
func.func @f() {
  // expected-error @+1 {{'memref.alloc' op attribute 'bpt.buffer_name' must be a non-empty string of letters, digits and '_'}}
  %a = memref.alloc() {bpt.buffer_name = "dq accumulator"} : memref<16xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{'memref.alloc' op attribute 'bpt.buffer_name' must be a non-empty string of letters, digits and '_'}}
  %a = memref.alloc() {bpt.buffer_name = 3 : i64} : memref<16xf32>
  return
}

// -----

// bpt.recomputed (bpt-rematerialize's mark on a repeated op) is a unit
// attribute.
func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{'arith.addf' op attribute 'bpt.recomputed' must be a unit attribute}}
  %y = arith.addf %x, %x {bpt.recomputed = true} : tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// bpt.writes_over (the tensor-core attention backwards' launches: dK and dV
// may take the bytes of K and V) is a list of (written, read) kernel
// operand pairs, on a gpu.launch_func only.
func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{'arith.addf' op attribute 'bpt.writes_over' must be a non-empty array<i64> of (written, read) kernel operand pairs on a gpu.launch_func}}
  %y = arith.addf %x, %x {bpt.writes_over = array<i64: 1, 0>} : tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @copy(%a: memref<4xf32>, %b: memref<4xf32>) kernel {
      gpu.return
    }
  }
  func.func @odd(%a: memref<4xf32>, %b: memref<4xf32>) {
    %c1 = arith.constant 1 : index
    // expected-error @+1 {{'gpu.launch_func' op attribute 'bpt.writes_over' must be a non-empty array<i64> of (written, read) kernel operand pairs on a gpu.launch_func}}
    gpu.launch_func @kernels::@copy blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<4xf32>, %b : memref<4xf32>) {bpt.writes_over = array<i64: 1, 0, 1>}
    return
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @copy(%a: memref<4xf32>, %b: memref<4xf32>) kernel {
      gpu.return
    }
  }
  func.func @self(%a: memref<4xf32>, %b: memref<4xf32>) {
    %c1 = arith.constant 1 : index
    // expected-error @+1 {{'gpu.launch_func' op attribute 'bpt.writes_over' pair (1, 1) must name two different kernel operands, each written operand once}}
    gpu.launch_func @kernels::@copy blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<4xf32>, %b : memref<4xf32>) {bpt.writes_over = array<i64: 1, 1>}
    return
  }
}

// -----

// The per-op gradients (linear_grad, ffn_grad, layer_norm_grad,
// rms_norm_grad): the forward's checks, then the upstream gradient and each
// gradient's type.
func.func @f(%x: tensor<4x8xf32>, %w: tensor<6x3xf32>, %dy: tensor<4x3xf32>) {
  // expected-error @+1 {{weight dim 0 (in_features) must be 8 to match input's last dimension, got 6}}
  %dx, %dw = bpt.linear_grad %x, %w, %dy : (tensor<4x8xf32>, tensor<6x3xf32>, tensor<4x3xf32>) -> (tensor<4x8xf32>, tensor<6x3xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w: tensor<8x3xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{result_grad must have the forward result's type 'tensor<4x3xf32>' (the input's shape with out_features last), got 'tensor<4x8xf32>'}}
  %dx, %dw = bpt.linear_grad %x, %w, %dy : (tensor<4x8xf32>, tensor<8x3xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x3xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xbf16>, %w: tensor<8x3xbf16>, %dy: tensor<4x3xf32>) {
  // expected-error @+1 {{result_grad must have the forward result's type 'tensor<4x3xbf16>' (the input's shape with out_features last), got 'tensor<4x3xf32>'}}
  %dx, %dw = bpt.linear_grad %x, %w, %dy : (tensor<4x8xbf16>, tensor<8x3xbf16>, tensor<4x3xf32>) -> (tensor<4x8xbf16>, tensor<8x3xbf16>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w: tensor<8x3xf32>, %dy: tensor<4x3xf32>) {
  // expected-error @+1 {{weight_grad must have the type 'tensor<8x3xf32>' of its operand, got 'tensor<3x8xf32>'}}
  %dx, %dw = bpt.linear_grad %x, %w, %dy : (tensor<4x8xf32>, tensor<8x3xf32>, tensor<4x3xf32>) -> (tensor<4x8xf32>, tensor<3x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w: tensor<8x3xf32>, %dy: tensor<4x3xf32>) {
  // expected-error @+1 {{bias_grad must have the type 'tensor<3xf32>' of its operand, got 'tensor<8xf32>'}}
  %dx, %dw, %db = bpt.linear_grad %x, %w, %dy : (tensor<4x8xf32>, tensor<8x3xf32>, tensor<4x3xf32>) -> (tensor<4x8xf32>, tensor<8x3xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x?xf32>, %w: tensor<8x3xf32>, %dy: tensor<4x3xf32>) {
  // expected-error @+1 {{input must be a statically shaped tensor of f32, f16 or bf16, got 'tensor<4x?xf32>'}}
  %dx, %dw = bpt.linear_grad %x, %w, %dy : (tensor<4x?xf32>, tensor<8x3xf32>, tensor<4x3xf32>) -> (tensor<4x?xf32>, tensor<8x3xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w1: tensor<8x16xf32>, %w2: tensor<16x8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{activation 'swiglu' is gated and needs a gate matrix (w_gate)}}
  %dx, %dw1, %dw2 = bpt.ffn_grad swiglu %x, %w1, %w2, %dy : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w1: tensor<8x16xf32>, %w2: tensor<16x8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{activation 'geglu' is gated: the op must have a fourth result, w_gate_grad}}
  %dx, %dw1, %dw2 = bpt.ffn_grad geglu %x, %w1, %w2, gate %w1, %dy : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>, tensor<8x16xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w1: tensor<8x16xf32>, %w2: tensor<16x8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{activation 'relu' takes no gate matrix: the op has no w_gate_grad result}}
  %dx, %dw1, %dw2, %dw3 = bpt.ffn_grad relu %x, %w1, %w2, %dy : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>, tensor<8x16xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w1: tensor<8x16xf32>, %w2: tensor<16x4xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{w_out dim 1 (hidden) must be 8 to match input's last dimension, got 4}}
  %dx, %dw1, %dw2 = bpt.ffn_grad gelu %x, %w1, %w2, %dy : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x4xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x4xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w1: tensor<8x16xf32>, %w2: tensor<16x8xf32>, %dy: tensor<2x8xf32>) {
  // expected-error @+1 {{result_grad must have the forward result's type 'tensor<4x8xf32>' (the input's type), got 'tensor<2x8xf32>'}}
  %dx, %dw1, %dw2 = bpt.ffn_grad silu %x, %w1, %w2, %dy : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>, tensor<2x8xf32>) -> (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w1: tensor<8x16xf32>, %w2: tensor<16x8xf32>, %w3: tensor<8x16xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{w_gate_grad must have the type 'tensor<8x16xf32>' of its operand, got 'tensor<8x16xf16>'}}
  %dx, %dw1, %dw2, %dw3 = bpt.ffn_grad swiglu %x, %w1, %w2, gate %w3, %dy : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>, tensor<8x16xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>, tensor<8x16xf16>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %w1: tensor<8x16xf32>, %w2: tensor<16x8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{expected an activation, one of: gelu, gelu_tanh, relu, silu, swiglu, geglu}}
  %dx, %dw1, %dw2 = bpt.ffn_grad tanh %x, %w1, %w2, %dy : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %g: tensor<6xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{weight dim 0 (hidden) must be 8 to match input's last dimension, got 6}}
  %dx, %dg, %db = bpt.layer_norm_grad %x, %g, %dy : (tensor<4x8xf32>, tensor<6xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<6xf32>, tensor<6xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %g: tensor<8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{epsilon must be finite and in [0, 1], got -1.000000e+00}}
  %dx, %dg, %db = bpt.layer_norm_grad %x, %g, %dy {epsilon = -1.0} : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %g: tensor<8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{bias_grad must have the type 'tensor<8xf32>' of its operand, got 'tensor<4x8xf32>'}}
  %dx, %dg, %db = bpt.layer_norm_grad %x, %g, %dy : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %g: tensor<8xbf16>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{weight element type 'bf16' does not match input's 'f32'}}
  %dx, %dg = bpt.rms_norm_grad %x, %g, %dy : (tensor<4x8xf32>, tensor<8xbf16>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xbf16>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %g: tensor<8xf32>, %dy: tensor<4x8xf16>) {
  // expected-error @+1 {{result_grad must have the forward result's type 'tensor<4x8xf32>' (the input's type), got 'tensor<4x8xf16>'}}
  %dx, %dg = bpt.rms_norm_grad %x, %g, %dy : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf16>) -> (tensor<4x8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %g: tensor<8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{input_grad must have the type 'tensor<4x8xf32>' of its operand, got 'tensor<8x4xf32>'}}
  %dx, %dg = bpt.rms_norm_grad %x, %g, %dy : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> (tensor<8x4xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%x: tensor<4x8xf32>, %g: tensor<8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{has unknown attribute 'epsilom'}}
  %dx, %dg = bpt.rms_norm_grad %x, %g, %dy {epsilom = 1.0e-6} : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%a: tensor<32x16xbf16>, %b: tensor<16x48xbf16>) {
  // expected-error @+1 {{contracted dimensions differ: K = 32 in lhs [K, M] 'tensor<32x16xbf16>', 16 in rhs [K, N] 'tensor<16x48xbf16>'}}
  %0 = bpt.matmul %a, %b {transpose_lhs} : (tensor<32x16xbf16>, tensor<16x48xbf16>) -> tensor<16x48xbf16>
  return
}

// -----

func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xf16>) {
  // expected-error @+1 {{rhs element type 'f16' does not match lhs's 'bf16'}}
  %0 = bpt.matmul %a, %b : (tensor<16x32xbf16>, tensor<32x48xf16>) -> tensor<16x48xbf16>
  return
}

// -----

func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>) {
  // expected-error @+1 {{result element type must be 'bf16' or f32, got 'tensor<16x48xf16>'}}
  %0 = bpt.matmul %a, %b : (tensor<16x32xbf16>, tensor<32x48xbf16>) -> tensor<16x48xf16>
  return
}

// -----

func.func @f(%a: tensor<16x32xbf16>, %b: tensor<48x32xbf16>) {
  // expected-error @+1 {{result must be [M, N] = [16, 48], got 'tensor<16x32xbf16>'}}
  %0 = bpt.matmul %a, %b {transpose_rhs} : (tensor<16x32xbf16>, tensor<48x32xbf16>) -> tensor<16x32xbf16>
  return
}

// -----

func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %s: tensor<16x48xbf16>) {
  // expected-error @+1 {{accumulator must be 'tensor<16x48xf32>', got 'tensor<16x48xbf16>'}}
  %0 = bpt.matmul %a, %b, acc %s : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xbf16>) -> tensor<16x48xbf16>
  return
}

// -----

// bpt.matmul's activation-gradient epilogue: pre is f32 [M, N].
func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %u: tensor<48x16xf32>) {
  // expected-error @+1 {{pre must be 'tensor<16x48xf32>' ([M, N] in f32), got 'tensor<48x16xf32>'}}
  %0:2 = bpt.matmul %a, %b, act_grad gelu %u : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<48x16xf32>) -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  return
}

// -----

func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %u: tensor<16x48xbf16>) {
  // expected-error @+1 {{pre must be 'tensor<16x48xf32>' ([M, N] in f32), got 'tensor<16x48xbf16>'}}
  %0:2 = bpt.matmul %a, %b, act_grad gelu %u : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xbf16>) -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  return
}

// -----

func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %u: tensor<16x48xf32>) {
  // expected-error @+1 {{act must have the result's type 'tensor<16x48xbf16>', got 'tensor<16x48xf32>'}}
  %0:2 = bpt.matmul %a, %b, act_grad relu %u : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>) -> (tensor<16x48xbf16>, tensor<16x48xf32>)
  return
}

// -----

// The epilogue without its second result.
func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %u: tensor<16x48xf32>) {
  // expected-error @+1 {{an activation-gradient epilogue needs the activation, the pre-activation operand 'pre' and the second result 'act' together; missing 'act'}}
  %0 = bpt.matmul %a, %b, act_grad silu %u : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>) -> tensor<16x48xbf16>
  return
}

// -----

// An activation without the pre-activation (generic form).
func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>) {
  // expected-error @+1 {{together; missing 'pre'}}
  %0:2 = "bpt.matmul"(%a, %b) <{activation = #bpt<activation gelu>, operandSegmentSizes = array<i32: 1, 1, 0, 0>}> : (tensor<16x32xbf16>, tensor<32x48xbf16>) -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  return
}

// -----

// A pre-activation without an activation (generic form).
func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %u: tensor<16x48xf32>) {
  // expected-error @+1 {{together; missing the activation}}
  %0:2 = "bpt.matmul"(%a, %b, %u) <{operandSegmentSizes = array<i32: 1, 1, 0, 1>}> : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>) -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  return
}

// -----

// Gated activations need both halves of the hidden layer.
func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %u: tensor<16x48xf32>) {
  // expected-error @+1 {{activation 'swiglu' is gated: its derivative needs both halves of the hidden layer, which one pre-activation is not; act_grad takes gelu, gelu_tanh, relu or silu}}
  %0:2 = bpt.matmul %a, %b, act_grad swiglu %u : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>) -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  return
}

// -----

func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %u: tensor<16x48xf32>) {
  // expected-error @+1 {{an accumulator and an activation-gradient epilogue do not combine: the derivative scales the product alone}}
  %0:2 = bpt.matmul %a, %b, acc %u, act_grad gelu %u : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>, tensor<16x48xf32>) -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  return
}

// -----

func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %u: tensor<16x48xf32>) {
  // expected-error @+1 {{expected an activation, one of: gelu, gelu_tanh, relu, silu, swiglu, geglu}}
  %0:2 = bpt.matmul %a, %b, act_grad tanh %u : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>) -> (tensor<16x48xbf16>, tensor<16x48xbf16>)
  return
}

// -----

func.func @f(%a: tensor<16x32xbf16>, %b: tensor<32x48xbf16>, %u: tensor<16x48xf32>) {
  // expected-error @+1 {{expected 'acc' or 'act_grad' (each once)}}
  %0 = bpt.matmul %a, %b, acc %u, acc %u : (tensor<16x32xbf16>, tensor<32x48xbf16>, tensor<16x48xf32>, tensor<16x48xf32>) -> tensor<16x48xbf16>
  return
}

// -----

func.func @f(%a: tensor<2x16x32xbf16>, %b: tensor<32x48xbf16>) {
  // expected-error @+1 {{lhs must have rank 2 ([M, K]), got 'tensor<2x16x32xbf16>'}}
  %0 = bpt.matmul %a, %b : (tensor<2x16x32xbf16>, tensor<32x48xbf16>) -> tensor<16x48xbf16>
  return
}

// -----

// #bpt.strategy: a strategy names its chip.
func.func @strategy_chip(%x: tensor<2x64xf32>, %w: tensor<64x64xf32>) -> tensor<2x64xf32> {
  // expected-error @+1 {{strategy needs a chip}}
  %y = bpt.linear %x, %w {bpt.strategy = #bpt.strategy<portable, chip = "">} : (tensor<2x64xf32>, tensor<64x64xf32>) -> tensor<2x64xf32>
  return %y : tensor<2x64xf32>
}

// -----

// A tensor-core kernel's tiling within the bounds every kernel's own
// choices lie in (a hand-written 65535-row key block would be unrolled for
// hours).
func.func @strategy_tile(%x: tensor<2x64xbf16>, %w: tensor<64x128xbf16>) -> tensor<2x128xbf16> {
  // expected-error @+1 {{strategy field kv_block of a mma_sync kernel must be at most 256, got 65535}}
  %y = bpt.linear %x, %w {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", kv_block = 65535>} : (tensor<2x64xbf16>, tensor<64x128xbf16>) -> tensor<2x128xbf16>
  return %y : tensor<2x128xbf16>
}

// -----

func.func @strategy_warps(%x: tensor<2x64xbf16>, %w: tensor<64x128xbf16>) -> tensor<2x128xbf16> {
  // expected-error @+1 {{strategy field warps of a wgmma kernel must be at most 32, got 65536}}
  %y = bpt.linear %x, %w {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 65536>} : (tensor<2x64xbf16>, tensor<64x128xbf16>) -> tensor<2x128xbf16>
  return %y : tensor<2x128xbf16>
}

// -----

func.func @strategy_stages(%x: tensor<2x64xbf16>, %w: tensor<64x128xbf16>) -> tensor<2x128xbf16> {
  // expected-error @+1 {{strategy field stages of a wgmma kernel must be at most 8, got 127}}
  %y = bpt.linear %x, %w {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", stages = 127>} : (tensor<2x64xbf16>, tensor<64x128xbf16>) -> tensor<2x128xbf16>
  return %y : tensor<2x128xbf16>
}

// -----

func.func @strategy_gemm_split(%x: tensor<2x64xbf16>, %w: tensor<64x128xbf16>) -> tensor<2x128xbf16> {
  // expected-error @+1 {{strategy field gemm_split of a wgmma kernel must be at most 8, got 9}}
  %y = bpt.linear %x, %w {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", gemm_split = 9>} : (tensor<2x64xbf16>, tensor<64x128xbf16>) -> tensor<2x128xbf16>
  return %y : tensor<2x128xbf16>
}

// -----

func.func @strategy_splits(%x: tensor<2x64xf32>, %w: tensor<64x64xf32>) -> tensor<2x64xf32> {
  // expected-error @+1 {{strategy field kv_splits must be at most 1024, got 1025}}
  %y = bpt.linear %x, %w {bpt.strategy = #bpt.strategy<portable, chip = "sm_80", kv_splits = 1025>} : (tensor<2x64xf32>, tensor<64x64xf32>) -> tensor<2x64xf32>
  return %y : tensor<2x64xf32>
}
