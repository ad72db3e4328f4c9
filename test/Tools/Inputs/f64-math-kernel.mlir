// An f32 FFN next to a hand-written kernel module with f64 math, which
// bpt-math-to-intrinsics leaves alone (f32 only): convert-gpu-to-nvvm calls
// libdevice's __nv_exp for it.
module attributes {gpu.container_module} {
  func.func @ffn(%x: tensor<2x32x64xf32>, %w1: tensor<64x128xf32>,
                 %w2: tensor<128x64xf32>) -> tensor<2x32x64xf32> {
    %0 = bpt.ffn relu %x, %w1, %w2 : (tensor<2x32x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<2x32x64xf32>
    return %0 : tensor<2x32x64xf32>
  }
  gpu.module @f64_math {
    gpu.func @f64_exp(%p: memref<4xf64>) kernel {
      %c0 = arith.constant 0 : index
      %v = memref.load %p[%c0] : memref<4xf64>
      %e = math.exp %v : f64
      memref.store %e, %p[%c0] : memref<4xf64>
      gpu.return
    }
  }
}
