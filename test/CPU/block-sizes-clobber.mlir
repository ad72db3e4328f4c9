// Regression: compiled functions must not write into their inputs. One-shot
// bufferization treats function arguments as writable, so a residual
// arith.addf %x, %y used to be computed in place in %x's buffer; running
// several configurations on the same inputs (--block-sizes) then fed later
// runs a clobbered x. bpt-readonly-inputs (in bpt-to-cpu's bufferization
// stage) marks the arguments bufferization.writable = false.

// RUN: rm -rf %t && split-file %s %t

//--- add_twice.mlir
// The smallest reproducer: the same configuration twice; the second run
// computes (x + y) + y.
// RUN: bpt-cpu-run %t/add_twice.mlir --function=add_twice --block-sizes=16:16,16:16 --seed=81 | FileCheck %s --check-prefix=ADD
// ADD: q-block 16, kv-block 16:
// ADD-NEXT: output 0 tensor<4x8xf32>: relative error {{.*}}: PASS
// ADD: q-block 16, kv-block 16:
// ADD-NEXT: output 0 tensor<4x8xf32>: relative error {{.*}}: PASS
// ADD: {{^PASS$}}
func.func @add_twice(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %r = arith.addf %x, %y : tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

//--- block_unfused.mlir
// A GQA rms_norm swiglu causal block, batch 2, S = 100, unfused: the first
// residual is written into x, and the error grows with each configuration
// (9.6e-2, 2.0e-1, 3.0e-1, 4.1e-1).
// RUN: bpt-cpu-run %t/block_unfused.mlir --function=block_unfused --block-sizes=32:32,7:13,100:100,128:256,1:50 --seed=65 --no-fuse | FileCheck %s --check-prefix=UNFUSED
// UNFUSED: q-block 32, kv-block 32:
// UNFUSED-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// UNFUSED: q-block 7, kv-block 13:
// UNFUSED-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// UNFUSED: q-block 100, kv-block 100:
// UNFUSED-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// UNFUSED: q-block 128, kv-block 256:
// UNFUSED-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// UNFUSED: q-block 1, kv-block 50:
// UNFUSED-NEXT: output 0 tensor<2x100x64xf32>: relative error {{.*}}: PASS
// UNFUSED: {{^PASS$}}
func.func @block_unfused(%x: tensor<2x100x64xf32>, %g1: tensor<64xf32>, %wq: tensor<64x64xf32>,
                         %wk: tensor<64x32xf32>, %wv: tensor<64x32xf32>, %wo: tensor<64x64xf32>,
                         %g2: tensor<64xf32>, %w1: tensor<64x176xf32>, %w2: tensor<176x64xf32>,
                         %w3: tensor<64x176xf32>) -> tensor<2x100x64xf32> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2, gate %w3) heads(4) kv_heads(2) causal
      activation(swiglu) norm(rms_norm)
      : (tensor<2x100x64xf32>, tensor<64xf32>, tensor<64x64xf32>,
         tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x64xf32>,
         tensor<64xf32>, tensor<64x176xf32>, tensor<176x64xf32>,
         tensor<64x176xf32>) -> tensor<2x100x64xf32>
  return %y : tensor<2x100x64xf32>
}

//--- block_bf16.mlir
// A bf16 MHA layer_norm gelu block, batch 1, not causal, S = 90, fused: the
// 90:90 configuration (one query block, the loop folds away) writes both
// residuals into x, so the 128:128 one after it fails (3.6e-1).
// RUN: bpt-cpu-run %t/block_bf16.mlir --function=block_bf16 --block-sizes=16:16,7:13,90:90,128:128 --seed=66 | FileCheck %s --check-prefix=BLOCK-BF16
// BLOCK-BF16: q-block 16, kv-block 16:
// BLOCK-BF16-NEXT: output 0 tensor<1x90x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// BLOCK-BF16: q-block 7, kv-block 13:
// BLOCK-BF16-NEXT: output 0 tensor<1x90x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// BLOCK-BF16: q-block 90, kv-block 90:
// BLOCK-BF16-NEXT: output 0 tensor<1x90x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// BLOCK-BF16: q-block 128, kv-block 128:
// BLOCK-BF16-NEXT: output 0 tensor<1x90x64xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// BLOCK-BF16: {{^PASS$}}
func.func @block_bf16(%x: tensor<1x90x64xbf16>, %g1: tensor<64xbf16>, %b1: tensor<64xbf16>,
                      %wq: tensor<64x64xbf16>, %wk: tensor<64x64xbf16>, %wv: tensor<64x64xbf16>,
                      %wo: tensor<64x64xbf16>, %g2: tensor<64xbf16>, %b2: tensor<64xbf16>,
                      %w1: tensor<64x256xbf16>, %w2: tensor<256x64xbf16>) -> tensor<1x90x64xbf16> {
  %y = bpt.transformer_block %x norm1(%g1, %b1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2, %b2) ffn(%w1, %w2) heads(4) kv_heads(4) activation(gelu)
      norm(layer_norm)
      : (tensor<1x90x64xbf16>, tensor<64xbf16>, tensor<64xbf16>, tensor<64x64xbf16>,
         tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<64xbf16>,
         tensor<64xbf16>, tensor<64x256xbf16>, tensor<256x64xbf16>) -> tensor<1x90x64xbf16>
  return %y : tensor<1x90x64xbf16>
}
