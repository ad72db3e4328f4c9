"""Prints what the training-step tests check in a kernel set's manifest.

  manifest-summary.py DIR NAME...   one line per DIR/NAME.json: the name,
      the workspace in MiB, the GEMM and rms_norm launches, whether the
      manifest records recompute_projections, then "dK@K dV@V" (or
      "dK,dV apart") for the attention backward's main launch: whether its
      dK and dV arguments (7, 8) lie at the bytes of its K and V (tensor
      maps 0, 1 on sm_90a; buffers 1, 2 on sm_80); then the launch order of the backward's pre-pass kernels
      ("prepare" fused, or "dots ... zero" split) and the main kernel.
"""
import json
import sys


def place(manifest, argument):
    # (buffer, byte offset) of a launch argument or of a tensor map's buffer
    # (an argument is a bare buffer index in manifests of version 1).
    if isinstance(argument, int):
        return argument, 0
    if "tensor_map" in argument:
        argument = manifest["tensor_maps"][argument["tensor_map"]]
    return argument["buffer"], argument.get("byte_offset", 0)


for name in sys.argv[2:]:
    m = json.load(open(f"{sys.argv[1]}/{name}.json"))
    workspace = sum(b["bytes"] for b in m["buffers"] if b["role"] == "workspace")
    kernels = [launch["kernel"] for launch in m["launches"]]
    line = [name, f"{workspace / 2**20:.1f}",
            str(sum("gemm" in k for k in kernels)),
            str(sum("rms_norm" in k for k in kernels)),
            str(m["options"].get("recompute_projections", False))]
    main = [l for l in m["launches"]
            if l["kernel"].startswith("attention_grad_sm")]
    for launch in main:
        args = launch["args"]
        k = 1 if launch["kernel"].startswith("attention_grad_sm80") else 0
        same = [place(m, args[w]) == place(m, args[r])
                for w, r in ((7, k), (8, k + 1))]
        line.append("dK@K dV@V" if all(same) else "dK,dV apart")
    order = [k.split("_")[2] for k in kernels
             if k.startswith("attention_grad_") and
             k.split("_")[2] in ("prepare", "dots", "zero", "sm90", "sm80")]
    # What runs between the pre-pass and the main kernel.
    if "dots" in order:
        first = kernels.index(next(k for k in kernels if "_dots_" in k))
        last = kernels.index(next(k for k in kernels if "_zero_" in k))
        line.append(f"{' '.join(order)} ({last - first - 1} launches between)")
    else:
        line.append(" ".join(order))
    print(" ".join(line))
