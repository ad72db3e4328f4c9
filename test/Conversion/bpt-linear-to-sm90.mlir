// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --bpt-linear-to-sm90 --verify-diagnostics | FileCheck %s

// One wgmma GEMM launch over the [rows, K] view of the input, with TMA
// descriptors of it (128-row boxes) and of the weight (64-row boxes):
// 128-wide tiles, no activation, rows from 0 (A and C).
// CHECK-LABEL: func.func @linear
// CHECK-NOT: bpt.linear
// CHECK: %[[X:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2]] : memref<2x256x128xbf16> into memref<512x128xbf16>
// CHECK: %[[XMAP:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c128, %c64]
// CHECK: %[[WMAP:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c64{{.*}}, %c64{{.*}}]
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x256x384xbf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[OUT]]
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a512_c512_n384_k128 blocks in (%c3{{[_0-9]*}}, %c4{{[_0-9]*}}, %{{.+}}) threads in (%c288, {{.+}} args(%[[XMAP]] : {{.+}}, %[[WMAP]] : {{.+}}, %[[ROWS]] : memref<512x384xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: gpu.func @gemm_sm90_a512_c512_n384_k128(
// CHECK-NOT: scf.if {{.*}}slt
// CHECK-NOT: math.
// CHECK: nvvm.wgmma.mma_async
// CHECK: gpu.return
func.func @linear(%x: tensor<2x256x128xbf16>, %w: tensor<128x384xbf16>)
    -> tensor<2x256x384xbf16> {
  %0 = bpt.linear %x, %w
      : (tensor<2x256x128xbf16>, tensor<128x384xbf16>) -> tensor<2x256x384xbf16>
  return %0 : tensor<2x256x384xbf16>
}

// -----

// 77 rows: one row tile, whose rows past 77 TMA reads as zeros (the input's
// tensor map is 77 rows high) and the epilogue does not store: each
// consumer thread tests its two rows against the rows left from the tile's
// first (77 - m0).
// CHECK-LABEL: func.func @ragged
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a77_c77_n128_k256_ragged blocks in (%c1{{[_0-9]*}}, %c1{{[_0-9]*}}, %{{.+}})
// CHECK: gpu.func @gemm_sm90_a77_c77_n128_k256_ragged(
// CHECK: %[[LEFT:.+]] = arith.subi %c77_i32, %{{.+}} : i32
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// CHECK: %[[IN:.+]] = arith.cmpi slt, %{{.+}}, %[[LEFT]] : i32
// CHECK-NEXT: scf.if %[[IN]] {
// CHECK-COUNT-16: llvm.store
// CHECK: %[[IN2:.+]] = arith.cmpi slt, %{{.+}}, %[[LEFT]] : i32
// CHECK-NEXT: scf.if %[[IN2]] {
// CHECK-COUNT-16: llvm.store
// CHECK: gpu.return
func.func @ragged(%x: tensor<77x256xf16>, %w: tensor<256x128xf16>)
    -> tensor<77x128xf16> {
  %0 = bpt.linear %x, %w
      : (tensor<77x256xf16>, tensor<256x128xf16>) -> tensor<77x128xf16>
  return %0 : tensor<77x128xf16>
}

// -----

// CHECK-LABEL: func.func @not_eligible
// CHECK-COUNT-3: bpt.linear
// CHECK-NOT: gpu.launch_func
func.func @not_eligible(%x: tensor<128x128xbf16>, %w: tensor<128x128xbf16>,
                        %b: tensor<128xbf16>, %x96: tensor<128x96xbf16>,
                        %w96: tensor<96x128xbf16>, %x32: tensor<128x128xf32>,
                        %w32: tensor<128x128xf32>)
    -> (tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128x128xf32>) {
  // expected-remark @below {{linear does not take the wgmma path: a bias (the GEMM kernel has no bias epilogue)}}
  %0 = bpt.linear %x, %w, %b
      : (tensor<128x128xbf16>, tensor<128x128xbf16>, tensor<128xbf16>)
      -> tensor<128x128xbf16>
  // expected-remark @below {{linear does not take the wgmma path: N = 128 must be a multiple of 128 and K = 96 of 64}}
  %1 = bpt.linear %x96, %w96
      : (tensor<128x96xbf16>, tensor<96x128xbf16>) -> tensor<128x128xbf16>
  // expected-remark @below {{linear does not take the wgmma path: element type f32 (the wgmma path takes bf16 and f16)}}
  %2 = bpt.linear %x32, %w32
      : (tensor<128x128xf32>, tensor<128x128xf32>) -> tensor<128x128xf32>
  return %0, %1, %2 : tensor<128x128xbf16>, tensor<128x128xbf16>,
                      tensor<128x128xf32>
}

// -----

// bpt.matmul with both operands transposed, an f32 sum and an f32 result,
// K = 104 (not a multiple of 64: two steps, TMA's zero fill pads the
// second; 208-byte rows keep TMA's 16-byte stride rule): A stored [K, M] in [64, 64] boxes (M-major: wgmma's layoutA
// col), B stored [N, K] in [128, 64] boxes (K-major: layoutB col); the sum
// is read as pairs of f32 into the accumulators before the main loop (the
// ragged last tile's rows past the end clamped to the last row), and C
// written as pairs of f32.
// CHECK-LABEL: func.func @matmul_transposed
// CHECK: %[[AMAP:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c64{{[_0-9]*}}, %c64{{[_0-9]*}}]
// CHECK: %[[BMAP:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c128{{[_0-9]*}}, %c64{{[_0-9]*}}]
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<192x256xf32>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[OUT]]
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a192_c192_n256_k104_ragged_at_bt_acc_f32 blocks in (%c2{{[_0-9]*}}, %c2{{[_0-9]*}}, %{{.+}}) {{.+}} args(%[[AMAP]] : {{.+}}, %[[BMAP]] : {{.+}}, %[[ROWS]] : memref<192x256xf32>, %{{.+}} : memref<192x256xf32>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.func @gemm_sm90_a192_c192_n256_k104_ragged_at_bt_acc_f32(
// CHECK: arith.cmpi sge
// CHECK: arith.select
// CHECK: llvm.load %{{.+}} {alignment = 8 : i64} : !llvm.ptr -> vector<2xf32>
// CHECK: scf.for %{{.+}} = %c0_i32{{.*}} to %c2_i32
// CHECK: nvvm.wgmma.mma_async {{.+}} A[<bf16>, <one>, <col>], B[<bf16>, <one>, <col>]
// CHECK-NOT: llvm.load {{.+}} vector<2xf32>
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 8 : i64} : vector<2xf32>, !llvm.ptr
func.func @matmul_transposed(%a: tensor<104x192xbf16>, %b: tensor<256x104xbf16>,
                             %s: tensor<192x256xf32>) -> tensor<192x256xf32> {
  %0 = bpt.matmul %a, %b, acc %s {transpose_lhs, transpose_rhs}
      : (tensor<104x192xbf16>, tensor<256x104xbf16>, tensor<192x256xf32>)
        -> tensor<192x256xf32>
  return %0 : tensor<192x256xf32>
}

// -----

// bpt-expand-gradients' chunks of rows are read and written in place: a
// tensor.extract_slice of whole rows becomes the kernel's first row of
// that operand (A's M rows; A's K rows when transposed; B's K rows, a
// "_brow" kernel with its own argument), and a chain of tensor.insert_slice
// from a tensor.empty one buffer that each launch writes from its row.
// CHECK-LABEL: func.func @row_chunks
// CHECK-NOT: tensor.extract_slice
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a320_c192_n256_k128_ragged_f32 {{.+}} args(%{{.+}}, %{{.+}}, %{{.+}} : memref<192x256xf32>, %c128_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c128_n256_k192_at_f32 {{.+}} args(%{{.+}}, %{{.+}}, %{{.+}} : memref<128x256xf32>, %c128_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a256_c256_n128_k192_at_f32_brow {{.+}} args(%{{.+}}, %{{.+}}, %{{.+}} : memref<256x128xf32>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32, %c128_i32{{.*}} : i32)
// CHECK: %[[DX:.+]] = memref.alloc() : memref<320x128xbf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[DX]]
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a128_c320_n128_k256_bt {{.+}} args(%{{.+}}, %{{.+}}, %[[ROWS]] : memref<320x128xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a192_c320_n128_k256_ragged_bt {{.+}} args(%{{.+}}, %{{.+}}, %{{.+}} : memref<320x128xbf16>, %c0_i32{{.*}} : i32, %c128_i32{{.*}} : i32)
// CHECK-NOT: tensor.insert_slice
// CHECK: %[[WHOLE:.+]] = bufferization.to_tensor %[[DX]]
// CHECK: return {{.*}}%[[WHOLE]]
func.func @row_chunks(%x: tensor<320x128xbf16>, %w: tensor<128x256xbf16>,
                      %h: tensor<192x256xbf16>, %g: tensor<128x256xbf16>)
    -> (tensor<192x256xf32>, tensor<128x256xf32>, tensor<256x128xf32>,
        tensor<320x128xbf16>) {
  %xc = tensor.extract_slice %x[128, 0] [192, 128] [1, 1]
      : tensor<320x128xbf16> to tensor<192x128xbf16>
  %u = bpt.matmul %xc, %w
      : (tensor<192x128xbf16>, tensor<128x256xbf16>) -> tensor<192x256xf32>
  %dw = bpt.matmul %xc, %h {transpose_lhs}
      : (tensor<192x128xbf16>, tensor<192x256xbf16>) -> tensor<128x256xf32>
  %dv = bpt.matmul %h, %xc {transpose_lhs}
      : (tensor<192x256xbf16>, tensor<192x128xbf16>) -> tensor<256x128xf32>
  %e = tensor.empty() : tensor<320x128xbf16>
  %p0 = bpt.matmul %g, %w {transpose_rhs}
      : (tensor<128x256xbf16>, tensor<128x256xbf16>) -> tensor<128x128xbf16>
  %d0 = tensor.insert_slice %p0 into %e[0, 0] [128, 128] [1, 1]
      : tensor<128x128xbf16> into tensor<320x128xbf16>
  %p1 = bpt.matmul %h, %w {transpose_rhs}
      : (tensor<192x256xbf16>, tensor<128x256xbf16>) -> tensor<192x128xbf16>
  %d1 = tensor.insert_slice %p1 into %d0[128, 0] [192, 128] [1, 1]
      : tensor<192x128xbf16> into tensor<320x128xbf16>
  return %u, %dw, %dv, %d1
      : tensor<192x256xf32>, tensor<128x256xf32>, tensor<256x128xf32>,
        tensor<320x128xbf16>
}

// -----

// A chunk of K rows that neither fills whole 64-row K steps nor ends its
// matrix would read the next chunk's rows in its last step.
func.func @k_chunk_unfit(%x: tensor<320x128xbf16>, %h: tensor<100x256xbf16>)
    -> tensor<128x256xf32> {
  %xc = tensor.extract_slice %x[0, 0] [100, 128] [1, 1]
      : tensor<320x128xbf16> to tensor<100x128xbf16>
  // expected-error @below {{bpt-linear-to-sm90: lhs's chunk of 100 K rows at row 0 neither is a multiple of 64 rows nor ends its matrix}}
  %dw = bpt.matmul %xc, %h {transpose_lhs}
      : (tensor<100x128xbf16>, tensor<100x256xbf16>) -> tensor<128x256xf32>
  return %dw : tensor<128x256xf32>
}

// -----

// bpt.matmul's activation-gradient epilogue (an FFN's dh GEMM, a ragged
// chunk of 72 rows read in place from dy's row 128): one launch whose f32
// pre-activation takes the sum's argument slot and whose second output
// act(u) follows it, both [72, 256] (the launch's rows). With 128-wide
// tiles u's fragment is loaded before the main loop (the rows past the
// chunk clamped to its last), as an accumulated sum is; the epilogue
// computes act(u) and act'(u) (erf, exp) and stores act(u) and
// dh ⊙ act'(u) as bf16 pairs.
// CHECK-LABEL: func.func @matmul_act_grad
// CHECK-NOT: tensor.extract_slice
// CHECK: %[[DU:.+]] = memref.alloc() : memref<72x256xbf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[DU]]
// CHECK: %[[H:.+]] = memref.alloc() : memref<72x256xbf16>
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a200_c72_n256_k128_ragged_bt_actgrad_gelu blocks in (%c2{{[_0-9]*}}, %c1{{[_0-9]*}}, %{{.+}}) {{.+}} args(%{{.+}}, %{{.+}}, %[[ROWS]] : memref<72x256xbf16>, %{{.+}} : memref<72x256xf32>, %[[H]] : memref<72x256xbf16>, %c128_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK-DAG: bufferization.to_tensor %[[H]] restrict writable
// CHECK-DAG: bufferization.to_tensor %[[DU]] restrict writable
// CHECK: gpu.func @gemm_sm90_a200_c72_n256_k128_ragged_bt_actgrad_gelu(%{{.+}}: memref<72x256xbf16>, %{{.+}}: memref<72x256xf32>, %{{.+}}: memref<72x256xbf16>, %{{.+}}: i32, %{{.+}}: i32)
// CHECK: arith.cmpi sge
// CHECK: arith.select
// CHECK-COUNT-16: llvm.load %{{.+}} {alignment = 8 : i64} : !llvm.ptr -> vector<2xf32>
// CHECK: scf.for
// CHECK: nvvm.wgmma.mma_async
// CHECK-NOT: llvm.load {{.+}} vector<2xf32>
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// CHECK: scf.if
// CHECK: math.erf
// CHECK: math.exp
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : i32, !llvm.ptr
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : i32, !llvm.ptr
// CHECK: gpu.return
func.func @matmul_act_grad(%dy: tensor<200x128xbf16>, %w: tensor<256x128xbf16>,
                           %u: tensor<72x256xf32>)
    -> (tensor<72x256xbf16>, tensor<72x256xbf16>) {
  %dyc = tensor.extract_slice %dy[128, 0] [72, 128] [1, 1]
      : tensor<200x128xbf16> to tensor<72x128xbf16>
  %du, %h = bpt.matmul %dyc, %w, act_grad gelu %u {transpose_rhs}
      : (tensor<72x128xbf16>, tensor<256x128xbf16>, tensor<72x256xf32>)
        -> (tensor<72x256xbf16>, tensor<72x256xbf16>)
  return %du, %h : tensor<72x256xbf16>, tensor<72x256xbf16>
}

// -----

// 256-wide tiles (gemm_block_n pinned): the accumulator is 128 f32 a
// thread, and u's fragment as well would not fit the consumers' 240
// registers (setmaxnreg), before the main loop or after it; each pair of
// u is read in the epilogue where it is used. relu, f32 outputs stored as
// f32 pairs (act(u), then the product times relu'(u)).
// CHECK-LABEL: func.func @matmul_act_grad_wide
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a256_c256_n256_k64_actgrad_relu_f32_t256x4
// CHECK: gpu.func @gemm_sm90_a256_c256_n256_k64_actgrad_relu_f32_t256x4(
// CHECK-NOT: llvm.load {{.+}} vector<2xf32>
// CHECK: nvvm.wgmma.mma_async
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// CHECK: llvm.load %{{.+}} {alignment = 8 : i64} : !llvm.ptr -> vector<2xf32>
// CHECK: arith.cmpf ogt
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 8 : i64} : vector<2xf32>, !llvm.ptr
// CHECK: llvm.store %{{.+}}, %{{.+}} {alignment = 8 : i64} : vector<2xf32>, !llvm.ptr
// CHECK: llvm.load %{{.+}} {alignment = 8 : i64} : !llvm.ptr -> vector<2xf32>
// CHECK: gpu.return
func.func @matmul_act_grad_wide(%a: tensor<256x64xbf16>, %b: tensor<64x256xbf16>,
                                %u: tensor<256x256xf32>)
    -> (tensor<256x256xf32>, tensor<256x256xf32>) {
  %r, %h = bpt.matmul %a, %b, act_grad relu %u {bpt.strategy =
      #bpt.strategy<wgmma, chip = "sm_90a", warps = 12, gemm_block_n = 256>}
      : (tensor<256x64xbf16>, tensor<64x256xbf16>, tensor<256x256xf32>)
        -> (tensor<256x256xf32>, tensor<256x256xf32>)
  return %r, %h : tensor<256x256xf32>, tensor<256x256xf32>
}
