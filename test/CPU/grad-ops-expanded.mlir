// The tensor-core form of the gradient GEMMs (bpt-expand-gradients: the ops
// as bpt.matmul with transposed operands, the FFN's over chunks of rows
// with f32 weight-gradient sums) run on the CPU and checked against the
// float64 backward functions of lib/Reference (bpt-cpu-run, random inputs;
// bf16/f16 at 1e-2). The strategies are recorded as bpt-select-strategy
// writes them for sm_90a; the CPU pipeline expands them the same way.
// Chunks of 64 rows over 136 rows leave a ragged last chunk of 8, so a
// chunk that is skipped, counted twice or misplaced shows. (The weights'
// widths are multiples of 128, as the wgmma strategy needs.)
//
// Seen failing (expansion changed by hand, then restored; with weights of
// 24 x 40 then): the last chunk not adding the earlier chunks' sums fails
// dW_in and dW_out (relative error 0.98 in ffn_gelu, 0.69 in ffn_swiglu);
// dx written at row 0 for every chunk leaves the other rows poisoned and
// fails output 0 (NaN).

// RUN: rm -rf %t && split-file %s %t

//--- linear.mlir
// RUN: bpt-opt %t/linear.mlir --bpt-expand-gradients | FileCheck %s --check-prefix=LINEAR-IR
// LINEAR-IR-LABEL: func.func @linear
// LINEAR-IR: bpt.matmul {{.*}} {transpose_rhs} : (tensor<100x256xbf16>, tensor<128x256xbf16>) -> tensor<100x128xbf16>
// LINEAR-IR: bpt.matmul {{.*}} {transpose_lhs} : (tensor<100x128xbf16>, tensor<100x256xbf16>) -> tensor<128x256xbf16>
// LINEAR-IR-NOT: bpt.linear_grad
// RUN: bpt-cpu-run %t/linear.mlir --seed=43 | FileCheck %s --check-prefix=LINEAR
// LINEAR-COUNT-3: output {{[0-2]}} tensor<{{.*}}xbf16>: relative error {{.*}}: PASS
// LINEAR: {{^PASS$}}
func.func @linear(%x: tensor<2x50x128xbf16>, %w: tensor<128x256xbf16>,
                  %dy: tensor<2x50x256xbf16>)
    -> (tensor<2x50x128xbf16>, tensor<128x256xbf16>, tensor<256xbf16>) {
  %dx, %dw, %db = bpt.linear_grad %x, %w, %dy {bpt.strategy =
      #bpt.strategy<wgmma, chip = "sm_90a">}
      : (tensor<2x50x128xbf16>, tensor<128x256xbf16>, tensor<2x50x256xbf16>)
        -> (tensor<2x50x128xbf16>, tensor<128x256xbf16>, tensor<256xbf16>)
  return %dx, %dw, %db
      : tensor<2x50x128xbf16>, tensor<128x256xbf16>, tensor<256xbf16>
}

//--- ffn_gelu.mlir
// Three chunks: 64, 64 and 8 rows. The first two sum in f32, the last
// rounds; dx is the three chunks' rows. du and the hidden activation come
// from the dh GEMM's activation-gradient epilogue (act_grad): no f32 dh,
// no elementwise pass.
// RUN: bpt-opt %t/ffn_gelu.mlir --bpt-expand-gradients | FileCheck %s --check-prefix=GELU-IR --implicit-check-not=linalg.generic
// GELU-IR-LABEL: func.func @ffn_gelu
// GELU-IR: tensor.extract_slice %{{.*}}[0, 0] [64, 128] [1, 1]
// GELU-IR: %[[U:.+]] = bpt.matmul {{.*}} : (tensor<64x128xf16>, tensor<128x256xf16>) -> tensor<64x256xf32>
// GELU-IR: %[[DU:[a-z0-9_]+]], %[[H:[a-z0-9_]+]] = bpt.matmul {{.*}}, act_grad gelu %[[U]] {transpose_rhs} : (tensor<64x128xf16>, tensor<256x128xf16>, tensor<64x256xf32>) -> (tensor<64x256xf16>, tensor<64x256xf16>)
// GELU-IR: %[[DWO:.+]] = bpt.matmul %[[H]], {{.*}} {transpose_lhs} : (tensor<64x256xf16>, tensor<64x128xf16>) -> tensor<256x128xf32>
// GELU-IR: %[[DWI:.+]] = bpt.matmul {{.*}}, %[[DU]] {transpose_lhs} : (tensor<64x128xf16>, tensor<64x256xf16>) -> tensor<128x256xf32>
// GELU-IR: bpt.matmul %[[DU]], {{.*}} {transpose_rhs} : (tensor<64x256xf16>, tensor<128x256xf16>) -> tensor<64x128xf16>
// GELU-IR: tensor.insert_slice {{.*}}[0, 0] [64, 128] [1, 1]
// GELU-IR: tensor.extract_slice %{{.*}}[64, 0] [64, 128] [1, 1]
// GELU-IR: bpt.matmul {{.*}}, acc %[[DWO]] {transpose_lhs} : (tensor<64x256xf16>, tensor<64x128xf16>, tensor<256x128xf32>) -> tensor<256x128xf32>
// GELU-IR: tensor.insert_slice {{.*}}[64, 0] [64, 128] [1, 1]
// GELU-IR: tensor.extract_slice %{{.*}}[128, 0] [8, 128] [1, 1]
// GELU-IR: bpt.matmul {{.*}}, acc %{{.*}} {transpose_lhs} : (tensor<8x256xf16>, tensor<8x128xf16>, tensor<256x128xf32>) -> tensor<256x128xf16>
// GELU-IR: bpt.matmul {{.*}}, acc %{{.*}} {transpose_lhs} : (tensor<8x128xf16>, tensor<8x256xf16>, tensor<128x256xf32>) -> tensor<128x256xf16>
// GELU-IR: tensor.insert_slice {{.*}}[128, 0] [8, 128] [1, 1]
// GELU-IR-NOT: bpt.ffn_grad
// RUN: bpt-cpu-run %t/ffn_gelu.mlir --seed=44 | FileCheck %s --check-prefix=GELU
// GELU-COUNT-3: output {{[0-2]}} tensor<{{.*}}xf16>: relative error {{.*}}: PASS
// GELU: {{^PASS$}}
func.func @ffn_gelu(%x: tensor<136x128xf16>, %w1: tensor<128x256xf16>,
                    %w2: tensor<256x128xf16>, %dy: tensor<136x128xf16>)
    -> (tensor<136x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>) {
  %dx, %dw1, %dw2 = bpt.ffn_grad gelu %x, %w1, %w2, %dy {bpt.strategy =
      #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 64>}
      : (tensor<136x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>,
         tensor<136x128xf16>)
        -> (tensor<136x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>)
  return %dx, %dw1, %dw2
      : tensor<136x128xf16>, tensor<128x256xf16>, tensor<256x128xf16>
}

//--- ffn_gelu_portable.mlir
// On a chip with mma.sync (no GEMM with transposed operands yet) the FFN's
// gradient stays on the portable GEMMs but still goes by chunks of rows,
// its strategy carrying chunk_rows: the same expansion without the wgmma
// epilogue (an f32 dh GEMM, then the activation's gradient elementwise),
// ragged last chunk of 8 rows; nothing of [136, 256] is left whole.
// RUN: bpt-opt %t/ffn_gelu_portable.mlir --bpt-expand-gradients | FileCheck %s --check-prefix=PORTABLE-IR
// PORTABLE-IR-LABEL: func.func @ffn_gelu_portable
// PORTABLE-IR: bpt.matmul {{.*}} : (tensor<64x128xbf16>, tensor<128x256xbf16>) -> tensor<64x256xf32>
// PORTABLE-IR: bpt.matmul {{.*}} {transpose_rhs} : (tensor<64x128xbf16>, tensor<256x128xbf16>) -> tensor<64x256xf32>
// PORTABLE-IR: linalg.generic
// PORTABLE-IR: tensor.extract_slice %{{.*}}[128, 0] [8, 128] [1, 1]
// PORTABLE-IR-NOT: bpt.ffn_grad
// PORTABLE-IR-NOT: tensor<136x256x
// RUN: bpt-cpu-run %t/ffn_gelu_portable.mlir --seed=49 | FileCheck %s --check-prefix=PORTABLE
// PORTABLE-COUNT-3: output {{[0-2]}} tensor<{{.*}}xbf16>: relative error {{.*}}: PASS
// PORTABLE: {{^PASS$}}
func.func @ffn_gelu_portable(%x: tensor<136x128xbf16>, %w1: tensor<128x256xbf16>,
                             %w2: tensor<256x128xbf16>, %dy: tensor<136x128xbf16>)
    -> (tensor<136x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>) {
  %dx, %dw1, %dw2 = bpt.ffn_grad gelu %x, %w1, %w2, %dy {bpt.strategy =
      #bpt.strategy<portable, chip = "sm_80", chunk_rows = 64>}
      : (tensor<136x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<136x128xbf16>)
        -> (tensor<136x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>)
  return %dx, %dw1, %dw2
      : tensor<136x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>
}

//--- ffn_silu.mlir
// The epilogue form for silu, bf16, rank 3: 136 rows in chunks of 64, 64
// and 8.
// RUN: bpt-opt %t/ffn_silu.mlir --bpt-expand-gradients | FileCheck %s --check-prefix=SILU-IR --implicit-check-not=linalg.generic
// SILU-IR-COUNT-3: bpt.matmul {{.*}}, act_grad silu {{.*}} {transpose_rhs}
// RUN: bpt-cpu-run %t/ffn_silu.mlir --seed=48 | FileCheck %s --check-prefix=SILU
// SILU-COUNT-3: output {{[0-2]}} tensor<{{.*}}xbf16>: relative error {{.*}}: PASS
// SILU: {{^PASS$}}
func.func @ffn_silu(%x: tensor<2x68x128xbf16>, %w1: tensor<128x256xbf16>,
                    %w2: tensor<256x128xbf16>, %dy: tensor<2x68x128xbf16>)
    -> (tensor<2x68x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>) {
  %dx, %dw1, %dw2 = bpt.ffn_grad silu %x, %w1, %w2, %dy {bpt.strategy =
      #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 64>}
      : (tensor<2x68x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<2x68x128xbf16>)
        -> (tensor<2x68x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>)
  return %dx, %dw1, %dw2
      : tensor<2x68x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>
}

//--- ffn_swiglu.mlir
// Gated, rank 3, bf16, two chunks of 64 rows: dx = dg·w_gateᵀ added to
// du·w_inᵀ through the f32 sum.
// RUN: bpt-opt %t/ffn_swiglu.mlir --bpt-expand-gradients | FileCheck %s --check-prefix=SWIGLU-IR
// SWIGLU-IR: %[[UP:.+]] = bpt.matmul %[[H:.+]]#1, {{.*}} {transpose_rhs} : (tensor<64x256xbf16>, tensor<128x256xbf16>) -> tensor<64x128xf32>
// SWIGLU-IR: bpt.matmul %[[H]]#2, {{.*}}, acc %[[UP]] {transpose_rhs} : (tensor<64x256xbf16>, tensor<128x256xbf16>, tensor<64x128xf32>) -> tensor<64x128xbf16>
// RUN: bpt-cpu-run %t/ffn_swiglu.mlir --seed=45 | FileCheck %s --check-prefix=SWIGLU
// SWIGLU-COUNT-4: output {{[0-3]}} tensor<{{.*}}xbf16>: relative error {{.*}}: PASS
// SWIGLU: {{^PASS$}}
func.func @ffn_swiglu(%x: tensor<2x64x128xbf16>, %w1: tensor<128x256xbf16>,
                      %w2: tensor<256x128xbf16>, %w3: tensor<128x256xbf16>,
                      %dy: tensor<2x64x128xbf16>)
    -> (tensor<2x64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
        tensor<128x256xbf16>) {
  %dx, %dw1, %dw2, %dw3 = bpt.ffn_grad swiglu %x, %w1, %w2, gate %w3, %dy
      {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 64>}
      : (tensor<2x64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<128x256xbf16>, tensor<2x64x128xbf16>)
        -> (tensor<2x64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
            tensor<128x256xbf16>)
  return %dx, %dw1, %dw2, %dw3
      : tensor<2x64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
        tensor<128x256xbf16>
}

//--- matmul.mlir
// bpt.matmul itself (bpt-convert-to-linalg): each operand layout, an f32
// sum, f32 and bf16 results, against the float64 reference interpreter.
// RUN: bpt-cpu-run %t/matmul.mlir --seed=46 | FileCheck %s --check-prefix=MATMUL
// MATMUL: output 0 tensor<24x40xf32>: relative error {{.*}}: PASS
// MATMUL: output 1 tensor<24x40xbf16>: relative error {{.*}}: PASS
// MATMUL: output 2 tensor<24x40xbf16>: relative error {{.*}}: PASS
// MATMUL: {{^PASS$}}
func.func @matmul(%a: tensor<56x24xbf16>, %b: tensor<56x40xbf16>,
                  %bt: tensor<40x56xbf16>, %s: tensor<24x40xf32>)
    -> (tensor<24x40xf32>, tensor<24x40xbf16>, tensor<24x40xbf16>) {
  %0 = bpt.matmul %a, %b, acc %s {transpose_lhs}
      : (tensor<56x24xbf16>, tensor<56x40xbf16>, tensor<24x40xf32>) -> tensor<24x40xf32>
  %1 = bpt.matmul %a, %bt {transpose_lhs, transpose_rhs}
      : (tensor<56x24xbf16>, tensor<40x56xbf16>) -> tensor<24x40xbf16>
  %e = tensor.empty() : tensor<24x56xbf16>
  %at = linalg.transpose ins(%a : tensor<56x24xbf16>)
      outs(%e : tensor<24x56xbf16>) permutation = [1, 0]
  %2 = bpt.matmul %at, %b : (tensor<24x56xbf16>, tensor<56x40xbf16>) -> tensor<24x40xbf16>
  return %0, %1, %2 : tensor<24x40xf32>, tensor<24x40xbf16>, tensor<24x40xbf16>
}

//--- matmul_act_grad.mlir
// bpt.matmul's activation-gradient epilogue (bpt-convert-to-linalg: the
// product, then one elementwise pass rounding each output once) for each
// non-gated activation, bf16 and f32 results, against the reference
// interpreter's float64 product ⊙ act'(pre) and act(pre).
// RUN: bpt-cpu-run %t/matmul_act_grad.mlir --seed=47 | FileCheck %s --check-prefix=ACT-GRAD
// ACT-GRAD-COUNT-8: output {{[0-7]}} tensor<24x40x{{bf16|f32}}>: relative error {{.*}}: PASS
// ACT-GRAD: {{^PASS$}}
func.func @matmul_act_grad(%dy: tensor<24x56xbf16>, %w: tensor<40x56xbf16>,
                           %v: tensor<56x40xbf16>, %u: tensor<24x40xf32>)
    -> (tensor<24x40xbf16>, tensor<24x40xbf16>, tensor<24x40xf32>,
        tensor<24x40xf32>, tensor<24x40xbf16>, tensor<24x40xbf16>,
        tensor<24x40xf32>, tensor<24x40xf32>) {
  %0:2 = bpt.matmul %dy, %w, act_grad gelu %u {transpose_rhs}
      : (tensor<24x56xbf16>, tensor<40x56xbf16>, tensor<24x40xf32>)
        -> (tensor<24x40xbf16>, tensor<24x40xbf16>)
  %1:2 = bpt.matmul %dy, %w, act_grad gelu_tanh %u {transpose_rhs}
      : (tensor<24x56xbf16>, tensor<40x56xbf16>, tensor<24x40xf32>)
        -> (tensor<24x40xf32>, tensor<24x40xf32>)
  %2:2 = bpt.matmul %dy, %v, act_grad relu %u
      : (tensor<24x56xbf16>, tensor<56x40xbf16>, tensor<24x40xf32>)
        -> (tensor<24x40xbf16>, tensor<24x40xbf16>)
  %3:2 = bpt.matmul %dy, %v, act_grad silu %u
      : (tensor<24x56xbf16>, tensor<56x40xbf16>, tensor<24x40xf32>)
        -> (tensor<24x40xf32>, tensor<24x40xf32>)
  return %0#0, %0#1, %1#0, %1#1, %2#0, %2#1, %3#0, %3#1
      : tensor<24x40xbf16>, tensor<24x40xbf16>, tensor<24x40xf32>,
        tensor<24x40xf32>, tensor<24x40xbf16>, tensor<24x40xbf16>,
        tensor<24x40xf32>, tensor<24x40xf32>
}

//--- chunk_sums.mlir
// Weight gradients summed in f32 across two query chunks, as
// bpt-build-backward's query-chunk writes them (`extf(dw_1) + extf(dw_0)`):
// the first chunk's GEMMs write f32, the second's preload that sum (acc),
// and neither extf nor addf is left. The FFN of 72 rows in chunks of 64 (a
// ragged 8 last) keeps f32 to its end.
// RUN: bpt-opt %t/chunk_sums.mlir --bpt-expand-gradients | FileCheck %s --check-prefix=SUMS-IR --implicit-check-not=arith.extf --implicit-check-not=arith.addf
// SUMS-IR-LABEL: func.func @chunk_sums
// SUMS-IR: %[[L1:.+]] = bpt.matmul {{.*}} {transpose_lhs} : (tensor<24x128xbf16>, tensor<24x256xbf16>) -> tensor<128x256xf32>
// SUMS-IR: %[[U1:.+]] = bpt.matmul {{.*}} : (tensor<64x128xbf16>, tensor<128x256xbf16>) -> tensor<64x256xf32>
// SUMS-IR: bpt.matmul {{.*}} acc %{{.*}} {transpose_lhs} : (tensor<8x128xbf16>, tensor<8x256xbf16>, tensor<128x256xf32>) -> tensor<128x256xf32>
// SUMS-IR: %[[L0:.+]] = bpt.matmul {{.*}}, acc %[[L1]] {transpose_lhs} : (tensor<40x128xbf16>, tensor<40x256xbf16>, tensor<128x256xf32>) -> tensor<128x256xf32>
// SUMS-IR: arith.truncf %[[L0]] : tensor<128x256xf32> to tensor<128x256xbf16>
// RUN: bpt-cpu-run %t/chunk_sums.mlir --seed=47 | FileCheck %s --check-prefix=SUMS
// SUMS-COUNT-3: output {{[0-2]}} tensor<{{.*}}xbf16>: relative error {{.*}}: PASS
// SUMS: {{^PASS$}}
func.func @chunk_sums(%x0: tensor<40x128xbf16>, %dy0: tensor<40x256xbf16>,
                      %x1: tensor<24x128xbf16>, %dy1: tensor<24x256xbf16>,
                      %w: tensor<128x256xbf16>, %w2: tensor<256x128xbf16>,
                      %h0: tensor<64x128xbf16>, %e0: tensor<64x128xbf16>,
                      %h1: tensor<72x128xbf16>, %e1: tensor<72x128xbf16>)
    -> (tensor<128x256xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>) {
  %dx1, %dw1 = bpt.linear_grad %x1, %w, %dy1 {bpt.strategy =
      #bpt.strategy<wgmma, chip = "sm_90a">}
      : (tensor<24x128xbf16>, tensor<128x256xbf16>, tensor<24x256xbf16>)
        -> (tensor<24x128xbf16>, tensor<128x256xbf16>)
  %f1:3 = bpt.ffn_grad gelu %h1, %w, %w2, %e1 {bpt.strategy =
      #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 64>}
      : (tensor<72x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<72x128xbf16>)
        -> (tensor<72x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>)
  %dx0, %dw0 = bpt.linear_grad %x0, %w, %dy0 {bpt.strategy =
      #bpt.strategy<wgmma, chip = "sm_90a">}
      : (tensor<40x128xbf16>, tensor<128x256xbf16>, tensor<40x256xbf16>)
        -> (tensor<40x128xbf16>, tensor<128x256xbf16>)
  %f0:3 = bpt.ffn_grad gelu %h0, %w, %w2, %e0 {bpt.strategy =
      #bpt.strategy<wgmma, chip = "sm_90a", chunk_rows = 64>}
      : (tensor<64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<64x128xbf16>)
        -> (tensor<64x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>)
  %a1 = arith.extf %dw1 : tensor<128x256xbf16> to tensor<128x256xf32>
  %a0 = arith.extf %dw0 : tensor<128x256xbf16> to tensor<128x256xf32>
  %a = arith.addf %a1, %a0 : tensor<128x256xf32>
  %b1 = arith.extf %f1#1 : tensor<128x256xbf16> to tensor<128x256xf32>
  %b0 = arith.extf %f0#1 : tensor<128x256xbf16> to tensor<128x256xf32>
  %b = arith.addf %b1, %b0 : tensor<128x256xf32>
  %c1 = arith.extf %f1#2 : tensor<256x128xbf16> to tensor<256x128xf32>
  %c0 = arith.extf %f0#2 : tensor<256x128xbf16> to tensor<256x128xf32>
  %c = arith.addf %c1, %c0 : tensor<256x128xf32>
  %ra = arith.truncf %a : tensor<128x256xf32> to tensor<128x256xbf16>
  %rb = arith.truncf %b : tensor<128x256xf32> to tensor<128x256xbf16>
  %rc = arith.truncf %c : tensor<256x128xf32> to tensor<256x128xbf16>
  return %ra, %rb, %rc
      : tensor<128x256xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>
}
