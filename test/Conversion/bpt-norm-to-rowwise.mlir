// RUN: bpt-opt %s --split-input-file --bpt-select-strategy --bpt-norm-to-rowwise --verify-diagnostics | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chip=sm_86 --verify-diagnostics 2>/dev/null | FileCheck %s --check-prefix=SM86
// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=tensor-cores=false 2>/dev/null | FileCheck %s --check-prefix=PORTABLE

// A layer_norm of 77 rows: ten blocks of eight warps (a row each), the last
// block's spare warps guarded off; the input viewed as [rows, hidden].
// CHECK-LABEL: func.func @layer_norm_ragged
// CHECK-NOT: bpt.layer_norm
// CHECK: %[[X:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2]] : memref<1x77x512xbf16> into memref<77x512xbf16>
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<1x77x512xbf16>
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %[[OUT]]
// CHECK: gpu.launch_func @bpt_rows::@layer_norm_bf16_x77_o77_h512_eps1em05_r77 blocks in (%c10, %c1{{[_0-9]*}}, %c1{{[_0-9]*}}) threads in (%c256, %c1{{[_0-9]*}}, %c1{{[_0-9]*}}) args(%[[X]] : memref<77x512xbf16>, %{{.+}} : memref<512xbf16>, %{{.+}} : memref<512xbf16>, %[[ROWS]] : memref<77x512xbf16>, %c0_i32{{.*}} : i32, %c0_i32{{.*}} : i32)
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: gpu.module @bpt_rows
// CHECK: gpu.func @layer_norm_bf16_x77_o77_h512_eps1em05_r77(
// CHECK: %[[ROW:.+]] = arith.addi
// CHECK: arith.cmpi ult, %[[ROW]], %c77_i32
// CHECK: scf.if
// Two 16-byte loads a lane (512 = 2 x 32 lanes x 8), the mean and the
// variance as warp sums, 16-byte stores.
// CHECK-COUNT-2: llvm.load {{.+}} {alignment = 16 : i64} : !llvm.ptr -> vector<8xbf16>
// CHECK-COUNT-5: nvvm.shfl.sync bfly
// CHECK-COUNT-5: nvvm.shfl.sync bfly
// CHECK: llvm.nvvm.rsqrt.approx.ftz.f
// CHECK: llvm.store {{.+}} {alignment = 16 : i64} : vector<4xi32>, !llvm.ptr
// CHECK: gpu.return
// SM86-LABEL: func.func @layer_norm_ragged
// SM86: bpt.layer_norm {{.+}} {bpt.strategy = #bpt.strategy<rowwise, chip = "sm_86">}
// PORTABLE-LABEL: func.func @layer_norm_ragged
// PORTABLE: bpt.layer_norm {{.+}} {bpt.strategy = #bpt.strategy<portable, chip = "sm_90a">}
func.func @layer_norm_ragged(%x: tensor<1x77x512xbf16>, %w: tensor<512xbf16>,
                             %b: tensor<512xbf16>) -> tensor<1x77x512xbf16> {
  %0 = bpt.layer_norm %x, %w, %b
      : (tensor<1x77x512xbf16>, tensor<512xbf16>, tensor<512xbf16>)
        -> tensor<1x77x512xbf16>
  return %0 : tensor<1x77x512xbf16>
}

// -----

// Whole blocks of rows (256 = 32 x 8): no guard. The epsilon is compiled
// in and named; an rms_norm has no bias and one warp sum.
// CHECK-LABEL: func.func @rms_norm
// CHECK: gpu.launch_func @bpt_rows::@rms_norm_f16_x256_o256_h1024_eps1em06 blocks in (%c32,
// CHECK: gpu.func @rms_norm_f16_x256_o256_h1024_eps1em06(%{{.+}}: memref<256x1024xf16>, %{{.+}}: memref<1024xf16>, %{{.+}}: memref<256x1024xf16>, %{{.+}}: i32, %{{.+}}: i32)
// CHECK-NOT: scf.if
// CHECK-COUNT-4: llvm.load {{.+}} -> vector<8xf16>
// CHECK-COUNT-5: nvvm.shfl.sync bfly
// CHECK-NOT: nvvm.shfl.sync
// CHECK: gpu.return
func.func @rms_norm(%x: tensor<2x128x1024xf16>, %w: tensor<1024xf16>)
    -> tensor<2x128x1024xf16> {
  %0 = bpt.rms_norm %x, %w {epsilon = 1.0e-6 : f64}
      : (tensor<2x128x1024xf16>, tensor<1024xf16>) -> tensor<2x128x1024xf16>
  return %0 : tensor<2x128x1024xf16>
}

// -----

// What the row kernel does not take stays portable, with a remark: f32
// rows, rows that a warp's 16-byte loads do not tile (not a multiple of
// 256 elements), rows too long for registers.
// CHECK-LABEL: func.func @refused
// CHECK-NOT: gpu.launch_func
// CHECK-COUNT-3: #bpt.strategy<portable, chip = "sm_90a">
func.func @refused(%x: tensor<4x512xf32>, %w: tensor<512xf32>,
                   %y: tensor<4x384xbf16>, %v: tensor<384xbf16>,
                   %z: tensor<4x8192xbf16>, %u: tensor<8192xbf16>)
    -> (tensor<4x512xf32>, tensor<4x384xbf16>, tensor<4x8192xbf16>) {
  // expected-remark @below {{rms_norm does not take the rowwise path: the row kernel takes bf16 and f16 rows}}
  %0 = bpt.rms_norm %x, %w
      : (tensor<4x512xf32>, tensor<512xf32>) -> tensor<4x512xf32>
  // expected-remark @below {{rms_norm does not take the rowwise path: rows of 384 elements: the row kernel takes multiples of 256 up to 4096}}
  %1 = bpt.rms_norm %y, %v
      : (tensor<4x384xbf16>, tensor<384xbf16>) -> tensor<4x384xbf16>
  // expected-remark @below {{rms_norm does not take the rowwise path: rows of 8192 elements: the row kernel takes multiples of 256 up to 4096}}
  %2 = bpt.rms_norm %z, %u
      : (tensor<4x8192xbf16>, tensor<8192xbf16>) -> tensor<4x8192xbf16>
  return %0, %1, %2 : tensor<4x512xf32>, tensor<4x384xbf16>, tensor<4x8192xbf16>
}
