"""Ring attention over torch.distributed: the blockwise attention with its
sequence split across the ranks of a process group (Liu, Zaharia, Abbeel,
arXiv 2310.01889), the continuation of the Blockwise Parallel Transformer to
several GPUs.

    import bpt.ring
    # q, k, v: this rank's share of the sequence, [B, H, S_local, D]
    q, k, v = (bpt.ring.shard(t, rank, world) for t in (q_full, k_full, v_full))
    o = bpt.ring.attention(q, k, v, causal=True)    # this rank's rows of o
    o.backward(do)                                  # q.grad, k.grad, v.grad

Each rank keeps its query rows. The keys and values travel around the ring:
at step s a rank holds the block of rank (rank - s) mod P, sends it on to
rank + 1 and receives the next one from rank - 1 while it computes the
attention of its queries against the block it holds (the transfer overlaps
the compute), and merges that partial result into its running output and
log-sum-exp: o = Σ_s exp(lse_s - lse)·o_s with lse = log Σ_s exp(lse_s), the
same online-softmax step the single-GPU kernels take per key block. The
backward sends the keys and values around again, with the gradients dK and
dV of the block a rank holds travelling one step behind them, each rank
adding what its queries contribute; after P steps each block's gradients
are back at its rank. dQ stays where the queries are.

Layout. With causal attention a contiguous split would leave rank 0 almost
idle and rank P-1 with most of the work; the sequence is instead cut into
2P chunks and rank r holds chunks r and 2P-1-r (zig-zag, as later ring
attention work does), so that every step but the first computes the same
amount on every rank: one chunk of queries against two of keys, or two of
queries against one. `shard` and `unshard` convert. Without causal masking
the layout does not matter; the same one is used.

Kernels. Each step runs a single-GPU attention of a part of the local rows
against a part of the held block, with its log-sum-exp (forward), or the
gradients of that attention given the whole sequence's output and
log-sum-exp (backward): bpt's `--op=attention --lse` and
`--op=attention_grad` kernel sets on CUDA tensors (through bpt.torch, which
compiles or loads them per shape), a float reference written in torch for
tensors on the CPU (how the schedule is tested without GPUs: test/Python).
Partial outputs and gradients are summed in float32 (float64 for float64
inputs); the gradients of the keys and values travel in that type.
"""
import math

import torch
import torch.distributed as dist

from .ring_schedule import pairs

__all__ = ["attention", "transformer_block", "shard", "unshard", "simulate", "pairs",
           "reference_steps"]  # pairs: bpt.ring_schedule's


def attention(q, k, v, causal=False, scale=None, group=None, steps=None,
              transfers=True):
    """Ring attention of this rank's share of the sequence: q [B, H, S, D],
    k and v [B, H_kv, S, D] (H a multiple of H_kv), each the rank's two
    zig-zag chunks (see `shard`), the same S on every rank of `group` (the
    default group if None). Returns this rank's rows of softmax(q·kᵀ·scale,
    causal mask)·v over the whole sequence; differentiable in q, k and v.
    `steps` chooses the per-step kernels: None for bpt's kernel sets on
    CUDA tensors and the torch reference on CPU tensors. With `transfers`
    False every step computes against this rank's own keys and values: the
    same work without the ring's sends and receives (and a wrong result),
    to time the compute alone."""
    if q.dim() != 4 or k.dim() != 4 or k.shape != v.shape:
        raise ValueError(f"expected q [B, H, S, D] and k, v [B, H_kv, S, D], got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if (k.shape[0], k.shape[2], k.shape[3]) != (q.shape[0], q.shape[2], q.shape[3]):
        raise ValueError(f"k and v {tuple(k.shape)} must match q {tuple(q.shape)} in "
                         f"batch, rows and head dim (each rank holds the same rows "
                         f"of q, k and v)")
    if q.shape[1] % k.shape[1]:
        raise ValueError(f"q's heads ({q.shape[1]}) must be a multiple of k's "
                         f"({k.shape[1]})")
    if q.shape[2] % 2:
        raise ValueError(f"each rank holds two equal chunks of the sequence: its "
                         f"rows ({q.shape[2]}) must be even")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if steps is None:
        steps = reference_steps if q.device.type == "cpu" else _bpt_steps()
    ring = (lambda: _ProcessGroupRing(group)) if transfers else (
        lambda: _LocalRing(group))
    return _RingAttention.apply(q, k, v, bool(causal), float(scale), ring, steps)


def transformer_block(x, weights, heads, kv_heads=None, activation="gelu",
                      norm="rms_norm", causal=True, group=None, steps=None,
                      eps=1e-5):
    """A pre-norm transformer block (bpt.torch.TransformerBlock's math and
    weight layout; `weights` maps its parameter names to tensors) on this
    rank's share of the sequence: x [B, S, hidden], the rank's two zig-zag
    chunks (`shard(x, rank, world, dim=1)`). Norms, projections, residuals
    and the FFN are row-local: each rank runs them on its own rows, in eager
    PyTorch; the attention is the ring's. Differentiable in x and the
    weights; a weight's gradient on a rank is its rows' share (all-reduce
    the sum across the group, as data parallelism does)."""
    from .torch import eager_block
    return eager_block(
        x, weights, heads, kv_heads or heads, activation, norm, causal, eps,
        attention=lambda q, k, v: attention(q, k, v, causal=causal, group=group,
                                            steps=steps))


def shard(x, rank, world, dim=2):
    """Rank `rank`'s share of the whole-sequence tensor `x` (sequence along
    `dim`): chunks rank and 2·world-1-rank of 2·world equal chunks, in that
    order."""
    if x.shape[dim] % (2 * world):
        raise ValueError(f"the sequence ({x.shape[dim]}) must split into "
                         f"{2 * world} equal chunks")
    chunks = x.chunk(2 * world, dim)
    return torch.cat([chunks[rank], chunks[2 * world - 1 - rank]], dim)


def unshard(shards, dim=2):
    """The whole-sequence tensor from every rank's share, in rank order."""
    world = len(shards)
    chunks = [None] * (2 * world)
    for rank, part in enumerate(shards):
        chunks[rank], chunks[2 * world - 1 - rank] = part.chunk(2, dim)
    return torch.cat(chunks, dim)


# --------------------------------------------------------------------------
# The schedule
# --------------------------------------------------------------------------

def _accumulator_type(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _merge(o, lse, part, part_lse):
    """Folds one partial attention (output `part`, log-sum-exp `part_lse`)
    into the running `o` and `lse` (views, updated in place). A row that
    has seen no key yet has lse -inf and o 0."""
    new = torch.logaddexp(lse, part_lse)
    # Rows that have seen no key in either: weights 0, not exp(-inf + inf).
    finite = torch.where(torch.isneginf(new), torch.zeros_like(new), new)
    o.mul_(torch.exp(lse - finite).unsqueeze(-1))
    o.add_(part.to(o.dtype) * torch.exp(part_lse - finite).unsqueeze(-1))
    lse.copy_(new)


def forward_rank(q, blocks, rank, world, causal, scale, steps):
    """Rank `rank`'s rows of the output (float32, float64 for float64
    inputs) and their log-sum-exp, from `blocks`: the (source rank, its keys
    and values stacked [2, B, H_kv, S, D]) the rank holds at each step."""
    rows = q.shape[2]
    accumulate = _accumulator_type(q.dtype)
    o = torch.zeros(q.shape, dtype=accumulate, device=q.device)
    lse = torch.full(q.shape[:3], -math.inf, dtype=accumulate, device=q.device)
    for source, held in blocks:
        for queries, keys, masked in pairs(rank, source, world, rows, causal):
            part, part_lse = steps.forward(
                q[:, :, queries], held[0][:, :, keys], held[1][:, :, keys],
                masked, scale)
            _merge(o[:, :, queries], lse[:, :, queries], part, part_lse)
    return o, lse


def backward_rank(q, o, lse, do, blocks, rank, world, causal, scale, steps,
                  deliver):
    """Rank `rank`'s dq (float32, float64 for float64 inputs), given the
    whole sequence's output `o` and `lse` for its rows; `deliver(source,
    dkv)` takes each step's contribution to the gradients of the block it
    holds ([2, ...]: dk, dv), before `blocks` moves on."""
    rows = q.shape[2]
    accumulate = _accumulator_type(q.dtype)
    dq = torch.zeros(q.shape, dtype=accumulate, device=q.device)
    for source, held in blocks:
        dkv = torch.zeros(held.shape, dtype=accumulate, device=q.device)
        for queries, keys, masked in pairs(rank, source, world, rows, causal):
            dq_part, dk_part, dv_part = steps.backward(
                q[:, :, queries], held[0][:, :, keys], held[1][:, :, keys],
                o[:, :, queries], do[:, :, queries], lse[:, :, queries],
                masked, scale)
            dq[:, :, queries] += dq_part
            dkv[0][:, :, keys] += dk_part
            dkv[1][:, :, keys] += dv_part
        deliver(source, dkv)
    return dq


class _ProcessGroupRing:
    """The ring of a torch.distributed process group: the blocks a rank
    holds, passed on while it computes, and the gradients of each block
    passed on one step behind it."""

    def __init__(self, group):
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        if group is None:
            to_global = lambda r: r
        elif hasattr(dist, "get_global_rank"):
            to_global = lambda r: dist.get_global_rank(group, r)
        else:  # PyTorch < 2.0
            to_global = lambda r: dist.distributed_c10d._get_global_rank(group, r)
        self.following = to_global((self.rank + 1) % self.world)
        self.preceding = to_global((self.rank - 1) % self.world)
        self.passing = None

    def _pass_on(self, tensor):
        """Sends `tensor` to the next rank and receives the previous rank's
        into a new tensor: (requests, received). Every rank of the group
        calls it at the same step."""
        received = torch.empty_like(tensor)
        requests = dist.batch_isend_irecv([
            dist.P2POp(dist.isend, tensor, self.following, self.group),
            dist.P2POp(dist.irecv, received, self.preceding, self.group)])
        return requests, received

    @staticmethod
    def _wait(requests):
        for request in requests:
            request.wait()

    def blocks(self, held):
        """(source, block) for each step, starting with this rank's own
        `held`; the next block is on its way while a step computes."""
        for step in range(self.world):
            if step + 1 < self.world:
                requests, coming = self._pass_on(held)
            yield (self.rank - step) % self.world, held
            if step + 1 < self.world:
                self._wait(requests)
                held = coming

    def deliver(self, source, dkv):
        """Adds what the ranks before this one contributed to the block
        held now, and passes the sum on to the next rank, which holds that
        block at its next step (after the last step: the block's own)."""
        if self.passing is not None:
            self._wait(self.passing[0])
            dkv += self.passing[1]
        self.passing = self._pass_on(dkv) if self.world > 1 else ((), dkv)

    def own_gradients(self):
        """The gradients of this rank's own block, once every rank has
        delivered its last step's."""
        requests, dkv = self.passing
        self._wait(requests)
        self.passing = None
        return dkv


class _LocalRing(_ProcessGroupRing):
    """A ring without transfers: each step holds this rank's own block as if
    it were the source's (the same shapes and masks, so the same work), and
    gradients go nowhere. For timing the compute alone."""

    def blocks(self, held):
        for step in range(self.world):
            yield (self.rank - step) % self.world, held

    def deliver(self, source, dkv):
        self.passing = ((), dkv)


def ring_forward(q, k, v, causal, scale, ring, steps):
    """This rank's rows of the output (q's type) and their log-sum-exp;
    `ring()` makes the ring (a _ProcessGroupRing)."""
    ring = ring()
    o, lse = forward_rank(q, ring.blocks(torch.stack([k, v])), ring.rank,
                          ring.world, causal, scale, steps)
    return o.to(q.dtype), lse


def ring_backward(q, k, v, o, lse, do, causal, scale, ring, steps):
    """dq, dk, dv of this rank's rows (float32, float64 for float64
    inputs)."""
    ring = ring()
    dq = backward_rank(q, o, lse, do, ring.blocks(torch.stack([k, v])),
                       ring.rank, ring.world, causal, scale, steps, ring.deliver)
    dkv = ring.own_gradients()
    return dq, dkv[0], dkv[1]


def simulate(q, k, v, do, causal=False, scale=None, steps=None):
    """What P ranks compute, in one process: q, k, v and do are lists of
    each rank's share (see `shard`); returns the lists of each rank's o, dq,
    dk, dv (o in q's type, the gradients float32, float64 for float64
    inputs). Every rank's steps run the kernels on the shapes and causal
    masks a ring of P devices would: how the kernels under the schedule are
    tested on one GPU."""
    world = len(q)
    if scale is None:
        scale = 1.0 / math.sqrt(q[0].shape[-1])
    if steps is None:
        steps = reference_steps if q[0].device.type == "cpu" else _bpt_steps()
    blocks = [torch.stack([k[r], v[r]]) for r in range(world)]
    order = lambda rank: [((rank - s) % world, blocks[(rank - s) % world])
                          for s in range(world)]
    outputs, dqs, dkv = [], [], [torch.zeros_like(b, dtype=_accumulator_type(b.dtype))
                                 for b in blocks]

    def deliver(source, part):
        dkv[source] += part

    for rank in range(world):
        o, lse = forward_rank(q[rank], order(rank), rank, world, causal, scale, steps)
        o = o.to(q[rank].dtype)
        outputs.append(o)
        dqs.append(backward_rank(q[rank], o, lse, do[rank], order(rank), rank, world,
                                 causal, scale, steps, deliver))
    return outputs, dqs, [g[0] for g in dkv], [g[1] for g in dkv]


class _RingAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal, scale, ring, steps):
        q, k, v = (t.contiguous() for t in (q, k, v))
        o, lse = ring_forward(q, k, v, causal, scale, ring, steps)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.args = (causal, scale, ring, steps)
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = ring_backward(q, k, v, o, lse, do.contiguous(), *ctx.args)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None, None, None


# --------------------------------------------------------------------------
# Per-step kernels
# --------------------------------------------------------------------------

class reference_steps:
    """The per-step attention in torch, on any device: float64 for float64
    inputs, else float32. The CPU's kernels for the ring (and a reference
    for the GPU's)."""

    @staticmethod
    def _scores(q, k, causal, scale):
        """q·kᵀ·scale with the bottom-right causal mask (-inf), k's heads
        repeated for their query heads."""
        group = q.shape[1] // k.shape[1]
        s = q @ k.repeat_interleave(group, dim=1).transpose(-1, -2) * scale
        if causal:
            rows, keys = q.shape[2], k.shape[2]
            i = torch.arange(rows, device=q.device).unsqueeze(1)
            j = torch.arange(keys, device=q.device).unsqueeze(0)
            s = s.masked_fill(j > i + (keys - rows), -math.inf)
        return s

    @staticmethod
    def _probabilities(s, lse):
        """exp(s - lse): 0 where a row sees no key (lse -inf)."""
        return torch.exp(s - lse.unsqueeze(-1)).nan_to_num(nan=0.0)

    @staticmethod
    def forward(q, k, v, causal, scale):
        accumulate = _accumulator_type(q.dtype)
        q, k, v = (t.to(accumulate) for t in (q, k, v))
        s = reference_steps._scores(q, k, causal, scale)
        lse = torch.logsumexp(s, dim=-1)
        p = reference_steps._probabilities(s, lse)
        return p @ v.repeat_interleave(q.shape[1] // k.shape[1], dim=1), lse

    @staticmethod
    def backward(q, k, v, o, do, lse, causal, scale):
        accumulate = _accumulator_type(q.dtype)
        q, k, v, o, do = (t.to(accumulate) for t in (q, k, v, o, do))
        group = q.shape[1] // k.shape[1]
        # P from the whole sequence's lse, not this block's own.
        p = reference_steps._probabilities(
            reference_steps._scores(q, k, causal, scale), lse.to(accumulate))
        dv = p.transpose(-1, -2) @ do
        dp = do @ v.repeat_interleave(group, dim=1).transpose(-1, -2)
        ds = p * (dp - (do * o).sum(-1, keepdim=True))
        dq = ds @ k.repeat_interleave(group, dim=1) * scale
        dk = ds.transpose(-1, -2) @ q * scale
        fold = lambda t: t.unflatten(1, (k.shape[1], group)).sum(2)
        return dq, fold(dk), fold(dv)


def _bpt_steps():
    """The per-step kernels of bpt.torch (imported here: it needs CUDA and
    bpt's runtime library)."""
    from . import torch as bpt_torch

    class steps:
        @staticmethod
        def forward(q, k, v, causal, scale):
            q, k, v = (t.contiguous() for t in (q, k, v))
            problem = bpt_torch._problem(q, k, v, causal, scale)
            o = torch.empty_like(q)
            lse = torch.empty(q.shape[:3], device=q.device, dtype=torch.float32)
            bpt_torch._launch(problem, "lse", q.device, query=q, key=k, value=v,
                              output=o, lse=lse)
            return o, lse

        @staticmethod
        def backward(q, k, v, o, do, lse, causal, scale):
            q, k, v, o, do = (t.contiguous() for t in (q, k, v, o, do))
            lse = lse.to(torch.float32).contiguous()
            problem = bpt_torch._problem(q, k, v, causal, scale)
            grads = [torch.empty_like(t) for t in (q, k, v)]
            bpt_torch._launch(problem, "grad", q.device, query=q, key=k, value=v,
                              output=o, output_grad=do, lse=lse,
                              **dict(zip(bpt_torch._GRADS, grads)))
            return grads

    return steps
