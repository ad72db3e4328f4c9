// RUN: bpt-opt %s --split-input-file --bpt-ffn-to-sm90 --verify-diagnostics

// bpt-ffn-to-sm90 (and -sm80) map an FFN chunk loop to launches only when
// its body is one FFN of the chunk's rows, stored at those rows.

// Every chunk reads the first rows.
func.func @ffn(%rows: tensor<512x256xbf16>, %w1: tensor<256x512xbf16>,
               %w2: tensor<512x256xbf16>) -> tensor<512x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<512x256xbf16>
  // expected-error @below {{chunk loop: it does not read and write its chunk's rows}}
  %out = scf.forall (%c) in (4) shared_outs(%o = %e) -> (tensor<512x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %xc = tensor.extract_slice %rows[%c128, 0] [128, 256] [1, 1] : tensor<512x256xbf16> to tensor<128x256xbf16>
    %f = bpt.ffn gelu %xc, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %f into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<512x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 128>}
  return %out : tensor<512x256xbf16>
}

// -----

// An op besides the FFN.
func.func @ffn(%rows: tensor<512x256xbf16>, %w1: tensor<256x512xbf16>,
               %w2: tensor<512x256xbf16>) -> tensor<512x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<512x256xbf16>
  // expected-error @below {{chunk loop: unexpected arith.negf in its body: it holds only ops the kernels compute}}
  %out = scf.forall (%c) in (4) shared_outs(%o = %e) -> (tensor<512x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %xc = tensor.extract_slice %rows[%r0, 0] [128, 256] [1, 1] : tensor<512x256xbf16> to tensor<128x256xbf16>
    %f = bpt.ffn gelu %xc, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    %n = arith.negf %f : tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %n into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<512x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 128>}
  return %out : tensor<512x256xbf16>
}

// -----

// Two FFNs.
func.func @ffn(%rows: tensor<512x256xbf16>, %w1: tensor<256x512xbf16>,
               %w2: tensor<512x256xbf16>) -> tensor<512x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<512x256xbf16>
  // expected-error @below {{chunk loop: expected one bpt.ffn in its body}}
  %out = scf.forall (%c) in (4) shared_outs(%o = %e) -> (tensor<512x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %xc = tensor.extract_slice %rows[%r0, 0] [128, 256] [1, 1] : tensor<512x256xbf16> to tensor<128x256xbf16>
    %f = bpt.ffn gelu %xc, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    %g = bpt.ffn gelu %f, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %g into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<512x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 128>}
  return %out : tensor<512x256xbf16>
}

// -----

// The chunks leave rows, and nothing computes them.
func.func @ffn(%rows: tensor<300x256xbf16>, %w1: tensor<256x512xbf16>,
               %w2: tensor<512x256xbf16>) -> tensor<300x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<300x256xbf16>
  // expected-error @below {{chunk loop: its 2 chunks leave rows [256, 300), which only a bpt.ffn of those rows inserted into its result computes}}
  %out = scf.forall (%c) in (2) shared_outs(%o = %e) -> (tensor<300x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %xc = tensor.extract_slice %rows[%r0, 0] [128, 256] [1, 1] : tensor<300x256xbf16> to tensor<128x256xbf16>
    %f = bpt.ffn gelu %xc, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %f into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<300x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 128>}
  return %out : tensor<300x256xbf16>
}

// -----

// A tail of other weights.
func.func @ffn(%rows: tensor<300x256xbf16>, %w1: tensor<256x512xbf16>,
               %w2: tensor<512x256xbf16>, %v2: tensor<512x256xbf16>)
    -> tensor<300x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<300x256xbf16>
  // expected-error @below {{chunk loop: its 2 chunks leave rows [256, 300)}}
  %out = scf.forall (%c) in (2) shared_outs(%o = %e) -> (tensor<300x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %xc = tensor.extract_slice %rows[%r0, 0] [128, 256] [1, 1] : tensor<300x256xbf16> to tensor<128x256xbf16>
    %f = bpt.ffn gelu %xc, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %f into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<300x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 128>}
  %xt = tensor.extract_slice %rows[256, 0] [44, 256] [1, 1] : tensor<300x256xbf16> to tensor<44x256xbf16>
  %t = bpt.ffn gelu %xt, %w1, %v2 {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 44>} : (tensor<44x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<44x256xbf16>
  %all = tensor.insert_slice %t into %out[256, 0] [44, 256] [1, 1] : tensor<44x256xbf16> into tensor<300x256xbf16>
  return %all : tensor<300x256xbf16>
}

// -----

// A tail of rows the chunks computed already.
func.func @ffn(%rows: tensor<300x256xbf16>, %w1: tensor<256x512xbf16>,
               %w2: tensor<512x256xbf16>) -> tensor<300x256xbf16> {
  %c128 = arith.constant 128 : index
  %e = tensor.empty() : tensor<300x256xbf16>
  // expected-error @below {{chunk loop: its 2 chunks leave rows [256, 300)}}
  %out = scf.forall (%c) in (2) shared_outs(%o = %e) -> (tensor<300x256xbf16>) {
    %r0 = arith.muli %c, %c128 : index
    %xc = tensor.extract_slice %rows[%r0, 0] [128, 256] [1, 1] : tensor<300x256xbf16> to tensor<128x256xbf16>
    %f = bpt.ffn gelu %xc, %w1, %w2 : (tensor<128x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<128x256xbf16>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %f into %o[%r0, 0] [128, 256] [1, 1] : tensor<128x256xbf16> into tensor<300x256xbf16>
    }
  } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 128>}
  %xt = tensor.extract_slice %rows[200, 0] [44, 256] [1, 1] : tensor<300x256xbf16> to tensor<44x256xbf16>
  %t = bpt.ffn gelu %xt, %w1, %w2 {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, chunk_rows = 44>} : (tensor<44x256xbf16>, tensor<256x512xbf16>, tensor<512x256xbf16>) -> tensor<44x256xbf16>
  %all = tensor.insert_slice %t into %out[256, 0] [44, 256] [1, 1] : tensor<44x256xbf16> into tensor<300x256xbf16>
  return %all : tensor<300x256xbf16>
}
