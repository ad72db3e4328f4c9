// A chip option LLVM's NVPTX back end does not know is an error at the
// module, not a fatal error inside LLVM (issue 14).
// RUN: not bpt-opt %s --bpt-select-strategy=chip=sm_80a 2>&1 | FileCheck %s --check-prefix=STRATEGY
// RUN: not bpt-opt %s --pass-pipeline='builtin.module(bpt-to-nvvm{chip=sm_junk})' 2>&1 | FileCheck %s --check-prefix=NVVM
// RUN: not bpt-opt %s --pass-pipeline='builtin.module(bpt-to-nvvm{chip=sm_90a features=+ptx70})' 2>&1 | FileCheck %s --check-prefix=PTX
// A chip that needs a newer PTX than the default +ptx80 gets its own.
// RUN: bpt-opt %s --pass-pipeline='builtin.module(bpt-to-nvvm{chip=sm_100})' | FileCheck %s --check-prefix=SM100

// STRATEGY: error: bpt-select-strategy: chip: unknown chip 'sm_80a' (LLVM's NVPTX back end supports sm_20,
// NVVM: error: bpt-to-nvvm: chip: unknown chip 'sm_junk' (LLVM's NVPTX back end supports sm_20,
// PTX: error: bpt-to-nvvm: features: PTX 7.0 ('+ptx70') does not support sm_90a, which needs PTX 8.0 or later (e.g. +ptx80)
// SM100: gpu.binary
// SM100-SAME: chip = "sm_100", features = "+ptx86"

func.func @attention(%q: tensor<1x2x64x64xf32>, %k: tensor<1x2x64x64xf32>,
                     %v: tensor<1x2x64x64xf32>) -> tensor<1x2x64x64xf32> {
  %o = bpt.attention %q, %k, %v
      : (tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>, tensor<1x2x64x64xf32>)
      -> tensor<1x2x64x64xf32>
  return %o : tensor<1x2x64x64xf32>
}
