// The checker itself: a numerical test is only worth something if it can
// fail. --perturb-output (a hidden testing flag) corrupts the first element of
// output 0 by 2·tolerance·||ref||, so that output must FAIL and the run exit 1
// (f32 and bf16 tolerances, several outputs, several block sizes), while the
// same runs unperturbed PASS. And the runner's error paths exit non-zero (2)
// with a clear message on stderr and no verdict: an unknown --function, a
// module with two functions and no --function (or none at all), dynamically
// shaped, unranked, f64 or scalar arguments and results, an op with no
// float64 reference (arith.mulf on tensors), an invalid bpt op, malformed
// --block-sizes, non-positive block sizes, an --opt-level above 3, and a
// missing input file. The JIT's optimization level (0 by default) does not
// change a verdict: the same checks pass at 2 and 3.
//
// bpt-cpu-run compiles and JITs every function of its module, so each
// function lives in its own split-file part (//--- NAME.mlir).

// RUN: rm -rf %t && split-file %s %t

//--- attention.mlir
// RUN: bpt-cpu-run %t/attention.mlir --function=attention --q-block=16 --kv-block=16 --seed=71 | FileCheck %s --check-prefix=ATTN-OK
// RUN: not bpt-cpu-run %t/attention.mlir --function=attention --q-block=16 --kv-block=16 --seed=71 --perturb-output | FileCheck %s --check-prefix=ATTN-PERTURB
// RUN: bpt-cpu-run %t/attention.mlir --function=attention --q-block=16 --kv-block=16 --seed=71 --opt-level=2 | FileCheck %s --check-prefix=ATTN-OK
// ATTN-OK: output 0 tensor<1x4x40x32xf32>: relative error {{.*}} (tolerance 1e-05): PASS
// ATTN-OK: {{^PASS$}}
// ATTN-PERTURB: output 0 tensor<1x4x40x32xf32>: relative error {{.*}} (tolerance 1e-05): FAIL
// ATTN-PERTURB: {{^FAIL$}}
// Every configuration is checked against the reference, not only the first.
// RUN: not bpt-cpu-run %t/attention.mlir --function=attention --block-sizes=16:16,7:13 --seed=72 --perturb-output | FileCheck %s --check-prefix=ATTN-PERTURB-SIZES
// ATTN-PERTURB-SIZES: q-block 16, kv-block 16:
// ATTN-PERTURB-SIZES-NEXT: output 0 tensor<1x4x40x32xf32>: relative error {{.*}}: FAIL
// ATTN-PERTURB-SIZES: q-block 7, kv-block 13:
// ATTN-PERTURB-SIZES-NEXT: output 0 tensor<1x4x40x32xf32>: relative error {{.*}}: FAIL
// ATTN-PERTURB-SIZES: {{^FAIL$}}
func.func @attention(%q: tensor<1x4x40x32xf32>, %k: tensor<1x4x40x32xf32>,
                     %v: tensor<1x4x40x32xf32>) -> tensor<1x4x40x32xf32> {
  %o = bpt.attention %q, %k, %v causal
      : (tensor<1x4x40x32xf32>, tensor<1x4x40x32xf32>, tensor<1x4x40x32xf32>)
        -> tensor<1x4x40x32xf32>
  return %o : tensor<1x4x40x32xf32>
}

//--- two_outputs_bf16.mlir
// bf16 (tolerance 1e-2), two outputs: only output 0 is perturbed, so output
// 1 still passes and the verdict is FAIL.
// RUN: bpt-cpu-run %t/two_outputs_bf16.mlir --function=two_outputs_bf16 --q-block=16 --kv-block=16 --seed=73 | FileCheck %s --check-prefix=BF16-OK
// RUN: not bpt-cpu-run %t/two_outputs_bf16.mlir --function=two_outputs_bf16 --q-block=16 --kv-block=16 --seed=73 --perturb-output | FileCheck %s --check-prefix=BF16-PERTURB
// BF16-OK: output 0 tensor<2x20x32xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// BF16-OK: output 1 tensor<2x20x32xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// BF16-OK: {{^PASS$}}
// BF16-PERTURB: output 0 tensor<2x20x32xbf16>: relative error {{.*}} (tolerance 1e-02): FAIL
// BF16-PERTURB: output 1 tensor<2x20x32xbf16>: relative error {{.*}} (tolerance 1e-02): PASS
// BF16-PERTURB: {{^FAIL$}}
func.func @two_outputs_bf16(%x: tensor<2x20x32xbf16>, %w1: tensor<32x64xbf16>,
                            %w2: tensor<64x32xbf16>, %g: tensor<32xbf16>)
    -> (tensor<2x20x32xbf16>, tensor<2x20x32xbf16>) {
  %f = bpt.ffn silu %x, %w1, %w2
      : (tensor<2x20x32xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<2x20x32xbf16>
  %n = bpt.rms_norm %x, %g : (tensor<2x20x32xbf16>, tensor<32xbf16>) -> tensor<2x20x32xbf16>
  return %f, %n : tensor<2x20x32xbf16>, tensor<2x20x32xbf16>
}

//--- block.mlir
// A whole block, fused and unfused.
// RUN: not bpt-cpu-run %t/block.mlir --function=block --q-block=16 --kv-block=16 --seed=74 --perturb-output | FileCheck %s --check-prefix=BLOCK-PERTURB
// RUN: not bpt-cpu-run %t/block.mlir --function=block --q-block=16 --kv-block=16 --seed=74 --perturb-output --no-fuse | FileCheck %s --check-prefix=BLOCK-PERTURB
// BLOCK-PERTURB: output 0 tensor<1x40x32xf32>: relative error {{.*}} (tolerance 1e-05): FAIL
// BLOCK-PERTURB: {{^FAIL$}}
func.func @block(%x: tensor<1x40x32xf32>, %g1: tensor<32xf32>, %wq: tensor<32x32xf32>,
                 %wk: tensor<32x16xf32>, %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>,
                 %g2: tensor<32xf32>, %w1: tensor<32x64xf32>, %w2: tensor<64x32xf32>,
                 %w3: tensor<32x64xf32>) -> tensor<1x40x32xf32> {
  %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
      norm2(%g2) ffn(%w1, %w2, gate %w3) heads(4) kv_heads(2) causal
      activation(swiglu) norm(rms_norm)
      : (tensor<1x40x32xf32>, tensor<32xf32>, tensor<32x32xf32>,
         tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x32xf32>,
         tensor<32xf32>, tensor<32x64xf32>, tensor<64x32xf32>,
         tensor<32x64xf32>) -> tensor<1x40x32xf32>
  return %y : tensor<1x40x32xf32>
}

//--- two_functions.mlir
// RUN: not bpt-cpu-run %t/two_functions.mlir --function=missing 2>&1 | FileCheck %s --check-prefix=NO-SUCH-FUNCTION --implicit-check-not=PASS --implicit-check-not=FAIL
// NO-SUCH-FUNCTION: error: bpt CPU runner: no function named 'missing'
// RUN: not bpt-cpu-run %t/two_functions.mlir 2>&1 | FileCheck %s --check-prefix=TWO-FUNCTIONS --implicit-check-not=PASS --implicit-check-not=FAIL
// TWO-FUNCTIONS: error: bpt CPU runner: expected one function, found 2; choose one with --function
// Naming one of them works.
// RUN: bpt-cpu-run %t/two_functions.mlir --function=second --seed=75 | FileCheck %s --check-prefix=SECOND
// SECOND: output 0 tensor<4x8xf32>: relative error {{.*}}: PASS
// SECOND: {{^PASS$}}
func.func @first(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %r = arith.addf %x, %y : tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}
func.func @second(%x: tensor<4x8xf32>, %g: tensor<8xf32>) -> tensor<4x8xf32> {
  %r = bpt.rms_norm %x, %g : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

//--- empty.mlir
// RUN: not bpt-cpu-run %t/empty.mlir 2>&1 | FileCheck %s --check-prefix=EMPTY --implicit-check-not=PASS --implicit-check-not=FAIL
// EMPTY: error: bpt CPU runner: expected one function, found 0; choose one with --function
module {
}

//--- dynamic.mlir
// A dynamic dimension (bpt ops reject them in their verifiers; this function
// has none, so the runner's own check must catch it).
// RUN: not bpt-cpu-run %t/dynamic.mlir 2>&1 | FileCheck %s --check-prefix=DYNAMIC --implicit-check-not=PASS --implicit-check-not=FAIL
// DYNAMIC: error: bpt CPU runner: argument #0 must be a statically shaped tensor of f32, f16 or bf16, got 'tensor<?x8xf32>'
func.func @dynamic(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %r = arith.addf %x, %y : tensor<?x8xf32>
  return %r : tensor<?x8xf32>
}

//--- dynamic_result.mlir
// RUN: not bpt-cpu-run %t/dynamic_result.mlir 2>&1 | FileCheck %s --check-prefix=DYNAMIC-RESULT --implicit-check-not=PASS --implicit-check-not=FAIL
// DYNAMIC-RESULT: error: bpt CPU runner: result #0 must be a statically shaped tensor of f32, f16 or bf16, got 'tensor<?x8xf32>'
func.func @dynamic_result(%x: tensor<4x8xf32>) -> tensor<?x8xf32> {
  %c = tensor.cast %x : tensor<4x8xf32> to tensor<?x8xf32>
  return %c : tensor<?x8xf32>
}

//--- unranked.mlir
// RUN: not bpt-cpu-run %t/unranked.mlir 2>&1 | FileCheck %s --check-prefix=UNRANKED --implicit-check-not=PASS --implicit-check-not=FAIL
// UNRANKED: error: bpt CPU runner: argument #0 must be a statically shaped tensor of f32, f16 or bf16, got 'tensor<*xf32>'
func.func @unranked(%x: tensor<*xf32>) -> tensor<*xf32> {
  return %x : tensor<*xf32>
}

//--- f64.mlir
// RUN: not bpt-cpu-run %t/f64.mlir 2>&1 | FileCheck %s --check-prefix=F64 --implicit-check-not=PASS --implicit-check-not=FAIL
// F64: error: bpt CPU runner: argument #0 must be a statically shaped tensor of f32, f16 or bf16, got 'tensor<4x8xf64>'
func.func @f64(%x: tensor<4x8xf64>, %y: tensor<4x8xf64>) -> tensor<4x8xf64> {
  %r = arith.addf %x, %y : tensor<4x8xf64>
  return %r : tensor<4x8xf64>
}

//--- scalar.mlir
// RUN: not bpt-cpu-run %t/scalar.mlir 2>&1 | FileCheck %s --check-prefix=SCALAR --implicit-check-not=PASS --implicit-check-not=FAIL
// SCALAR: error: bpt CPU runner: argument #1 must be a statically shaped tensor of f32, f16 or bf16, got 'f32'
func.func @scalar(%x: tensor<4xf32>, %a: f32) -> f32 {
  return %a : f32
}

//--- no_reference.mlir
// arith.mulf on tensors lowers fine but has no float64 reference.
// RUN: not bpt-cpu-run %t/no_reference.mlir 2>&1 | FileCheck %s --check-prefix=NO-REFERENCE --implicit-check-not=PASS --implicit-check-not=FAIL
// NO-REFERENCE: error: reference: no float64 reference for 'arith.mulf'
func.func @no_reference(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %r = arith.mulf %x, %y : tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

//--- invalid_op.mlir
// The bpt verifier runs on the input: head dims that disagree.
// RUN: not bpt-cpu-run %t/invalid_op.mlir 2>&1 | FileCheck %s --check-prefix=INVALID-OP --implicit-check-not=PASS --implicit-check-not=FAIL
// INVALID-OP: error: 'bpt.attention' op key dim 3 (head_dim) must be 64 to match query, got 32
func.func @invalid_op(%q: tensor<1x4x16x64xf32>, %k: tensor<1x4x16x32xf32>,
                      %v: tensor<1x4x16x32xf32>) -> tensor<1x4x16x64xf32> {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x4x16x64xf32>, tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>)
        -> tensor<1x4x16x64xf32>
  return %o : tensor<1x4x16x64xf32>
}

//--- options.mlir
// Bad block sizes, on an otherwise valid function.
// RUN: not bpt-cpu-run %t/options.mlir --block-sizes=4:x 2>&1 | FileCheck %s --check-prefix=BAD-PAIR --implicit-check-not=PASS --implicit-check-not=FAIL
// BAD-PAIR: bpt-cpu-run: --block-sizes takes Q:KV pairs, got '4:x'
// RUN: not bpt-cpu-run %t/options.mlir --block-sizes=16:16,32 2>&1 | FileCheck %s --check-prefix=NOT-A-PAIR --implicit-check-not=PASS --implicit-check-not=FAIL
// NOT-A-PAIR: bpt-cpu-run: --block-sizes takes Q:KV pairs, got '32'
// RUN: not bpt-cpu-run %t/options.mlir --q-block=0 2>&1 | FileCheck %s --check-prefix=ZERO-Q --implicit-check-not=PASS --implicit-check-not=FAIL
// ZERO-Q: bpt-cpu-run: block sizes must be positive, got q-block 0 and kv-block 64
// RUN: not bpt-cpu-run %t/options.mlir --kv-block=-3 2>&1 | FileCheck %s --check-prefix=NEGATIVE-KV --implicit-check-not=PASS --implicit-check-not=FAIL
// NEGATIVE-KV: bpt-cpu-run: block sizes must be positive, got q-block 64 and kv-block -3
// RUN: not bpt-cpu-run %t/options.mlir --block-sizes=16:16,8:0 2>&1 | FileCheck %s --check-prefix=ZERO-IN-LIST --implicit-check-not=PASS --implicit-check-not=FAIL
// ZERO-IN-LIST: bpt-cpu-run: block sizes must be positive, got q-block 8 and kv-block 0
// RUN: not bpt-cpu-run %t/missing.mlir 2>&1 | FileCheck %s --check-prefix=MISSING-FILE --implicit-check-not=PASS --implicit-check-not=FAIL
// MISSING-FILE: bpt-cpu-run: cannot open input file '{{.*}}missing.mlir'
// RUN: not bpt-cpu-run %t/options.mlir --opt-level=4 2>&1 | FileCheck %s --check-prefix=OPT-LEVEL --implicit-check-not=PASS --implicit-check-not=FAIL
// OPT-LEVEL: bpt-cpu-run: --opt-level must be 0 to 3, got 4
// The training check at level 3: both functions from one JIT-compiled module.
// RUN: bpt-cpu-run %t/options.mlir --backward --opt-level=3 | FileCheck %s --check-prefix=OPT-3-BACKWARD
// OPT-3-BACKWARD: gradient 1 tensor<8xf32>: relative error {{.*}}: PASS
// OPT-3-BACKWARD: {{^PASS$}}
func.func @options(%x: tensor<4x8xf32>, %g: tensor<8xf32>) -> tensor<4x8xf32> {
  %r = bpt.rms_norm %x, %g : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

//--- no_results.mlir
// A function with nothing to check is an error, not a vacuous PASS.
// RUN: not bpt-cpu-run %t/no_results.mlir 2>&1 | FileCheck %s --check-prefix=NO-RESULTS --implicit-check-not=PASS --implicit-check-not=FAIL
// NO-RESULTS: error: bpt CPU runner: function 'no_results' has no results to check
func.func @no_results(%x: tensor<4x8xf32>) {
  return
}

//--- empty_tensor.mlir
// RUN: not bpt-cpu-run %t/empty_tensor.mlir 2>&1 | FileCheck %s --check-prefix=EMPTY-TENSOR --implicit-check-not=PASS --implicit-check-not=FAIL
// EMPTY-TENSOR: error: bpt CPU runner: argument #0 is empty ('tensor<0x8xf32>'): there is nothing to check
func.func @empty_tensor(%x: tensor<0x8xf32>) -> tensor<0x8xf32> {
  %y = arith.addf %x, %x : tensor<0x8xf32>
  return %y : tensor<0x8xf32>
}
