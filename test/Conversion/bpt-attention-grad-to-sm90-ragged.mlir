// RUN: bpt-opt %s --bpt-select-strategy --bpt-tile-attention --bpt-attention-grad-to-sm90 | FileCheck %s
// RUN: bpt-opt %s --bpt-select-strategy=chip=sm_80 --bpt-tile-attention --bpt-attention-grad-to-sm80 | FileCheck %s --check-prefix=SM80

// A ragged attention backward (Sq 200, Skv 330: neither a multiple of the
// 80-row query or the 128-row key blocks) takes the sm_90a kernel: bf16,
// head dim 128, causal, GQA 4:2. Q, dO, K and V are read through 3-D
// tensor maps of [B·heads, S, D] (TMA zero-fills a last block past its
// head's end); the query side's f32 arrays are padded to whole query
// blocks (200 → 240 rows a head): D and the dQ accumulator, and lse's
// padded copy, which the pre-pass writes and the kernel reads instead of
// lse; the kernel adds into the accumulator through a map of its rows
// ([80, 32] f32 boxes) and runs ceil(330 / 128) = 3 key blocks; the
// post-pass reads the padded accumulator into dQ's 200 rows a head (50
// blocks of 256 threads, 8 elements each).
// CHECK-LABEL: func.func @grad_ragged
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<1x4x200x128xbf16>, %[[K:[^:]+]]: tensor<1x2x330x128xbf16>, %[[V:[^:]+]]: tensor<1x2x330x128xbf16>, %[[O:[^:]+]]: tensor<1x4x200x128xbf16>, %[[DO:[^:]+]]: tensor<1x4x200x128xbf16>, %[[LSE:[^:]+]]: tensor<1x4x200xf32>)
// CHECK-NOT: scf.forall
// CHECK: memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : memref<1x2x330x128xbf16> into memref<2x330x128xbf16>
// CHECK: %[[MK:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c1{{.*}}, %c128{{.*}}, %c64{{.*}}] : memref<*xbf16> -> <tensor = memref<1x128x64xbf16, {{.+}}oob = zero
// CHECK: %[[MV:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c1{{.*}}, %c128{{.*}}, %c64{{.*}}]
// CHECK: memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : memref<1x4x200x128xbf16> into memref<4x200x128xbf16>
// CHECK: %[[MQ:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c1{{.*}}, %c80{{.*}}, %c64{{.*}}] : memref<*xbf16> -> <tensor = memref<1x80x64xbf16
// CHECK: %[[DOB:.+]] = bufferization.to_buffer %[[DO]] read_only
// CHECK: %[[MDO:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c1{{.*}}, %c80{{.*}}, %c64{{.*}}]
// CHECK: %[[LSEB:.+]] = bufferization.to_buffer %[[LSE]] read_only
// CHECK: %[[DB:.+]] = memref.alloc() {bpt.buffer_name = "delta"} : memref<1x4x240xf32>
// CHECK: %[[DOP:.+]] = bufferization.to_buffer %[[DO]] read_only
// CHECK: %[[OB:.+]] = bufferization.to_buffer %[[O]] read_only
// CHECK: %[[ACC:.+]] = memref.alloc() {bpt.buffer_name = "dq_accumulator"} : memref<1x4x240x128xf32>
// CHECK: %[[PLSE:.+]] = memref.alloc() {bpt.buffer_name = "lse_padded"} : memref<1x4x240xf32>
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_prepare_d128_padded blocks in (%c60{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256, %c1{{.*}}, %c1{{.*}}) args(%[[DOP]] : memref<1x4x200x128xbf16>, %[[OB]] : memref<1x4x200x128xbf16>, %[[DB]] : memref<1x4x240xf32>, %[[ACC]] : memref<1x4x240x128xf32>, %[[LSEB]] : memref<1x4x200xf32>, %[[PLSE]] : memref<1x4x240xf32>)
// CHECK: %[[DK:.+]] = memref.alloc() : memref<1x2x330x128xbf16>
// CHECK: %[[DV:.+]] = memref.alloc() : memref<1x2x330x128xbf16>
// CHECK: memref.collapse_shape %[[ACC]] {{\[}}[0, 1, 2], [3]] : memref<1x4x240x128xf32> into memref<960x128xf32>
// CHECK: %[[MACC:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c80{{.*}}, %c32{{.*}}] : memref<*xf32> -> <tensor = memref<80x32xf32, {{.+}}swizzle = swizzle_128b
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_sm90_d128_causal_q80_ragged blocks in (%c6{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c384, %c1{{.*}}, %c1{{.*}}) dynamic_shared_memory_size %{{.+}} args(%[[MK]] : {{.+}}, %[[MV]] : {{.+}}, %[[MQ]] : {{.+}}, %[[MDO]] : {{.+}}, %[[PLSE]] : memref<1x4x240xf32>, %[[DB]] : memref<1x4x240xf32>, %[[MACC]] : {{.+}}, %[[DK]] : memref<1x2x330x128xbf16>, %[[DV]] : memref<1x2x330x128xbf16>)
// CHECK: %[[DQB:.+]] = memref.alloc() : memref<1x4x200x128xbf16>
// CHECK: gpu.launch_func @bpt_sm90::@attention_grad_finish_d128_padded blocks in (%c50{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%[[ACC]] : memref<1x4x240x128xf32>, %[[DQB]] : memref<1x4x200x128xbf16>)
// CHECK: return

// The kernel: K and V by row of their head's matrix (three coordinates),
// keys past 330 masked out of P (after the causal mask), dK and dV rows
// past 330 not stored.
// CHECK: gpu.func @attention_grad_sm90_d128_causal_q80_ragged(
// CHECK-COUNT-4: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.+}}, %{{.+}}, %{{.+}}, box[%{{.+}}, %{{.+}}, %{{.+}}]
// CHECK: %[[PAST:.+]] = arith.cmpi sge, %{{.+}}, %c330_i32
// CHECK: %[[CAUSAL:.+]] = arith.select %{{.+}}, %{{.+}}, %{{.+}} : f32
// CHECK: arith.select %[[PAST]], %{{.+}}, %[[CAUSAL]] : f32
// CHECK: %[[KEEP:.+]] = arith.cmpi slt, %{{.+}}, %c330_i32
// CHECK: scf.if %[[KEEP]] {
// CHECK: llvm.store

// The pre-pass: padded row r of head h reads dO and O at real row
// min(r, 199) of the head; past row 200 its D is 0 and lse's copy +inf.
// CHECK: gpu.func @attention_grad_prepare_d128_padded(
// CHECK: %[[HEAD:.+]] = arith.divui %[[ROW:.+]], %c240_i32
// CHECK: %[[IN:.+]] = arith.remui %[[ROW]], %c240_i32
// CHECK: %[[REAL:.+]] = arith.cmpi ult, %[[IN]], %c200_i32
// CHECK: arith.minui %[[IN]], %c199_i32
// CHECK: arith.select %[[REAL]], %{{.+}}, %{{.+}} : f32
// CHECK: scf.if
// CHECK: %[[INF:.+]] = arith.constant 0x7F800000 : f32
// CHECK: arith.select %[[REAL]], %{{.+}}, %[[INF]] : f32

// The post-pass: threads past dQ's 102400 elements do nothing; the others
// read the accumulator at the padded row.
// CHECK: gpu.func @attention_grad_finish_d128_padded(
// CHECK: %[[E:.+]] = arith.muli %{{.+}}, %c8_i64
// CHECK: %[[IN:.+]] = arith.cmpi ult, %[[E]], %c102400_i64
// CHECK: scf.if %[[IN]] {
// CHECK: arith.divui %{{.+}}, %c200_i64
// CHECK: arith.muli %{{.+}}, %c240_i64

// The mma.sync backward (sm_80) takes it too, with the same padded
// workspaces and pre- and post-pass: its copies zero-fill the last
// blocks' rows (cp.async reading 0 bytes), the kernel masks keys past 330
// and stores no dK / dV row past them.
// SM80-LABEL: func.func @grad_ragged
// SM80: memref.alloc() {bpt.buffer_name = "delta"} : memref<1x4x256xf32>
// SM80: memref.alloc() {bpt.buffer_name = "dq_accumulator"} : memref<1x4x256x128xf32>
// SM80: memref.alloc() {bpt.buffer_name = "lse_padded"} : memref<1x4x256xf32>
// SM80: gpu.launch_func @bpt_sm80::@attention_grad_prepare_d128_padded
// SM80: gpu.launch_func @bpt_sm80::@attention_grad_sm80_d128_causal_t64x128x2_ps_ragged blocks in (%c3{{.*}}, %c2{{.*}}, %c1{{.*}})
// SM80: gpu.launch_func @bpt_sm80::@attention_grad_finish_d128_padded blocks in (%c50
// SM80: gpu.func @attention_grad_sm80_d128_causal_t64x128x2_ps_ragged(
// SM80: nvvm.cp.async.shared.global {{.+}}, 16, cache = cg, %{{.+}}
// SM80: arith.cmpi sge, %{{.+}}, %c330_i32
// SM80: arith.cmpi slt, %{{.+}}, %c330_i32
func.func @grad_ragged(%q: tensor<1x4x200x128xbf16>, %k: tensor<1x2x330x128xbf16>,
                       %v: tensor<1x2x330x128xbf16>, %o: tensor<1x4x200x128xbf16>,
                       %do: tensor<1x4x200x128xbf16>, %lse: tensor<1x4x200xf32>)
    -> (tensor<1x4x200x128xbf16>, tensor<1x2x330x128xbf16>, tensor<1x2x330x128xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      : (tensor<1x4x200x128xbf16>, tensor<1x2x330x128xbf16>, tensor<1x2x330x128xbf16>,
         tensor<1x4x200x128xbf16>, tensor<1x4x200x128xbf16>, tensor<1x4x200xf32>)
      -> (tensor<1x4x200x128xbf16>, tensor<1x2x330x128xbf16>, tensor<1x2x330x128xbf16>)
  return %dq, %dk, %dv
      : tensor<1x4x200x128xbf16>, tensor<1x2x330x128xbf16>, tensor<1x2x330x128xbf16>
}
