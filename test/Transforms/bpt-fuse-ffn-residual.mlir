// RUN: bpt-opt %s --split-input-file --bpt-decompose-block --bpt-fuse-ffn-residual="q-block=32 kv-block=32" --verify-diagnostics | FileCheck %s

// A causal GQA block with layer norm and GELU on a ragged sequence (100 rows,
// blocks of 32): after decomposition, everything from the attention on is
// fused into one loop over (batch, query block). Per query block: all 4
// heads (each an online-softmax tile written at its columns), then the
// output projection, residual, norm, FFN and residual on [32, 64] tiles.

// CHECK-LABEL: func.func @block_layer_norm_gelu
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x100x64xf32>, {{.+}}, %[[WO:[^:]+]]: tensor<64x64xf32>, %[[G2:[^:]+]]: tensor<64xf32>, %[[B2:[^:]+]]: tensor<64xf32>, %[[W1:[^:]+]]: tensor<64x256xf32>, %[[W2:[^:]+]]: tensor<256x64xf32>)
// The projections before attention stay outside, on the whole sequence.
// CHECK: bpt.layer_norm %[[X]]
// CHECK: %[[QH:.+]] = linalg.transpose {{.+}} outs(%{{.+}} : tensor<2x4x100x16xf32>)
// CHECK: %[[KH:.+]] = linalg.transpose {{.+}} outs(%{{.+}} : tensor<2x2x100x16xf32>)
// CHECK: %[[VH:.+]] = linalg.transpose {{.+}} outs(%{{.+}} : tensor<2x2x100x16xf32>)
// No attention, no head merge, no full-sequence FFN is left.
// CHECK-NOT: bpt.attention
// CHECK-NOT: tensor.collapse_shape
// CHECK: %[[INIT:.+]] = tensor.empty() : tensor<2x100x64xf32>
// CHECK: %[[LOOP:.+]] = scf.forall (%[[B:.+]], %[[QI:.+]]) in (2, 4) shared_outs(%[[OUT:.+]] = %[[INIT]]) -> (tensor<2x100x64xf32>)
// CHECK: %[[Q0:.+]] = arith.muli %[[QI]]
// All heads of this query block.
// CHECK: %[[MERGED:.+]] = scf.for %[[H:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[TILE:.+]] = %{{.+}}) -> (tensor<32x64xf32>)
// CHECK: tensor.extract_slice %[[QH]][%[[B]], %[[H]], %[[Q0]], 0]
// CHECK: scf.for {{.+}} -> (tensor<32xf32>, tensor<32xf32>, tensor<32x16xf32>)
// CHECK: tensor.extract_slice %[[KH]]
// CHECK: scf.for {{.+}} -> (tensor<32xf32>, tensor<32xf32>, tensor<32x16xf32>)
// CHECK: %[[COL:.+]] = arith.muli %[[H]], %{{.+}} : index
// CHECK: tensor.insert_slice %{{.+}} into %[[TILE]][0, %[[COL]]] [32, 16] [1, 1] : tensor<32x16xf32> into tensor<32x64xf32>
// CHECK: scf.yield
// The consumers, on [32, N] tiles.
// CHECK: %[[PROJ:.+]] = bpt.linear %[[MERGED]], %[[WO]] : (tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<32x64xf32>
// CHECK: tensor.extract_slice %[[X]][%[[B]], %[[Q0]], 0] [1, %{{.+}}, 64] [1, 1, 1] : tensor<2x100x64xf32> to tensor<?x64xf32>
// CHECK: %[[XTILE:.+]] = tensor.insert_slice {{.+}} into tensor<32x64xf32>
// CHECK: %[[R:.+]] = arith.addf %[[XTILE]], %[[PROJ]] : tensor<32x64xf32>
// CHECK: %[[H2:.+]] = bpt.layer_norm %[[R]], %[[G2]], %[[B2]] : (tensor<32x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<32x64xf32>
// CHECK: %[[F:.+]] = bpt.ffn gelu %[[H2]], %[[W1]], %[[W2]] : (tensor<32x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<32x64xf32>
// CHECK: %[[Y:.+]] = arith.addf %[[R]], %[[F]] : tensor<32x64xf32>
// Only the valid rows of the last (ragged) block are written.
// CHECK: %[[VALID:.+]] = tensor.extract_slice %[[Y]][0, 0] [%[[ROWS:.+]], 64] [1, 1] : tensor<32x64xf32> to tensor<?x64xf32>
// CHECK: tensor.parallel_insert_slice %[[VALID]] into %[[OUT]][%[[B]], %[[Q0]], 0] [1, %[[ROWS]], 64] [1, 1, 1]
// CHECK: } {bpt.kv_block = 32 : i64, bpt.q_block = 32 : i64}
// CHECK: return %[[LOOP]]
func.func @block_layer_norm_gelu(%x: tensor<2x100x64xf32>, %g1: tensor<64xf32>, %b1: tensor<64xf32>,
    %wq: tensor<64x64xf32>, %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>,
    %wo: tensor<64x64xf32>, %g2: tensor<64xf32>, %b2: tensor<64xf32>,
    %w1: tensor<64x256xf32>, %w2: tensor<256x64xf32>) -> tensor<2x100x64xf32> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(4) kv_heads(2) causal activation(gelu)
      norm(layer_norm)
      : (tensor<2x100x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64x64xf32>,
         tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64xf32>,
         tensor<64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<2x100x64xf32>
  return %y : tensor<2x100x64xf32>
}

// -----

// A value of the chain used after it (the first residual, returned too)
// becomes a second result of the loop; the SwiGLU FFN's [32, 1408]-wide
// intermediate exists only per query block.

// CHECK-LABEL: func.func @escaping_residual
// CHECK-NOT: tensor<1x64x1408xf32>
// CHECK: %[[LOOP:.+]]:2 = scf.forall (%{{.+}}, %{{.+}}) in (1, 2) shared_outs(%[[O0:.+]] = %{{.+}}, %[[O1:.+]] = %{{.+}}) -> (tensor<1x64x32xf32>, tensor<1x64x32xf32>)
// CHECK: %[[R:.+]] = arith.addf %{{.+}}, %{{.+}} : tensor<32x32xf32>
// CHECK: bpt.ffn swiglu {{.+}} : (tensor<32x32xf32>, tensor<32x1408xf32>, tensor<1408x32xf32>, tensor<32x1408xf32>) -> tensor<32x32xf32>
// CHECK: %[[Y:.+]] = arith.addf %[[R]]
// CHECK: tensor.parallel_insert_slice %[[R]] into %[[O0]]
// CHECK: tensor.parallel_insert_slice %[[Y]] into %[[O1]]
// CHECK: return %[[LOOP]]#1, %[[LOOP]]#0
func.func @escaping_residual(%q: tensor<1x2x64x16xf32>, %x: tensor<1x64x32xf32>,
    %wo: tensor<32x32xf32>, %g: tensor<32xf32>, %w1: tensor<32x1408xf32>,
    %w2: tensor<1408x32xf32>, %w3: tensor<32x1408xf32>)
    -> (tensor<1x64x32xf32>, tensor<1x64x32xf32>) {
  %a = bpt.attention %q, %q, %q causal
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32>
  %e = tensor.empty() : tensor<1x64x2x16xf32>
  %t = linalg.transpose ins(%a : tensor<1x2x64x16xf32>) outs(%e : tensor<1x64x2x16xf32>) permutation = [0, 2, 1, 3]
  %m = tensor.collapse_shape %t [[0], [1], [2, 3]] : tensor<1x64x2x16xf32> into tensor<1x64x32xf32>
  %o = bpt.linear %m, %wo : (tensor<1x64x32xf32>, tensor<32x32xf32>) -> tensor<1x64x32xf32>
  %r = arith.addf %x, %o : tensor<1x64x32xf32>
  %h = bpt.rms_norm %r, %g : (tensor<1x64x32xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
  %f = bpt.ffn swiglu %h, %w1, %w2, gate %w3
      : (tensor<1x64x32xf32>, tensor<32x1408xf32>, tensor<1408x32xf32>, tensor<32x1408xf32>) -> tensor<1x64x32xf32>
  %y = arith.addf %r, %f : tensor<1x64x32xf32>
  return %y, %r : tensor<1x64x32xf32>, tensor<1x64x32xf32>
}

// -----

// Not fusable, left as is with a remark: the merged heads feed only an op
// that is not position-wise.

// CHECK-LABEL: func.func @no_position_wise_consumer
// CHECK: bpt.attention
// CHECK-NOT: scf.forall
func.func @no_position_wise_consumer(%q: tensor<1x2x64x16xf32>) -> tensor<64x1x32xf32> {
  // expected-remark @+1 {{bpt-fuse-ffn-residual: not fused: no position-wise consumer (projection, residual, norm, FFN) of the merged heads to fuse}}
  %a = bpt.attention %q, %q, %q
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32>
  %e = tensor.empty() : tensor<1x64x2x16xf32>
  %t = linalg.transpose ins(%a : tensor<1x2x64x16xf32>) outs(%e : tensor<1x64x2x16xf32>) permutation = [0, 2, 1, 3]
  %m = tensor.collapse_shape %t [[0], [1], [2, 3]] : tensor<1x64x2x16xf32> into tensor<1x64x32xf32>
  %e2 = tensor.empty() : tensor<64x1x32xf32>
  %s = linalg.transpose ins(%m : tensor<1x64x32xf32>) outs(%e2 : tensor<64x1x32xf32>) permutation = [1, 0, 2]
  return %s : tensor<64x1x32xf32>
}

// -----

// Not fusable: the attention result is also used without the head merge.

// CHECK-LABEL: func.func @attention_used_twice
// CHECK: bpt.attention
// CHECK-NOT: scf.forall
func.func @attention_used_twice(%q: tensor<1x2x64x16xf32>, %w: tensor<32x32xf32>)
    -> (tensor<1x64x32xf32>, tensor<1x2x64x16xf32>) {
  // expected-remark @+1 {{bpt-fuse-ffn-residual: not fused: the attention result has uses besides the head merge}}
  %a = bpt.attention %q, %q, %q
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32>
  %e = tensor.empty() : tensor<1x64x2x16xf32>
  %t = linalg.transpose ins(%a : tensor<1x2x64x16xf32>) outs(%e : tensor<1x64x2x16xf32>) permutation = [0, 2, 1, 3]
  %m = tensor.collapse_shape %t [[0], [1], [2, 3]] : tensor<1x64x2x16xf32> into tensor<1x64x32xf32>
  %o = bpt.linear %m, %w : (tensor<1x64x32xf32>, tensor<32x32xf32>) -> tensor<1x64x32xf32>
  return %o, %a : tensor<1x64x32xf32>, tensor<1x2x64x16xf32>
}

// -----

// Not fusable: the residual is read by another op before the chain ends, so
// the loop (placed where the chain ends) could not feed it.

// CHECK-LABEL: func.func @used_before_the_end
// CHECK: bpt.attention
// CHECK-NOT: scf.forall
func.func @used_before_the_end(%q: tensor<1x2x64x16xf32>, %x: tensor<1x64x32xf32>,
    %w: tensor<32x32xf32>, %g: tensor<32xf32>)
    -> (tensor<1x64x32xf32>, tensor<1x8x32xf32>) {
  // expected-remark @+1 {{bpt-fuse-ffn-residual: not fused: an intermediate result of the fused chain is used before the chain ends}}
  %a = bpt.attention %q, %q, %q
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32>
  %e = tensor.empty() : tensor<1x64x2x16xf32>
  %t = linalg.transpose ins(%a : tensor<1x2x64x16xf32>) outs(%e : tensor<1x64x2x16xf32>) permutation = [0, 2, 1, 3]
  %m = tensor.collapse_shape %t [[0], [1], [2, 3]] : tensor<1x64x2x16xf32> into tensor<1x64x32xf32>
  %o = bpt.linear %m, %w : (tensor<1x64x32xf32>, tensor<32x32xf32>) -> tensor<1x64x32xf32>
  %r = arith.addf %x, %o : tensor<1x64x32xf32>
  %head = tensor.extract_slice %r[0, 0, 0] [1, 8, 32] [1, 1, 1] : tensor<1x64x32xf32> to tensor<1x8x32xf32>
  %h = bpt.rms_norm %r, %g : (tensor<1x64x32xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
  return %h, %head : tensor<1x64x32xf32>, tensor<1x8x32xf32>
}
