// Issue 15: bpt-cpu-run reports block sizes it cannot honour as given. A
// size larger than the sequence is clamped to it (remark; the result is
// still checked), one beyond 32 bits is refused naming the sizes; the
// defaults larger than a short sequence say nothing.
// RUN: bpt-cpu-run %s --q-block=100000 --kv-block=48 --seed=5 2>&1 | FileCheck %s --check-prefix=CLAMP
// RUN: bpt-cpu-run %s --block-sizes=16:16,64:1000 --seed=5 2>&1 | FileCheck %s --check-prefix=SIZES
// RUN: bpt-cpu-run %s --seed=5 2>&1 | FileCheck %s --check-prefix=QUIET
// RUN: not bpt-cpu-run %s --block-sizes=16:3000000000 2>&1 | FileCheck %s --check-prefix=HUGE
// RUN: not bpt-cpu-run %s --q-block=2147483648 2>&1 | FileCheck %s --check-prefix=HUGEQ

// CLAMP: block-sizes-reported.mlir:{{[0-9]+}}:8: remark: bpt-tile-attention: q-block=100000 is larger than the 40-row query sequence: clamped to 40 (one block covers it)
// CLAMP: remark: bpt-tile-attention: kv-block=48 is larger than the 40-row key/value sequence: clamped to 40
// CLAMP: {{^PASS$}}

// SIZES-NOT: q-block=16
// SIZES: remark: bpt-tile-attention: q-block=64 is larger than the 40-row query sequence: clamped to 40
// SIZES: remark: bpt-tile-attention: kv-block=1000 is larger than the 40-row key/value sequence: clamped to 40
// SIZES: {{^PASS$}}

// QUIET-NOT: remark
// QUIET: {{^PASS$}}

// HUGE: bpt-cpu-run: block sizes must be at most 2147483647, got q-block 16 and kv-block 3000000000
// HUGEQ: bpt-cpu-run: block sizes must be at most 2147483647, got q-block 2147483648 and kv-block 64

func.func @attention(%q: tensor<1x2x40x16xf32>, %k: tensor<1x2x40x16xf32>,
                     %v: tensor<1x2x40x16xf32>) -> tensor<1x2x40x16xf32> {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x2x40x16xf32>, tensor<1x2x40x16xf32>, tensor<1x2x40x16xf32>)
        -> tensor<1x2x40x16xf32>
  return %o : tensor<1x2x40x16xf32>
}
