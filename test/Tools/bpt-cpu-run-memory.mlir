// Buffers that cannot fit in host memory are an error before anything is
// allocated, not "LLVM ERROR: out of memory" (issue 14).
// RUN: not bpt-cpu-run %s 2>&1 | FileCheck %s
// CHECK: error: bpt CPU runner: the arguments and results of 'attention' need about {{[0-9]+}} bytes of host memory (with their float64 copies), more than this machine's {{[0-9]+}} bytes; run smaller shapes
// CHECK-NOT: LLVM ERROR

func.func @attention(%q: tensor<64x64x1048576x128xf32>,
                     %k: tensor<64x64x1048576x128xf32>,
                     %v: tensor<64x64x1048576x128xf32>)
    -> tensor<64x64x1048576x128xf32> {
  %o = bpt.attention %q, %k, %v
      : (tensor<64x64x1048576x128xf32>, tensor<64x64x1048576x128xf32>,
         tensor<64x64x1048576x128xf32>) -> tensor<64x64x1048576x128xf32>
  return %o : tensor<64x64x1048576x128xf32>
}
