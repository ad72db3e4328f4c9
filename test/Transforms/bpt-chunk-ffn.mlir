// RUN: bpt-opt %s --split-input-file --bpt-chunk-ffn --verify-diagnostics | FileCheck %s
// A second run changes nothing (a tail is a chunk already).
// RUN: bpt-opt %s --split-input-file --bpt-chunk-ffn --bpt-chunk-ffn --verify-diagnostics | FileCheck %s

// A wgmma FFN on [2, 256, 256] in chunks of 128 rows: a loop over the 4
// chunks of the [512, 256] rows, the FFN of one chunk in its body.
// CHECK-LABEL: func.func @wgmma
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x256x256xbf16>, %[[W1:[^:]+]]: tensor<256x512xbf16>, %[[W2:[^:]+]]: tensor<512x256xbf16>)
// CHECK: %[[ROWS:.+]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<2x256x256xbf16> into tensor<512x256xbf16>
// CHECK: %[[LOOP:.+]] = scf.forall (%[[C:.+]]) in (4) shared_outs(%[[O:.+]] = %{{.+}}) -> (tensor<512x256xbf16>)
// CHECK: %[[R0:.+]] = arith.muli %[[C]], %{{.+}} : index
// CHECK: %[[XC:.+]] = tensor.extract_slice %[[ROWS]][%[[R0]], 0] [128, 256] [1, 1]
// CHECK: %[[F:.+]] = bpt.ffn gelu %[[XC]], %[[W1]], %[[W2]] : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
// CHECK-NOT: bpt.strategy
// CHECK: tensor.parallel_insert_slice %[[F]] into %[[O]][%[[R0]], 0] [128, 256] [1, 1]
// CHECK: } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 128>}
// CHECK: %[[Y:.+]] = tensor.expand_shape %[[LOOP]] {{\[}}[0, 1], [2]] output_shape [2, 256, 256]
// CHECK: return %[[Y]]
func.func @wgmma(%x: tensor<2x256x256xbf16>, %w1: tensor<256x512xbf16>,
                 %w2: tensor<512x256xbf16>) -> tensor<2x256x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2 {bpt.strategy = #bpt.strategy<wgmma,
      chip = "sm_90a", warps = 12, chunk_rows = 128>}
      : (tensor<2x256x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x256x256xbf16>
  return %0 : tensor<2x256x256xbf16>
}

// -----

// mma.sync, gated, already [rows, hidden]: no reshape; one chunk.
// CHECK-LABEL: func.func @mma_sync_rows
// CHECK-NOT: tensor.collapse_shape
// CHECK: scf.forall (%{{.+}}) in (1)
// CHECK: bpt.ffn swiglu %{{.+}}, %{{.+}}, %{{.+}}, gate %{{.+}} : (tensor<256x128xf16>
// CHECK: } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = #bpt.strategy<mma_sync
// CHECK-NOT: tensor.expand_shape
func.func @mma_sync_rows(%x: tensor<256x128xf16>, %w1: tensor<128x256xf16>,
                         %w2: tensor<256x128xf16>) -> tensor<256x128xf16> {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %w1 {bpt.strategy =
      #bpt.strategy<mma_sync, chip = "sm_86", chunk_rows = 256>}
      : (tensor<256x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>,
         tensor<128x256xf16>) -> tensor<256x128xf16>
  return %0 : tensor<256x128xf16>
}

// -----

// Portable FFNs and FFNs without a strategy stay whole.
// CHECK-LABEL: func.func @portable
// CHECK-NOT: scf.forall
// CHECK-COUNT-2: bpt.ffn relu
func.func @portable(%x: tensor<1x128x64xf32>, %w1: tensor<64x128xf32>,
                    %w2: tensor<128x64xf32>) -> tensor<1x128x64xf32> {
  %0 = bpt.ffn relu %x, %w1, %w2 {bpt.strategy = #bpt.strategy<portable,
      chip = "sm_90a", q_block = 64, kv_block = 64>}
      : (tensor<1x128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>)
      -> tensor<1x128x64xf32>
  %1 = bpt.ffn relu %0, %w1, %w2
      : (tensor<1x128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>)
      -> tensor<1x128x64xf32>
  return %1 : tensor<1x128x64xf32>
}

// -----

// 384 rows in chunks of 256: one whole chunk in the loop, and the tail of
// 128 rows after it, an FFN with its own strategy (its rows as its one
// chunk) inserted into the loop's result.
// CHECK-LABEL: func.func @tail
// CHECK: %[[ROWS:.+]] = tensor.collapse_shape
// CHECK: %[[LOOP:.+]] = scf.forall (%{{.+}}) in (1) shared_outs(%{{.+}} = %{{.+}}) -> (tensor<384x256xbf16>)
// CHECK: bpt.ffn gelu %{{.+}} : (tensor<256x256xbf16>
// CHECK: tensor.parallel_insert_slice %{{.+}} into %{{.+}}[%{{.+}}, 0] [256, 256] [1, 1]
// CHECK: } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 256>}
// CHECK: %[[XT:.+]] = tensor.extract_slice %[[ROWS]][256, 0] [128, 256] [1, 1] : tensor<384x256xbf16> to tensor<128x256xbf16>
// CHECK: %[[T:.+]] = bpt.ffn gelu %[[XT]], %{{.+}}, %{{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 128>}
// CHECK: %[[ALL:.+]] = tensor.insert_slice %[[T]] into %[[LOOP]][256, 0] [128, 256] [1, 1]
// CHECK: tensor.expand_shape %[[ALL]]
// CHECK-NOT: bpt.ffn
func.func @tail(%x: tensor<1x384x256xbf16>, %w1: tensor<256x512xbf16>,
                %w2: tensor<512x256xbf16>) -> tensor<1x384x256xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2 {bpt.strategy = #bpt.strategy<wgmma,
      chip = "sm_90a", warps = 12, chunk_rows = 256>}
      : (tensor<1x384x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<1x384x256xbf16>
  return %0 : tensor<1x384x256xbf16>
}

// -----

func.func @chunk_above_the_rows(%x: tensor<1x384x256xbf16>, %w1: tensor<256x512xbf16>,
                                %w2: tensor<512x256xbf16>) -> tensor<1x384x256xbf16> {
  // expected-error @below {{bpt-chunk-ffn: strategy #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 512> has chunks of 512 rows, not 1 to its 384 rows}}
  %0 = bpt.ffn gelu %x, %w1, %w2 {bpt.strategy = #bpt.strategy<wgmma,
      chip = "sm_90a", warps = 12, chunk_rows = 512>}
      : (tensor<1x384x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<1x384x256xbf16>
  return %0 : tensor<1x384x256xbf16>
}
