// RUN: bpt-opt %s --split-input-file --bpt-build-backward=query-chunk=4 | FileCheck %s
// RUN: not bpt-opt %s --split-input-file --bpt-build-backward=query-chunk=-1 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// NEGATIVE: error: bpt-build-backward: query-chunk must be 0 (whole sequences) or a number of rows, got -1

// query-chunk=4 on a causal GQA block of 10 rows: chunks [8, 10), [4, 8),
// [0, 4) in the reverse sweep's order. The training forward is the
// unchunked one (one attention, one log-sum-exp over all rows). The
// backward computes the first norm, keys and values once; each chunk
// recomputes its queries and attends to keys [0, end of chunk) with its
// rows of the saved log-sum-exp, its recomputation placed just before its
// gradients; the keys' and values' gradients are summed over chunks in f32
// (their slices overlap), the weights' too; the input's gradient is the
// chunks' rows written in place, plus the first norm's.
// CHECK-LABEL: func.func @block_train(
// CHECK-COUNT-1: bpt.attention
// CHECK-NOT: bpt.attention
// CHECK: return
// CHECK-LABEL: func.func @block_grad(
// CHECK-SAME: %[[X:[^:]*]]: tensor<1x10x32xbf16>, %[[G1:[^:]*]]: tensor<32xbf16>, %[[WQ:[^:]*]]: tensor<32x32xbf16>, %[[WK:[^:]*]]: tensor<32x16xbf16>, %[[WV:[^:]*]]: tensor<32x16xbf16>, %[[WO:[^:]*]]: tensor<32x32xbf16>, %{{[^:]*}}: tensor<32xbf16>, %{{[^:]*}}: tensor<32x64xbf16>, %{{[^:]*}}: tensor<64x32xbf16>, %[[LSE:[^:]*]]: tensor<1x2x10xf32>, %[[DY:[^:]*]]: tensor<1x10x32xbf16>)
// CHECK-DAG: %[[DY2:.*]] = tensor.extract_slice %[[DY]][0, 8, 0] [1, 2, 32] [1, 1, 1]
// CHECK-DAG: %[[DY1:.*]] = tensor.extract_slice %[[DY]][0, 4, 0] [1, 4, 32] [1, 1, 1]
// CHECK-DAG: %[[DY0:.*]] = tensor.extract_slice %[[DY]][0, 0, 0] [1, 4, 32] [1, 1, 1]
// CHECK: %[[N1:.*]] = bpt.rms_norm %[[X]], %[[G1]]
// CHECK: bpt.linear %[[N1]], %[[WV]]
// CHECK: %[[V:.*]] = linalg.transpose
// CHECK: bpt.linear %[[N1]], %[[WK]]
// CHECK: %[[K:.*]] = linalg.transpose
// Chunk [8, 10): all ten keys.
// CHECK: %[[K2:.*]] = tensor.extract_slice %[[K]][0, 0, 0, 0] [1, 1, 10, 16]
// CHECK: %[[N1C2:.*]] = tensor.extract_slice %[[N1]][0, 8, 0] [1, 2, 32]
// CHECK: bpt.linear %[[N1C2]], %[[WQ]] : (tensor<1x2x32xbf16>
// CHECK: %[[Q2:.*]] = linalg.transpose
// CHECK: %[[O2:.*]] = bpt.attention %[[Q2]], %[[K2]], %{{.*}} causal : (tensor<1x2x2x16xbf16>, tensor<1x1x10x16xbf16>, tensor<1x1x10x16xbf16>)
// CHECK: bpt.ffn_grad gelu %{{.*}}, %{{.*}}, %{{.*}}, %[[DY2]]
// CHECK: bpt.rms_norm_grad
// CHECK: bpt.linear_grad %{{.*}}, %[[WO]]
// CHECK: %[[LSE2:.*]] = tensor.extract_slice %[[LSE]][0, 0, 8] [1, 2, 2] [1, 1, 1]
// CHECK: %{{.*}}, %[[DK2:.*]], %[[DV2:.*]] = bpt.attention_grad %[[Q2]], %[[K2]], %{{.*}}, %[[O2]], %{{.*}}, %[[LSE2]] causal
// CHECK: %[[DVSUM0:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<1x1x10x16xf32>)
// CHECK: arith.extf %[[DV2]] : tensor<1x1x10x16xbf16> to tensor<1x1x10x16xf32>
// CHECK: %[[DKSUM0:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<1x1x10x16xf32>)
// CHECK: arith.extf %[[DK2]]
// CHECK: %[[DKSUM1:.*]] = tensor.insert_slice %{{.*}} into %[[DKSUM0]][0, 0, 0, 0] [1, 1, 10, 16]
// CHECK: bpt.linear_grad %[[N1C2]], %[[WQ]]
// CHECK: %[[DN1A:.*]] = tensor.insert_slice %{{.*}} into %{{.*}}[0, 8, 0] [1, 2, 32] [1, 1, 1] : tensor<1x2x32xbf16> into tensor<1x10x32xbf16>
// Chunk [4, 8): keys [0, 8), rows [4, 8) of the log-sum-exp; the weights'
// gradients summed in f32.
// CHECK: %[[K1:.*]] = tensor.extract_slice %[[K]][0, 0, 0, 0] [1, 1, 8, 16]
// CHECK: %[[O1:.*]] = bpt.attention %{{.*}}, %[[K1]], %{{.*}} causal : (tensor<1x2x4x16xbf16>, tensor<1x1x8x16xbf16>, tensor<1x1x8x16xbf16>)
// CHECK: bpt.ffn_grad gelu %{{.*}}, %{{.*}}, %{{.*}}, %[[DY1]]
// CHECK: arith.extf %{{.*}} : tensor<32x64xbf16> to tensor<32x64xf32>
// CHECK: arith.addf %{{.*}}, %{{.*}} : tensor<32x64xf32>
// CHECK: %[[LSE1:.*]] = tensor.extract_slice %[[LSE]][0, 0, 4] [1, 2, 4] [1, 1, 1]
// CHECK: %{{.*}}, %[[DK1:.*]], %{{.*}} = bpt.attention_grad %{{.*}}, %[[K1]], %{{.*}}, %[[O1]], %{{.*}}, %[[LSE1]] causal
// CHECK: %[[PART1:.*]] = tensor.extract_slice %[[DKSUM1]][0, 0, 0, 0] [1, 1, 8, 16] [1, 1, 1, 1] : tensor<1x1x10x16xf32> to tensor<1x1x8x16xf32>
// CHECK: %[[DK1F:.*]] = arith.extf %[[DK1]] : tensor<1x1x8x16xbf16> to tensor<1x1x8x16xf32>
// CHECK: %[[ADD1:.*]] = arith.addf %[[PART1]], %[[DK1F]]
// CHECK: tensor.insert_slice %[[ADD1]] into %[[DKSUM1]][0, 0, 0, 0] [1, 1, 8, 16]
// CHECK: tensor.insert_slice %{{.*}} into %[[DN1A]][0, 4, 0] [1, 4, 32]
// Chunk [0, 4): keys [0, 4).
// CHECK: %[[K0:.*]] = tensor.extract_slice %[[K]][0, 0, 0, 0] [1, 1, 4, 16]
// CHECK: bpt.attention %{{.*}}, %[[K0]], %{{.*}} causal : (tensor<1x2x4x16xbf16>, tensor<1x1x4x16xbf16>, tensor<1x1x4x16xbf16>)
// CHECK: bpt.ffn_grad gelu %{{.*}}, %{{.*}}, %{{.*}}, %[[DY0]]
// CHECK: tensor.extract_slice %[[LSE]][0, 0, 0] [1, 2, 4] [1, 1, 1]
// CHECK: bpt.attention_grad
// After the chunks: the summed key and value gradients, rounded once,
// through the whole sequence's projections, then the first norm.
// CHECK: %[[DV:.*]] = arith.truncf %{{.*}} : tensor<1x1x10x16xf32> to tensor<1x1x10x16xbf16>
// CHECK: bpt.linear_grad %[[N1]], %[[WV]]
// CHECK: %[[DK:.*]] = arith.truncf %{{.*}} : tensor<1x1x10x16xf32> to tensor<1x1x10x16xbf16>
// CHECK: bpt.linear_grad %[[N1]], %[[WK]]
// CHECK: %[[DN1:.*]] = arith.truncf %{{.*}} : tensor<1x10x32xf32> to tensor<1x10x32xbf16>
// CHECK: %[[DX1:.*]], %{{.*}} = bpt.rms_norm_grad %[[X]], %[[G1]], %[[DN1]]
// CHECK: %[[DX:.*]] = arith.addf %{{.*}}, %[[DX1]] : tensor<1x10x32xbf16>
// CHECK: %[[DWQ:.*]] = arith.truncf %{{.*}} : tensor<32x32xf32> to tensor<32x32xbf16>
// CHECK: return %[[DX]], %{{.*}}, %[[DWQ]],
func.func @block(%x: tensor<1x10x32xbf16>, %g1: tensor<32xbf16>, %wq: tensor<32x32xbf16>,
                 %wk: tensor<32x16xbf16>, %wv: tensor<32x16xbf16>, %wo: tensor<32x32xbf16>,
                 %g2: tensor<32xbf16>, %w1: tensor<32x64xbf16>, %w2: tensor<64x32xbf16>)
    -> tensor<1x10x32xbf16> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2) heads(2) kv_heads(1) causal activation(gelu)
      norm(rms_norm)
      : (tensor<1x10x32xbf16>, tensor<32xbf16>, tensor<32x32xbf16>, tensor<32x16xbf16>,
         tensor<32x16xbf16>, tensor<32x32xbf16>, tensor<32xbf16>, tensor<32x64xbf16>,
         tensor<64x32xbf16>) -> tensor<1x10x32xbf16>
  return %y : tensor<1x10x32xbf16>
}

// -----

// Not causal: every chunk attends to all keys (no key slices), and the
// keys' gradient is the chunks' summed in f32. A block no longer than the
// chunk is expanded as one chunk: no concatenation.
// CHECK-LABEL: func.func @noncausal_grad(
// CHECK-SAME: %{{[^:]*}}: tensor<32x32xf32>, %[[WK:[^:]*]]: tensor<32x32xf32>, %{{[^:]*}}: tensor<32x32xf32>, %{{[^:]*}}: tensor<32x32xf32>, %{{[^:]*}}: tensor<32xf32>
// CHECK: bpt.linear %{{.*}}, %[[WK]] : (tensor<2x8x32xf32>
// CHECK-NEXT: tensor.expand_shape
// CHECK-NEXT: %[[K:.*]] = linalg.transpose
// CHECK-NOT: tensor.extract_slice %[[K]]
// CHECK: bpt.attention %{{.*}}, %[[K]], %{{.*}} : (tensor<2x2x4x16xf32>, tensor<2x2x8x16xf32>
// CHECK: bpt.attention %{{.*}}, %[[K]], %{{.*}} : (tensor<2x2x4x16xf32>, tensor<2x2x8x16xf32>
// CHECK-LABEL: func.func @short_grad(
// CHECK-NOT: tensor.concat
// CHECK: bpt.attention {{.*}} : (tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>)
// CHECK: return
func.func @noncausal(%x: tensor<2x8x32xf32>, %g1: tensor<32xf32>, %b1: tensor<32xf32>,
                     %wq: tensor<32x32xf32>, %wk: tensor<32x32xf32>, %wv: tensor<32x32xf32>,
                     %wo: tensor<32x32xf32>, %g2: tensor<32xf32>, %b2: tensor<32xf32>,
                     %w1: tensor<32x48xf32>, %w2: tensor<48x32xf32>) -> tensor<2x8x32xf32> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(2) kv_heads(2) activation(relu)
      norm(layer_norm)
      : (tensor<2x8x32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<32x32xf32>,
         tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32xf32>,
         tensor<32xf32>, tensor<32x48xf32>, tensor<48x32xf32>) -> tensor<2x8x32xf32>
  return %y : tensor<2x8x32xf32>
}
func.func @short(%x: tensor<1x4x32xf32>, %g1: tensor<32xf32>, %wq: tensor<32x32xf32>,
                 %wk: tensor<32x32xf32>, %wv: tensor<32x32xf32>, %wo: tensor<32x32xf32>,
                 %g2: tensor<32xf32>, %w1: tensor<32x48xf32>, %w2: tensor<48x32xf32>)
    -> tensor<1x4x32xf32> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2) heads(2) kv_heads(2) causal activation(silu)
      norm(rms_norm)
      : (tensor<1x4x32xf32>, tensor<32xf32>, tensor<32x32xf32>, tensor<32x32xf32>,
         tensor<32x32xf32>, tensor<32x32xf32>, tensor<32xf32>, tensor<32x48xf32>,
         tensor<48x32xf32>) -> tensor<1x4x32xf32>
  return %y : tensor<1x4x32xf32>
}

// -----

// More chunks than are unrolled: an error at the block, nothing added.
// RUN: not bpt-opt %s --split-input-file --bpt-build-backward=query-chunk=1 2>&1 | FileCheck %s --check-prefix=TOO-MANY
// TOO-MANY: error: bpt-build-backward: query-chunk=1 cuts a block's 130 rows into 130 chunks; at most 128 are unrolled (use at least 2 rows)
func.func @long(%x: tensor<1x130x32xf32>, %g1: tensor<32xf32>, %wq: tensor<32x32xf32>,
                %wk: tensor<32x32xf32>, %wv: tensor<32x32xf32>, %wo: tensor<32x32xf32>,
                %g2: tensor<32xf32>, %w1: tensor<32x48xf32>, %w2: tensor<48x32xf32>)
    -> tensor<1x130x32xf32> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2) heads(2) kv_heads(2) causal activation(silu)
      norm(rms_norm)
      : (tensor<1x130x32xf32>, tensor<32xf32>, tensor<32x32xf32>, tensor<32x32xf32>,
         tensor<32x32xf32>, tensor<32x32xf32>, tensor<32xf32>, tensor<32x48xf32>,
         tensor<48x32xf32>) -> tensor<1x130x32xf32>
  return %y : tensor<1x130x32xf32>
}
