// The default bpt block: a pre-norm, causal, grouped-query transformer block
// (hidden 512, 8 query heads sharing 2 key/value heads of width 64, SwiGLU
// FFN of width 1408, RMSNorm) on one sequence of 256 tokens, in f32.
//
//   bpt-opt examples/block.mlir --bpt-decompose-block
func.func @block(%x: tensor<1x256x512xf32>,
                 %norm1: tensor<512xf32>,
                 %w_q: tensor<512x512xf32>, %w_k: tensor<512x128xf32>,
                 %w_v: tensor<512x128xf32>, %w_o: tensor<512x512xf32>,
                 %norm2: tensor<512xf32>,
                 %w_in: tensor<512x1408xf32>, %w_out: tensor<1408x512xf32>,
                 %w_gate: tensor<512x1408xf32>) -> tensor<1x256x512xf32> {
  %y = bpt.transformer_block %x
      norm1(%norm1) attention(%w_q, %w_k, %w_v, %w_o) norm2(%norm2)
      ffn(%w_in, %w_out, gate %w_gate)
      heads(8) kv_heads(2) causal activation(swiglu) norm(rms_norm)
      : (tensor<1x256x512xf32>, tensor<512xf32>, tensor<512x512xf32>,
         tensor<512x128xf32>, tensor<512x128xf32>, tensor<512x512xf32>,
         tensor<512xf32>, tensor<512x1408xf32>, tensor<1408x512xf32>,
         tensor<512x1408xf32>) -> tensor<1x256x512xf32>
  return %y : tensor<1x256x512xf32>
}
