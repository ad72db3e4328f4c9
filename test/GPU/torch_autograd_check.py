#!/usr/bin/env python3
"""bpt.torch.attention's output and gradients against PyTorch's float64
autograd of the same math, softmax(q·kᵀ·scale, causal mask)·v; SDPA's own
errors (same inputs, the input dtype) are printed beside ours. Exits 1 if
an error exceeds the tolerance (1e-2 for bf16/f16, 1e-5 for f32), a set is
missing, or importing bpt imports torch.

  python3 test/GPU/torch_autograd_check.py --kernels DIR
      runs the cases with the kernel sets in DIR ($BPT_CACHE); sets missing
      there are compiled if bpt-compile is found, else the case fails.
  python3 test/GPU/torch_autograd_check.py --prebuild DIR [--chip C]
      compiles the cases' sets into DIR (no PyTorch or GPU needed; the
      build does this for test/GPU/torch-attention-autograd.test).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(HERE, "..", "..", "python")
sys.path.insert(0, PYTHON)
from bpt import cache  # noqa: E402  (no torch)
from check_main import check_main, open_device, run_checks  # noqa: E402

# (dtype, batch, heads, kv_heads, seq, kv_seq, head_dim, causal, scale)
CASES = [
    # sm_90a: the wgmma forward with lse, the sm_90a backward; GQA.
    ("bf16", 2, 4, 2, 256, 256, 64, True, None),
    # sm_90a at head dim 128, a scale of its own.
    ("f16", 1, 4, 4, 384, 384, 128, False, 0.1),
    # f32 takes the portable path; ragged sequences, causal with
    # seq < kv_seq (bottom-right diagonal), GQA.
    ("f32", 2, 4, 2, 100, 130, 32, True, None),
    # A ragged length on the tensor cores: both kernels' partial last
    # query and key blocks (sm_90a), causal, MQA.
    ("bf16", 1, 4, 1, 1000, 1000, 128, True, None),
]
TOLERANCES = {"bf16": 1e-2, "f16": 1e-2, "f32": 1e-5}
NAMES = ("o", "dq", "dk", "dv")


def problems(chip, tensor_cores=True):
    return [cache.AttentionProblem(b, h, kvh, s, kvs, d, dtype, causal, scale, chip,
                                   tensor_cores)
            for dtype, b, h, kvh, s, kvs, d, causal, scale in CASES]


def reference(q, k, v, causal, scale):
    """The attention in the inputs' dtype, by its definition (GQA: query head
    h reads kv head h // group; causal diagonal bottom-right)."""
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = (q @ k.transpose(-1, -2)) * scale
    if causal:
        s = s.masked_fill(~causal_mask(q.shape[2], k.shape[2], q.device), float("-inf"))
    return s.softmax(-1) @ v


def rel(a, b):
    import torch
    a, b = a.double(), b.double()
    return (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()


def causal_mask(sq, skv, device):
    """Keys query i sees: j <= i + skv - sq (the diagonal bottom-right)."""
    import torch
    return torch.ones(sq, skv, dtype=torch.bool, device=device).tril(skv - sq)


def sdpa_errors(q, k, v, do, causal, scale, expected):
    """SDPA's errors (output, dq, dk, dv) in the inputs' dtype. Its
    is_causal aligns the diagonal top-left: where seq != kv_seq the
    bottom-right mask is passed instead (another SDPA back end)."""
    import torch
    import torch.nn.functional as F
    sq, skv = q.shape[2], k.shape[2]
    mask = causal_mask(sq, skv, q.device) if causal and sq != skv else None
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    # GQA by repeating k and v (autograd sums dk, dv over the group), which
    # needs no enable_gqa (PyTorch 2.5).
    group = q.shape[1] // k.shape[1]
    kv = [t.repeat_interleave(group, 1) for t in leaves[1:]]
    o = F.scaled_dot_product_attention(leaves[0], *kv, attn_mask=mask,
                                       is_causal=causal and mask is None, scale=scale)
    grads = torch.autograd.grad(o, leaves, do)
    return [rel(a, b) for a, b in zip([o, *grads], expected)]


def check_case(problem):
    """Errors of bpt and SDPA against float64; True if bpt's pass."""
    import torch
    import bpt.torch
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[problem.dtype]
    gen = torch.Generator(device="cuda").manual_seed(problem.seq + problem.head_dim)
    q_shape = (problem.batch, problem.heads, problem.seq, problem.head_dim)
    kv_shape = (problem.batch, problem.kv_heads, problem.kv_seq, problem.head_dim)
    # Uniform in [-1, 1), as bpt-run draws (the regime of the tolerances).
    draw = lambda shape: (torch.rand(shape, generator=gen, device="cuda") * 2 - 1).to(dtype)
    q, k, v = (draw(s).requires_grad_() for s in (q_shape, kv_shape, kv_shape))
    do = draw(q_shape)
    scale = problem.scale if problem.scale is not None else problem.head_dim ** -0.5

    o = bpt.torch.attention(q, k, v, causal=problem.causal, scale=problem.scale)
    o.backward(do)  # through autograd, into .grad
    ours = [o.detach(), q.grad, k.grad, v.grad]
    # A second call with the same shapes reuses the loaded sets.
    o2 = bpt.torch.attention(q, k, v, causal=problem.causal, scale=problem.scale)
    again = torch.autograd.grad(o2, (q, k, v), do)
    # A third inside another (non-blocking) stream: launched there, with
    # its own loaded sets; the same forward, gradients within tolerance.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        o3 = bpt.torch.attention(q, k, v, causal=problem.causal, scale=problem.scale)
        on_side = torch.autograd.grad(o3, (q, k, v), do)
    torch.cuda.current_stream().wait_stream(side)
    side_forward_same = torch.equal(o3, o2)

    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    o64 = reference(*leaves, problem.causal, scale)
    expected = [o64.detach(), *torch.autograd.grad(o64, leaves, do.double())]
    errors = [rel(a, b) for a, b in zip(ours, expected)]
    repeat = max(rel(a, b) for a, b in zip(again + on_side, ours[1:] * 2))
    try:
        theirs = sdpa_errors(q, k, v, do, problem.causal, problem.scale, expected)
        sdpa = "; SDPA " + ", ".join(f"{n} {e:.2e}" for n, e in zip(NAMES, theirs))
    except RuntimeError as e:  # reported, not checked
        sdpa = f"; SDPA n/a ({str(e).splitlines()[0]})"
    tolerance = TOLERANCES[problem.dtype]
    finite = all(torch.isfinite(t).all().item() for t in ours)
    passed = (finite and max(errors) <= tolerance and repeat <= tolerance
              and side_forward_same)
    print(f"{problem.name('grad').replace('attention-grad-', '')}: "
          + ", ".join(f"{n} {e:.2e}" for n, e in zip(NAMES, errors))
          + f" (tolerance {tolerance:.0e}; second call and one on another stream vs "
          f"first {repeat:.1e}, forward {'equal' if side_forward_same else 'DIFFERS'})"
          + sdpa + (": PASS" if passed else ": FAIL" + ("" if finite else " (not finite)")))
    return passed


def graphs_replay_the_same(problem):
    """With bpt.torch.GRAPHS, a set's launches are recorded as a CUDA graph
    per set of buffer addresses and replayed: the same kernels, so the same
    bits as launching them one by one (but dq, whose reductions have no
    fixed order on the tensor-core paths: within the tolerance), for a
    recorded address set (replay), a new one (another recording) and the
    first again."""
    import torch
    import bpt.torch
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[problem.dtype]
    gen = torch.Generator(device="cuda").manual_seed(7)
    q_shape = (problem.batch, problem.heads, problem.seq, problem.head_dim)
    kv_shape = (problem.batch, problem.kv_heads, problem.kv_seq, problem.head_dim)
    draw = lambda shape: (torch.rand(shape, generator=gen, device="cuda") * 2 - 1).to(dtype)

    def run(tensors):
        q, k, v, do = (t.clone() for t in tensors)
        q, k, v = (t.requires_grad_() for t in (q, k, v))
        o = bpt.torch.attention(q, k, v, causal=problem.causal, scale=problem.scale)
        return [o.detach(), *torch.autograd.grad(o, (q, k, v), do)]

    first = [draw(s) for s in (q_shape, kv_shape, kv_shape, q_shape)]
    second = [draw(s) for s in (q_shape, kv_shape, kv_shape, q_shape)]
    plain = [run(first), run(second)]
    saved, bpt.torch.GRAPHS = bpt.torch.GRAPHS, 4
    bpt.torch._kernel_sets.clear()  # loaded again, with graphs
    try:
        graphed = [run(first), run(second), run(first), run(first)]
    finally:
        bpt.torch.GRAPHS = saved
        bpt.torch._kernel_sets.clear()
    pairs = list(zip(graphed, plain + plain[:1] * 2))
    exact = all(torch.equal(got[i], want[i]) for got, want in pairs for i in (0, 2, 3))
    dq = max(rel(got[1], want[1]) for got, want in pairs)
    same = exact and dq <= TOLERANCES[problem.dtype]
    print(f"graphs (BPT_GRAPHS): {'PASS' if same else 'FAIL'}: o, dk, dv of the "
          f"replays {'bitwise' if exact else 'NOT'} those of the launches; dq {dq:.1e}")
    return same


def import_is_light():
    """Importing bpt must not import torch (bpt.torch does)."""
    code = "import sys, bpt; sys.exit(1 if 'torch' in sys.modules else 0)"
    env = dict(os.environ, PYTHONPATH=PYTHON)
    ok = subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
    print(f"import bpt without torch: {'PASS' if ok else 'FAIL'}")
    return ok


def run(kernels):
    device = open_device(kernels)
    if device is None:
        return 1
    cases = problems(*device)
    return run_checks(
        [("import", import_is_light),
         ("graphs", lambda: graphs_replay_the_same(cases[0]))]
        + [(p.name("grad"), lambda p=p: check_case(p)) for p in cases])

if __name__ == "__main__":
    sys.exit(check_main(__doc__, problems, run))
