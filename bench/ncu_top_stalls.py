#!/usr/bin/env python3
"""The instructions of a kernel where its warps stalled most, from ncu.

On the GPU machine:
  ncu --kernel-name regex:NAME --launch-count 1 --section WarpStateStats \\
      --section SourceCounters -o REP bpt-run SET.json --no-check \\
      --iterations=1 --warmup=0
  ncu -i REP.ncu-rep --page source --csv --print-source sass > source.csv
Here (standard library only; test/Tools/ncu-top-stalls.test):
  python3 bench/ncu_top_stalls.py source.csv [--top N]
prints the N instructions with the most warp stall samples, each with its
SASS line index and its two largest stall reasons (hopper.md versions 16
and 17 read the FFN's up GEMM this way).
"""

import argparse
import csv
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"


def top_stalls(rows, top):
    """(index, samples, source, [(reason, samples)]) of the `top` rows."""
    header = next(i for i, r in enumerate(rows) if SAMPLES in r)
    names = rows[header]
    column = {name: j for j, name in enumerate(names)}
    # Per-reason columns are stall_*, without their "(Not Issued)" twins.
    reasons = [n for n in names if n.startswith("stall_") and "Not Issued" not in n]

    def count(row, name):
        try:
            return int(row[column[name]].replace(",", ""))
        except (IndexError, ValueError):
            return 0

    body = rows[header + 1:]
    total = sum(count(r, SAMPLES) for r in body)
    order = sorted(range(len(body)), key=lambda i: -count(body[i], SAMPLES))[:top]
    picked = []
    for i in sorted(order):
        row = body[i]
        why = sorted(((n, count(row, n)) for n in reasons if count(row, n)),
                     key=lambda kv: -kv[1])[:2]
        picked.append((i, count(row, SAMPLES), row[column["Source"]].strip(), why))
    return total, picked


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        rows = list(csv.reader(f))
    if not any(SAMPLES in r for r in rows):
        sys.exit(f"{args.csv}: no '{SAMPLES}' column (was SourceCounters collected?)")
    total, picked = top_stalls(rows, args.top)
    print(f"{total} warp stall samples; the {len(picked)} instructions with the most:")
    for index, samples, source, why in picked:
        reasons = ", ".join(f"{n} {c}" for n, c in why)
        print(f"{index:6d} {samples:6d} {100 * samples / max(total, 1):5.1f}%  {source:60s} {reasons}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
