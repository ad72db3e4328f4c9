// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chunk-rows=128" --bpt-decompose-block --bpt-block-to-sm90 --verify-diagnostics | FileCheck %s
// RUN: not bpt-opt %s --bpt-select-strategy="chunk-rows=-128" 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: error: bpt-select-strategy: chunk-rows must be 0 or a positive multiple of 128, got -128

// Two sequences of 256 rows, chunks of 128, GQA 4:2 with head dim 64. Q
// (then the attention's output), K and V ([512, 256], [512, 128]) span the
// rows; h1, h2 and u are one chunk.
// CHECK-LABEL: func.func @block
// CHECK-NOT: bpt.transformer_block
// CHECK: %[[X:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2]] : memref<2x256x256xbf16> into memref<512x256xbf16>
// CHECK: %[[H1:.+]] = memref.alloc() {bpt.buffer_name = "attention_norm"} : memref<128x256xbf16>
// CHECK: %[[Q:.+]] = memref.alloc() {bpt.buffer_name = "query_then_attention"} : memref<512x256xbf16>
// CHECK: %[[K:.+]] = memref.alloc() {bpt.buffer_name = "key"} : memref<512x128xbf16>
// CHECK: %[[V:.+]] = memref.alloc() {bpt.buffer_name = "value"} : memref<512x128xbf16>
// CHECK: %[[H2:.+]] = memref.alloc() {bpt.buffer_name = "ffn_norm"} : memref<128x256xbf16>
// CHECK: %[[U:.+]] = memref.alloc() {bpt.buffer_name = "ffn_hidden"} : memref<128x512xbf16>
// CHECK-NOT: memref.alloc() {{.*}}: memref<512x512xbf16>
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x256x256xbf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[OUT]]

// Phase A: norm1, then Q, K and V for each of the 4 chunks (rows 0, 128,
// 256, 384): norm1 runs once a chunk.
// CHECK: gpu.launch_func @bpt_sm90::@rms_norm_bf16_x512_o128_h256_eps1em05 blocks in (%c16, {{.+}} threads in (%c256, {{.+}} args(%[[X]] : memref<512x256xbf16>, %{{.+}} : memref<256xbf16>, %[[H1]] : memref<128x256xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c512_n256_k256 {{.+}}, %[[Q]] : memref<512x256xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c512_n128_k256 {{.+}}, %[[K]] : memref<512x128xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c512_n128_k256 {{.+}}, %[[V]] : memref<512x128xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: @rms_norm_bf16_x512_o128_h256_eps1em05 {{.+}}, %c128_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: @gemm_sm90_a128_c512_n256_k256 {{.+}}, %c0_i32{{.*}} : i32, %c128_i32{{.*}} : i32)
// CHECK-COUNT-2: @gemm_sm90_a128_c512_n128_k256 {{.+}}, %c0_i32{{.*}} : i32, %c128_i32{{.*}} : i32)
// CHECK: @rms_norm_bf16_x512_o128_h256_eps1em05 {{.+}}, %c256_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: @rms_norm_bf16_x512_o128_h256_eps1em05 {{.+}}, %c384_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: @gemm_sm90_a128_c512_n256_k256 {{.+}}, %c0_i32{{.*}} : i32, %c384_i32{{.*}} : i32)
// CHECK-COUNT-2: @gemm_sm90_a128_c512_n128_k256 {{.+}}, %c0_i32{{.*}} : i32, %c384_i32{{.*}} : i32)

// Phase B: one attention launch (2 query blocks x 4 heads x 2 sequences),
// written over Q; phase C: one output projection of all 512 rows into
// out's rows, x the residual.
// CHECK-NOT: @rms_norm
// CHECK: gpu.launch_func @bpt_sm90::@attention_sm90_d64_causal_tokens_h4_kv2_s256_b2 blocks in (%c16{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c384{{.*}}, {{.+}}, %[[Q]] : memref<512x256xbf16>)
// CHECK-NOT: @rms_norm
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a512_c512_n256_k256_residual512 {{.+}}, %[[ROWS]] : memref<512x256xbf16>, %[[X]] : memref<512x256xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)

// Phase D, per chunk: norm2 of out's rows, the FFN's up GEMM into u, and
// the down GEMM adding out's rows to themselves (chunk 3: rows 384..).
// CHECK-COUNT-3: @gemm_sm90_a128_c512_n256_k512_residual512
// CHECK: gpu.launch_func @bpt_sm90::@rms_norm_bf16_x512_o128_h256_eps1em05 {{.+}} args(%[[ROWS]] : memref<512x256xbf16>, %{{.+}} : memref<256xbf16>, %[[H2]] : memref<128x256xbf16>, %c384_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c128_n512_k256_gelu {{.+}}, %[[U]] : memref<128x512xbf16>
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c512_n256_k512_residual512 {{.+}}, %[[ROWS]] : memref<512x256xbf16>, %[[ROWS]] : memref<512x256xbf16>, %c0_i32{{.*}} : i32, %c384_i32{{.*}} : i32, %c384_i32{{.*}} : i32)
// CHECK-NOT: gpu.launch_func
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable

// The norm kernel: 16-byte loads, warp sums, rsqrt, 16-byte stores.
// CHECK: gpu.func @rms_norm_bf16_x512_o128_h256_eps1em05(
// CHECK: llvm.load %{{.+}} {alignment = 16 : i64} : !llvm.ptr -> vector<8xbf16>
// CHECK: nvvm.shfl.sync bfly
// CHECK: llvm.call_intrinsic "llvm.nvvm.rsqrt.approx.ftz.f"
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr

func.func @block(%x: tensor<2x256x256xbf16>, %g: tensor<256xbf16>,
                 %wq: tensor<256x256xbf16>, %wkv: tensor<256x128xbf16>,
                 %wo: tensor<256x256xbf16>, %w1: tensor<256x512xbf16>,
                 %w2: tensor<512x256xbf16>) -> tensor<2x256x256xbf16> {
  %y = bpt.transformer_block %x norm1(%g) attention(%wq, %wkv, %wkv, %wo)
      norm2(%g) ffn(%w1, %w2) heads(4) kv_heads(2) causal activation(gelu)
      norm(rms_norm)
      : (tensor<2x256x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x128xbf16>, tensor<256x128xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>)
      -> tensor<2x256x256xbf16>
  return %y : tensor<2x256x256xbf16>
}

// -----

// What the sm_90a block does not cover is expanded for the mma.sync path
// (its pieces get strategies of their own from a second
// bpt-select-strategy, not run here), or into portable pieces where the
// mma.sync expansion refuses it too (head dimension 32); bpt-block-to-sm90
// builds no kernel for either.
// CHECK-LABEL: func.func @not_eligible
// CHECK-NOT: gpu.launch_func
// CHECK: bpt.attention %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} : (tensor<1x2x128x64xbf16>
// CHECK-NOT: gpu.launch_func
// CHECK: bpt.attention %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} : (tensor<1x2x100x128xbf16>
// CHECK-NOT: gpu.launch_func
// CHECK: bpt.attention {{.+}}#bpt.strategy<portable{{.+}}tensor<1x4x128x32xbf16>
// CHECK-NOT: gpu.launch_func
func.func @not_eligible(%x: tensor<1x128x128xbf16>, %g: tensor<128xbf16>,
                        %w: tensor<128x128xbf16>, %x2: tensor<1x100x256xbf16>,
                        %g2: tensor<256xbf16>, %w2: tensor<256x256xbf16>)
    -> (tensor<1x128x128xbf16>, tensor<1x100x256xbf16>, tensor<1x128x128xbf16>) {
  // expected-remark @below {{transformer_block does not take the wgmma path: hidden size 128 is not a multiple of 256}}
  // expected-remark @below {{transformer_block takes the mma.sync path instead: expanded, its attention, projections and FFN take strategies of their own}}
  %0 = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w, %w) heads(2) kv_heads(2) activation(relu) norm(rms_norm)
      : (tensor<1x128x128xbf16>, tensor<128xbf16>, tensor<128x128xbf16>,
         tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128x128xbf16>,
         tensor<128xbf16>, tensor<128x128xbf16>, tensor<128x128xbf16>)
      -> tensor<1x128x128xbf16>
  // expected-remark @below {{transformer_block does not take the wgmma path: sequence length 100 is not a multiple of 128 (the block's token-major attention kernel takes whole 128-row blocks only)}}
  // expected-remark @below {{transformer_block takes the mma.sync path instead: expanded, its attention, projections and FFN take strategies of their own}}
  %1 = bpt.transformer_block %x2 norm1(%g2) attention(%w2, %w2, %w2, %w2)
      norm2(%g2) ffn(%w2, %w2) heads(2) kv_heads(2) activation(relu)
      norm(rms_norm)
      : (tensor<1x100x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x256xbf16>, tensor<256x256xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x256xbf16>, tensor<256x256xbf16>)
      -> tensor<1x100x256xbf16>
  // expected-remark @below {{transformer_block does not take the wgmma path: head dimension 32 (64 and 128 are supported)}}
  // expected-remark @below {{transformer_block does not take the mma.sync path: head dimension 32 (64 and 128 are supported)}}
  %2 = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w, %w) heads(4) kv_heads(4) activation(relu) norm(rms_norm)
      : (tensor<1x128x128xbf16>, tensor<128xbf16>, tensor<128x128xbf16>,
         tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128x128xbf16>,
         tensor<128xbf16>, tensor<128x128xbf16>, tensor<128x128xbf16>)
      -> tensor<1x128x128xbf16>
  return %0, %1, %2 : tensor<1x128x128xbf16>, tensor<1x100x256xbf16>,
                      tensor<1x128x128xbf16>
}

// -----

// A hidden size above the norm kernel's 4096 (a lane holds hidden / 32 f32
// values): expanded, not chunked.
// CHECK-LABEL: func.func @wide_hidden
// CHECK-NOT: gpu.launch_func
// CHECK: bpt.rms_norm
func.func @wide_hidden(%x: tensor<1x128x8192xbf16>, %g: tensor<8192xbf16>,
                       %w: tensor<8192x8192xbf16>) -> tensor<1x128x8192xbf16> {
  // expected-remark @below {{transformer_block does not take the wgmma path: hidden size 8192 is above the norm kernel's 4096 (a warp holds a row in registers)}}
  // expected-remark @below {{transformer_block takes the mma.sync path instead: expanded, its attention, projections and FFN take strategies of their own}}
  %0 = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w) norm2(%g)
      ffn(%w, %w) heads(64) kv_heads(64) activation(relu) norm(rms_norm)
      : (tensor<1x128x8192xbf16>, tensor<8192xbf16>, tensor<8192x8192xbf16>,
         tensor<8192x8192xbf16>, tensor<8192x8192xbf16>, tensor<8192x8192xbf16>,
         tensor<8192xbf16>, tensor<8192x8192xbf16>, tensor<8192x8192xbf16>)
      -> tensor<1x128x8192xbf16>
  return %0 : tensor<1x128x8192xbf16>
}
