"""bpt.ring.attention's schedule on CPU ranks: P processes of a gloo process
group, each with its zig-zag share of q, k, v (bpt.ring.shard), run the ring
forward and backward with the torch reference kernels (bpt.ring
.reference_steps); the gathered output and gradients are compared with
float64 autograd of the whole sequence's attention on one process.

Cases: world sizes 1 to 4, causal and not, GQA (4 query heads on 2 key
heads), and bpt.ring.transformer_block (each rank's rows through the whole
block, the attention a ring; every output and gradient, weight gradients
summed across the ranks), float64 (the schedule exact to rounding: error < 1e-10) and
float32 (< 1e-5); gloo sends no bfloat16 (the GPU test covers the 16-bit
types over NCCL). Exits 1 on any failure, printing every case's largest
relative error."""
import argparse
import math
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import bpt.ring  # noqa: E402

TOLERANCES = {torch.float64: 1e-10, torch.float32: 1e-5}


def full_attention(q, k, v, causal, scale):
    """float64 attention of the whole sequence (the kernels' bottom-right
    causal mask; top-left too, as seq == kv_seq)."""
    group = q.shape[1] // k.shape[1]
    k, v = (t.repeat_interleave(group, dim=1) for t in (k, v))
    s = q @ k.transpose(-1, -2) * scale
    if causal:
        n = q.shape[2]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -math.inf)
    return torch.softmax(s, dim=-1) @ v


def relative_error(out, ref):
    return ((out.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def case_inputs(seed, shape, kv_heads):
    batch, heads, seq, head_dim = shape
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, seq, head_dim, generator=g, dtype=torch.float64)
    k = torch.randn(batch, kv_heads, seq, head_dim, generator=g, dtype=torch.float64)
    v = torch.randn(batch, kv_heads, seq, head_dim, generator=g, dtype=torch.float64)
    do = torch.randn(batch, heads, seq, head_dim, generator=g, dtype=torch.float64)
    return q, k, v, do


CASES = [
    # (world, causal, dtype, kv_heads)
    (1, True, torch.float64, 4),
    (2, False, torch.float64, 4),
    (2, True, torch.float64, 2),
    (3, True, torch.float64, 4),
    (4, True, torch.float64, 2),
    (4, False, torch.float32, 2),
    (4, True, torch.float32, 4),
]
SHAPE = (2, 4, 48, 16)  # batch, heads, whole sequence (2·world chunks), head dim

# bpt.ring.transformer_block: (world, activation, norm, heads, kv_heads), all
# causal, float64, hidden 64, ffn 96, batch 2, the whole sequence 48.
BLOCK_CASES = [
    (2, "swiglu", "rms_norm", 4, 2),
    (3, "gelu", "layer_norm", 4, 4),
]
BLOCK = dict(batch=2, seq=48, hidden=64, ffn=96)


def block_inputs(seed, activation, norm, heads, kv_heads):
    """x, dy and the block's weights (bpt.torch.TransformerBlock's names and
    [in, out] layouts), float64."""
    g = torch.Generator().manual_seed(seed)
    hidden, ffn = BLOCK["hidden"], BLOCK["ffn"]
    d = hidden // heads
    rand = lambda *shape, scale=1.0: torch.randn(*shape, generator=g,
                                                 dtype=torch.float64) * scale
    shapes = {"w_q": (hidden, heads * d), "w_k": (hidden, kv_heads * d),
              "w_v": (hidden, kv_heads * d), "w_o": (heads * d, hidden),
              "w_in": (hidden, ffn), "w_out": (ffn, hidden)}
    if activation in ("swiglu", "geglu"):
        shapes["w_gate"] = (hidden, ffn)
    weights = {name: rand(*shape, scale=shape[0] ** -0.5) for name, shape in shapes.items()}
    for n in ("norm1", "norm2"):
        weights[n + "_weight"] = 1 + 0.1 * rand(hidden)
        if norm == "layer_norm":
            weights[n + "_bias"] = 0.1 * rand(hidden)
    x = rand(BLOCK["batch"], BLOCK["seq"], hidden)
    dy = rand(BLOCK["batch"], BLOCK["seq"], hidden)
    return x, dy, weights


def run_block_rank(rank, world, init_file, cases, results):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    for index, (activation, norm, heads, kv_heads) in cases:
        x, dy, weights = block_inputs(100 + index, activation, norm, heads, kv_heads)
        weights = {n: w.clone().requires_grad_() for n, w in weights.items()}
        xs = bpt.ring.shard(x, rank, world, dim=1).requires_grad_()
        y = bpt.ring.transformer_block(xs, weights, heads, kv_heads, activation, norm,
                                       causal=True)
        y.backward(bpt.ring.shard(dy, rank, world, dim=1))
        found = {}
        for name, t in (("y", y.detach()), ("x_grad", xs.grad)):
            parts = [torch.empty_like(t) for _ in range(world)]
            dist.all_gather(parts, t.contiguous())
            found[name] = bpt.ring.unshard(parts, dim=1)
        for name, w in weights.items():
            # Each rank's gradient is its rows' share: the sum is the whole.
            dist.all_reduce(w.grad)
            found[name + "_grad"] = w.grad
        if rank == 0:
            results[index] = found
    dist.barrier()
    dist.destroy_process_group()


def check_blocks():
    """The block cases: every output and gradient against float64 autograd
    of the whole sequence (eager, attention by its definition)."""
    failures = 0
    manager = mp.Manager()
    results = manager.dict()
    by_world = {}
    for index, (world, *rest) in enumerate(BLOCK_CASES):
        by_world.setdefault(world, []).append((index, rest))
    for world, cases in by_world.items():
        with tempfile.TemporaryDirectory() as tmp:
            mp.spawn(run_block_rank, args=(world, os.path.join(tmp, "init"), cases, results),
                     nprocs=world, join=True)
    from bpt.torch import eager_block
    for index, (world, activation, norm, heads, kv_heads) in enumerate(BLOCK_CASES):
        x, dy, weights = block_inputs(100 + index, activation, norm, heads, kv_heads)
        x = x.clone().requires_grad_()
        weights = {n: w.clone().requires_grad_() for n, w in weights.items()}
        d = BLOCK["hidden"] // heads
        reference = lambda q, k, v: full_attention(q, k, v, True, 1.0 / math.sqrt(d))
        y = eager_block(x, weights, heads, kv_heads, activation, norm, True,
                        attention=reference)
        y.backward(dy)
        expected = {"y": y.detach(), "x_grad": x.grad}
        expected.update({n + "_grad": w.grad for n, w in weights.items()})
        errors = {n: relative_error(results[index][n], e) for n, e in expected.items()}
        worst = max(errors, key=errors.get)
        ok = errors[worst] < TOLERANCES[torch.float64]
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} block world {world} {activation} {norm} "
              f"heads {heads}/{kv_heads}: {len(errors)} outputs and gradients, largest "
              f"error {errors[worst]:.2e} ({worst})")
    return failures


def run_rank(rank, world, init_file, cases, results):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    for index, (causal, dtype, kv_heads) in cases:
        q, k, v, do = case_inputs(index, SHAPE, kv_heads)
        scale = 1.0 / math.sqrt(SHAPE[-1])
        local = [bpt.ring.shard(t, rank, world).to(dtype).requires_grad_(t is not do)
                 for t in (q, k, v, do)]
        o = bpt.ring.attention(*local[:3], causal=causal, scale=scale)
        o.backward(local[3])
        found = [o.detach(), local[0].grad, local[1].grad, local[2].grad]
        gathered = []
        for t in found:
            parts = [torch.empty_like(t) for _ in range(world)]
            dist.all_gather(parts, t.contiguous())
            gathered.append(bpt.ring.unshard(parts))
        if rank == 0:
            results[index] = [t.double() for t in gathered]
    dist.barrier()
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    failures = 0
    # Schedule: every (query chunk, key chunk) pair that causal attention
    # allows is computed once over a ring's steps, and no other.
    for world in range(1, 6):
        rows = 2
        for rank in range(world):
            chunk_of = lambda r, half: r if half == 0 else 2 * world - 1 - r
            seen = set()
            for source in range(world):
                for queries, keys, masked in bpt.ring.pairs(rank, source, world, rows, True):
                    for qh in range(queries.start, queries.stop):
                        for kh in range(keys.start, keys.stop):
                            qc, kc = chunk_of(rank, qh), chunk_of(source, kh)
                            # A masked pair is bottom-right aligned: key row
                            # kh is visible to query row qh where kh <= qh +
                            # (keys - queries) in the pair's own rows.
                            width = (keys.stop - keys.start) - (queries.stop - queries.start)
                            visible = not masked or (kh - keys.start) <= (qh - queries.start) + width
                            if visible:
                                if (qc, kc) in seen or kc > qc:
                                    print(f"FAIL schedule: world {world} rank {rank} "
                                          f"pair ({qc}, {kc})")
                                    failures += 1
                                seen.add((qc, kc))
            wanted = {(chunk_of(rank, h), c) for h in range(2) for c in range(2 * world)
                      if c <= chunk_of(rank, h)}
            if seen != wanted:
                print(f"FAIL schedule: world {world} rank {rank}: missing "
                      f"{sorted(wanted - seen)}")
                failures += 1
    print("schedule: every allowed chunk pair once" if not failures else "schedule: FAIL")

    by_world = {}
    for index, (world, causal, dtype, kv_heads) in enumerate(CASES):
        by_world.setdefault(world, []).append((index, (causal, dtype, kv_heads)))
    manager = mp.Manager()
    results = manager.dict()
    for world, cases in by_world.items():
        with tempfile.TemporaryDirectory() as tmp:
            mp.spawn(run_rank, args=(world, os.path.join(tmp, "init"), cases, results),
                     nprocs=world, join=True)
    for index, (world, causal, dtype, kv_heads) in enumerate(CASES):
        # The reference takes the inputs as the ranks got them (rounded to
        # the case's type), in float64.
        q, k, v, do = (t.to(dtype).double() for t in case_inputs(index, SHAPE, kv_heads))
        scale = 1.0 / math.sqrt(SHAPE[-1])
        inputs = [t.clone().requires_grad_() for t in (q, k, v)]
        o = full_attention(*inputs, causal, scale)
        o.backward(do)
        expected = [o.detach()] + [t.grad for t in inputs]
        # The same ranks simulated in this process (bpt.ring.simulate, what
        # the GPU test runs with bpt's kernels).
        shares = [[bpt.ring.shard(t.to(dtype), r, world) for r in range(world)]
                  for t in (q, k, v, do)]
        simulated = [bpt.ring.unshard(parts) for parts in
                     bpt.ring.simulate(*shares, causal=causal, scale=scale)]
        for what, found in (("ranks", results[index]), ("simulated", simulated)):
            errors = [relative_error(f, e) for f, e in zip(found, expected)]
            ok = max(errors) < TOLERANCES[dtype]
            failures += not ok
            names = ", ".join(f"{n} {e:.2e}" for n, e in zip(("o", "dq", "dk", "dv"), errors))
            print(f"{'PASS' if ok else 'FAIL'} world {world} ({what}) "
                  f"{'causal' if causal else 'full'} {str(dtype).removeprefix('torch.')} "
                  f"kv_heads {kv_heads}: {names}")
    failures += check_blocks()
    print("PASS" if not failures else f"FAIL ({failures})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
