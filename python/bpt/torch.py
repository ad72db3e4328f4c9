"""bpt attention for PyTorch training: a torch.autograd.Function.

    import bpt.torch
    o = bpt.torch.attention(q, k, v, causal=True)   # q [B, H, S, D] on CUDA
    o.backward(do)                                  # q.grad, k.grad, v.grad

The forward runs bpt's `--op=attention --lse` kernel set and saves o and
the log-sum-exp; the backward runs the `--op=attention_grad` set on them
(dq, dk, dv; GQA when k and v have fewer heads than q). Sets come from
bpt.cache: compiled on demand with bpt-compile, or prebuilt into $BPT_CACHE
on a machine without it. The chip follows the device: sm_90a (wgmma) on
compute capability 9.0, sm_8x (mma.sync) on 8.x, else the portable path.

causal masks key j for query i when j > i + (kv_seq - seq): the diagonal
is aligned bottom-right (PyTorch's is_causal aligns it top-left; the two
agree when seq == kv_seq). A query row that sees no key gets a zero output
and zero gradients.

Kernels are launched on the device's default stream (the runtime has no
stream argument), so calls from another torch.cuda stream are refused.
"""
import torch

from . import cache
from .runtime import KernelSet, Runtime

_DTYPES = {torch.bfloat16: "bf16", torch.float16: "f16", torch.float32: "f32"}
_GRADS = ("query_grad", "key_grad", "value_grad")


def attention(q, k, v, causal=False, scale=None):
    """softmax(q·kᵀ·scale, causal mask)·v of [B, H, S, D] CUDA tensors (k
    and v [B, H_kv, S_kv, D], H a multiple of H_kv); scale defaults to
    1/sqrt(D). Differentiable in q, k and v."""
    return _Attention.apply(q, k, v, causal, scale)


class _Attention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal, scale):
        problem = _problem(q, k, v, causal, scale)
        q, k, v = (t.contiguous() for t in (q, k, v))
        o = torch.empty_like(q)
        lse = torch.empty(q.shape[:3], device=q.device, dtype=torch.float32)
        _launch(problem, "lse", q.device, query=q, key=k, value=v, output=o, lse=lse)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.problem = problem
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        grads = [torch.empty_like(t) for t in (q, k, v)]
        _launch(ctx.problem, "grad", q.device, query=q, key=k, value=v, output=o,
                output_grad=do.contiguous(), lse=lse, **dict(zip(_GRADS, grads)))
        return (*grads, None, None)


def _problem(q, k, v, causal, scale):
    """The cache.AttentionProblem of the call, after checking its tensors."""
    if q.dim() != 4 or k.dim() != 4 or k.shape != v.shape:
        raise ValueError(f"expected q [B, H, S, D] and k, v [B, H_kv, S_kv, D], got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if not (q.is_cuda and q.device == k.device == v.device):
        raise ValueError("q, k and v must be on one CUDA device")
    if not q.dtype == k.dtype == v.dtype or q.dtype not in _DTYPES:
        raise ValueError(f"q, k and v must share one dtype of bfloat16, float16 or "
                         f"float32; got {q.dtype}, {k.dtype}, {v.dtype}")
    batch, heads, seq, head_dim = q.shape
    if k.shape[0] != batch or k.shape[3] != head_dim:
        raise ValueError(f"k and v {tuple(k.shape)} do not match q {tuple(q.shape)} in "
                         f"batch or head dim")
    chip, tensor_cores = cache.chip_for_capability(*torch.cuda.get_device_capability(q.device))
    return cache.AttentionProblem(
        batch, heads, k.shape[1], seq, k.shape[2], head_dim, _DTYPES[q.dtype],
        bool(causal), None if scale is None else float(scale), chip, tensor_cores)


_runtimes = {}
_kernel_sets = {}


def _kernel_set(problem, kind, device):
    """The loaded set, per device; loaded (and compiled) on first use."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    key = (problem, kind, index)
    if key not in _kernel_sets:
        if index not in _runtimes:
            _runtimes[index] = Runtime(index)
        _kernel_sets[key] = KernelSet(_runtimes[index], cache.kernel_set(problem, kind))
    return _kernel_sets[key]


def _launch(problem, kind, device, **buffers):
    # The runtime launches on the default stream; work queued on another
    # stream would race with it.
    if torch.cuda.current_stream(device).cuda_stream != 0:
        raise RuntimeError("bpt.torch.attention runs on the default CUDA stream; it "
                           "was called inside another torch.cuda.stream")
    _kernel_set(problem, kind, device)(**buffers)
