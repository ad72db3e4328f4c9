"""bpt for PyTorch training: the attention as a torch.autograd.Function,
the transformer block as an nn.Module.

    import bpt.torch
    o = bpt.torch.attention(q, k, v, causal=True)   # q [B, H, S, D] on CUDA
    o.backward(do)                                  # q.grad, k.grad, v.grad

    block = bpt.torch.TransformerBlock(512, 8, activation="swiglu", causal=True,
                                       device="cuda")
    y = block(x)                                    # x [B, S, 512] bf16
    y.backward(dy)                                  # x.grad, block.w_q.grad, ...

attention: the forward runs bpt's `--op=attention --lse` kernel set and
saves o and the log-sum-exp; the backward runs the `--op=attention_grad` set on them
(dq, dk, dv; GQA when k and v have fewer heads than q). Sets come from
bpt.cache: compiled on demand with bpt-compile, or prebuilt into $BPT_CACHE
on a machine without it. The chip follows the device: sm_90a (wgmma) on
compute capability 9.0, sm_8x (mma.sync) on 8.x, else the portable path.

causal masks key j for query i when j > i + (kv_seq - seq): the diagonal
is aligned bottom-right (PyTorch's is_causal aligns it top-left; the two
agree when seq == kv_seq). A query row that sees no key gets a zero output
and zero gradients.

TransformerBlock: its weights are nn.Parameters in the layout of the
kernel sets' manifests (see its docstring); the forward runs the
`--op=block` set, the backward the `--op=block --backward` set.

Kernels are launched on the current torch.cuda stream of the tensors'
device. Each stream gets its own loaded kernel sets (their workspaces are
allocated once per set and reused, so two streams must not share them).
"""
import math
import os

import torch
import torch.nn.functional as F

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


GRAPHS = int(os.environ.get("BPT_GRAPHS", "0"))
"""$BPT_GRAPHS=N: each loaded kernel set records its launches as a CUDA
graph per set of buffer addresses (up to N) and replays it (bpt.KernelSet's
`graphs`): one launch's cost a call, once PyTorch's allocator hands out the
same addresses again, as it does from step to step of a training loop.
0 (the default): the launches one by one. Read when a set is loaded."""

_runtimes = {}
_kernel_sets = {}


def _device_index(device):
    return device.index if device.index is not None else torch.cuda.current_device()


def _kernel_set(problem, kind, device, loaded):
    """The set of `kind` for `problem` on `device` and its current stream,
    from `loaded` (a dict it fills); loaded (and compiled) on first use."""
    index = _device_index(device)
    key = (problem, kind, index, _current_stream(device))
    if key not in loaded:
        if index not in _runtimes:
            _runtimes[index] = Runtime(index)
        loaded[key] = KernelSet(_runtimes[index], cache.kernel_set(problem, kind),
                                graphs=GRAPHS)
    return loaded[key]


def _current_stream(device):
    """The CUstream (an integer) of `device`'s current torch.cuda stream."""
    return torch.cuda.current_stream(device).cuda_stream


def _launch(problem, kind, device, **buffers):
    _kernel_set(problem, kind, device, _kernel_sets)(
        stream=_current_stream(device), **buffers)


# --------------------------------------------------------------------------
# The transformer block
# --------------------------------------------------------------------------

EPSILON = 1e-5
"""The norms' epsilon in every block bpt-compile makes (it has no flag for
it); TransformerBlock checks each manifest against it."""

_GATED = ("swiglu", "geglu")


class TransformerBlock(torch.nn.Module):
    """A pre-norm transformer block run by bpt's kernel sets:

        h1 = norm1(x); q, k, v = h1·w_q, h1·w_k, h1·w_v (heads split)
        r  = x + attention(q, k, v, causal)·w_o
        y  = r + ffn(norm2(r))        ffn(h) = act(h·w_in)·w_out, or for
                                      swiglu/geglu (act(h·w_gate) ⊙ h·w_in)·w_out

    with softmax scale 1/sqrt(hidden / heads), GQA when kv_heads < heads
    (query head i reads kv head i // (heads / kv_heads)), norms over the
    last dimension in f32 with epsilon 1e-5 (EPSILON), no biases but
    layer_norm's. This is `bpt-compile --op=block`'s block; `eager()` is the
    same block in plain PyTorch.

    The weights are nn.Parameters named and shaped as the kernel sets'
    manifest buffers, in the manifest's order: norm1_weight [hidden],
    norm1_bias [hidden] (layer_norm only), w_q [hidden, heads·D], w_k and
    w_v [hidden, kv_heads·D], w_o [heads·D, hidden], norm2_weight,
    norm2_bias, w_in [hidden, ffn], w_out [ffn, hidden], w_gate [hidden,
    ffn] (swiglu, geglu). Projections are [in, out] (y = x·W): the
    transpose of nn.Linear.weight. Each kernel set's manifest is checked
    against these names, order, shapes and dtypes, and against the block's
    options, when it is loaded; a mismatch is an error, never a guess.

    forward(x), x [batch, seq, hidden] on CUDA in the block's dtype, runs
    the `--op=block` set for x's batch and seq. The backward runs the
    one-set `--op=block --backward` step, block_backward(x, weights..., dy)
    -> (y, dx, dW...): it recomputes the forward (norms, projections, the
    attention with its log-sum-exp, the FFN) before the gradients, so the
    only activation saved between forward and backward is x (the weights
    are the parameters themselves, not copies). Its recomputed y is
    discarded. Sets come from bpt.cache (compiled on demand, or prebuilt
    into $BPT_CACHE where there is no bpt-compile), per (batch, seq) met;
    each module loads its own, so the TMA descriptors the runtime builds
    over its weights stay valid across steps (the optimizer updates the
    parameters in place).
    """

    def __init__(self, hidden, heads, kv_heads=None, ffn=None, activation="gelu",
                 norm="rms_norm", causal=False, dtype=torch.bfloat16, device=None):
        super().__init__()
        kv_heads = kv_heads or heads
        ffn = ffn or 4 * hidden
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be bfloat16, float16 or float32, got {dtype}")
        # The options' own checks, once, on a problem of one token.
        cache.BlockProblem(1, 1, hidden, heads, kv_heads, ffn, activation, norm,
                           _DTYPES[dtype], causal)
        self.hidden, self.heads, self.kv_heads, self.ffn = hidden, heads, kv_heads, ffn
        self.activation, self.norm, self.causal, self.dtype = activation, norm, causal, dtype
        for name, shape in self.weight_shapes():
            self.register_parameter(name, torch.nn.Parameter(
                torch.empty(shape, dtype=dtype, device=device)))
        self.reset_parameters()
        self._kernel_sets = {}

    def weight_shapes(self):
        """(name, shape) of each weight, in the manifest's order."""
        h, d, f = self.hidden, self.hidden // self.heads, self.ffn
        shapes = [("norm1_weight", [h])]
        if self.norm == "layer_norm":
            shapes.append(("norm1_bias", [h]))
        shapes += [("w_q", [h, self.heads * d]), ("w_k", [h, self.kv_heads * d]),
                   ("w_v", [h, self.kv_heads * d]), ("w_o", [self.heads * d, h]),
                   ("norm2_weight", [h])]
        if self.norm == "layer_norm":
            shapes.append(("norm2_bias", [h]))
        shapes += [("w_in", [h, f]), ("w_out", [f, h])]
        if self.activation in _GATED:
            shapes.append(("w_gate", [h, f]))
        return shapes

    def weights(self):
        """The weight parameters, in the manifest's order."""
        return [getattr(self, name) for name, _ in self.weight_shapes()]

    def reset_parameters(self):
        """Norm weights 1 and biases 0; projections uniform in ±1/sqrt(in),
        nn.Linear's default range."""
        with torch.no_grad():
            for name, shape in self.weight_shapes():
                p = getattr(self, name)
                if name.startswith("norm"):
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                else:
                    bound = 1 / math.sqrt(shape[0])
                    p.copy_(torch.empty(shape, dtype=torch.float32).uniform_(-bound, bound))

    def extra_repr(self):
        return (f"hidden={self.hidden}, heads={self.heads}, kv_heads={self.kv_heads}, "
                f"ffn={self.ffn}, activation={self.activation}, norm={self.norm}, "
                f"causal={self.causal}, dtype={self.dtype}")

    def forward(self, x):
        problem = self._problem(x)
        return _Block.apply(x, self, problem, *self.weights())

    def eager(self, x):
        """The same block in eager PyTorch on this module's weights (SDPA
        for the attention; autograd through PyTorch's own kernels): what
        bpt's sets are compared with."""
        return eager_block(x, dict(self.named_parameters()), heads=self.heads,
                           kv_heads=self.kv_heads, activation=self.activation,
                           norm=self.norm, causal=self.causal)

    def _problem(self, x):
        """The cache.BlockProblem of a call on x, after checking x."""
        if x.dim() != 3 or x.shape[2] != self.hidden:
            raise ValueError(f"expected x [batch, seq, {self.hidden}], got {tuple(x.shape)}")
        if x.dtype != self.dtype:
            raise ValueError(f"x is {x.dtype}, the block's weights are {self.dtype}")
        device = self.w_q.device
        if not x.is_cuda or x.device != device:
            raise ValueError(f"x must be on the weights' CUDA device ({device}), "
                             f"got {x.device}")
        chip, tensor_cores = cache.chip_for_capability(
            *torch.cuda.get_device_capability(device))
        return cache.BlockProblem(
            x.shape[0], x.shape[1], self.hidden, self.heads, self.kv_heads, self.ffn,
            self.activation, self.norm, _DTYPES[self.dtype], self.causal, chip,
            tensor_cores)

    def _kernels(self, problem, kind, device):
        """This module's loaded set of `kind` for the current stream, its
        manifest checked on first load."""
        key = (problem, kind, _device_index(device), _current_stream(device))
        if key not in self._kernel_sets:
            kernels = _kernel_set(problem, kind, device, loaded=self._kernel_sets)
            try:
                self._check_manifest(kernels.manifest, problem, kind)
            except ValueError as e:
                del self._kernel_sets[key]
                kernels.close()
                raise ValueError(f"kernel set {cache.kernel_set(problem, kind)}: {e}; "
                                 f"it was not compiled for this block (delete it from "
                                 f"the cache to recompile)") from None
        return self._kernel_sets[key]

    def _check_manifest(self, manifest, problem, kind):
        """Raises ValueError unless the manifest is this block's set of
        `kind`: its op and options, and its buffers by name, order, shape and
        dtype, as forward and backward pass them."""
        op = {"forward": "block", "backward": "block_backward"}[kind]
        if manifest.get("op") != op:
            raise ValueError(f"manifest op is {manifest.get('op')!r}, expected {op!r}")
        options = manifest.get("options", {})
        wanted = {"heads": self.heads, "kv_heads": self.kv_heads, "causal": self.causal,
                  "activation": self.activation, "norm": self.norm, "epsilon": EPSILON}
        for name, value in wanted.items():
            if options.get(name) != value:
                raise ValueError(f"manifest option {name} is {options.get(name)!r}, the "
                                 f"block's is {value!r}")
        x = ("input", [problem.batch, problem.seq, self.hidden], problem.dtype)
        weights = [(name, shape, problem.dtype) for name, shape in self.weight_shapes()]
        if kind == "forward":
            inputs, outputs = [x] + weights, None
        else:
            inputs = [x] + weights + [("output_grad",) + x[1:]]
            outputs = [("output",) + x[1:], ("input_grad",) + x[1:]] + [
                (name + "_grad", shape, dtype) for name, shape, dtype in weights]
        buffers = manifest["buffers"]
        _expect_buffers([b for b in buffers if b["role"] == "input"], inputs, "inputs")
        found = [b for b in buffers if b["role"] == "output"]
        if outputs is None:
            # The forward's one output: its name is the compiler's, its
            # shape and dtype are x's.
            if len(found) != 1:
                raise ValueError(f"the forward set has {len(found)} outputs, expected 1")
            outputs = [(found[0]["name"],) + x[1:]]
        _expect_buffers(found, outputs, "outputs")


def _expect_buffers(found, expected, what):
    """Raises ValueError unless the manifest buffers `found` are `expected`
    ((name, shape, dtype) each), in order."""
    names = [b["name"] for b in found]
    if names != [name for name, _, _ in expected]:
        raise ValueError(f"manifest {what} are {names}, TransformerBlock passes "
                         f"{[name for name, _, _ in expected]}")
    for b, (name, shape, dtype) in zip(found, expected):
        if list(b["shape"]) != list(shape) or b["dtype"] != dtype:
            raise ValueError(f"manifest buffer {name} is {b['dtype']} {b['shape']}, "
                             f"expected {dtype} {list(shape)}")


class _Block(torch.autograd.Function):
    """The block's forward and backward sets under autograd. Saves x (and
    references to the weight parameters) only."""

    @staticmethod
    def forward(ctx, x, block, problem, *weights):
        x = x.contiguous()
        names = [name for name, _ in block.weight_shapes()]
        kernels = block._kernels(problem, "forward", x.device)
        # The one output (checked): named by the compiler.
        output = next(b["name"] for b in kernels.buffers if b["role"] == "output")
        y = torch.empty_like(x)
        kernels(stream=_current_stream(x.device), input=x,
                **dict(zip(names, weights)), **{output: y})
        ctx.save_for_backward(x, *weights)
        ctx.block, ctx.problem, ctx.names = block, problem, names
        return y

    @staticmethod
    def backward(ctx, dy):
        x, *weights = ctx.saved_tensors
        dx = torch.empty_like(x)
        grads = [torch.empty_like(w) for w in weights]
        kernels = ctx.block._kernels(ctx.problem, "backward", x.device)
        # The set's own y (the forward recomputed) is not needed here.
        kernels(stream=_current_stream(x.device), input=x,
                **dict(zip(ctx.names, weights)), output_grad=dy.contiguous(),
                output=torch.empty_like(x), input_grad=dx,
                **{name + "_grad": g for name, g in zip(ctx.names, grads)})
        return (dx, None, None, *grads)


def eager_block(x, weights, heads, kv_heads, activation, norm, causal, eps=EPSILON,
                attention=None):
    """TransformerBlock's math in eager PyTorch: `weights` maps the
    manifest's names to tensors (layouts as TransformerBlock's). Matrix
    products, attention (scaled_dot_product_attention) and activations run
    in x's dtype, as PyTorch code usually does; the norms in f32 (float64
    stays float64), as bpt's do. Any dtype autograd supports, float64 too:
    the gradients' reference. `attention(q, k, v)`, if given, replaces
    SDPA: q [B, heads, S, D], k and v [B, kv_heads, S, D] (not repeated
    for GQA), returning o as q (bpt.ring's block passes its ring)."""
    batch, seq, hidden = x.shape
    d = hidden // heads
    h1 = _eager_norm(x, weights, "norm1", norm, eps)
    q = (h1 @ weights["w_q"]).view(batch, seq, heads, d).transpose(1, 2)
    k = (h1 @ weights["w_k"]).view(batch, seq, kv_heads, d).transpose(1, 2)
    v = (h1 @ weights["w_v"]).view(batch, seq, kv_heads, d).transpose(1, 2)
    if attention is not None:
        o = attention(q, k, v)
    else:
        # GQA: query head i reads kv head i // group; autograd sums dk, dv
        # over the group.
        group = heads // kv_heads
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        # seq == kv_seq: SDPA's top-left causal diagonal is bpt's
        # bottom-right.
        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    r = x + o.transpose(1, 2).reshape(batch, seq, heads * d) @ weights["w_o"]
    h2 = _eager_norm(r, weights, "norm2", norm, eps)
    if activation in _GATED:
        gate = _ACTIVATIONS[activation](h2 @ weights["w_gate"])
        hidden_act = gate * (h2 @ weights["w_in"])
    else:
        hidden_act = _ACTIVATIONS[activation](h2 @ weights["w_in"])
    return r + hidden_act @ weights["w_out"]


_ACTIVATIONS = {
    "gelu": F.gelu, "geglu": F.gelu,
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
    "relu": F.relu, "silu": F.silu, "swiglu": F.silu,
}


def _eager_norm(t, weights, prefix, norm, eps):
    """norm1 or norm2 of t over its last dimension, in f32 at least."""
    compute = torch.promote_types(t.dtype, torch.float32)
    tc = t.to(compute)
    w = weights[prefix + "_weight"].to(compute)
    if norm == "layer_norm":
        out = F.layer_norm(tc, tc.shape[-1:], w, weights[prefix + "_bias"].to(compute), eps)
    else:
        out = tc * torch.rsqrt(tc.pow(2).mean(-1, keepdim=True) + eps) * w
    return out.to(t.dtype)
