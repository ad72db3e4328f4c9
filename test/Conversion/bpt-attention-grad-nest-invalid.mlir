// RUN: bpt-opt %s --split-input-file --bpt-attention-grad-to-sm90 --verify-diagnostics

// A key/value nest with a wgmma strategy whose body is not the backward's
// is refused with a located error, not lowered to a kernel that would
// compute something else.
func.func @no_products(%k: tensor<1x1x128x64xbf16>)
    -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
  // expected-error @below {{malformed attention backward nest: expected Q·Kᵀ, dO·Vᵀ, Pᵀ·dO and dSᵀ·Q, and results dK, dV}}
  %r:2 = scf.forall (%i) in (1) shared_outs(%a = %k, %b = %k) -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
    scf.forall.in_parallel {
    }
  } {bpt.nest = #bpt.attention_grad_nest<key_value, causal = false, scale = 1.250000e-01>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 64, kv_block = 128, stages = 2, warps = 12>}
  return %r#0, %r#1 : tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>
}

// -----

#qk = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
#ta = [affine_map<(m, n, k) -> (k, m)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>]
#row = affine_map<(i, j) -> (i)>
#all = affine_map<(i, j) -> (i, j)>

// The products' tiles are read from the operands, but the log-sum-exp is
// not: P's exponent subtracts a fresh tensor.
func.func @lse_not_an_operand(%q: tensor<1x1x64x64xbf16>, %k: tensor<1x1x128x64xbf16>,
                              %d: tensor<1x1x64xf32>)
    -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
  %e = tensor.empty() : tensor<1x1x128x64xbf16>
  // expected-error @below {{malformed attention backward nest: its tiles are not read from the backward's operands}}
  %r:2 = scf.forall (%i) in (1) shared_outs(%a = %e, %b = %e) -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
    %qt = tensor.extract_slice %q[0, 0, 0, 0] [1, 1, 64, 64] [1, 1, 1, 1] : tensor<1x1x64x64xbf16> to tensor<64x64xbf16>
    %kt = tensor.extract_slice %k[0, 0, 0, 0] [1, 1, 128, 64] [1, 1, 1, 1] : tensor<1x1x128x64xbf16> to tensor<128x64xbf16>
    %dt = tensor.extract_slice %d[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> to tensor<64xf32>
    %lt = tensor.empty() : tensor<64xf32>
    %z = tensor.empty() : tensor<64x128xf32>
    %acc = tensor.empty() : tensor<128x64xf32>
    %s = linalg.matmul indexing_maps = #qk ins(%qt, %kt : tensor<64x64xbf16>, tensor<128x64xbf16>) outs(%z : tensor<64x128xf32>) -> tensor<64x128xf32>
    %p = linalg.generic {indexing_maps = [#row, #all], iterator_types = ["parallel", "parallel"]} ins(%lt : tensor<64xf32>) outs(%s : tensor<64x128xf32>) {
    ^bb0(%l: f32, %x: f32):
      %y = arith.subf %x, %l : f32
      linalg.yield %y : f32
    } -> tensor<64x128xf32>
    %dp = linalg.matmul indexing_maps = #qk ins(%qt, %kt : tensor<64x64xbf16>, tensor<128x64xbf16>) outs(%z : tensor<64x128xf32>) -> tensor<64x128xf32>
    %ds = linalg.generic {indexing_maps = [#all, #row, #all], iterator_types = ["parallel", "parallel"]} ins(%p, %dt : tensor<64x128xf32>, tensor<64xf32>) outs(%dp : tensor<64x128xf32>) {
    ^bb0(%x: f32, %y: f32, %w: f32):
      %u = arith.subf %w, %y : f32
      linalg.yield %u : f32
    } -> tensor<64x128xf32>
    %dv = linalg.matmul indexing_maps = #ta ins(%p, %qt : tensor<64x128xf32>, tensor<64x64xbf16>) outs(%acc : tensor<128x64xf32>) -> tensor<128x64xf32>
    %dk = linalg.matmul indexing_maps = #ta ins(%ds, %qt : tensor<64x128xf32>, tensor<64x64xbf16>) outs(%acc : tensor<128x64xf32>) -> tensor<128x64xf32>
    scf.forall.in_parallel {
    }
  } {bpt.nest = #bpt.attention_grad_nest<key_value, causal = false, scale = 1.250000e-01>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 64, kv_block = 128, stages = 2, warps = 12>}
  return %r#0, %r#1 : tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>
}

// -----

#qk = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
#ta = [affine_map<(m, n, k) -> (k, m)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>]
#row = affine_map<(i, j) -> (i)>
#all = affine_map<(i, j) -> (i, j)>

// A key/value nest that reads every operand, but no query nest of the same
// backward follows: its dQ would be lost.
func.func @no_query_nest(%q: tensor<1x1x64x64xbf16>, %k: tensor<1x1x128x64xbf16>,
                         %lse: tensor<1x1x64xf32>)
    -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
  %e = tensor.empty() : tensor<1x1x128x64xbf16>
  %dz = tensor.empty() : tensor<1x1x64xf32>
  %d = linalg.generic {indexing_maps = [affine_map<(a, b, c, k) -> (a, b, c, k)>, affine_map<(a, b, c, k) -> (a, b, c, k)>, affine_map<(a, b, c, k) -> (a, b, c)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%q, %q : tensor<1x1x64x64xbf16>, tensor<1x1x64x64xbf16>) outs(%dz : tensor<1x1x64xf32>) {
  ^bb0(%x: bf16, %y: bf16, %acc: f32):
    %xf = arith.extf %x : bf16 to f32
    %yf = arith.extf %y : bf16 to f32
    %r = math.fma %xf, %yf, %acc : f32
    linalg.yield %r : f32
  } -> tensor<1x1x64xf32>
  // expected-error @below {{malformed attention backward nest: found no query nest of the same backward}}
  %r:2 = scf.forall (%i) in (1) shared_outs(%a = %e, %b = %e) -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
    %qt = tensor.extract_slice %q[0, 0, 0, 0] [1, 1, 64, 64] [1, 1, 1, 1] : tensor<1x1x64x64xbf16> to tensor<64x64xbf16>
    %kt = tensor.extract_slice %k[0, 0, 0, 0] [1, 1, 128, 64] [1, 1, 1, 1] : tensor<1x1x128x64xbf16> to tensor<128x64xbf16>
    %dt = tensor.extract_slice %d[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> to tensor<64xf32>
    %lt = tensor.extract_slice %lse[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> to tensor<64xf32>
    %z = tensor.empty() : tensor<64x128xf32>
    %acc = tensor.empty() : tensor<128x64xf32>
    %s = linalg.matmul indexing_maps = #qk ins(%qt, %kt : tensor<64x64xbf16>, tensor<128x64xbf16>) outs(%z : tensor<64x128xf32>) -> tensor<64x128xf32>
    %p = linalg.generic {indexing_maps = [#row, #all], iterator_types = ["parallel", "parallel"]} ins(%lt : tensor<64xf32>) outs(%s : tensor<64x128xf32>) {
    ^bb0(%l: f32, %x: f32):
      %y = arith.subf %x, %l : f32
      linalg.yield %y : f32
    } -> tensor<64x128xf32>
    %dp = linalg.matmul indexing_maps = #qk ins(%qt, %kt : tensor<64x64xbf16>, tensor<128x64xbf16>) outs(%z : tensor<64x128xf32>) -> tensor<64x128xf32>
    %ds = linalg.generic {indexing_maps = [#all, #row, #all], iterator_types = ["parallel", "parallel"]} ins(%p, %dt : tensor<64x128xf32>, tensor<64xf32>) outs(%dp : tensor<64x128xf32>) {
    ^bb0(%x: f32, %y: f32, %w: f32):
      %u = arith.subf %w, %y : f32
      linalg.yield %u : f32
    } -> tensor<64x128xf32>
    %dv = linalg.matmul indexing_maps = #ta ins(%p, %qt : tensor<64x128xf32>, tensor<64x64xbf16>) outs(%acc : tensor<128x64xf32>) -> tensor<128x64xf32>
    %dk = linalg.matmul indexing_maps = #ta ins(%ds, %qt : tensor<64x128xf32>, tensor<64x64xbf16>) outs(%acc : tensor<128x64xf32>) -> tensor<128x64xf32>
    scf.forall.in_parallel {
    }
  } {bpt.nest = #bpt.attention_grad_nest<key_value, causal = false, scale = 1.250000e-01>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 64, kv_block = 128, stages = 2, warps = 12>}
  return %r#0, %r#1 : tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>
}
// -----

#qk = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
#ta = [affine_map<(m, n, k) -> (k, m)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>]
#row = affine_map<(i, j) -> (i)>
#all = affine_map<(i, j) -> (i, j)>

// The row sums D must be the pre-pass over dO and O that the kernel's
// pre-pass replaces, not any tensor.
func.func @rows_not_a_prepass(%q: tensor<1x1x64x64xbf16>, %k: tensor<1x1x128x64xbf16>,
                         %lse: tensor<1x1x64xf32>, %d: tensor<1x1x64xf32>)
    -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
  %e = tensor.empty() : tensor<1x1x128x64xbf16>
  // expected-error @below {{malformed attention backward nest: its row sums D are not a pre-pass over dO and O}}
  %r:2 = scf.forall (%i) in (1) shared_outs(%a = %e, %b = %e) -> (tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>) {
    %qt = tensor.extract_slice %q[0, 0, 0, 0] [1, 1, 64, 64] [1, 1, 1, 1] : tensor<1x1x64x64xbf16> to tensor<64x64xbf16>
    %kt = tensor.extract_slice %k[0, 0, 0, 0] [1, 1, 128, 64] [1, 1, 1, 1] : tensor<1x1x128x64xbf16> to tensor<128x64xbf16>
    %dt = tensor.extract_slice %d[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> to tensor<64xf32>
    %lt = tensor.extract_slice %lse[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> to tensor<64xf32>
    %z = tensor.empty() : tensor<64x128xf32>
    %acc = tensor.empty() : tensor<128x64xf32>
    %s = linalg.matmul indexing_maps = #qk ins(%qt, %kt : tensor<64x64xbf16>, tensor<128x64xbf16>) outs(%z : tensor<64x128xf32>) -> tensor<64x128xf32>
    %p = linalg.generic {indexing_maps = [#row, #all], iterator_types = ["parallel", "parallel"]} ins(%lt : tensor<64xf32>) outs(%s : tensor<64x128xf32>) {
    ^bb0(%l: f32, %x: f32):
      %y = arith.subf %x, %l : f32
      linalg.yield %y : f32
    } -> tensor<64x128xf32>
    %dp = linalg.matmul indexing_maps = #qk ins(%qt, %kt : tensor<64x64xbf16>, tensor<128x64xbf16>) outs(%z : tensor<64x128xf32>) -> tensor<64x128xf32>
    %ds = linalg.generic {indexing_maps = [#all, #row, #all], iterator_types = ["parallel", "parallel"]} ins(%p, %dt : tensor<64x128xf32>, tensor<64xf32>) outs(%dp : tensor<64x128xf32>) {
    ^bb0(%x: f32, %y: f32, %w: f32):
      %u = arith.subf %w, %y : f32
      linalg.yield %u : f32
    } -> tensor<64x128xf32>
    %dv = linalg.matmul indexing_maps = #ta ins(%p, %qt : tensor<64x128xf32>, tensor<64x64xbf16>) outs(%acc : tensor<128x64xf32>) -> tensor<128x64xf32>
    %dk = linalg.matmul indexing_maps = #ta ins(%ds, %qt : tensor<64x128xf32>, tensor<64x64xbf16>) outs(%acc : tensor<128x64xf32>) -> tensor<128x64xf32>
    scf.forall.in_parallel {
    }
  } {bpt.nest = #bpt.attention_grad_nest<key_value, causal = false, scale = 1.250000e-01>, bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 64, kv_block = 128, stages = 2, warps = 12>}
  return %r#0, %r#1 : tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>
}
