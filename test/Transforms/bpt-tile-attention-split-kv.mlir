// RUN: bpt-opt %s --bpt-tile-attention | FileCheck %s

// An attention whose strategy has kv_splits is two nests. The partial nest
// over (batch, key/value head, split) packs the group's query heads (2 × 3
// rows) as one tile, runs the online softmax over its split's key blocks
// (100 keys in 7 blocks of 16, 3 splits of 3 blocks: the unmasked ones up
// to the first row's diagonal, then the masked ones, both within the
// split), and writes normalised f32 rows and their log-sum-exp. The
// combine nest over (batch, query head, query row) merges the splits.
// CHECK-LABEL: func.func @causal_gqa
// CHECK-SAME: (%[[Q:.+]]: tensor<1x4x3x32xbf16>, %[[K:.+]]: tensor<1x2x100x32xbf16>, %[[V:.+]]: tensor<1x2x100x32xbf16>)
// CHECK: %[[PE:.+]] = tensor.empty() : tensor<1x2x3x6x32xf32>
// CHECK: %[[LE:.+]] = tensor.empty() : tensor<1x2x3x6xf32>
// CHECK: %[[P:.+]]:2 = scf.forall (%[[B:.+]], %[[KVH:.+]], %[[S:.+]]) in (1, 2, 3) shared_outs(%[[PO:.+]] = %[[PE]], %[[LO:.+]] = %[[LE]])
// CHECK: %[[H0:.+]] = arith.muli %[[KVH]], %{{.+}} : index
// CHECK: %[[QS:.+]] = tensor.extract_slice %[[Q]][%[[B]], %[[H0]], 0, 0] [1, 2, 3, 32] [1, 1, 1, 1] : tensor<1x4x3x32xbf16> to tensor<2x3x32xbf16>
// CHECK: %[[QR:.+]] = tensor.collapse_shape %[[QS]] {{\[\[}}0, 1], [2]] : tensor<2x3x32xbf16> into tensor<6x32xbf16>
// CHECK: %[[QT:.+]] = linalg.copy ins(%[[QR]] : tensor<6x32xbf16>)
// The split's key blocks [3 s, min(3 s + 3, 7)).
// CHECK: %[[LO_:.+]] = arith.muli %[[S]], %[[C3:.+]] : index
// CHECK: %[[HI0:.+]] = arith.addi %[[LO_]], %{{.+}} : index
// CHECK: %[[HI:.+]] = arith.minsi %[[HI0]], %{{.+}} : index
// CHECK: %[[MS:.+]] = arith.maxsi %[[LO_]], %[[FULL:.+]] : index
// CHECK: %[[UE:.+]] = arith.minsi %[[FULL]], %[[HI]] : index
// CHECK: %[[ME:.+]] = arith.minsi %{{.+}}, %[[HI]] : index
// CHECK: %[[R1:.+]]:3 = scf.for %{{.+}} = %[[LO_]] to %[[UE]] step
// CHECK: tensor.extract_slice %[[K]][%[[B]], %[[KVH]], %{{.+}}, 0] [1, 1, 16, 32]
// CHECK: linalg.matmul {{.*}} ins(%[[QT]], %{{.+}} : tensor<6x32xbf16>, tensor<16x32xbf16>) outs(%{{.+}} : tensor<6x16xf32>)
// CHECK: scf.for %{{.+}} = %[[MS]] to %[[ME]] step %{{.+}} iter_args(%{{.+}} = %[[R1]]#0, %{{.+}} = %[[R1]]#1, %{{.+}} = %[[R1]]#2)
// Masked: the row's position is its index modulo Sq (3).
// CHECK: linalg.index 0
// CHECK: arith.remui %{{.+}}, %{{.+}} : index
// The tile normalised in f32 (no rounding) and the lse.
// CHECK: math.log2
// CHECK: tensor.parallel_insert_slice %{{.+}} into %[[PO]][%[[B]], %[[KVH]], %[[S]], 0, 0] [1, 1, 1, 6, 32] [1, 1, 1, 1, 1] : tensor<6x32xf32> into tensor<1x2x3x6x32xf32>
// CHECK: tensor.parallel_insert_slice %{{.+}} into %[[LO]][%[[B]], %[[KVH]], %[[S]], 0] [1, 1, 1, 6] [1, 1, 1, 1] : tensor<6xf32> into tensor<1x2x3x6xf32>
// CHECK: bpt.nest = #bpt.split_kv_nest<partial, causal = true, scale = {{[0-9.e+-]+}}>
// CHECK-SAME: bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", q_block = 16, kv_block = 16, kv_splits = 3>
// CHECK: %[[OUT:.+]] = scf.forall (%[[B2:.+]], %[[H:.+]], %[[I:.+]]) in (1, 4, 3) shared_outs(%[[O:.+]] = %{{.+}}) -> (tensor<1x4x3x32xbf16>)
// Row (h % 2) · 3 + i of key/value head h / 2.
// CHECK: %[[G:.+]] = arith.divui %[[H]], %{{.+}} : index
// CHECK: %[[HR:.+]] = arith.remui %[[H]], %{{.+}} : index
// CHECK: %[[R0:.+]] = arith.muli %[[HR]], %{{.+}} : index
// CHECK: %[[ROW:.+]] = arith.addi %[[R0]], %[[I]] : index
// CHECK: tensor.extract_slice %[[P]]#1[%[[B2]], %[[G]], 0, %[[ROW]]] [1, 1, 3, 1] [1, 1, 1, 1] : tensor<1x2x3x6xf32> to tensor<3xf32>
// CHECK: tensor.extract_slice %[[P]]#0[%[[B2]], %[[G]], 0, %[[ROW]], 0] [1, 1, 3, 1, 32] [1, 1, 1, 1, 1] : tensor<1x2x3x6x32xf32> to tensor<3x32xf32>
// Max, weights exp2((lse − max) · log2 e), their sum, Σ w·O, the quotient.
// CHECK: arith.maximumf
// CHECK: math.exp2
// CHECK: arith.addf
// CHECK: arith.divf
// CHECK: arith.truncf %{{.+}} : f32 to bf16
// CHECK: tensor.parallel_insert_slice %{{.+}} into %[[O]][%[[B2]], %[[H]], %[[I]], 0] [1, 1, 1, 32] [1, 1, 1, 1] : tensor<32xbf16> into tensor<1x4x3x32xbf16>
// CHECK: bpt.nest = #bpt.split_kv_nest<combine, causal = true, scale = {{[0-9.e+-]+}}>
// CHECK: return %[[OUT]]
func.func @causal_gqa(%q: tensor<1x4x3x32xbf16>, %k: tensor<1x2x100x32xbf16>,
                      %v: tensor<1x2x100x32xbf16>) -> tensor<1x4x3x32xbf16> {
  %o = bpt.attention %q, %k, %v causal {bpt.strategy = #bpt.strategy<portable,
      chip = "sm_90a", q_block = 16, kv_block = 16, kv_splits = 3>}
      : (tensor<1x4x3x32xbf16>, tensor<1x2x100x32xbf16>, tensor<1x2x100x32xbf16>)
        -> tensor<1x4x3x32xbf16>
  return %o : tensor<1x4x3x32xbf16>
}
