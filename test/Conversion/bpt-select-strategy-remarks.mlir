// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --verify-diagnostics
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="chip=sm_86 sm80-q-block=128 sm80-kv-block=128 sm80-stages=4" 2>&1 >/dev/null | FileCheck %s --check-prefix=SM86
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy="sm90-kv-block=128 sm90-stages=4" 2>&1 >/dev/null | FileCheck %s --check-prefix=BIG
// RUN: not bpt-opt %s --bpt-select-strategy="sm90-kv-block=72" 2>&1 | FileCheck %s --check-prefix=KVBLOCK
// RUN: not bpt-opt %s --bpt-select-strategy="sm90-stages=1" 2>&1 | FileCheck %s --check-prefix=STAGES
// RUN: not bpt-opt %s --bpt-select-strategy="sm80-q-block=32" 2>&1 | FileCheck %s --check-prefix=QBLOCK80
// RUN: not bpt-opt %s --bpt-select-strategy="sm80-kv-block=48" 2>&1 | FileCheck %s --check-prefix=KVBLOCK80
// RUN: not bpt-opt %s --bpt-select-strategy="sm80-stages=5" 2>&1 | FileCheck %s --check-prefix=STAGES80
// RUN: not bpt-opt %s --bpt-select-strategy="sm90-gemm-block-n=64" 2>&1 | FileCheck %s --check-prefix=GEMMN
// RUN: not bpt-opt %s --bpt-select-strategy="q-block=0" 2>&1 | FileCheck %s --check-prefix=QBLOCK

// KVBLOCK: error: bpt-select-strategy: sm90-kv-block must be 0, 64, 80, 96, 112 or 128, got 72
// STAGES: error: bpt-select-strategy: sm90-stages must be 0 or in [2, 4], got 1
// QBLOCK80: error: bpt-select-strategy: sm80-q-block must be 0, 64 or 128, got 32
// KVBLOCK80: error: bpt-select-strategy: sm80-kv-block must be 0, 32, 64 or 128, got 48
// STAGES80: error: bpt-select-strategy: sm80-stages must be 0 or in [2, 4], got 5
// GEMMN: error: bpt-select-strategy: sm90-gemm-block-n must be 0, 128 or 256, got 64
// QBLOCK: error: bpt-select-strategy: q-block must be positive, got 0

// Each path that does not take an op says why; the next path is tried.
func.func @not_eligible(%q32: tensor<1x2x128x64xf32>, %q: tensor<1x2x128x112xbf16>,
                        %r: tensor<1x2x100x64xbf16>, %q72: tensor<1x2x128x72xbf16>,
                        %q320: tensor<1x2x128x320xf16>)
    -> (tensor<1x2x128x64xf32>, tensor<1x2x128x112xbf16>, tensor<1x2x100x64xbf16>,
        tensor<1x2x128x72xbf16>, tensor<1x2x128x320xf16>) {
  // expected-remark @below {{attention does not take the wgmma path: element type f32 (the wgmma path takes bf16 and f16)}}
  // expected-remark @below {{attention does not take the mma.sync path: element type f32 (the mma.sync path takes bf16 and f16)}}
  %0 = bpt.attention %q32, %q32, %q32
      : (tensor<1x2x128x64xf32>, tensor<1x2x128x64xf32>, tensor<1x2x128x64xf32>)
      -> tensor<1x2x128x64xf32>
  // Head dim 112: mma.sync takes it (multiples of 16 up to 256); 96 is
  // wgmma's (padded to 128 columns), 112 not.
  // expected-remark @below {{attention does not take the wgmma path: head dimension 112 (32, 64, 80, 96, 128, 192 and 256 are supported)}}
  %1 = bpt.attention %q, %q, %q
      : (tensor<1x2x128x112xbf16>, tensor<1x2x128x112xbf16>, tensor<1x2x128x112xbf16>)
      -> tensor<1x2x128x112xbf16>
  // Ragged: wgmma takes it (no remark).
  %2 = bpt.attention %r, %r, %r
      : (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>)
      -> tensor<1x2x100x64xbf16>
  // Head dims that no k16 step divides, or wider than 256: portable.
  // expected-remark @below {{attention does not take the wgmma path: head dimension 72 (32, 64, 80, 96, 128, 192 and 256 are supported)}}
  // expected-remark @below {{attention does not take the mma.sync path: head dimension 72 (multiples of 16 up to 256 are supported)}}
  %3 = bpt.attention %q72, %q72, %q72
      : (tensor<1x2x128x72xbf16>, tensor<1x2x128x72xbf16>, tensor<1x2x128x72xbf16>)
      -> tensor<1x2x128x72xbf16>
  // expected-remark @below {{attention does not take the wgmma path: head dimension 320 (32, 64, 80, 96, 128, 192 and 256 are supported)}}
  // expected-remark @below {{attention does not take the mma.sync path: head dimension 320 (multiples of 16 up to 256 are supported)}}
  %4 = bpt.attention %q320, %q320, %q320
      : (tensor<1x2x128x320xf16>, tensor<1x2x128x320xf16>, tensor<1x2x128x320xf16>)
      -> tensor<1x2x128x320xf16>
  return %0, %1, %2, %3, %4 : tensor<1x2x128x64xf32>, tensor<1x2x128x112xbf16>,
      tensor<1x2x100x64xbf16>, tensor<1x2x128x72xbf16>, tensor<1x2x128x320xf16>
}

// -----

// Shared memory: on sm_86 (99 KiB a block) the mma.sync attention pinned to
// 128-row blocks and 4 stages would need 2 x 4 x 32 KiB of K/V on top of the
// 32 KiB Q tile; pinned on sm_90a, the wgmma kernel's four 128-row stages
// would not fit either. The remark names what the tiling needs.
// SM86: remark: attention does not take the mma.sync path: needs {{[0-9]+}} bytes of shared memory, 101376 available
// BIG: remark: attention does not take the wgmma path: needs 296040 bytes of shared memory, 232448 available
func.func @budget(%q: tensor<1x1x128x128xbf16>) -> tensor<1x1x128x128xbf16> {
  %0 = bpt.attention %q, %q, %q {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a">}
      : (tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>)
      -> tensor<1x1x128x128xbf16>
  %1 = bpt.attention %q, %q, %q
      : (tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>, tensor<1x1x128x128xbf16>)
      -> tensor<1x1x128x128xbf16>
  return %1 : tensor<1x1x128x128xbf16>
}


// -----

// An attention that also returns its log-sum-exp (for a backward pass) is
// taken like any other: the tensor-core kernels write the lse too, the
// ragged one as well.
func.func @with_lse(%q: tensor<1x8x1024x64xbf16>, %r: tensor<1x2x100x64xbf16>)
    -> (tensor<1x8x1024x64xbf16>, tensor<1x8x1024xf32>,
        tensor<1x2x100x64xbf16>, tensor<1x2x100xf32>) {
  %o, %lse = bpt.attention %q, %q, %q causal
      : (tensor<1x8x1024x64xbf16>, tensor<1x8x1024x64xbf16>,
         tensor<1x8x1024x64xbf16>)
      -> (tensor<1x8x1024x64xbf16>, tensor<1x8x1024xf32>)
  %ro, %rlse = bpt.attention %r, %r, %r
      : (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>,
         tensor<1x2x100x64xbf16>)
      -> (tensor<1x2x100x64xbf16>, tensor<1x2x100xf32>)
  return %o, %lse, %ro, %rlse : tensor<1x8x1024x64xbf16>, tensor<1x8x1024xf32>,
                                tensor<1x2x100x64xbf16>, tensor<1x2x100xf32>
}

// -----

// Attention backward: a ragged one (Sq = Skv = 100) takes the sm_90a
// kernel, with no remark (bpt-attention-grad-to-sm90-ragged.mlir); why
// neither tensor-core kernel takes head dimension 32, or a backward one of
// whose gradients is unused (the kernels read back nests that
// canonicalization trims).
func.func @grad_not_eligible(%q: tensor<1x2x100x64xbf16>, %lse: tensor<1x2x100xf32>,
                             %qd: tensor<1x2x128x32xbf16>, %lsed: tensor<1x2x128xf32>)
    -> (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>,
        tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>,
        tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %q, %q, %q, %q, %lse
      : (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>,
         tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100xf32>)
      -> (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>)
  // expected-remark @below {{attention_grad does not take the wgmma path: head dimension 32 (64 and 128 are supported)}}
  // expected-remark @below {{attention_grad does not take the mma.sync path: head dimension 32 (64 and 128 are supported)}}
  %eq, %ek, %ev = bpt.attention_grad %qd, %qd, %qd, %qd, %qd, %lsed
      : (tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>,
         tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>, tensor<1x2x128xf32>)
      -> (tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>)
  // expected-remark @below {{attention_grad does not take the wgmma path: one of its gradients (dq, dk, dv) is unused}}
  // expected-remark @below {{attention_grad does not take the mma.sync path: one of its gradients (dq, dk, dv) is unused}}
  %fq, %fk, %fv = bpt.attention_grad %q, %q, %q, %q, %q, %lse
      : (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>,
         tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100xf32>)
      -> (tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>)
  return %dq, %dk, %dv, %eq, %ek, %ev, %fq, %fv
      : tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>,
        tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>, tensor<1x2x128x32xbf16>,
        tensor<1x2x100x64xbf16>, tensor<1x2x100x64xbf16>
}

// -----

// The mma.sync backward at D 128 needs 161 KiB of shared memory with its
// 64 × 128 tiling (K, V, two stages of Q and dO, two dSᵀ tiles): more than
// sm_86 has, so it takes 32 × 64 blocks (74 KiB), without a remark
// (bpt-attention-grad-to-sm80-narrow.mlir); D 64 fits. (On sm_90a both
// take the wgmma kernel, without a remark.)
// SM86-NOT: attention_grad does not take the mma.sync path: needs
func.func @grad_shared_memory(%q: tensor<1x2x128x128xbf16>, %lse: tensor<1x2x128xf32>,
                              %qs: tensor<1x2x128x64xbf16>)
    -> (tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>,
        tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %q, %q, %q, %q, %lse
      : (tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>,
         tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>, tensor<1x2x128xf32>)
      -> (tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>)
  %eq, %ek, %ev = bpt.attention_grad %qs, %qs, %qs, %qs, %qs, %lse
      : (tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>,
         tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>, tensor<1x2x128xf32>)
      -> (tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>)
  return %dq, %dk, %dv, %eq, %ek, %ev
      : tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>, tensor<1x2x128x128xbf16>,
        tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>
}

// -----

// On sm_90a the gradient GEMMs are expanded into bpt.matmul GEMMs (no
// remark); mma.sync has no GEMM with transposed operands yet. The norm
// gradients, like the norms, never try a tensor-core path.
func.func @gradient_ops(%x: tensor<256x512xbf16>, %w: tensor<512x1408xbf16>,
                        %wo: tensor<1408x512xbf16>, %dy: tensor<256x1408xbf16>,
                        %g: tensor<512xbf16>) {
  %0:2 = bpt.linear_grad %x, %w, %dy
      : (tensor<256x512xbf16>, tensor<512x1408xbf16>, tensor<256x1408xbf16>)
        -> (tensor<256x512xbf16>, tensor<512x1408xbf16>)
  %1:3 = bpt.ffn_grad relu %x, %w, %wo, %x
      : (tensor<256x512xbf16>, tensor<512x1408xbf16>, tensor<1408x512xbf16>,
         tensor<256x512xbf16>)
        -> (tensor<256x512xbf16>, tensor<512x1408xbf16>, tensor<1408x512xbf16>)
  %2:2 = bpt.rms_norm_grad %x, %g, %x
      : (tensor<256x512xbf16>, tensor<512xbf16>, tensor<256x512xbf16>)
        -> (tensor<256x512xbf16>, tensor<512xbf16>)
  return
}

// -----

// All of a gradient's GEMMs take wgmma or none: a width off the 128-column
// tile keeps the whole op portable; chunks are whole 64-row K steps.
func.func @gradient_widths(%x: tensor<256x512xbf16>, %w: tensor<512x1000xbf16>,
                           %wo: tensor<1000x512xbf16>, %v: tensor<512x1024xbf16>,
                           %vo: tensor<1024x512xbf16>,
                           %dy: tensor<256x1000xbf16>) {
  // expected-remark @below {{linear_grad does not take the wgmma path: the weight's widths 512 x 1000 are not multiples of 128 (its GEMMs' N)}}
  %0:2 = bpt.linear_grad %x, %w, %dy
      : (tensor<256x512xbf16>, tensor<512x1000xbf16>, tensor<256x1000xbf16>)
        -> (tensor<256x512xbf16>, tensor<512x1000xbf16>)
  // expected-remark @below {{ffn_grad does not take the wgmma path: the weight's widths 512 x 1000 are not multiples of 128 (its GEMMs' N)}}
  %1:3 = bpt.ffn_grad gelu %x, %w, %wo, %x
      : (tensor<256x512xbf16>, tensor<512x1000xbf16>, tensor<1000x512xbf16>,
         tensor<256x512xbf16>)
        -> (tensor<256x512xbf16>, tensor<512x1000xbf16>, tensor<1000x512xbf16>)
  %2:3 = bpt.ffn_grad gelu %x, %v, %vo, %x
      : (tensor<256x512xbf16>, tensor<512x1024xbf16>, tensor<1024x512xbf16>,
         tensor<256x512xbf16>)
        -> (tensor<256x512xbf16>, tensor<512x1024xbf16>, tensor<1024x512xbf16>)
  return
}

// SM86: remark: linear_grad does not take the mma.sync path: there is no mma.sync GEMM with transposed operands yet
// SM86: remark: ffn_grad does not take the mma.sync path: there is no mma.sync GEMM with transposed operands yet

// -----

// bpt.matmul on the wgmma GEMM: f32 operands, N off the 128-column tile
// and rows TMA cannot stride are refused.
func.func @matmuls(%a: tensor<64x256xbf16>, %b: tensor<64x200xbf16>,
                   %c: tensor<64x20xbf16>, %f: tensor<64x256xf32>) {
  %0 = bpt.matmul %a, %a {transpose_lhs}
      : (tensor<64x256xbf16>, tensor<64x256xbf16>) -> tensor<256x256xf32>
  // expected-remark @below {{matmul does not take the wgmma path: N = 200 is not a multiple of 128}}
  %1 = bpt.matmul %a, %b {transpose_lhs}
      : (tensor<64x256xbf16>, tensor<64x200xbf16>) -> tensor<256x200xbf16>
  // expected-remark @below {{matmul does not take the wgmma path: rows of 20 and 256 elements are not multiples of 16 bytes (TMA)}}
  %2 = bpt.matmul %c, %a {transpose_lhs}
      : (tensor<64x20xbf16>, tensor<64x256xbf16>) -> tensor<20x256xbf16>
  // expected-remark @below {{matmul does not take the wgmma path: element type f32 (the wgmma path takes bf16 and f16)}}
  %3 = bpt.matmul %f, %f {transpose_lhs}
      : (tensor<64x256xf32>, tensor<64x256xf32>) -> tensor<256x256xf32>
  return
}
