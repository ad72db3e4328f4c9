#!/usr/bin/env python3
"""Trains a small decoder LM whose blocks are bpt.torch.TransformerBlocks,
and the same model with the blocks in eager PyTorch from the same initial
weights on the same batches; writes both loss curves (CSV, and a PNG where
matplotlib is installed) and prints the final losses and the largest
per-step difference between the two runs.

The model: token and (learned) position embeddings, 4 pre-norm blocks
(hidden 512, 8 heads, rms_norm, swiglu with FFN 1408, causal, bf16), a
final RMSNorm and a linear head, all but the blocks in plain PyTorch. The
corpus is made here: sequences of an order-2 Markov chain over 32 tokens
where the previous token allows 8 next tokens and the one before it sets
their odds, so the loss can fall from ln 32 = 3.47 to about 1.85 by the
previous token alone, and towards the chain's entropy rate (about 1.12,
printed as the floor) by attending to the token before it.
Both runs use AdamW on float32 master copies of the bf16 parameters.

    PYTHONPATH=python python3 examples/train_lm.py --out DIR [--steps 300]

Kernel sets come from bpt.cache ($BPT_CACHE): compiled on first use where
bpt-compile is found. On a GPU machine without it, prebuild them (two sets,
one shape) where it runs:

    PYTHONPATH=python python3 -m bpt.cache --op block --out DIR --batch 8 \\
        --seq 256 --hidden 512 --heads 8 --ffn 1408 --activation swiglu \\
        --norm rms_norm --causal --dtype bf16

and set BPT_CACHE=DIR (and BPT_RUNTIME_LIB to libbpt_runtime.so) there.
"""
import argparse
import csv
import math
import os
import time

import torch
import torch.nn.functional as F

import bpt.torch


def markov_corpus(vocab, successors, sequences, length, seed):
    """(tokens [sequences, length], floor): an order-2 Markov chain. Token b
    is followed by one of `successors` tokens of its own, with
    probabilities that depend on the token a before it as well
    (softmax(2·N(0, 1)) for each pair a, b): the previous token narrows the
    next to `successors` choices, the one before it sharpens the odds.
    floor is the mean entropy of the next token over the positions that
    have both, the loss a perfect model reaches there."""
    g = torch.Generator().manual_seed(seed)
    nexts = torch.rand(vocab, vocab, generator=g).argsort(1)[:, :successors]
    probs = (2 * torch.randn(vocab * vocab, successors, generator=g)).softmax(1)
    tokens = torch.empty(sequences, length, dtype=torch.long)
    tokens[:, :2] = torch.randint(vocab, (sequences, 2), generator=g)
    entropy = -(probs * probs.log()).sum(1)
    seen = []
    for t in range(2, length):
        a, b = tokens[:, t - 2], tokens[:, t - 1]
        choice = torch.multinomial(probs[a * vocab + b], 1, generator=g).squeeze(1)
        tokens[:, t] = nexts[b, choice]
        seen.append(entropy[a * vocab + b])
    return tokens, torch.cat(seen).mean().item()


class LM(torch.nn.Module):
    """Token and position embeddings, bpt TransformerBlocks, final RMSNorm,
    linear head.
    forward(tokens, eager) runs the blocks through bpt's kernel sets, or
    with eager=True through TransformerBlock.eager (the same block in
    eager PyTorch, on the same parameters)."""

    def __init__(self, vocab, seq, hidden, heads, layers, ffn, dtype, device):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden, dtype=dtype, device=device)
        self.position = torch.nn.Embedding(seq, hidden, dtype=dtype, device=device)
        self.blocks = torch.nn.ModuleList(
            bpt.torch.TransformerBlock(hidden, heads, heads, ffn, "swiglu", "rms_norm",
                                       causal=True, dtype=dtype, device=device)
            for _ in range(layers))
        self.norm_weight = torch.nn.Parameter(torch.ones(hidden, dtype=dtype, device=device))
        self.head = torch.nn.Linear(hidden, vocab, bias=False, dtype=dtype, device=device)

    def forward(self, tokens, eager=False):
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(tokens) + self.position(positions)
        for block in self.blocks:
            x = block.eager(x) if eager else block(x)
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + bpt.torch.EPSILON)
        return self.head((xf * self.norm_weight.float()).to(x.dtype))


class MasterWeightAdamW:
    """AdamW on float32 copies of (bf16) parameters: the update is applied
    in f32 and copied back, so that steps smaller than a bf16 ulp of the
    weight are not lost. The copy is in place, so the parameters keep their
    addresses (and the TMA descriptors bpt built over them)."""

    def __init__(self, params, **options):
        self.params = list(params)
        self.master = [p.detach().float() for p in self.params]
        self.optimizer = torch.optim.AdamW(self.master, **options)

    def step(self, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        for m, p in zip(self.master, self.params):
            m.grad = p.grad.float()
            p.grad = None
        self.optimizer.step()
        with torch.no_grad():
            for m, p in zip(self.master, self.params):
                p.copy_(m)


def learning_rate(step, steps, peak, warmup=20):
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def train(model, eager, corpus, order, steps, batch, lr):
    """Losses per step and the mean seconds of a step after the first (which
    loads, or compiles, the kernel sets); prints the loss every 50 steps."""
    optimizer = MasterWeightAdamW(model.parameters(), betas=(0.9, 0.95), weight_decay=0.01)
    losses = []
    torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(steps):
        if step == 1:
            torch.cuda.synchronize()
            start = time.perf_counter()
        tokens = corpus[order[step * batch:(step + 1) * batch]].cuda()
        logits = model(tokens[:, :-1], eager=eager)
        loss = F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())
        loss.backward()
        optimizer.step(learning_rate(step, steps, lr))
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            print(f"  {'eager' if eager else 'bpt'} step {step}: loss {losses[-1]:.4f}")
    torch.cuda.synchronize()
    return losses, (time.perf_counter() - start) / max(1, steps - 1)


def write_outputs(out, bpt_losses, eager_losses, floor):
    """losses.csv, and loss.png where matplotlib is installed; the paths."""
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, "losses.csv")]
    with open(paths[0], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "bpt", "eager"])
        writer.writerows(zip(range(len(bpt_losses)), bpt_losses, eager_losses))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib: losses.csv only")
        return paths
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(bpt_losses, label="bpt TransformerBlock", linewidth=1)
    ax.plot(eager_losses, label="eager PyTorch (SDPA)", linewidth=1, linestyle="--")
    ax.axhline(floor, color="gray", linewidth=0.8, label=f"chain entropy {floor:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title("4-block LM, hidden 512, bf16: same initial weights and batches")
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(out, "loss.png"))
    fig.savefig(paths[1], dpi=120)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for losses.csv, loss.png")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    vocab = 32
    corpus, floor = markov_corpus(vocab, 8, args.steps * args.batch, args.seq + 1, args.seed)
    order = torch.randperm(len(corpus), generator=torch.Generator().manual_seed(args.seed))

    torch.manual_seed(args.seed)
    config = dict(vocab=vocab, seq=args.seq, hidden=512, heads=8, layers=4, ffn=1408,
                  dtype=torch.bfloat16, device="cuda")
    model = LM(**config)
    eager_model = LM(**config)
    eager_model.load_state_dict(model.state_dict())
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; "
          f"{args.steps} steps of {args.batch} x {args.seq} tokens; "
          f"kernel sets in {bpt.cache.cache_dir()}")

    bpt_losses, bpt_seconds = train(model, False, corpus, order, args.steps, args.batch,
                                    args.lr)
    eager_losses, eager_seconds = train(eager_model, True, corpus, order, args.steps,
                                        args.batch, args.lr)
    diffs = [abs(a - b) for a, b in zip(bpt_losses, eager_losses)]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    tail = min(10, args.steps)
    print(f"initial loss: bpt {bpt_losses[0]:.4f}, eager {eager_losses[0]:.4f} "
          f"(ln {vocab} = {math.log(vocab):.4f})")
    print(f"final loss: bpt {bpt_losses[-1]:.4f}, eager {eager_losses[-1]:.4f}; "
          f"mean of the last {tail}: bpt {sum(bpt_losses[-tail:]) / tail:.4f}, "
          f"eager {sum(eager_losses[-tail:]) / tail:.4f} (chain entropy {floor:.4f})")
    print(f"max per-step difference {diffs[worst]:.4f} (step {worst}); mean "
          f"{sum(diffs) / len(diffs):.4f}")
    print(f"time per step: bpt {1e3 * bpt_seconds:.1f} ms, eager {1e3 * eager_seconds:.1f} ms")
    for path in write_outputs(args.out, bpt_losses, eager_losses, floor):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
