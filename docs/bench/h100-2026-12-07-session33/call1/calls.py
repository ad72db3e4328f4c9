"""Host time per KernelSet call of python/bpt/runtime.py: old (per-call
arguments) against new (prepared once per address set)."""
import importlib, json, os, sys, time
import torch
DT = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
def tensors(manifest):
    out = {}
    for b in manifest["buffers"]:
        if b["role"] == "workspace":
            continue
        out[b["name"]] = torch.zeros(b["shape"], dtype=DT[b["dtype"]], device="cuda") if "shape" in b \
            else torch.zeros(b["bytes"], dtype=torch.uint8, device="cuda")
    return out
for version in sys.argv[1:3]:
    sys.path.insert(0, version)
    for m in [k for k in list(sys.modules) if k == "bpt" or k.startswith("bpt.")]:
        del sys.modules[m]
    import bpt
    rt = bpt.Runtime()
    for path in sys.argv[3:]:
        manifest = json.load(open(path))
        ks = bpt.KernelSet(rt, path)
        bufs = tensors(manifest)
        for _ in range(50): ks(**bufs)
        torch.cuda.synchronize()
        n = 2000
        e0 = torch.cuda.Event(enable_timing=True); e1 = torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter(); e0.record()
        for _ in range(n): ks(**bufs)
        t1 = time.perf_counter(); e1.record(); e1.synchronize()
        print(f"{version:24s} {os.path.basename(path):16s} launches {len(manifest['launches']):3d}: "
              f"host {1e6*(t1-t0)/n:7.1f} us/call, GPU-side {1000*e0.elapsed_time(e1)/n:7.1f} us/call")
        ks.close()
    rt.close()
    sys.path.remove(version)
