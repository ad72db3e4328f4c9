// RUN: bpt-opt %s --split-input-file --bpt-select-strategy 2>/dev/null | FileCheck %s --check-prefix=SM90
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_80 2>/dev/null | FileCheck %s --check-prefix=SM80
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_75 2>/dev/null | FileCheck %s --check-prefix=SM75
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="tensor-cores=false q-block=32 kv-block=16" 2>/dev/null | FileCheck %s --check-prefix=OFF
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="sm90-kv-block=64 sm90-stages=3 sm80-q-block=128 sm80-kv-block=32 sm80-stages=4 chunk-rows=1024" 2>/dev/null | FileCheck %s --check-prefix=PINNED
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --bpt-select-strategy=chip=sm_80 2>/dev/null | FileCheck %s --check-prefix=RETARGET

// The strategy each op gets, as the attribute later passes read. Tilings
// not pinned are the cost model's (attention) or the GEMM kernels' rule.

// Attention: head dim 64 and 128, causal or not, whole blocks: wgmma on
// sm_90a (128-row query blocks, 12 warps), mma.sync on sm_80 (16 query
// rows a warp), portable (the q-block / kv-block options) without tensor
// cores or on older chips.
// SM90-LABEL: func.func @attention
// SM90: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = {{64|128}}, stages = {{[2-4]}}, warps = 12>}
// SM90: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = {{64|128}}, stages = {{[2-4]}}, warps = 12>}
// SM80-LABEL: func.func @attention
// SM80: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", q_block = {{64|128}}, kv_block = {{32|64|128}}, stages = {{[2-4]}}, warps = {{4|8}}>}
// SM80: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", q_block = {{64|128}}, kv_block = {{32|64|128}}, stages = {{[2-4]}}, warps = {{4|8}}>}
// SM75-LABEL: func.func @attention
// SM75-COUNT-2: {bpt.strategy = #bpt.strategy<portable, chip = "sm_75", q_block = 64, kv_block = 64>}
// OFF-LABEL: func.func @attention
// OFF-COUNT-2: {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", q_block = 32, kv_block = 16>}
// PINNED-LABEL: func.func @attention
// PINNED-COUNT-2: #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 64, stages = 3, warps = 12>
// A strategy for another chip is chosen again.
// RETARGET-LABEL: func.func @attention
// RETARGET-COUNT-2: #bpt.strategy<mma_sync, chip = "sm_80"
func.func @attention(%q64: tensor<2x8x1024x64xbf16>, %q128: tensor<1x4x512x128xf16>)
    -> (tensor<2x8x1024x64xbf16>, tensor<1x4x512x128xf16>) {
  %0 = bpt.attention %q64, %q64, %q64 causal
      : (tensor<2x8x1024x64xbf16>, tensor<2x8x1024x64xbf16>, tensor<2x8x1024x64xbf16>)
      -> tensor<2x8x1024x64xbf16>
  %1 = bpt.attention %q128, %q128, %q128
      : (tensor<1x4x512x128xf16>, tensor<1x4x512x128xf16>, tensor<1x4x512x128xf16>)
      -> tensor<1x4x512x128xf16>
  return %0, %1 : tensor<2x8x1024x64xbf16>, tensor<1x4x512x128xf16>
}

// -----

// Ragged lengths and GQA: the wgmma kernel takes any sequence length (a
// partial last block, zero-filled and masked), with the cost model's key
// block (or the pinned one); GQA takes either path.
// SM90-LABEL: func.func @ragged_gqa
// SM90: bpt.attention {{.+}}#bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = {{64|128}}, stages = {{[2-4]}}, warps = 12>
// SM90: bpt.attention {{.+}}#bpt.strategy<wgmma, chip = "sm_90a"
// SM80-LABEL: func.func @ragged_gqa
// SM80-COUNT-2: #bpt.strategy<mma_sync, chip = "sm_80"
// PINNED-LABEL: func.func @ragged_gqa
// PINNED-COUNT-2: #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 64, stages = 3, warps = 12>
func.func @ragged_gqa(%q: tensor<1x8x1000x128xbf16>, %kv: tensor<1x2x1531x128xbf16>,
                      %g: tensor<1x8x256x64xbf16>, %gkv: tensor<1x2x256x64xbf16>)
    -> (tensor<1x8x1000x128xbf16>, tensor<1x8x256x64xbf16>) {
  %0 = bpt.attention %q, %kv, %kv causal
      : (tensor<1x8x1000x128xbf16>, tensor<1x2x1531x128xbf16>, tensor<1x2x1531x128xbf16>)
      -> tensor<1x8x1000x128xbf16>
  %1 = bpt.attention %g, %gkv, %gkv
      : (tensor<1x8x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>)
      -> tensor<1x8x256x64xbf16>
  return %0, %1 : tensor<1x8x1000x128xbf16>, tensor<1x8x256x64xbf16>
}

// -----

// With a log-sum-exp result (the forward of training): the tensor-core
// paths as without it, their kernels write the lse too.
// SM90-LABEL: func.func @attention_lse
// SM90: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = {{64|128}}, stages = {{[2-4]}}, warps = 12>}
// SM80-LABEL: func.func @attention_lse
// SM80: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80"
func.func @attention_lse(%q: tensor<1x4x512x64xbf16>)
    -> (tensor<1x4x512x64xbf16>, tensor<1x4x512xf32>) {
  %o, %lse = bpt.attention %q, %q, %q causal
      : (tensor<1x4x512x64xbf16>, tensor<1x4x512x64xbf16>,
         tensor<1x4x512x64xbf16>)
      -> (tensor<1x4x512x64xbf16>, tensor<1x4x512xf32>)
  return %o, %lse : tensor<1x4x512x64xbf16>, tensor<1x4x512xf32>
}

// -----

// FFNs: chunked GEMMs on both tensor-core paths (any number of rows: 600
// rows are one chunk; more in bpt-select-strategy-ragged-rows.mlir). On
// wgmma the GEMMs' waves choose the chunk (8192 rows: two of 4096, whose
// gated up GEMMs take 3 waves of 132 tiles each, against 2 each for four
// chunks of 2048; bpt-select-strategy-ffn-waves.mlir); on mma.sync it is
// 2048 rows.
// SM90-LABEL: func.func @ffn
// SM90: bpt.ffn {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 4096>}
// SM90: bpt.ffn {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 600>}
// SM80-LABEL: func.func @ffn
// SM80: bpt.ffn {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", chunk_rows = 2048>}
// SM80: bpt.ffn {{.+}} {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", chunk_rows = 600>}
// PINNED-LABEL: func.func @ffn
// PINNED: #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 1024>
func.func @ffn(%x: tensor<2x4096x512xbf16>, %w1: tensor<512x1408xbf16>,
               %w2: tensor<1408x512xbf16>, %w3: tensor<512x1408xbf16>,
               %r: tensor<1x600x512xbf16>)
    -> (tensor<2x4096x512xbf16>, tensor<1x600x512xbf16>) {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %w3
      : (tensor<2x4096x512xbf16>, tensor<512x1408xbf16>, tensor<1408x512xbf16>,
         tensor<512x1408xbf16>) -> tensor<2x4096x512xbf16>
  %1 = bpt.ffn swiglu %r, %w1, %w2, gate %w3
      : (tensor<1x600x512xbf16>, tensor<512x1408xbf16>, tensor<1408x512xbf16>,
         tensor<512x1408xbf16>) -> tensor<1x600x512xbf16>
  return %0, %1 : tensor<2x4096x512xbf16>, tensor<1x600x512xbf16>
}

// -----

// Blocks: one strategy for the whole chunked kernel sequence on sm_90a (the
// chunk lies in one sequence: 1536 rows -> chunks of 1536); expanded into
// pieces on mma.sync chips; f32 is portable everywhere.
// SM90-LABEL: func.func @blocks
// SM90: bpt.transformer_block {{.+}}#bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = {{64|128}}, stages = {{[2-4]}}, warps = 12, chunk_rows = 1536>
// SM90: bpt.transformer_block {{.+}}#bpt.strategy<portable, chip = "sm_90a", q_block = 64, kv_block = 64>
// SM80-LABEL: func.func @blocks
// SM80: bpt.transformer_block {{.+}}#bpt.strategy<mma_sync, chip = "sm_80">
// SM80: bpt.transformer_block {{.+}}#bpt.strategy<portable, chip = "sm_80", q_block = 64, kv_block = 64>
func.func @blocks(%x: tensor<1x1536x512xbf16>, %g: tensor<512xbf16>,
                  %w: tensor<512x512xbf16>, %wkv: tensor<512x256xbf16>,
                  %w1: tensor<512x2048xbf16>, %w2: tensor<2048x512xbf16>,
                  %xf: tensor<1x128x128xf32>, %gf: tensor<128xf32>,
                  %wf: tensor<128x128xf32>)
    -> (tensor<1x1536x512xbf16>, tensor<1x128x128xf32>) {
  %0 = bpt.transformer_block %x norm1(%g) attention(%w, %wkv, %wkv, %w)
      norm2(%g) ffn(%w1, %w2) heads(4) kv_heads(2) causal activation(gelu)
      norm(rms_norm)
      : (tensor<1x1536x512xbf16>, tensor<512xbf16>, tensor<512x512xbf16>,
         tensor<512x256xbf16>, tensor<512x256xbf16>, tensor<512x512xbf16>,
         tensor<512xbf16>, tensor<512x2048xbf16>, tensor<2048x512xbf16>)
      -> tensor<1x1536x512xbf16>
  %1 = bpt.transformer_block %xf norm1(%gf) attention(%wf, %wf, %wf, %wf)
      norm2(%gf) ffn(%wf, %wf) heads(2) kv_heads(2) activation(relu)
      norm(rms_norm)
      : (tensor<1x128x128xf32>, tensor<128xf32>, tensor<128x128xf32>,
         tensor<128x128xf32>, tensor<128x128xf32>, tensor<128x128xf32>,
         tensor<128xf32>, tensor<128x128xf32>, tensor<128x128xf32>)
      -> tensor<1x128x128xf32>
  return %0, %1 : tensor<1x1536x512xbf16>, tensor<1x128x128xf32>
}

// -----

// A strategy already recorded for the chip is kept (running the pass twice
// changes nothing); ops inside a blockwise nest are tiles of it and get
// none.
// SM90-LABEL: func.func @kept
// SM90: bpt.attention {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", q_block = 16, kv_block = 16>}
func.func @kept(%q: tensor<1x2x128x64xbf16>) -> tensor<1x2x128x64xbf16> {
  %0 = bpt.attention %q, %q, %q {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", q_block = 16, kv_block = 16>}
      : (tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>)
      -> tensor<1x2x128x64xbf16>
  return %0 : tensor<1x2x128x64xbf16>
}

// -----

// Attention backward: the sm_90a kernel has a fixed tiling (128-row query
// blocks at D 64, 64 at D 128; 128-row key blocks, 2 stages, 12 warps);
// so has the mma.sync one on sm_80 (64-row query blocks, 128-row key
// blocks, 2 stages, 8 warps); an f32 backward is portable everywhere.
// SM90-LABEL: func.func @grad
// SM90: bpt.attention_grad {{.+}} causal {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12>}
// SM90: bpt.attention_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", q_block = 64, kv_block = 64>}
// SM80-LABEL: func.func @grad
// SM80: bpt.attention_grad {{.+}} causal {bpt.strategy = #bpt.strategy<mma_sync, chip = "sm_80", q_block = 64, kv_block = 128, stages = 2, warps = 8>}
// SM80: bpt.attention_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_80", q_block = 64, kv_block = 64>}
func.func @grad(%q: tensor<1x4x128x64xbf16>, %k: tensor<1x2x256x64xbf16>,
                %lse: tensor<1x4x128xf32>, %qf: tensor<1x2x64x64xf32>,
                %lsef: tensor<1x2x64xf32>)
    -> (tensor<1x4x128x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>,
        tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %k, %q, %q, %lse causal
      : (tensor<1x4x128x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>,
         tensor<1x4x128x64xbf16>, tensor<1x4x128x64xbf16>, tensor<1x4x128xf32>)
      -> (tensor<1x4x128x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>)
  %fq, %fk, %fv = bpt.attention_grad %qf, %qf, %qf, %qf, %qf, %lsef
      : (tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>,
         tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>, tensor<1x2x64xf32>)
      -> (tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>)
  return %dq, %dk, %dv, %fq, %fk, %fv
      : tensor<1x4x128x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>,
        tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>
}

// -----

// Linear and FFN gradients take wgmma GEMMs of transposed operands on
// sm_90a (bpt-expand-gradients turns them into bpt.matmul; the FFN's rows go
// in chunks of chunk_rows), the portable loops elsewhere, where the FFN's
// gradient on a chip with mma.sync still goes by chunks of rows (its
// [rows, ffn] intermediates one chunk at a time); the norms' gradients are
// row reductions and stay portable on every chip.
// SM90-LABEL: func.func @gradient_ops
// SM90: bpt.linear_grad {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a">}
// SM90: bpt.ffn_grad {{.+}} {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 2048>}
// SM90: bpt.layer_norm_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a">}
// SM90: bpt.rms_norm_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a">}
// SM80-LABEL: func.func @gradient_ops
// SM80: bpt.linear_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_80">}
// SM80: bpt.ffn_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_80", chunk_rows = 2048>}
// SM80: bpt.layer_norm_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_80">}
// SM80: bpt.rms_norm_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_80">}
func.func @gradient_ops(%x: tensor<2x256x512xbf16>, %w: tensor<512x1408xbf16>,
                        %wo: tensor<1408x512xbf16>, %dy: tensor<2x256x1408xbf16>,
                        %dx: tensor<2x256x512xbf16>, %g: tensor<512xbf16>) {
  %0:2 = bpt.linear_grad %x, %w, %dy
      : (tensor<2x256x512xbf16>, tensor<512x1408xbf16>, tensor<2x256x1408xbf16>)
        -> (tensor<2x256x512xbf16>, tensor<512x1408xbf16>)
  %1:3 = bpt.ffn_grad gelu %x, %w, %wo, %dx
      : (tensor<2x256x512xbf16>, tensor<512x1408xbf16>, tensor<1408x512xbf16>,
         tensor<2x256x512xbf16>)
        -> (tensor<2x256x512xbf16>, tensor<512x1408xbf16>, tensor<1408x512xbf16>)
  %2:3 = bpt.layer_norm_grad %x, %g, %dx
      : (tensor<2x256x512xbf16>, tensor<512xbf16>, tensor<2x256x512xbf16>)
        -> (tensor<2x256x512xbf16>, tensor<512xbf16>, tensor<512xbf16>)
  %3:2 = bpt.rms_norm_grad %x, %g, %dx
      : (tensor<2x256x512xbf16>, tensor<512xbf16>, tensor<2x256x512xbf16>)
        -> (tensor<2x256x512xbf16>, tensor<512xbf16>)
  return
}

// -----

// An FFN gradient the tensor cores refuse (f32 on sm_90a and sm_80; width
// 320 is no multiple of 128) still goes by chunks of rows on the portable
// GEMMs; with the tensor cores off (or on sm_75, which has neither) too,
// where it has more rows than a chunk (@short_ffn_grad below stays whole).
// SM90-LABEL: func.func @refused_ffn_grad
// SM90: bpt.ffn_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", chunk_rows = 2048>}
// SM90: bpt.ffn_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", chunk_rows = 2048>}
// SM80-LABEL: func.func @refused_ffn_grad
// SM80: bpt.ffn_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_80", chunk_rows = 2048>}
// SM75-LABEL: func.func @refused_ffn_grad
// SM75-COUNT-2: bpt.ffn_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_75", chunk_rows = 2048>}
// OFF-LABEL: func.func @refused_ffn_grad
// OFF-COUNT-2: bpt.ffn_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a", chunk_rows = 2048>}
func.func @refused_ffn_grad(%x: tensor<1x4096x256xf32>, %w: tensor<256x1024xf32>,
                            %wo: tensor<1024x256xf32>, %dx: tensor<1x4096x256xf32>,
                            %y: tensor<1x4096x320xbf16>, %v: tensor<320x1280xbf16>,
                            %vo: tensor<1280x320xbf16>) {
  %0:3 = bpt.ffn_grad gelu %x, %w, %wo, %dx
      : (tensor<1x4096x256xf32>, tensor<256x1024xf32>, tensor<1024x256xf32>,
         tensor<1x4096x256xf32>)
        -> (tensor<1x4096x256xf32>, tensor<256x1024xf32>, tensor<1024x256xf32>)
  %1:3 = bpt.ffn_grad gelu %y, %v, %vo, %y
      : (tensor<1x4096x320xbf16>, tensor<320x1280xbf16>, tensor<1280x320xbf16>,
         tensor<1x4096x320xbf16>)
        -> (tensor<1x4096x320xbf16>, tensor<320x1280xbf16>, tensor<1280x320xbf16>)
  return
}

// -----

// No more rows than a chunk: with the tensor cores off the op stays whole.
// OFF-LABEL: func.func @short_ffn_grad
// OFF: bpt.ffn_grad {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a">}
func.func @short_ffn_grad(%x: tensor<1x2048x256xf32>, %w: tensor<256x1024xf32>,
                          %wo: tensor<1024x256xf32>,
                          %dx: tensor<1x2048x256xf32>) {
  %0:3 = bpt.ffn_grad gelu %x, %w, %wo, %dx
      : (tensor<1x2048x256xf32>, tensor<256x1024xf32>, tensor<1024x256xf32>,
         tensor<1x2048x256xf32>)
        -> (tensor<1x2048x256xf32>, tensor<256x1024xf32>, tensor<1024x256xf32>)
  return
}
