// RUN: bpt-opt %s --split-input-file --bpt-build-backward | FileCheck %s

// A projection with a bias whose result is used twice (y + y): the two
// uses' gradients are summed before linear_grad; the bias gets linear_grad's
// third result; an argument nothing depends on gets zeros. @f stays.
// CHECK-LABEL: func.func @linear(
// CHECK: return
// CHECK-LABEL: func.func @linear_train(
// CHECK-SAME: -> tensor<2x8x32xf32>
// CHECK-LABEL: func.func @linear_grad(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x8x16xf32>, %[[W:[^:]*]]: tensor<16x32xf32>, %[[B:[^:]*]]: tensor<32xf32>, %[[U:[^:]*]]: tensor<4xf32>, %[[DY:[^:]*]]: tensor<2x8x32xf32>)
// CHECK-SAME: -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<4xf32>)
// The forward's result is not read by any gradient: no recomputation.
// CHECK-NOT: bpt.linear %
// CHECK: %[[D:.*]] = arith.addf %[[DY]], %[[DY]]
// CHECK: %[[DX:.*]], %[[DW:.*]], %[[DB:.*]] = bpt.linear_grad %[[X]], %[[W]], %[[D]]
// CHECK: %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<4xf32>)
// CHECK: return %[[DX]], %[[DW]], %[[DB]], %[[Z]]
func.func @linear(%x: tensor<2x8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>,
                  %unused: tensor<4xf32>) -> tensor<2x8x32xf32> {
  %y = bpt.linear %x, %w, %b
      : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
  %z = arith.addf %y, %y : tensor<2x8x32xf32>
  return %z : tensor<2x8x32xf32>
}

// -----

// Attention: the training forward gains the log-sum-exp (returned after the
// results); the backward takes it as an argument after the inputs, before
// the result gradients, recomputes the output (attention_grad reads it) and
// keeps causal and scale.
// CHECK-LABEL: func.func @attention_train(
// CHECK-SAME: -> (tensor<1x4x64x16xbf16>, tensor<1x4x64xf32>)
// CHECK: %[[O:.*]], %[[LSE:.*]] = bpt.attention %{{.*}}, %{{.*}}, %{{.*}} causal scale(2.500000e-01) {bpt.note = "kept"}
// CHECK: return %[[O]], %[[LSE]]
// CHECK-LABEL: func.func @attention_grad(
// CHECK-SAME: %[[Q:[^:]*]]: tensor<1x4x64x16xbf16>, %[[K:[^:]*]]: tensor<1x2x64x16xbf16>, %[[V:[^:]*]]: tensor<1x2x64x16xbf16>, %[[SAVED:[^:]*]]: tensor<1x4x64xf32>, %[[DO:[^:]*]]: tensor<1x4x64x16xbf16>)
// CHECK: %[[O2:.*]] = bpt.attention %[[Q]], %[[K]], %[[V]] causal scale(2.500000e-01)
// CHECK: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = bpt.attention_grad %[[Q]], %[[K]], %[[V]], %[[O2]], %[[DO]], %[[SAVED]] causal scale(2.500000e-01)
// CHECK: return %[[DQ]], %[[DK]], %[[DV]]
func.func @attention(%q: tensor<1x4x64x16xbf16>, %k: tensor<1x2x64x16xbf16>,
                     %v: tensor<1x2x64x16xbf16>) -> tensor<1x4x64x16xbf16> {
  %o = bpt.attention %q, %k, %v causal scale(0.25) {bpt.note = "kept"}
      : (tensor<1x4x64x16xbf16>, tensor<1x2x64x16xbf16>, tensor<1x2x64x16xbf16>)
        -> tensor<1x4x64x16xbf16>
  return %o : tensor<1x4x64x16xbf16>
}

// -----

// A block: expanded into its pieces first (@f keeps the block). The
// backward runs the FFN, the second norm, the residual, the output
// projection, the head merge (transpose back, reshape), the attention, and
// the three projections in reverse; norm1's input gradient is the sum of
// the three projections' and the residual's.
// CHECK-LABEL: func.func @block(
// CHECK: bpt.transformer_block
// CHECK-LABEL: func.func @block_train(
// CHECK-SAME: -> (tensor<1x64x64xf32>, tensor<1x4x64xf32>)
// CHECK-NOT: bpt.transformer_block
// CHECK: bpt.attention {{.*}} -> (tensor<1x4x64x16xf32>, tensor<1x4x64xf32>)
// CHECK-LABEL: func.func @block_grad(
// CHECK-SAME: %[[X:[^:]*]]: tensor<1x64x64xf32>
// CHECK-SAME: %[[LSE:[^:]*]]: tensor<1x4x64xf32>, %[[DY:[^:]*]]: tensor<1x64x64xf32>)
// CHECK: %[[H:.*]] = bpt.layer_norm %[[X]]
// CHECK: %[[O:.*]] = bpt.attention
// CHECK: %[[R:.*]] = arith.addf %[[X]]
// CHECK: %[[H2:.*]] = bpt.layer_norm %[[R]]
// CHECK-NOT: bpt.ffn gelu
// CHECK: %[[DH2:.*]], %[[DW1:.*]], %[[DW2:.*]] = bpt.ffn_grad gelu %[[H2]], %{{.*}}, %{{.*}}, %[[DY]]
// CHECK: %[[DR:.*]], %[[DG2:.*]], %[[DB2:.*]] = bpt.layer_norm_grad %[[R]], %{{.*}}, %[[DH2]] :
// CHECK: %[[DRES:.*]] = arith.addf %[[DY]], %[[DR]]
// CHECK: %[[DMERGED:.*]], %[[DWO:.*]] = bpt.linear_grad %{{.*}}, %{{.*}}, %[[DRES]]
// CHECK: %[[E:.*]] = tensor.expand_shape %[[DMERGED]] {{\[\[}}0], [1], [2, 3]] output_shape [1, 64, 4, 16]
// CHECK: %[[DO:.*]] = linalg.transpose ins(%[[E]] : tensor<1x64x4x16xf32>) outs(%{{.*}} : tensor<1x4x64x16xf32>) permutation = [0, 2, 1, 3]
// CHECK: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = bpt.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %[[O]], %[[DO]], %[[LSE]] causal
// CHECK: linalg.transpose ins(%[[DV]]
// CHECK: bpt.linear_grad %[[H]]
// CHECK: linalg.transpose ins(%[[DK]]
// CHECK: %[[DHK:.*]], %{{.*}} = bpt.linear_grad %[[H]]
// CHECK: %[[SUM1:.*]] = arith.addf %{{.*}}, %[[DHK]]
// CHECK: linalg.transpose ins(%[[DQ]]
// CHECK: %[[DHQ:.*]], %{{.*}} = bpt.linear_grad %[[H]]
// CHECK: %[[SUM2:.*]] = arith.addf %[[SUM1]], %[[DHQ]]
// CHECK: %[[DX1:.*]], %{{.*}}, %{{.*}} = bpt.layer_norm_grad %[[X]], %{{.*}}, %[[SUM2]]
// CHECK: %[[DX:.*]] = arith.addf %[[DRES]], %[[DX1]]
// CHECK: return %[[DX]],
func.func @block(%x: tensor<1x64x64xf32>, %g1: tensor<64xf32>, %b1: tensor<64xf32>,
                 %wq: tensor<64x64xf32>, %wk: tensor<64x64xf32>, %wv: tensor<64x64xf32>,
                 %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %b2: tensor<64xf32>,
                 %w1: tensor<64x128xf32>, %w2: tensor<128x64xf32>) -> tensor<1x64x64xf32> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(4) kv_heads(4) causal activation(gelu)
      norm(layer_norm)
      : (tensor<1x64x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64x64xf32>,
         tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64xf32>,
         tensor<64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<1x64x64xf32>
  return %y : tensor<1x64x64xf32>
}

