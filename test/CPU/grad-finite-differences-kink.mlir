// The float64 gradients are checked by central finite differences along a
// random direction, at two steps (h and h/4, h relative to the argument's
// size). ReLU's derivative steps at 0: when a pre-activation lies within
// the step of 0, the two differences disagree, and the check draws another
// direction instead of failing a correct gradient (seed 2: the first
// directions of x and W1 cross a kink, the second ones are smooth). When no
// direction of four is smooth, the point itself lies on a kink (seed 36: a
// pre-activation within ~1e-7 of 0): the check says so, and an error above
// the tolerance still fails.

// RUN: bpt-cpu-run %s --backward --seed=2 | FileCheck %s --check-prefix=RETRIED
// RETRIED: gradient 1 tensor<32x1024xf32>: relative error {{.*}} (tolerance 1e-05): PASS
// RETRIED: finite differences, argument 0: {{.*}} (tolerance 1e-05): PASS (direction 2: the differences disagreed across a kink before)
// RETRIED-NEXT: finite differences, argument 1: {{.*}} (tolerance 1e-05): PASS (direction 2: the differences disagreed across a kink before)
// RETRIED-NEXT: finite differences, argument 2: {{.*}} (tolerance 1e-05): PASS{{$}}
// RETRIED: {{^PASS$}}

// RUN: not bpt-cpu-run %s --backward --seed=36 | FileCheck %s --check-prefix=ON-KINK
// ON-KINK: finite differences, argument 1: {{.*}} (tolerance 1e-05): FAIL (no smooth direction in 4: the point lies on a kink, such as a ReLU input at 0; another --seed moves it)
// ON-KINK: {{^FAIL$}}
func.func @relu_ffn(%x: tensor<2x64x32xf32>, %w1: tensor<32x1024xf32>,
                    %w2: tensor<1024x32xf32>) -> tensor<2x64x32xf32> {
  %y = bpt.ffn relu %x, %w1, %w2
      : (tensor<2x64x32xf32>, tensor<32x1024xf32>, tensor<1024x32xf32>)
        -> tensor<2x64x32xf32>
  return %y : tensor<2x64x32xf32>
}
