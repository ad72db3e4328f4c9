// The float64 gradients are checked by central finite differences along a
// random direction, at two steps (h and h/4). ReLU's derivative steps at 0:
// when a pre-activation lies within the step of 0, the two differences
// disagree, and the check draws another direction instead of failing a
// correct gradient. Seed 22 puts the first direction of W1 (argument 1)
// across a kink; the second is smooth and passes to ~1e-9.

// RUN: bpt-cpu-run %s --backward --seed=22 | FileCheck %s
// CHECK: gradient 1 tensor<32x128xf32>: relative error {{.*}} (tolerance 1e-05): PASS
// CHECK: finite differences, argument 0: {{.*}} (tolerance 1e-05): PASS{{$}}
// CHECK-NEXT: finite differences, argument 1: {{.*}} (tolerance 1e-05): PASS (direction 2: the differences disagreed across a kink before)
// CHECK-NEXT: finite differences, argument 2: {{.*}} (tolerance 1e-05): PASS
// CHECK: {{^PASS$}}
func.func @relu_ffn(%x: tensor<2x64x32xf32>, %w1: tensor<32x128xf32>,
                    %w2: tensor<128x32xf32>) -> tensor<2x64x32xf32> {
  %y = bpt.ffn relu %x, %w1, %w2
      : (tensor<2x64x32xf32>, tensor<32x128xf32>, tensor<128x32xf32>)
        -> tensor<2x64x32xf32>
  return %y : tensor<2x64x32xf32>
}
