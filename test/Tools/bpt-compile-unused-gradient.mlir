// An attention backward one of whose gradients is unused (here dk: the
// keys frozen) compiles on every chip: the tensor-core lowerings read the
// blockwise nests back, which canonicalization trims of an unused result,
// so the op takes the portable path with a remark. (Until session 39 it
// stopped with "malformed attention backward nest".)
// RUN: bpt-compile --chip=sm_90a %s -o %t.sm90 2>&1 | FileCheck %s --check-prefix=SM90
// RUN: bpt-compile --chip=sm_80 %s -o %t.sm80 2>&1 | FileCheck %s --check-prefix=SM80
// RUN: FileCheck %s --input-file=%t.sm90.json --check-prefix=MANIFEST
// SM90: remark: attention_grad does not take the wgmma path: one of its gradients (dq, dk, dv) is unused
// SM90: remark: attention_grad does not take the mma.sync path: one of its gradients (dq, dk, dv) is unused
// SM80-NOT: wgmma
// SM80: remark: attention_grad does not take the mma.sync path: one of its gradients (dq, dk, dv) is unused
// MANIFEST: "name": "output1"
// MANIFEST-NOT: attention_grad_sm90
func.func @frozen_keys(%q: tensor<1x2x256x64xbf16>, %k: tensor<1x2x256x64xbf16>,
                       %v: tensor<1x2x256x64xbf16>, %o: tensor<1x2x256x64xbf16>,
                       %do: tensor<1x2x256x64xbf16>, %lse: tensor<1x2x256xf32>)
    -> (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>) {
  %dq, %dk, %dv = bpt.attention_grad %q, %k, %v, %o, %do, %lse causal
      : (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>,
         tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256xf32>)
      -> (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>)
  return %dq, %dv : tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>
}
