// Shapes beyond what a tensor-core kernel can launch take the portable path,
// with a remark, before the cost model runs: huge batch × heads made it
// divide by zero (SIGFPE), a 2^40-row causal query made it loop for minutes.
// The block and FFN kernels unroll one launch sequence per chunk: their
// chunk is raised to keep at most 1024 chunks (compile time and memory grew
// with the sequence).
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_80 2>&1 >/dev/null | FileCheck %s --check-prefix=SM80
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chunk-rows=8192 2>/dev/null | FileCheck %s --check-prefix=CHUNKS

// CHECK-LABEL: func.func @many_rows
// CHECK: #bpt.strategy<portable
// SM80: attention does not take the mma.sync path: more rows than 32-bit row offsets and TMA coordinates address
func.func @many_rows(%q: tensor<1x8x1099511627776x64xbf16>)
    -> tensor<1x8x1099511627776x64xbf16> {
  // expected-remark @below {{attention does not take the wgmma path: more rows than 32-bit row offsets and TMA coordinates address}}
  // expected-remark @below {{attention does not take the mma.sync path: more rows than 32-bit row offsets and TMA coordinates address}}
  %0 = bpt.attention %q, %q, %q causal
      : (tensor<1x8x1099511627776x64xbf16>, tensor<1x8x1099511627776x64xbf16>,
         tensor<1x8x1099511627776x64xbf16>) -> tensor<1x8x1099511627776x64xbf16>
  return %0 : tensor<1x8x1099511627776x64xbf16>
}

// -----

// CHECK-LABEL: func.func @many_heads
// CHECK: #bpt.strategy<portable
// SM80: attention does not take the mma.sync path: 65536 heads and batch 1: a grid's y and z take at most 65535 blocks
func.func @many_heads(%q: tensor<1x65536x128x64xbf16>, %kv: tensor<1x1x128x64xbf16>)
    -> tensor<1x65536x128x64xbf16> {
  // expected-remark @below {{attention does not take the wgmma path: 65536 heads and batch 1: a grid's y and z take at most 65535 blocks}}
  // expected-remark @below {{attention does not take the mma.sync path: 65536 heads and batch 1: a grid's y and z take at most 65535 blocks}}
  %0 = bpt.attention %q, %kv, %kv
      : (tensor<1x65536x128x64xbf16>, tensor<1x1x128x64xbf16>,
         tensor<1x1x128x64xbf16>) -> tensor<1x65536x128x64xbf16>
  return %0 : tensor<1x65536x128x64xbf16>
}

// -----

// Batch × heads above int64 once multiplied by the query blocks.
// CHECK-LABEL: func.func @huge_batch_heads
// CHECK: #bpt.strategy<portable
func.func @huge_batch_heads(%q: tensor<4194304x4194304x128x64xbf16>)
    -> tensor<4194304x4194304x128x64xbf16> {
  // expected-remark @below {{attention does not take the wgmma path: more rows than 32-bit row offsets and TMA coordinates address}}
  // expected-remark @below {{attention does not take the mma.sync path: more rows than 32-bit row offsets and TMA coordinates address}}
  %0 = bpt.attention %q, %q, %q causal
      : (tensor<4194304x4194304x128x64xbf16>, tensor<4194304x4194304x128x64xbf16>,
         tensor<4194304x4194304x128x64xbf16>) -> tensor<4194304x4194304x128x64xbf16>
  return %0 : tensor<4194304x4194304x128x64xbf16>
}

// -----

// 4M rows in 2048-row chunks would be 2048 launch sequences: the chunk is
// raised to 4096 rows (1024 chunks), or given as chunk-rows.
// CHECK-LABEL: func.func @many_chunks
// CHECK: #bpt.strategy<wgmma, {{.*}}chunk_rows = 4096
// CHUNKS-LABEL: func.func @many_chunks
// CHUNKS: #bpt.strategy<wgmma, {{.*}}chunk_rows = 8192
func.func @many_chunks(
    %x: tensor<1x4194304x256xbf16>, %g: tensor<256xbf16>, %w: tensor<256x256xbf16>,
    %w1: tensor<256x1024xbf16>, %w2: tensor<1024x256xbf16>) -> tensor<1x4194304x256xbf16> {
  // expected-remark @below {{chunk rows raised from 2048 to 4096: at most 1024 chunks are unrolled into launches}}
  %y = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w)
      norm2(%g) ffn(%w1, %w2) heads(4) kv_heads(4) causal activation(gelu)
      norm(rms_norm)
      : (tensor<1x4194304x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x256xbf16>, tensor<256x256xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x1024xbf16>, tensor<1024x256xbf16>)
        -> tensor<1x4194304x256xbf16>
  return %y : tensor<1x4194304x256xbf16>
}

// -----

// A chunk lies in one sequence: 4096 sequences of 128 rows cannot be fewer
// than 4096 chunks, so the wgmma block refuses it and the block is expanded
// for the mma.sync path instead (its pieces then take strategies of their
// own, the FFN's chunk not bound to a sequence).
// CHECK-LABEL: func.func @many_sequences
// CHECK: #bpt.strategy<mma_sync, chip = "sm_90a">
func.func @many_sequences(
    %x: tensor<4096x128x256xbf16>, %g: tensor<256xbf16>, %w: tensor<256x256xbf16>,
    %w1: tensor<256x1024xbf16>, %w2: tensor<1024x256xbf16>) -> tensor<4096x128x256xbf16> {
  // expected-remark @below {{transformer_block does not take the wgmma path: 4096 chunks of 128 rows, each its own launch sequence: at most 1024 (raise chunk-rows)}}
  // expected-remark @below {{transformer_block takes the mma.sync path instead: expanded, its attention, projections and FFN take strategies of their own}}
  %y = bpt.transformer_block %x norm1(%g) attention(%w, %w, %w, %w)
      norm2(%g) ffn(%w1, %w2) heads(4) kv_heads(4) causal activation(gelu)
      norm(rms_norm)
      : (tensor<4096x128x256xbf16>, tensor<256xbf16>, tensor<256x256xbf16>,
         tensor<256x256xbf16>, tensor<256x256xbf16>, tensor<256x256xbf16>,
         tensor<256xbf16>, tensor<256x1024xbf16>, tensor<1024x256xbf16>)
        -> tensor<4096x128x256xbf16>
  return %y : tensor<4096x128x256xbf16>
}

// -----

// The FFN's GEMMs are launched per chunk as well: 2^23 rows would be 1986
// chunks of the wave model's largest (4224 rows on 132 multiprocessors),
// 4096 of sm_80's 2048.
// CHECK-LABEL: func.func @ffn_many_chunks
// CHECK: #bpt.strategy<wgmma, {{.*}}chunk_rows = 8192
// SM80: remark: chunk rows raised from 2048 to 8192: at most 1024 chunks are unrolled into launches
// CHUNKS-LABEL: func.func @ffn_many_chunks
// CHUNKS: #bpt.strategy<wgmma, {{.*}}chunk_rows = 8192
func.func @ffn_many_chunks(%x: tensor<8388608x128xbf16>, %w1: tensor<128x128xbf16>,
                           %w2: tensor<128x128xbf16>) -> tensor<8388608x128xbf16> {
  // expected-remark @below {{chunk rows raised from 4224 to 8192: at most 1024 chunks are unrolled into launches}}
  %y = bpt.ffn gelu %x, %w1, %w2
      : (tensor<8388608x128xbf16>, tensor<128x128xbf16>, tensor<128x128xbf16>)
        -> tensor<8388608x128xbf16>
  return %y : tensor<8388608x128xbf16>
}
