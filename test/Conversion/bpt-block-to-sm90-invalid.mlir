// RUN: bpt-opt %s --split-input-file --bpt-block-to-sm90 --verify-diagnostics

// bpt-block-to-sm90 maps a block's chunk loops to kernels only when their
// bodies are exactly the block's pieces, each reading the one before; a
// loop that computes anything else is an error, never a silent wrong
// kernel. (The attention nest's body is not read, only its tag and result,
// so these loops leave it empty.)
// An op that is not a piece of a block.
#wgmma = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>
func.func @block(%rows: tensor<128x256xbf16>, %g: tensor<256xbf16>,
                 %wq: tensor<256x256xbf16>, %wkv: tensor<256x128xbf16>,
                 %wo: tensor<256x256xbf16>, %w1: tensor<256x512xbf16>,
                 %w2: tensor<512x256xbf16>) -> tensor<128x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<128x128xbf16>
  %kv:2 = scf.forall (%c) in (1) shared_outs(%k = %e, %v = %e) -> (tensor<128x128xbf16>, tensor<128x128xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %kc = bpt.linear %h, %wkv : (tensor<128x256xbf16>, tensor<256x128xbf16>) -> tensor<128x128xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %kc into %k[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
      tensor.parallel_insert_slice %kc into %v[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<kv_projection>, bpt.strategy = #wgmma}
  %eo = tensor.empty() : tensor<128x256xbf16>
  // expected-error @below {{chunk loop: unexpected arith.mulf in its body: it holds only ops the kernels compute}}
  %out = scf.forall (%c) in (1) shared_outs(%o = %eo) -> (tensor<128x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %q = bpt.linear %h, %wq : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %q4 = tensor.expand_shape %q [[0, 1], [2, 3]] output_shape [1, 128, 4, 64] : tensor<128x256xbf16> into tensor<1x128x4x64xbf16>
    %k4 = tensor.expand_shape %kv#0 [[0, 1], [2, 3]] output_shape [1, 128, 2, 64] : tensor<128x128xbf16> into tensor<1x128x2x64xbf16>
    %ea = tensor.empty() : tensor<1x4x128x64xbf16>
    // The attention nest's body is not read; only its tag and result are.
    %a4 = scf.forall (%b, %hd, %qb) in (1, 4, 1) shared_outs(%acc = %ea) -> (tensor<1x4x128x64xbf16>) {
    } {bpt.nest = #bpt.attention_nest<causal = true, scale = 0.125>}
    %et = tensor.empty() : tensor<1x128x4x64xbf16>
    %at = linalg.transpose ins(%a4 : tensor<1x4x128x64xbf16>) outs(%et : tensor<1x128x4x64xbf16>) permutation = [0, 2, 1, 3]
    %a = tensor.collapse_shape %at [[0, 1], [2, 3]] : tensor<1x128x4x64xbf16> into tensor<128x256xbf16>
    %p = bpt.linear %a, %wo : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %y1 = arith.addf %rows, %p : tensor<128x256xbf16>
    %h2 = bpt.rms_norm %y1, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %f = bpt.ffn gelu %h2, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    %y = arith.addf %y1, %f : tensor<128x256xbf16>
    %y2 = arith.mulf %y, %y : tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %y into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<128x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<block>, bpt.strategy = #wgmma}
  return %out : tensor<128x256xbf16>
}

// -----

// The first residual adds the normalised input instead of the input.
#wgmma = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>
func.func @block(%rows: tensor<128x256xbf16>, %g: tensor<256xbf16>,
                 %wq: tensor<256x256xbf16>, %wkv: tensor<256x128xbf16>,
                 %wo: tensor<256x256xbf16>, %w1: tensor<256x512xbf16>,
                 %w2: tensor<512x256xbf16>) -> tensor<128x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<128x128xbf16>
  %kv:2 = scf.forall (%c) in (1) shared_outs(%k = %e, %v = %e) -> (tensor<128x128xbf16>, tensor<128x128xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %kc = bpt.linear %h, %wkv : (tensor<128x256xbf16>, tensor<256x128xbf16>) -> tensor<128x128xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %kc into %k[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
      tensor.parallel_insert_slice %kc into %v[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<kv_projection>, bpt.strategy = #wgmma}
  %eo = tensor.empty() : tensor<128x256xbf16>
  // expected-error @below {{chunk loop: its pieces do not read one another as a block's do}}
  %out = scf.forall (%c) in (1) shared_outs(%o = %eo) -> (tensor<128x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %q = bpt.linear %h, %wq : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %q4 = tensor.expand_shape %q [[0, 1], [2, 3]] output_shape [1, 128, 4, 64] : tensor<128x256xbf16> into tensor<1x128x4x64xbf16>
    %k4 = tensor.expand_shape %kv#0 [[0, 1], [2, 3]] output_shape [1, 128, 2, 64] : tensor<128x128xbf16> into tensor<1x128x2x64xbf16>
    %ea = tensor.empty() : tensor<1x4x128x64xbf16>
    // The attention nest's body is not read; only its tag and result are.
    %a4 = scf.forall (%b, %hd, %qb) in (1, 4, 1) shared_outs(%acc = %ea) -> (tensor<1x4x128x64xbf16>) {
    } {bpt.nest = #bpt.attention_nest<causal = true, scale = 0.125>}
    %et = tensor.empty() : tensor<1x128x4x64xbf16>
    %at = linalg.transpose ins(%a4 : tensor<1x4x128x64xbf16>) outs(%et : tensor<1x128x4x64xbf16>) permutation = [0, 2, 1, 3]
    %a = tensor.collapse_shape %at [[0, 1], [2, 3]] : tensor<1x128x4x64xbf16> into tensor<128x256xbf16>
    %p = bpt.linear %a, %wo : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %y1 = arith.addf %h, %p : tensor<128x256xbf16>
    %h2 = bpt.rms_norm %y1, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %f = bpt.ffn gelu %h2, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    %y = arith.addf %y1, %f : tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %y into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<128x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<block>, bpt.strategy = #wgmma}
  return %out : tensor<128x256xbf16>
}

// -----

// Keys and values normalised with another weight than the queries.
#wgmma = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>
func.func @block(%rows: tensor<128x256xbf16>, %g: tensor<256xbf16>, %g2: tensor<256xbf16>,
                 %wq: tensor<256x256xbf16>, %wkv: tensor<256x128xbf16>,
                 %wo: tensor<256x256xbf16>, %w1: tensor<256x512xbf16>,
                 %w2: tensor<512x256xbf16>) -> tensor<128x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<128x128xbf16>
  // expected-error @below {{chunk loop: its norm and projections are not the block's}}
  %kv:2 = scf.forall (%c) in (1) shared_outs(%k = %e, %v = %e) -> (tensor<128x128xbf16>, tensor<128x128xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g2 : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %kc = bpt.linear %h, %wkv : (tensor<128x256xbf16>, tensor<256x128xbf16>) -> tensor<128x128xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %kc into %k[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
      tensor.parallel_insert_slice %kc into %v[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<kv_projection>, bpt.strategy = #wgmma}
  %eo = tensor.empty() : tensor<128x256xbf16>
  %out = scf.forall (%c) in (1) shared_outs(%o = %eo) -> (tensor<128x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %q = bpt.linear %h, %wq : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %q4 = tensor.expand_shape %q [[0, 1], [2, 3]] output_shape [1, 128, 4, 64] : tensor<128x256xbf16> into tensor<1x128x4x64xbf16>
    %k4 = tensor.expand_shape %kv#0 [[0, 1], [2, 3]] output_shape [1, 128, 2, 64] : tensor<128x128xbf16> into tensor<1x128x2x64xbf16>
    %ea = tensor.empty() : tensor<1x4x128x64xbf16>
    // The attention nest's body is not read; only its tag and result are.
    %a4 = scf.forall (%b, %hd, %qb) in (1, 4, 1) shared_outs(%acc = %ea) -> (tensor<1x4x128x64xbf16>) {
    } {bpt.nest = #bpt.attention_nest<causal = true, scale = 0.125>}
    %et = tensor.empty() : tensor<1x128x4x64xbf16>
    %at = linalg.transpose ins(%a4 : tensor<1x4x128x64xbf16>) outs(%et : tensor<1x128x4x64xbf16>) permutation = [0, 2, 1, 3]
    %a = tensor.collapse_shape %at [[0, 1], [2, 3]] : tensor<1x128x4x64xbf16> into tensor<128x256xbf16>
    %p = bpt.linear %a, %wo : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %y1 = arith.addf %rows, %p : tensor<128x256xbf16>
    %h2 = bpt.rms_norm %y1, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %f = bpt.ffn gelu %h2, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    %y = arith.addf %y1, %f : tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %y into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<128x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<block>, bpt.strategy = #wgmma}
  return %out : tensor<128x256xbf16>
}

// -----

// The keys are also a result of the function.
#wgmma = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>
func.func @block(%rows: tensor<128x256xbf16>, %g: tensor<256xbf16>,
                 %wq: tensor<256x256xbf16>, %wkv: tensor<256x128xbf16>,
                 %wo: tensor<256x256xbf16>, %w1: tensor<256x512xbf16>,
                 %w2: tensor<512x256xbf16>) -> (tensor<128x256xbf16>, tensor<128x128xbf16>) {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<128x128xbf16>
  // expected-error @below {{bpt-block-to-sm90: its keys and values are used outside the block's chunk loop}}
  %kv:2 = scf.forall (%c) in (1) shared_outs(%k = %e, %v = %e) -> (tensor<128x128xbf16>, tensor<128x128xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %kc = bpt.linear %h, %wkv : (tensor<128x256xbf16>, tensor<256x128xbf16>) -> tensor<128x128xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %kc into %k[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
      tensor.parallel_insert_slice %kc into %v[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<kv_projection>, bpt.strategy = #wgmma}
  %eo = tensor.empty() : tensor<128x256xbf16>
  %out = scf.forall (%c) in (1) shared_outs(%o = %eo) -> (tensor<128x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %q = bpt.linear %h, %wq : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %q4 = tensor.expand_shape %q [[0, 1], [2, 3]] output_shape [1, 128, 4, 64] : tensor<128x256xbf16> into tensor<1x128x4x64xbf16>
    %k4 = tensor.expand_shape %kv#0 [[0, 1], [2, 3]] output_shape [1, 128, 2, 64] : tensor<128x128xbf16> into tensor<1x128x2x64xbf16>
    %ea = tensor.empty() : tensor<1x4x128x64xbf16>
    // The attention nest's body is not read; only its tag and result are.
    %a4 = scf.forall (%b, %hd, %qb) in (1, 4, 1) shared_outs(%acc = %ea) -> (tensor<1x4x128x64xbf16>) {
    } {bpt.nest = #bpt.attention_nest<causal = true, scale = 0.125>}
    %et = tensor.empty() : tensor<1x128x4x64xbf16>
    %at = linalg.transpose ins(%a4 : tensor<1x4x128x64xbf16>) outs(%et : tensor<1x128x4x64xbf16>) permutation = [0, 2, 1, 3]
    %a = tensor.collapse_shape %at [[0, 1], [2, 3]] : tensor<1x128x4x64xbf16> into tensor<128x256xbf16>
    %p = bpt.linear %a, %wo : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %y1 = arith.addf %rows, %p : tensor<128x256xbf16>
    %h2 = bpt.rms_norm %y1, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %f = bpt.ffn gelu %h2, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    %y = arith.addf %y1, %f : tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %y into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<128x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<block>, bpt.strategy = #wgmma}
  return %out, %kv#0 : tensor<128x256xbf16>, tensor<128x128xbf16>
}

// -----

// Keys from elsewhere than a kv_projection loop.
#wgmma = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12, chunk_rows = 128>
func.func @block(%rows: tensor<128x256xbf16>, %g: tensor<256xbf16>,
                 %wq: tensor<256x256xbf16>, %wkv: tensor<256x128xbf16>,
                 %wo: tensor<256x256xbf16>, %w1: tensor<256x512xbf16>,
                 %w2: tensor<512x256xbf16>) -> tensor<128x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<128x128xbf16>
  %kv:2 = scf.forall (%c) in (1) shared_outs(%k = %e, %v = %e) -> (tensor<128x128xbf16>, tensor<128x128xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %kc = bpt.linear %h, %wkv : (tensor<128x256xbf16>, tensor<256x128xbf16>) -> tensor<128x128xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %kc into %k[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
      tensor.parallel_insert_slice %kc into %v[%r0, 0] [128, 128] [1, 1] : tensor<128x128xbf16> into tensor<128x128xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<kv_projection>, bpt.strategy = #wgmma}
  %eo = tensor.empty() : tensor<128x256xbf16>
  // expected-error @below {{chunk loop: it reads no #bpt.chunk_loop<kv_projection>}}
  %out = scf.forall (%c) in (1) shared_outs(%o = %eo) -> (tensor<128x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %h = bpt.rms_norm %rows, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %q = bpt.linear %h, %wq : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %q4 = tensor.expand_shape %q [[0, 1], [2, 3]] output_shape [1, 128, 4, 64] : tensor<128x256xbf16> into tensor<1x128x4x64xbf16>
    %k4 = tensor.expand_shape %e [[0, 1], [2, 3]] output_shape [1, 128, 2, 64] : tensor<128x128xbf16> into tensor<1x128x2x64xbf16>
    %ea = tensor.empty() : tensor<1x4x128x64xbf16>
    // The attention nest's body is not read; only its tag and result are.
    %a4 = scf.forall (%b, %hd, %qb) in (1, 4, 1) shared_outs(%acc = %ea) -> (tensor<1x4x128x64xbf16>) {
    } {bpt.nest = #bpt.attention_nest<causal = true, scale = 0.125>}
    %et = tensor.empty() : tensor<1x128x4x64xbf16>
    %at = linalg.transpose ins(%a4 : tensor<1x4x128x64xbf16>) outs(%et : tensor<1x128x4x64xbf16>) permutation = [0, 2, 1, 3]
    %a = tensor.collapse_shape %at [[0, 1], [2, 3]] : tensor<1x128x4x64xbf16> into tensor<128x256xbf16>
    %p = bpt.linear %a, %wo : (tensor<128x256xbf16>, tensor<256x256xbf16>) -> tensor<128x256xbf16>
    %y1 = arith.addf %rows, %p : tensor<128x256xbf16>
    %h2 = bpt.rms_norm %y1, %g : (tensor<128x256xbf16>, tensor<256xbf16>) -> tensor<128x256xbf16>
    %f = bpt.ffn gelu %h2, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    %y = arith.addf %y1, %f : tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %y into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<128x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<block>, bpt.strategy = #wgmma}
  return %out : tensor<128x256xbf16>
}
