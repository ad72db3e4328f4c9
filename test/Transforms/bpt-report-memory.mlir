// The memory claim, as numbers: after bufferization, the fused block's peak
// of live intermediate buffers has no S x ffn_width (nor S x S) term; the
// unfused one does. Hidden 64, 2 heads of 32, ffn 1024, f32, blocks of 32.
//
// RUN: bpt-opt %s --split-input-file --mlir-print-op-on-diagnostic=false --bpt-blockwise="q-block=32 kv-block=32" --bpt-to-cpu=report-memory=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=FUSED
// RUN: bpt-opt %s --split-input-file --mlir-print-op-on-diagnostic=false --bpt-blockwise="q-block=32 kv-block=32 fuse=false" --bpt-to-cpu=report-memory=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=UNFUSED
//
// Fused: the FFN intermediate is one [32, 1024] f32 tile (131072 bytes) at
// every S; what grows with S is only one [S, 64]-sized f32 buffer (the
// result is written into the caller's out-parameter):
//   S=128: 188416 = 131072 + 3 * 8192 + 128 * 64 * 4
//   S=512: 286720 = 131072 + 3 * 8192 + 512 * 64 * 4
// FUSED-NOT: memref<1x128x1024xf32>
// FUSED-NOT: memref<1x128x128xf32>
// FUSED: remark: bpt memory: peak 188416 bytes of live intermediate buffers
// FUSED: note: live at peak: 'memref<32x1024xf32>', 131072 bytes
// FUSED-NOT: memref<1x512x1024xf32>
// FUSED-NOT: memref<1x512x512xf32>
// FUSED: remark: bpt memory: peak 286720 bytes of live intermediate buffers
// FUSED: note: live at peak: 'memref<32x1024xf32>', 131072 bytes
//
// Unfused: the whole [S, 1024] FFN intermediate is live (S * 1024 * 4 bytes),
// plus two [S, 64] buffers: 589824 = 524288 + 2 * 32768 at S=128, and
// 2359296 = 2097152 + 2 * 131072 at S=512 (4x, as S).
// UNFUSED: remark: bpt memory: peak 589824 bytes of live intermediate buffers
// UNFUSED: note: live at peak: 'memref<1x128x1024xf32>', 524288 bytes
// UNFUSED: remark: bpt memory: peak 2359296 bytes of live intermediate buffers
// UNFUSED: note: live at peak: 'memref<1x512x1024xf32>', 2097152 bytes

func.func @block_s128(%x: tensor<1x128x64xf32>, %g: tensor<64xf32>, %w: tensor<64x64xf32>,
    %w1: tensor<64x1024xf32>, %w2: tensor<1024x64xf32>) -> tensor<1x128x64xf32> {
  %y = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w1, %w2) heads(2) kv_heads(2) causal activation(gelu) norm(rms_norm)
      : (tensor<1x128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x64xf32>,
         tensor<64x64xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x1024xf32>,
         tensor<1024x64xf32>) -> tensor<1x128x64xf32>
  return %y : tensor<1x128x64xf32>
}
// -----
func.func @block_s512(%x: tensor<1x512x64xf32>, %g: tensor<64xf32>, %w: tensor<64x64xf32>,
    %w1: tensor<64x1024xf32>, %w2: tensor<1024x64xf32>) -> tensor<1x512x64xf32> {
  %y = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w1, %w2) heads(2) kv_heads(2) causal activation(gelu) norm(rms_norm)
      : (tensor<1x512x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x64xf32>,
         tensor<64x64xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x1024xf32>,
         tensor<1024x64xf32>) -> tensor<1x512x64xf32>
  return %y : tensor<1x512x64xf32>
}
