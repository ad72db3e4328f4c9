"""Ring attention across the processes of torchrun: each rank holds its
zig-zag share of one long sequence and runs bpt.ring.attention, forward and
backward; the keys and values travel around the ring over NCCL (gloo on
CPUs) while each rank computes.

    # 4 GPUs of one host (NCCL; bpt's kernel sets, compiled or loaded by
    # bpt.cache: set BPT_CACHE, and BPT_COMPILE where bpt-compile is)
    NCCL_NVLS_ENABLE=0 torchrun --nproc_per_node=4 examples/ring_attention.py \\
        --seq=65536 --heads=16 --kv-heads=4 --head-dim=128 --causal

    # CPU processes (gloo, the torch reference kernels): checks the result
    torchrun --nproc_per_node=2 examples/ring_attention.py --device=cpu \\
        --dtype=float64 --seq=256 --heads=4 --head-dim=32 --causal --check

Each rank makes only its own rows (chunk c of the sequence from seed
--seed + c), so the whole sequence is never in one place. Prints, from rank
0, the time of a forward + backward step (the slowest rank's, median of
--iterations), the attention TFLOP/s of the whole ring, and with --compare
the time of the same steps without the transfers (each rank computing
against its own keys and values: the compute alone; the difference is what
the ring's transfers add). --check gathers the output and gradients on rank
0 and compares them with float64 attention of the whole sequence there
(small sequences only).
"""
import argparse
import math
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import bpt.ring  # noqa: E402

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16,
          "float32": torch.float32, "float64": torch.float64}


def share(shape, heads, rank, world, seed, dtype, device):
    """This rank's zig-zag share of a [B, heads, S, D] tensor whose chunk c
    (of 2·world) comes from seed + c."""
    batch, seq, head_dim = shape
    chunk = seq // (2 * world)
    parts = []
    for c in (rank, 2 * world - 1 - rank):
        g = torch.Generator().manual_seed(seed + c)
        parts.append(torch.randn(batch, heads, chunk, head_dim, generator=g,
                                 dtype=torch.float64))
    return torch.cat(parts, 2).to(device=device, dtype=dtype)


def whole(shape, heads, world, seed):
    """The whole tensor `share` cuts (float64, for --check)."""
    parts = [share(shape, heads, r, world, seed, torch.float64, "cpu") for r in range(world)]
    return bpt.ring.unshard(parts)


def step(q, k, v, do, args, transfers=True):
    for t in (q, k, v):
        t.grad = None
    o = bpt.ring.attention(q, k, v, causal=args.causal, transfers=transfers)
    o.backward(do)
    return o


def timed(q, k, v, do, args, transfers):
    """Median milliseconds of a step, the slowest rank's."""
    times = []
    for i in range(args.warmup + args.iterations):
        dist.barrier()
        if q.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(q, k, v, do, args, transfers)
        if q.is_cuda:
            torch.cuda.synchronize()
        elapsed = torch.tensor([(time.perf_counter() - start) * 1e3], dtype=torch.float64)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
        if i >= args.warmup:
            times.append(elapsed.item())
    return statistics.median(times)


def check(o, q, k, v, args, world, rank):
    """Rank 0 compares the gathered output and gradients with float64
    autograd of the whole sequence; returns whether they agree."""
    found = []
    for t in (o.detach(), q.grad, k.grad, v.grad):
        t = t.to(torch.float64).contiguous()
        parts = [torch.empty_like(t) for _ in range(world)]
        dist.all_gather(parts, t)
        found.append(bpt.ring.unshard([p.cpu() for p in parts]))
    if rank != 0:
        return True
    shape = (args.batch, args.seq, args.head_dim)
    dtype = DTYPES[args.dtype]
    # The inputs as the ranks had them (rounded to --dtype).
    inputs = [whole(shape, h, world, args.seed + 1000 * i).to(dtype).double().requires_grad_()
              for i, h in enumerate((args.heads, args.kv_heads, args.kv_heads))]
    do = whole(shape, args.heads, world, args.seed + 3000).to(dtype).double()
    group = args.heads // args.kv_heads
    kk, vv = (t.repeat_interleave(group, 1) for t in inputs[1:])
    s = inputs[0] @ kk.transpose(-1, -2) / math.sqrt(args.head_dim)
    if args.causal:
        s = s.masked_fill(torch.ones(args.seq, args.seq, dtype=torch.bool).triu(1), -math.inf)
    out = s.softmax(-1) @ vv
    out.backward(do)
    expected = [out.detach()] + [t.grad for t in inputs]
    tolerance = {torch.float64: 1e-10, torch.float32: 1e-5}.get(dtype, 1e-2)
    ok = True
    for name, f, e in zip(("o", "dq", "dk", "dv"), found, expected):
        error = ((f - e).abs().max() / e.abs().max()).item()
        ok &= error < tolerance
        print(f"  {name}: largest error relative to the largest element {error:.2e}")
    print("check: PASS" if ok else "check: FAIL")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--dtype", default="bfloat16", choices=DTYPES)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=16384, help="the whole sequence")
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--compare", action="store_true",
                    help="also time the steps without the transfers")
    ap.add_argument("--check", action="store_true",
                    help="compare with float64 attention of the whole sequence on rank 0")
    args = ap.parse_args()
    args.kv_heads = args.kv_heads or args.heads

    cuda = args.device == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.seq % (2 * world):
        ap.error(f"--seq ({args.seq}) must split into {2 * world} equal chunks")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = DTYPES[args.dtype]
    shape = (args.batch, args.seq, args.head_dim)
    q, k, v = (share(shape, h, rank, world, args.seed + 1000 * i, dtype, device).requires_grad_()
               for i, h in enumerate((args.heads, args.kv_heads, args.kv_heads)))
    do = share(shape, args.heads, rank, world, args.seed + 3000, dtype, device)

    ok = True
    if args.check:
        ok = check(step(q, k, v, do, args), q, k, v, args, world, rank)
    ms = timed(q, k, v, do, args, transfers=True)
    # Forward 4·B·H·S²·D FLOPs (halved when causal), the backward 2.5 times that.
    flops = 3.5 * 4 * args.batch * args.heads * args.seq ** 2 * args.head_dim
    flops /= 2 if args.causal else 1
    if rank == 0:
        print(f"{world} ranks, {args.device}, {args.dtype}, B{args.batch} H{args.heads}/"
              f"{args.kv_heads} S{args.seq} D{args.head_dim}"
              f"{' causal' if args.causal else ''}: forward + backward {ms:.2f} ms "
              f"({flops / ms / 1e9:.3g} TFLOP/s over the ring)")
    if args.compare:
        alone = timed(q, k, v, do, args, transfers=False)
        if rank == 0:
            print(f"  the same steps without the transfers: {alone:.2f} ms "
                  f"(the transfers add {ms - alone:+.2f} ms)")
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
