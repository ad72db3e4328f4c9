// RUN: bpt-opt %s --split-input-file --bpt-tile-attention="q-block=32 kv-block=32" | FileCheck %s

// Causal GQA with ragged tails on both sides and Sq > Skv: the full blockwise
// form. Query rows [q0, q0 + 32) of head h read key/value head h / 2; key
// blocks [0, full) run unmasked, [full, end) masked, the rest are skipped.

// CHECK-LABEL: func.func @causal_gqa_ragged
// CHECK-SAME: (%[[Q:.+]]: tensor<1x4x100x16xf32>, %[[K:.+]]: tensor<1x2x90x16xf32>, %[[V:.+]]: tensor<1x2x90x16xf32>)
// No S x S (or Sq x Skv) tensor exists.
// CHECK-NOT: tensor<100x90x
// CHECK-NOT: tensor<{{[0-9]+}}x100x90
// CHECK: %[[OUT:.+]] = tensor.empty() : tensor<1x4x100x16xf32>
// CHECK: scf.forall (%[[B:.+]], %[[H:.+]], %[[QI:.+]]) in (1, 4, 4) shared_outs(%[[ACC_OUT:.+]] = %[[OUT]])
// CHECK: %[[Q0:.+]] = arith.muli %[[QI]], %{{.+}} : index
// GQA: the key/value head is an index, K and V are not copied per head.
// CHECK: %[[KVH:.+]] = arith.divui %[[H]], %{{.+}} : index
// The ragged query block is copied into a zeroed static tile.
// CHECK: %[[ROWS:.+]] = arith.minsi
// CHECK: %[[QSLICE:.+]] = tensor.extract_slice %[[Q]][%[[B]], %[[H]], %[[Q0]], 0] [1, 1, %[[ROWS]], 16] [1, 1, 1, 1] : tensor<1x4x100x16xf32> to tensor<?x16xf32>
// CHECK: %[[QTILE:.+]] = tensor.insert_slice %[[QSLICE]] into %{{.+}}[0, 0] [%[[ROWS]], 16] [1, 1] : tensor<?x16xf32> into tensor<32x16xf32>
// Unmasked blocks: those whose keys all lie at or below the first row's
// diagonal (Skv - Sq = -10, so keys j <= q0 - 10).
// CHECK: %[[C_9:.+]] = arith.constant -9 : index
// CHECK: arith.addi %[[Q0]], %[[C_9]]
// CHECK: %[[FULL:.+]] = arith.divsi
// Blocks past the last valid row's diagonal are never visited.
// CHECK: %[[END:.+]] = arith.ceildivsi
// CHECK: %[[M0:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<32xf32>)
// CHECK: %[[L0:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<32xf32>)
// CHECK: %[[A0:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<32x16xf32>)
// CHECK: %[[R1:.+]]:3 = scf.for %[[J:.+]] = %{{.+}} to %[[FULL]] step %{{.+}} iter_args(%[[M:.+]] = %[[M0]], %[[L:.+]] = %[[L0]], %[[A:.+]] = %[[A0]]) -> (tensor<32xf32>, tensor<32xf32>, tensor<32x16xf32>)
// CHECK: tensor.extract_slice %[[K]][%[[B]], %[[KVH]], %{{.+}}, 0] [1, 1, 32, 16] [1, 1, 1, 1] : tensor<1x2x90x16xf32> to tensor<32x16xf32>
// CHECK: %[[S:.+]] = linalg.matmul indexing_maps = [#{{.+}}, #{{.+}}, #{{.+}}] ins(%[[QTILE]], %{{.+}} : tensor<32x16xf32>, tensor<32x16xf32>) outs(%{{.+}} : tensor<32x32xf32>) -> tensor<32x32xf32>
// CHECK-NOT: linalg.index
// CHECK: math.exp2
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<32x32xf32>, tensor<32x16xf32>) outs(%{{.+}} : tensor<32x16xf32>)
// CHECK: scf.yield %{{.+}}, %{{.+}}, %{{.+}} : tensor<32xf32>, tensor<32xf32>, tensor<32x16xf32>
// Masked blocks carry the state on from the unmasked ones.
// CHECK: %[[R2:.+]]:3 = scf.for %{{.+}} = %[[FULL]] to %[[END]] step %{{.+}} iter_args(%{{.+}} = %[[R1]]#0, %{{.+}} = %[[R1]]#1, %{{.+}} = %[[R1]]#2)
// The key tail is padded too, and masked: keys past 90, and keys above the
// bottom-right diagonal (j <= i + q0 - 10), get -inf.
// CHECK: tensor.extract_slice %[[K]]{{.+}} to tensor<?x16xf32>
// CHECK: linalg.generic
// CHECK: arith.mulf
// CHECK: %[[COL:.+]] = arith.addi %{{.+}}, %{{.+}} : index
// CHECK: arith.cmpi slt, %[[COL]], %{{.+}} : index
// CHECK: linalg.index 0
// CHECK: arith.cmpi sle, %[[COL]]
// CHECK: arith.select %{{.+}}, %{{.+}}, %{{.+}} : f32
// CHECK: scf.yield
// One normalisation at the end: acc / l, 0 where l == 0 (rows that saw no key).
// CHECK: linalg.generic {{.+}} ins(%[[R2]]#2, %[[R2]]#1 : tensor<32x16xf32>, tensor<32xf32>)
// CHECK: arith.cmpf ogt
// CHECK: arith.divf
// CHECK: arith.select
// Only the valid rows are written.
// CHECK: %[[VALID:.+]] = tensor.extract_slice %{{.+}}[0, 0] [%{{.+}}, 16] [1, 1] : tensor<32x16xf32> to tensor<?x16xf32>
// CHECK: scf.forall.in_parallel
// CHECK: tensor.parallel_insert_slice %[[VALID]] into %[[ACC_OUT]][%[[B]], %[[H]], %[[Q0]], 0] [1, 1, %{{.+}}, 16] [1, 1, 1, 1]
// The nest is tagged with what its body no longer shows plainly, for the
// kernel conversions that take whole nests.
// CHECK: } {bpt.kv_block = 32 : i64, bpt.nest = #bpt.attention_nest<causal = true, scale = 2.500000e-01>, bpt.q_block = 32 : i64}
func.func @causal_gqa_ragged(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x90x16xf32>,
                             %v: tensor<1x2x90x16xf32>) -> tensor<1x4x100x16xf32> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<1x4x100x16xf32>, tensor<1x2x90x16xf32>, tensor<1x2x90x16xf32>)
        -> tensor<1x4x100x16xf32>
  return %o : tensor<1x4x100x16xf32>
}

// -----

// Not causal, sequence lengths multiples of the blocks: static tiles straight
// from the inputs, one unmasked loop over all 4 key blocks, no mask, no
// padding; MHA needs no head division. bf16 inputs, f32 softmax state.

// CHECK-LABEL: func.func @mha_divisible
// CHECK-NOT: tensor<128x128x
// CHECK: scf.forall (%[[B:.+]], %[[H:.+]], %[[QI:.+]]) in (2, 2, 4)
// CHECK-NOT: arith.divui
// CHECK: tensor.extract_slice %{{.+}}[%[[B]], %[[H]], %{{.+}}, 0] [1, 1, 32, 64] [1, 1, 1, 1] : tensor<2x2x128x64xbf16> to tensor<32x64xbf16>
// CHECK: %[[C4:.+]] = arith.constant 4 : index
// CHECK: scf.for %{{.+}} = %{{.+}} to %[[C4]] step %{{.+}} iter_args({{.+}}) -> (tensor<32xf32>, tensor<32xf32>, tensor<32x64xf32>)
// CHECK: linalg.matmul {{.+}} ins(%{{.+}}, %{{.+}} : tensor<32x64xbf16>, tensor<32x64xbf16>) outs(%{{.+}} : tensor<32x32xf32>)
// CHECK-NOT: linalg.index
// CHECK-NOT: scf.for
// The result is rounded to bf16 once, at the end.
// CHECK: arith.truncf %{{.+}} : f32 to bf16
// CHECK: tensor.parallel_insert_slice %{{.+}} into %{{.+}}[%[[B]], %[[H]], %{{.+}}, 0] [1, 1, 32, 64] [1, 1, 1, 1] : tensor<32x64xbf16> into tensor<2x2x128x64xbf16>
func.func @mha_divisible(%q: tensor<2x2x128x64xbf16>, %k: tensor<2x2x128x64xbf16>,
                         %v: tensor<2x2x128x64xbf16>) -> tensor<2x2x128x64xbf16> {
  %o = bpt.attention %q, %k, %v
      : (tensor<2x2x128x64xbf16>, tensor<2x2x128x64xbf16>, tensor<2x2x128x64xbf16>)
        -> tensor<2x2x128x64xbf16>
  return %o : tensor<2x2x128x64xbf16>
}

// -----

// Not causal with a ragged key tail: two full blocks unmasked, the tail in a
// masked loop that only checks j < Skv. MQA: every query head reads kv head
// h / 4 = 0. The explicit scale is folded with log2(e): 0.5 * 1.4427 = 0.7213.

// CHECK-LABEL: func.func @mqa_ragged_keys
// CHECK: arith.divui %{{.+}}, %{{.+}} : index
// CHECK: %[[C2:.+]] = arith.constant 2 : index
// CHECK: %[[C3:.+]] = arith.constant 3 : index
// CHECK: %[[FULL:.+]]:3 = scf.for %{{.+}} = %{{.+}} to %[[C2]]
// CHECK: arith.constant 0.72134751 : f32
// CHECK-NOT: linalg.index
// CHECK: scf.for %{{.+}} = %[[C2]] to %[[C3]] {{.+}} iter_args(%{{.+}} = %[[FULL]]#0
// CHECK: arith.cmpi slt
// CHECK-NOT: arith.cmpi sle
// CHECK: scf.yield
func.func @mqa_ragged_keys(%q: tensor<1x4x32x8xf32>, %k: tensor<1x1x80x8xf32>,
                           %v: tensor<1x1x80x8xf32>) -> tensor<1x4x32x8xf32> {
  %o = bpt.attention %q, %k, %v scale(0.5)
      : (tensor<1x4x32x8xf32>, tensor<1x1x80x8xf32>, tensor<1x1x80x8xf32>)
        -> tensor<1x4x32x8xf32>
  return %o : tensor<1x4x32x8xf32>
}

// -----

// Blocks larger than the sequence are clamped to it (and recorded).

// CHECK-LABEL: func.func @clamped_blocks
// CHECK: scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (1, 1, 1)
// CHECK: tensor<16x24xf32>
// CHECK: } {bpt.kv_block = 24 : i64, bpt.nest = #bpt.attention_nest<causal = false, scale = 0.35355339059327373>, bpt.q_block = 16 : i64}
func.func @clamped_blocks(%q: tensor<1x1x16x8xf32>, %k: tensor<1x1x24x8xf32>,
                          %v: tensor<1x1x24x8xf32>) -> tensor<1x1x16x8xf32> {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x1x16x8xf32>, tensor<1x1x24x8xf32>, tensor<1x1x24x8xf32>)
        -> tensor<1x1x16x8xf32>
  return %o : tensor<1x1x16x8xf32>
}

// -----

// With the log-sum-exp result the nest writes two tensors: per query block,
// the output tile and ln Σ exp = (m + log2 l) · ln 2 per row, -inf for a row
// that has seen no key (here rows 0..29: Sq = 100 > Skv = 70, causal).
// CHECK-LABEL: func.func @with_lse
// CHECK: %[[NEST:.+]]:2 = scf.forall (%[[B:.+]], %[[H:.+]], %[[QB:.+]]) in (2, 4, 4) shared_outs(%[[O:.+]] = %{{.+}}, %[[L:.+]] = %{{.+}}) -> (tensor<2x4x100x32xf32>, tensor<2x4x100xf32>)
// CHECK: %[[FIRST:.+]]:3 = scf.for
// CHECK: %[[STATE:.+]]:3 = scf.for {{.+}} iter_args(%{{.+}} = %[[FIRST]]#0,
// CHECK: %[[LSE:.+]] = linalg.generic {{.+}} ins(%[[STATE]]#0, %[[STATE]]#1 : tensor<32xf32>, tensor<32xf32>) outs(%{{.+}} : tensor<32xf32>)
// CHECK: %[[SEEN:.+]] = arith.cmpf ogt, %[[SUM:.+]], %{{.+}} : f32
// CHECK: %[[LOG:.+]] = math.log2 %[[SUM]] : f32
// CHECK: %[[ADD:.+]] = arith.addf %{{.+}}, %[[LOG]] : f32
// CHECK: %[[LN:.+]] = arith.mulf %[[ADD]], %{{.+}} : f32
// CHECK: arith.select %[[SEEN]], %[[LN]], %{{.+}} : f32
// CHECK: %[[ROWS:.+]] = tensor.extract_slice %[[LSE]][0] [%{{.+}}] [1] : tensor<32xf32> to tensor<?xf32>
// CHECK: scf.forall.in_parallel
// CHECK: tensor.parallel_insert_slice %{{.+}} into %[[O]][%[[B]], %[[H]], %{{.+}}, 0]
// CHECK: tensor.parallel_insert_slice %[[ROWS]] into %[[L]][%[[B]], %[[H]], %{{.+}}] [1, 1, %{{.+}}] [1, 1, 1] : tensor<?xf32> into tensor<2x4x100xf32>
// CHECK: return %[[NEST]]#0, %[[NEST]]#1
func.func @with_lse(%q: tensor<2x4x100x32xf32>, %k: tensor<2x2x70x32xf32>,
                    %v: tensor<2x2x70x32xf32>)
    -> (tensor<2x4x100x32xf32>, tensor<2x4x100xf32>) {
  %o, %lse = bpt.attention %q, %k, %v causal
      : (tensor<2x4x100x32xf32>, tensor<2x2x70x32xf32>, tensor<2x2x70x32xf32>)
      -> (tensor<2x4x100x32xf32>, tensor<2x4x100xf32>)
  return %o, %lse : tensor<2x4x100x32xf32>, tensor<2x4x100xf32>
}

// -----

// bpt.attention_grad: the row sums D = rowsum(dO ∘ O) first; then dK and dV
// per (batch, kv head, key block), summed over the group's query heads and
// the query blocks that see the key block (causal: from block
// max(kv0 - (Skv - Sq), 0) / q-block on), P recomputed as exp(scale·s −
// lse); then dQ per (batch, query head, query block) over the key blocks it
// sees. Every tile is written by one iteration: deterministic, no atomics.
// CHECK-LABEL: func.func @grad
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<1x4x64x16xf32>, %[[K:[^:]+]]: tensor<1x2x64x16xf32>, %[[O:[^:]+]]: tensor<1x4x64x16xf32>, %[[DO:[^:]+]]: tensor<1x4x64x16xf32>, %[[LSE:[^:]+]]: tensor<1x4x64xf32>)
// CHECK: %[[D:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[DO]], %[[O]] : {{.+}}) outs(%{{.+}} : tensor<1x4x64xf32>)
// CHECK: math.fma
// CHECK: %[[KV:.+]]:2 = scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (1, 2, 2) shared_outs({{.+}}) -> (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>)
// CHECK: %[[HEADS:.+]]:2 = scf.for %{{.+}} = %{{.+}} to %c2{{.*}} step
// CHECK: %[[FIRST:.+]] = arith.divsi
// CHECK: scf.for %{{.+}} = %[[FIRST]] to
// CHECK: math.exp
// CHECK: linalg.matmul indexing_maps = [#{{.+}}, #{{.+}}, #{{.+}}] ins(%{{.+}}, %{{.+}} : tensor<32x32xf32>, tensor<32x16xf32>)
// CHECK: linalg.matmul indexing_maps = [#{{.+}}, #{{.+}}, #{{.+}}] ins(%{{.+}}, %{{.+}} : tensor<32x32xf32>, tensor<32x16xf32>)
// CHECK: scf.forall.in_parallel
// CHECK-COUNT-2: tensor.parallel_insert_slice {{.+}} : tensor<32x16xf32> into tensor<1x2x64x16xf32>
// CHECK: %[[DQ:.+]] = scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (1, 4, 2) shared_outs({{.+}}) -> (tensor<1x4x64x16xf32>)
// CHECK: %[[END:.+]] = arith.ceildivsi
// CHECK: scf.for %{{.+}} = %{{.+}} to %[[END]]
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<32x32xf32>, tensor<32x16xf32>)
// CHECK: tensor.parallel_insert_slice {{.+}} : tensor<32x16xf32> into tensor<1x4x64x16xf32>
// CHECK: return %[[DQ]], %[[KV]]#0, %[[KV]]#1
func.func @grad(%q: tensor<1x4x64x16xf32>, %k: tensor<1x2x64x16xf32>,
                %o: tensor<1x4x64x16xf32>, %do: tensor<1x4x64x16xf32>,
                %lse: tensor<1x4x64xf32>)
    -> (tensor<1x4x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %k, %o, %do, %lse causal
      : (tensor<1x4x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>,
         tensor<1x4x64x16xf32>, tensor<1x4x64x16xf32>, tensor<1x4x64xf32>)
      -> (tensor<1x4x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>)
  return %dq, %dk, %dv
      : tensor<1x4x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>
}
