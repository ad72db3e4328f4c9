"""The ring's schedule, without PyTorch: which attentions a rank computes
at each step of bpt.ring (see its docstring for the layout), and the
kernel-set problems those steps need, so that a machine without
bpt-compile can be given them prebuilt:

    python3 -m bpt.ring_schedule --out DIR --world 4 --batch 1 --heads 16 \\
        --kv-heads 4 --seq 65536 --head-dim 128 --causal   # DIR: $BPT_CACHE
"""
import argparse
import math

from . import cache


def pairs(rank, source, world, rows, causal):
    """The attentions rank `rank` computes when it holds the keys and values
    of rank `source`: (query rows, key rows, causal) triples, rows as
    slices of the local sequence of `rows` rows (two chunks of rows / 2).
    Chunk a of the queries may see chunk b of the keys where b <= a (b == a:
    the causal diagonal); the kernels' causal mask is bottom-right aligned,
    so queries of one chunk against keys of two, the second being the
    queries' own, is one causal attention."""
    everything = slice(0, rows)
    if not causal:
        return [(everything, everything, False)]
    half = rows // 2
    first, second = slice(0, half), slice(half, rows)
    if source == rank:
        # Chunks r and 2P-1-r of both: (r, r) on its diagonal, and the
        # second chunk's queries against both (2P-1-r's diagonal last).
        return [(first, first, True), (second, everything, True)]
    if source < rank:
        # The source's chunks s < r and 2P-1-s > 2P-1-r: only chunk s, and
        # every local query sees all of it.
        return [(everything, first, False)]
    # s > r: chunk s lies after r and before 2P-1-r, chunk 2P-1-s before
    # 2P-1-r: the second local chunk sees both, the first neither.
    return [(second, everything, False)]


def step_shapes(seq, world, causal):
    """Every (query rows, key rows, causal) a rank of a ring of `world`
    ranks over a whole sequence of `seq` rows computes."""
    rows = seq // world
    return sorted({(q.stop - q.start, k.stop - k.start, masked)
                   for rank in range(world) for source in range(world)
                   for q, k, masked in pairs(rank, source, world, rows, causal)})


def step_problems(batch, heads, kv_heads, seq, head_dim, dtype, causal, world,
                  chip="sm_90a", tensor_cores=True):
    """The cache.AttentionProblem of every step shape (the default scale,
    1/sqrt(head_dim), as bpt.ring passes it)."""
    if seq % (2 * world):
        raise ValueError(f"the sequence ({seq}) must split into {2 * world} "
                         f"equal chunks")
    scale = 1.0 / math.sqrt(head_dim)
    return [cache.AttentionProblem(batch, heads, kv_heads, rows, keys, head_dim, dtype,
                                   masked, scale, chip, tensor_cores)
            for rows, keys, masked in step_shapes(seq, world, causal)]


def main(argv=None):
    """Prebuilds the forward (--lse) and gradient sets of every step of a
    ring into --out (default $BPT_CACHE)."""
    ap = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--world", type=int, required=True)
    for size in ("batch", "heads", "kv-heads", "seq", "head-dim"):
        ap.add_argument(f"--{size}", type=int, required=size != "kv-heads")
    ap.add_argument("--dtype", default="bf16", choices=cache.DTYPES)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--chip", default="sm_90a")
    args = ap.parse_args(argv)
    problems = step_problems(args.batch, args.heads, args.kv_heads or args.heads,
                             args.seq, args.head_dim, args.dtype, args.causal,
                             args.world, args.chip)
    for path in cache.prebuild(problems, args.out or cache.cache_dir()):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
