#!/usr/bin/env python3
"""The sm_90a GEMM kernels of FFN sets against cuBLAS on the same shapes, by ncu.

Issue 15's bar "the GEMM kernels >= 0.95x cuBLAS on the FFN's shapes" asks
for one GEMM against another, which whole-set timing cannot give: an FFN set
runs its two GEMMs per chunk. So both sides are read per kernel under ncu
(gpu__time_duration), by default with ncu's cache flush and clock lock off
(`--cache-control none --clock-control none`: kernels as they run back to
back, at the card's own clocks; --ncu-defaults keeps ncu's flushed L2 and
base clocks, which slow short kernels more than long ones):
  * bpt: every sm_90a GEMM launch of a set (bpt-run, one run, no check);
    the median duration per kernel name; its shape from the kernel name
    (`a<A rows>_c<C rows>_n<N>_k<K>`: a launch covers the smaller of A's
    and C's rows); a split tail's parts are left without a peer (their
    reduce launch is not counted);
  * cuBLAS: torch's matmul of the same M x K by K x N bf16/f16 operands
    (row-major, as bench.py's eager FFN multiplies), and for a GELU
    epilogue also torch._addmm_activation(use_gelu=True), cuBLASLt's fused
    GELU epilogue (its tanh form: the nearest fused peer cuBLAS has). A
    gated (SwiGLU, GeGLU) up GEMM is two products: cuBLAS gets one GEMM of
    twice the width.
On the GPU machine:
  python3 bench/gemm_vs_cublas.py --kernels DIR --bpt-run .device/bpt-run \\
      [--sets ffn-gelu-s16384,...] [--out FILE.json]
Prints one row per bpt GEMM kernel: its time, cuBLAS's plain and fused
times, and the ratios (cuBLAS time / bpt time: >= 1 means bpt is faster).
"""
import argparse
import csv
import io
import json
import os
import re
import statistics
import subprocess
import sys

NAME = re.compile(r"gemm_sm90_a(\d+)_c(\d+)_n(\d+)_k(\d+)(.*)")
TO_US = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3, "second": 1e6,
         "ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


NCU = "ncu"


NCU_CONTROL = ["--cache-control", "none", "--clock-control", "none"]


def ncu_durations(command, kernel_regex=None):
    """[(kernel name, µs)] of the launches ncu profiles while `command` runs."""
    cmd = [NCU, "--csv", *NCU_CONTROL, "--metrics", "gpu__time_duration.sum"]
    if kernel_regex:
        cmd += ["-k", "regex:" + kernel_regex]
    else:
        cmd += ["--profile-from-start", "off"]
    out = subprocess.run(cmd + command, capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        sys.exit(f"ncu failed ({out.returncode}): {out.stderr[-2000:]}")
    # ncu's own lines (==PROF==) and the program's output precede the CSV.
    text = out.stdout[out.stdout.find('"ID"'):]
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(r["Metric Value"].replace(",", ""))
        rows.append((r["Kernel Name"], value * TO_US[r["Metric Unit"]]))
    return rows


def bpt_gemms(manifest_path, bpt_run):
    """{kernel: (m, n, k, gated, activation suffix, median µs)} of a set."""
    with open(manifest_path) as f:
        manifest = json.load(f)
    gated = manifest["options"].get("activation") in ("swiglu", "geglu")
    hidden = manifest_hidden(manifest)
    times = {}
    for name, us in ncu_durations([bpt_run, manifest_path, "--no-check",
                                   "--iterations=1", "--warmup=0"],
                                  kernel_regex="gemm_sm90"):
        times.setdefault(name, []).append(us)
    result = {}
    for name, values in times.items():
        match = NAME.match(name)
        if not match or "_reduce" in name:
            continue
        a, c, n, k = (int(match.group(i)) for i in range(1, 5))
        suffix = match.group(5)
        m = None if "_split" in suffix else min(a, c)
        result[name] = (m, n, k, gated and k == hidden, suffix,
                        statistics.median(values))
    return result


def manifest_hidden(manifest):
    for b in manifest["buffers"]:
        if b["name"] == "w_in":
            return b["shape"][0]
    return None


CUBLAS_SCRIPT = r"""
import json, sys, torch
shapes = json.loads(sys.argv[1])
dtype = getattr(torch, sys.argv[2])
for m, n, k, gelu in shapes:
    a = torch.randn(m, k, device="cuda", dtype=dtype)
    w = torch.randn(k, n, device="cuda", dtype=dtype)
    bias = torch.zeros(n, device="cuda", dtype=dtype)
    ops = [lambda: a @ w]
    if gelu:
        ops.append(lambda: torch._addmm_activation(bias, a, w, use_gelu=True))
    for op in ops:
        op(); op(); torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStart()
        # A marker kernel before each op's three runs: cuBLAS may launch
        # more than one kernel a product (a split K and its reduction).
        torch.cuda._sleep(1)
        op(); op(); op(); torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStop()
"""


def cublas_times(shapes, dtype):
    """{(m, n, k): (plain µs, fused-GELU µs or None, kernel names)}."""
    rows = ncu_durations([sys.executable, "-c", CUBLAS_SCRIPT,
                          json.dumps(shapes), dtype])
    # Split at the marker kernels: one group of three runs an op.
    groups = []
    for name, us in rows:
        if "spin_kernel" in name:
            groups.append([])
        elif groups:
            groups[-1].append((name, us))
    result, at = {}, 0
    for m, n, k, gelu in shapes:
        runs = groups[at:at + (2 if gelu else 1)]
        at += len(runs)
        times = [sum(us for _, us in r) / 3 for r in runs]
        names = sorted({name.split("(")[0] for r in runs for name, _ in r})
        result[(m, n, k)] = (times[0], times[1] if gelu else None, names)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", required=True)
    ap.add_argument("--bpt-run", required=True)
    ap.add_argument("--sets", default="ffn-gelu-s16384,ffn-swiglu-s16384")
    ap.add_argument("--out")
    ap.add_argument("--ncu", default="ncu", help="the ncu to run")
    ap.add_argument("--ncu-defaults", action="store_true",
                    help="keep ncu's L2 flush and locked clocks")
    args = ap.parse_args()
    global NCU, NCU_CONTROL
    NCU = args.ncu
    if args.ncu_defaults:
        NCU_CONTROL = []
    report = []
    for name in args.sets.split(","):
        path = os.path.join(args.kernels, name + ".json")
        with open(path) as f:
            dtype = {"bf16": "bfloat16", "f16": "float16"}[
                json.load(f)["buffers"][0].get("dtype", "bf16")]
        gemms = bpt_gemms(path, args.bpt_run)
        shapes = []
        for kernel, (m, n, k, gated, suffix, _) in gemms.items():
            if m is None:
                continue
            width = 2 * n if gated else n
            shape = [m, width, k, "_gelu" in suffix]
            if shape not in shapes:
                shapes.append(shape)
        peers = cublas_times(shapes, dtype)
        for kernel, (m, n, k, gated, suffix, us) in gemms.items():
            row = {"set": name, "kernel": kernel, "bpt_us": round(us, 2)}
            if m is not None:
                plain, fused, names = peers[(m, 2 * n if gated else n, k)]
                row.update(m=m, n=n, k=k, gated=gated,
                           cublas_us=round(plain, 2),
                           cublas_kernels=names,
                           ratio=round(plain / us, 3))
                if fused is not None:
                    row.update(cublas_fused_gelu_us=round(fused, 2),
                               ratio_fused=round(fused / us, 3))
            report.append(row)
            print(f"{name:20s} {kernel:48s} M{row.get('m') or '?'} N{n} K{k}"
                  f"{' (gated)' if gated else ''}: bpt {us:7.2f} us"
                  + (f", cuBLAS {row['cublas_us']:7.2f} ({row['ratio']:.3f}x)"
                     if "cublas_us" in row else ", no peer (split tail)")
                  + (f", fused GELU {row['cublas_fused_gelu_us']:7.2f}"
                     f" ({row['ratio_fused']:.3f}x)"
                     if "ratio_fused" in row else ""))
        for (m, n, k), (_, _, names) in peers.items():
            print(f"  cuBLAS M{m} N{n} K{k}: {', '.join(names)}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
