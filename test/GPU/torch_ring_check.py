#!/usr/bin/env python3
"""bpt.ring.attention on one GPU with bpt's kernel sets: the ring of P ranks
simulated in one process (bpt.ring.simulate: every rank's steps, on the
shapes and causal masks a ring of P GPUs runs), and a torch.distributed
ring of one rank over NCCL. Output and gradients are compared with the
single-GPU kernels on the whole sequence (bpt.torch.attention; the issue's
bar: equal within the bf16 threshold) and with float64 autograd, SDPA's own
error printed beside. Exits 1 if an error exceeds 1e-2 (bf16/f16) or a set
is missing.

  python3 test/GPU/torch_ring_check.py --kernels DIR
  python3 test/GPU/torch_ring_check.py --prebuild DIR [--chip C]
      compiles the sets of every step shape into DIR (no PyTorch or GPU
      needed; the build does this for test/GPU/torch-ring-attention.test).
"""
import math
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(HERE, "..", "..", "python")
sys.path.insert(0, PYTHON)
from bpt import cache  # noqa: E402  (no torch)
from bpt.ring_schedule import step_problems  # noqa: E402  (no torch)
from check_main import check_main, open_device, run_checks  # noqa: E402

# (dtype, batch, heads, kv_heads, whole sequence, head_dim, causal, ranks)
CASES = [
    ("bf16", 1, 8, 2, 2048, 128, True, 1),
    ("bf16", 1, 8, 2, 2048, 128, True, 2),
    ("bf16", 1, 8, 2, 2048, 128, True, 4),
    ("f16", 2, 4, 4, 1024, 64, False, 2),
]
TOLERANCE = 1e-2
NAMES = ("o", "dq", "dk", "dv")


def problems(chip, tensor_cores=True):
    """Every set the cases need: the steps' (bpt.ring_schedule) and the
    whole sequence's."""
    found = []
    for dtype, b, h, kvh, seq, d, causal, ranks in CASES:
        whole = cache.AttentionProblem(b, h, kvh, seq, seq, d, dtype, causal,
                                       1.0 / math.sqrt(d), chip, tensor_cores)
        for problem in step_problems(b, h, kvh, seq, d, dtype, causal, ranks, chip,
                                     tensor_cores) + [whole]:
            if problem not in found:
                found.append(problem)
    return found


def rel(a, b):
    import torch
    a, b = a.double(), b.double()
    return (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()


def float64_attention(q, k, v, do, causal, scale):
    """Output and gradients of the whole sequence in float64 (autograd)."""
    import torch
    inputs = [t.double().requires_grad_() for t in (q, k, v)]
    group = q.shape[1] // k.shape[1]
    kk, vv = (t.repeat_interleave(group, 1) for t in inputs[1:])
    s = inputs[0] @ kk.transpose(-1, -2) * scale
    if causal:
        n = q.shape[2]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1),
                          -math.inf)
    o = s.softmax(-1) @ vv
    o.backward(do.double())
    return [o.detach()] + [t.grad for t in inputs]


def sdpa(q, k, v, do, causal, scale):
    import torch
    import torch.nn.functional as F
    inputs = [t.clone().requires_grad_() for t in (q, k, v)]
    group = q.shape[1] // k.shape[1]
    kk, vv = (t.repeat_interleave(group, 1) for t in inputs[1:])
    o = F.scaled_dot_product_attention(inputs[0], kk, vv, is_causal=causal, scale=scale)
    o.backward(do)
    return [o.detach()] + [t.grad for t in inputs]


def nccl_ring_of_one(q, k, v, do, causal, scale):
    """bpt.ring.attention through a torch.distributed group of one rank."""
    import torch.distributed as dist
    import bpt.ring
    with tempfile.TemporaryDirectory() as tmp:
        dist.init_process_group("nccl", init_method=f"file://{tmp}/init", rank=0,
                                world_size=1)
        try:
            inputs = [t.clone().requires_grad_() for t in (q, k, v)]
            o = bpt.ring.attention(*inputs, causal=causal, scale=scale)
            o.backward(do)
            return [o.detach()] + [t.grad for t in inputs]
        finally:
            dist.destroy_process_group()


def check_case(case):
    import torch
    import bpt.ring
    import bpt.torch
    dtype_name, batch, heads, kv_heads, seq, head_dim, causal, ranks = case
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16}[dtype_name]
    scale = 1.0 / math.sqrt(head_dim)
    g = torch.Generator(device="cuda").manual_seed(seq + ranks)
    make = lambda h: torch.randn(batch, h, seq, head_dim, generator=g, device="cuda",
                                 dtype=dtype)
    q, k, v, do = make(heads), make(kv_heads), make(kv_heads), make(heads)

    ref = float64_attention(q, k, v, do, causal, scale)
    inputs = [t.clone().requires_grad_() for t in (q, k, v)]
    o = bpt.torch.attention(*inputs, causal=causal, scale=scale)
    o.backward(do)
    single = [o.detach()] + [t.grad for t in inputs]
    peer = sdpa(q, k, v, do, causal, scale)

    shares = [[bpt.ring.shard(t, r, ranks) for r in range(ranks)] for t in (q, k, v, do)]
    ring = [bpt.ring.unshard([p.to(dtype) for p in parts])
            for parts in bpt.ring.simulate(*shares, causal=causal, scale=scale)]
    runs = [(f"ring of {ranks} (simulated)", ring)]
    if ranks == 1:
        runs.append(("ring of 1 (NCCL)", nccl_ring_of_one(q, k, v, do, causal, scale)))

    ok = True
    label = (f"{dtype_name} B{batch} H{heads}/{kv_heads} S{seq} D{head_dim} "
             f"{'causal' if causal else 'full'}")
    for what, found in runs:
        to_single = [rel(f, s) for f, s in zip(found, single)]
        to_ref = [rel(f, r) for f, r in zip(found, ref)]
        passed = max(to_single) < TOLERANCE and max(to_ref) < TOLERANCE
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'} {label}, {what}: vs single-GPU "
              + ", ".join(f"{n} {e:.2e}" for n, e in zip(NAMES, to_single))
              + "; vs float64 "
              + ", ".join(f"{n} {e:.2e}" for n, e in zip(NAMES, to_ref)))
    print(f"     single-GPU bpt vs float64 "
          + ", ".join(f"{n} {rel(s, r):.2e}" for n, s, r in zip(NAMES, single, ref))
          + "; SDPA vs float64 "
          + ", ".join(f"{n} {rel(p, r):.2e}" for n, p, r in zip(NAMES, peer, ref)))
    return ok


def run(kernels):
    if open_device(kernels) is None:
        return 1
    return run_checks([(str(case), lambda case=case: check_case(case))
                       for case in CASES], what="cases")

if __name__ == "__main__":
    sys.exit(check_main(__doc__, problems, run))
