#!/usr/bin/env python3
"""Fuzzes bpt's tools: bpt-compile's flags and bpt-run's manifest reader.

Two kinds of input (issue 14, "Hardening"):

  compile   random and boundary flag combinations for bpt-compile (every op,
            dtype and chip, huge / zero / negative / non-numeric values,
            conflicting flags); a kernel set it writes is checked for sizes
            and grids the runtime cannot take, and by bpt-run
            --check-manifest.
  manifest  manifests that bpt-compile produced (a few small sets compiled
            first, --no-tensor-cores, default chip), mutated: fields
            deleted, types changed, huge / negative numbers, path tricks,
            renamed roles and names, truncated or garbage JSON, rank changes
            with equal byte counts, ...; each is checked with
            bpt-run --check-manifest (no GPU needed).

Each run is classified:
  error     non-zero exit with a message (what bad input should get)
  ok        success (a kernel set written, a manifest accepted)
  crash     a signal, abort, "LLVM ERROR", a stack dump, a sanitizer report,
            an uncaught exception, or a non-zero exit without a message
  hang      still running after --timeout seconds
  bad-manifest  bpt-compile succeeded but wrote a negative, zero or
            over-limit size or grid, or a manifest bpt-run rejects

Findings (crash, hang, bad-manifest) go to OUT/findings.json with a
reproducer each (the command line; for manifests, the file under
OUT/findings/); OUT/summary.json has the counts. The exit status is 1 if
there is any finding, else 0. Python 3 standard library only.

  test/fuzz/fuzz_tools.py --bin-dir build/bin --out /tmp/fuzz \\
      --seed 1 --count 3000
"""

import argparse
import copy
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time

# What a crash looks like on stderr, besides a signal.
CRASH_MARKERS = (
    "LLVM ERROR",
    "Stack dump",
    "PLEASE submit a bug report",
    "Assertion",
    "AddressSanitizer",
    "UndefinedBehaviorSanitizer",
    "LeakSanitizer",
    "runtime error:",
    "terminate called",
    "Segmentation fault",
    "Aborted",
    "core dumped",
)

# The runtime's and CUDA's limits, as the manifest reader states them.
MAX_BUFFER_BYTES = 1 << 40
GRID_LIMITS = (2**31 - 1, 65535, 65535)
BLOCK_LIMITS = (1024, 1024, 64)
ELEMENT_BYTES = {"f32": 4, "f16": 2, "bf16": 2, "i8": 1}

OPS = ["attention", "attention_grad", "ffn", "block"]
DTYPES = ["f32", "f16", "bf16"]
CHIPS = ["sm_90a", "sm_80", "sm_86", "sm_89", "sm_90", "sm_75", "sm_70",
         "sm_60", "sm_50", "sm_30", "sm_20", "sm_100", "sm_100a", "sm_100f",
         "sm_103a", "sm_110", "sm_120", "sm_121f", "sm_88"]
BAD_CHIPS = ["sm_junk", "sm_80a", "sm_", "sm_9999", "SM_90", "sm_90b",
             "gfx90a", "", "sm_90a ", "sm_-1", "sm_0", "sm_85"]
ACTIVATIONS = ["gelu", "gelu_tanh", "relu", "silu", "swiglu", "geglu"]

# Sizes: small valid ones (so that some compiles succeed quickly), the edges
# of the tilings, and boundary values of every integer width.
SMALL_SIZES = [1, 2, 3, 4, 7, 8, 16, 31, 32, 33, 63, 64, 65, 96, 100, 127,
               128, 129, 192, 256]
BOUNDARY_SIZES = [0, -1, -64, 2**15, 2**16, 2**20, 2**31 - 1, 2**31,
                  2**32 + 1, 2**40, 2**62, 2**63 - 1, -(2**63)]
BAD_NUMBERS = ["abc", "", "1e3", "0x10", "1.5", "9" * 30, "-0", " 64",
               "64abc"]
SCALES = ["0.125", "1", "0", "-1", "nan", "inf", "-inf", "1e308", "1e-320",
          "abc", "0.0625"]


def int_value(rng, small_bias=0.9):
    """A size flag value: mostly small and valid, sometimes a boundary."""
    r = rng.random()
    if r < small_bias:
        return str(rng.choice(SMALL_SIZES))
    if r < 0.95:
        return str(rng.choice(BOUNDARY_SIZES))
    return rng.choice(BAD_NUMBERS)


def plausible_flags(rng):
    """A command line that fits its op, with valid values but for an
    occasional boundary: reaches the compiler's passes and the manifest
    writer rather than the flag checks."""
    op = rng.choice(OPS)
    flags = ["--op=" + op, "--dtype=" + rng.choice(DTYPES)]
    if rng.random() < 0.5:
        flags.append("--no-tensor-cores")
    if rng.random() < 0.6:
        flags.append("--chip=" + rng.choice(CHIPS))
    size = lambda: str(rng.choice([1, 2, 3, 16, 32, 63, 64, 100, 128, 200,
                                   256]))
    seq = rng.choice([16, 64, 100, 128, 256, 384])
    if rng.random() < 0.03:
        seq = rng.choice([2**20, 2**31 - 1, 2**24])
    flags.append("--seq=%d" % seq)
    if rng.random() < 0.5:
        flags.append("--batch=" + rng.choice(["1", "2", "3"]))
    if op in ("attention", "attention_grad"):
        heads = rng.choice([1, 2, 4, 8])
        flags.append("--heads=%d" % heads)
        if rng.random() < 0.4:
            flags.append("--kv-heads=%d" % rng.choice(
                [d for d in (1, 2, 4, 8) if heads % d == 0]))
        if rng.random() < 0.4:
            flags.append("--kv-seq=%d" % rng.choice([16, 64, 100, 128, 300]))
        flags.append("--head-dim=%d" % rng.choice([16, 32, 64, 128, 80]))
        if rng.random() < 0.3:
            flags.append("--scale=" + rng.choice(["0.125", "0.5", "2"]))
        if op == "attention" and rng.random() < 0.3:
            flags.append(rng.choice(["--lse", "--backward"]))
    else:
        heads = rng.choice([1, 2, 4])
        hidden = heads * rng.choice([16, 32, 64])
        flags.append("--hidden=%d" % hidden)
        if rng.random() < 0.5:
            flags.append("--ffn=" + size())
        flags.append("--activation=" + rng.choice(ACTIVATIONS))
        if op == "block":
            flags.append("--heads=%d" % heads)
            if rng.random() < 0.3 and heads > 1:
                flags.append("--kv-heads=%d" % (heads // 2))
            flags.append("--norm=" + rng.choice(["layer_norm", "rms_norm"]))
            if rng.random() < 0.3:
                flags.append("--backward")
                if rng.random() < 0.5:
                    flags.append("--query-chunk=%d" % rng.choice(
                        [1, 16, 50, 64, 100, seq, 4096]))
    if op != "ffn" and rng.random() < 0.4:
        flags.append("--causal")
    if rng.random() < 0.15:
        flags.append(rng.choice(["--q-block", "--kv-block"]) + "=" + size())
    if rng.random() < 0.1:
        flags.append("--no-fuse")
    if rng.random() < 0.1:
        flags.append(rng.choice(["--sm90-kv-block=64", "--sm90-stages=3",
                                 "--sm80-q-block=128", "--sm80-kv-block=32",
                                 "--sm80-stages=4", "--chunk-rows=256",
                                 "--sm90-gemm-block-n=128",
                                 "--sm80-grad-q-block=32",
                                 "--sm80-grad-kv-block=64",
                                 "--sm80-grad-stages=3"]))
    if rng.random() < 0.05:
        flags.append("--emit=mlir")
        flags.append("--stage=" + rng.choice(["blockwise", "gpu"]))
    rng.shuffle(flags)
    return flags


def compile_flags(rng):
    """A random bpt-compile command line (without the tool and -o): half of
    them plausible for their op, half random and conflicting."""
    if rng.random() < 0.5:
        return plausible_flags(rng)
    flags = []
    op = rng.choice(OPS) if rng.random() < 0.97 else rng.choice(
        ["attn", "", "custom", "linear"])
    flags.append("--op=" + op)
    if rng.random() < 0.9:
        flags.append("--dtype=" + (rng.choice(DTYPES) if rng.random() < 0.95
                                   else rng.choice(["fp8", "i8", "F32", ""])))
    r = rng.random()
    if r < 0.45:
        flags.append("--no-tensor-cores")
    if rng.random() < 0.5:
        chip = rng.choice(CHIPS) if rng.random() < 0.8 else rng.choice(
            BAD_CHIPS)
        flags.append("--chip=" + chip)
    if rng.random() < 0.1:
        flags.append("--features=" + rng.choice(
            ["+ptx80", "+ptx70", "+ptx86", "+ptx99", "ptx80", "+ptx80,+ptx83",
             "", "+sm_90", "+ptx", "+ptx1000"]))
    # Shape flags, most of them valid for small problems.
    shape_flags = ["--batch", "--heads", "--kv-heads", "--seq", "--kv-seq",
                   "--head-dim", "--hidden", "--ffn"]
    for flag in shape_flags:
        if rng.random() < 0.35:
            flags.append("%s=%s" % (flag, int_value(rng)))
    if op == "ffn" and not any(f.startswith("--hidden") for f in flags) and \
            rng.random() < 0.8:
        flags.append("--hidden=%d" % rng.choice([32, 64, 128, 256]))
    # Keep valid compiles small: a default seq of 1024 is slow to check.
    if not any(f.startswith("--seq") for f in flags) and rng.random() < 0.8:
        flags.append("--seq=%d" % rng.choice([16, 64, 128, 256]))
    if not any(f.startswith("--heads") for f in flags) and rng.random() < 0.7:
        flags.append("--heads=%d" % rng.choice([1, 2, 4]))
    for flag in ["--q-block", "--kv-block", "--block-threads", "--chunk-rows",
                 "--sm90-kv-block", "--sm90-stages", "--sm90-gemm-block-n",
                 "--sm90-gemm-stages", "--sm90-gemm-split", "--sm80-q-block",
                 "--sm80-kv-block", "--sm80-stages", "--sm80-gemm-block-n",
                 "--sm80-grad-q-block", "--sm80-grad-kv-block",
                 "--sm80-grad-stages", "--query-chunk"]:
        if rng.random() < 0.08:
            flags.append("%s=%s" % (flag, int_value(rng, 0.6)))
    if rng.random() < 0.15:
        flags.append("--scale=" + rng.choice(SCALES))
    for flag in ["--causal", "--lse", "--backward", "--no-fuse"]:
        if rng.random() < 0.15:
            flags.append(flag)
    if rng.random() < 0.15:
        flags.append("--activation=" + (rng.choice(ACTIVATIONS)
                                        if rng.random() < 0.9 else "tanh"))
    if rng.random() < 0.1:
        flags.append("--norm=" + rng.choice(["layer_norm", "rms_norm",
                                             "batch_norm"]))
    r = rng.random()
    if r < 0.06:
        flags.append("--emit=mlir")
        flags.append("--stage=" + rng.choice(
            ["model", "blockwise", "linalg", "bufferized", "gpu", "binary",
             "junk"]))
    elif r < 0.09:
        flags.append("--stage=" + rng.choice(["model", "gpu"]))
    elif r < 0.1:
        flags.append("--emit=" + rng.choice(["cubin", "llvm", ""]))
    if rng.random() < 0.01:
        # Input files that are not files.
        flags.append(rng.choice(["/dev/zero", "/dev/null", "--tuning=/dev/zero",
                                 "--tuning=/dev/null", "/", "--tuning=/"]))
    rng.shuffle(flags)
    return flags


def run(command, timeout, cwd=None):
    """Runs `command`; returns (status, rc, stdout, stderr, seconds), status
    'hang' on a timeout."""
    start = time.time()
    try:
        p = subprocess.run(command, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, cwd=cwd,
                           start_new_session=True)
    except subprocess.TimeoutExpired as e:
        return ("hang", None, "", "", time.time() - start)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    return ("done", p.returncode, out, err, time.time() - start)


def classify(status, rc, out, err):
    if status == "hang":
        return "hang"
    if rc < 0:
        return "crash"
    if any(marker in err or marker in out for marker in CRASH_MARKERS):
        return "crash"
    if rc in (134, 139):
        return "crash"
    if rc != 0:
        return "error" if (err.strip() or out.strip()) else "crash"
    return "ok"


def manifest_problems(manifest):
    """Sizes and grids in a manifest bpt-compile wrote that no runtime can
    take (the compiler must never write them)."""
    problems = []
    for i, b in enumerate(manifest.get("buffers", [])):
        shape, nbytes = b.get("shape", []), b.get("bytes")
        if not isinstance(nbytes, int) or nbytes <= 0:
            problems.append("buffers[%d].bytes is %r" % (i, nbytes))
            continue
        if nbytes > MAX_BUFFER_BYTES:
            problems.append("buffers[%d].bytes %d > 2^40" % (i, nbytes))
        if any((not isinstance(d, int)) or d <= 0 for d in shape):
            problems.append("buffers[%d].shape %r" % (i, shape))
        elif math.prod(shape) * ELEMENT_BYTES.get(b.get("dtype"), 0) != nbytes:
            problems.append("buffers[%d].bytes %d != shape %r x %s" %
                            (i, nbytes, shape, b.get("dtype")))
    for i, launch in enumerate(manifest.get("launches", [])):
        grid, block = launch.get("grid", []), launch.get("block", [])
        for axis, (dim, limit) in enumerate(zip(grid, GRID_LIMITS)):
            if not isinstance(dim, int) or not 1 <= dim <= limit:
                problems.append("launches[%d].grid[%d] is %r" % (i, axis, dim))
        for axis, (dim, limit) in enumerate(zip(block, BLOCK_LIMITS)):
            if not isinstance(dim, int) or not 1 <= dim <= limit:
                problems.append("launches[%d].block[%d] is %r" %
                                (i, axis, dim))
        if all(isinstance(d, int) for d in block) and math.prod(block) > 1024:
            problems.append("launches[%d].block %r > 1024 threads" %
                            (i, block))
        shared = launch.get("dynamic_shared_memory", 0)
        if not isinstance(shared, int) or shared < 0:
            problems.append("launches[%d].dynamic_shared_memory is %r" %
                            (i, shared))
    return problems


class Campaign:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.out = os.path.abspath(args.out)
        self.work = os.path.join(self.out, "work")
        self.finding_dir = os.path.join(self.out, "findings")
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work, exist_ok=True)
        os.makedirs(self.finding_dir, exist_ok=True)
        self.compile = args.bpt_compile or os.path.join(args.bin_dir,
                                                        "bpt-compile")
        self.bpt_run = args.bpt_run or os.path.join(args.bin_dir, "bpt-run")
        self.counts = {}
        self.findings = []
        self.slowest = (0.0, None)
        self.accepted = []

    def record(self, kind, verdict, seconds, detail):
        key = "%s/%s" % (kind, verdict)
        self.counts[key] = self.counts.get(key, 0) + 1
        if seconds > self.slowest[0]:
            self.slowest = (seconds, detail.get("command"))
        if verdict in ("crash", "hang", "bad-manifest"):
            detail = dict(detail, kind=kind, verdict=verdict)
            self.findings.append(detail)
            print("FINDING %s %s: %s" % (kind, verdict,
                                         " ".join(detail.get("command", []))),
                  file=sys.stderr)
            print("  " + detail.get("message", "")[:400].replace("\n", "\n  "),
                  file=sys.stderr)

    # -- bpt-compile flags ---------------------------------------------------

    def check_manifest(self, path):
        """bpt-run --check-manifest on `path`: (verdict, rc, message)."""
        if self.args.legacy_bpt_run:
            # A bpt-run without --check-manifest validates, then finds no
            # GPU: that message means the manifest was accepted.
            command = [self.bpt_run, path, "--no-check", "--iterations=0"]
        else:
            command = [self.bpt_run, "--check-manifest=" + path]
        status, rc, out, err, seconds = run(command, self.args.timeout)
        verdict = classify(status, rc, out, err)
        if self.args.legacy_bpt_run and verdict == "error" and \
                "no GPU to run on" in err:
            verdict = "ok"
        return verdict, rc, (err or out).strip(), command, seconds

    def fuzz_compile_one(self, index):
        flags = compile_flags(self.rng)
        base = os.path.join(self.work, "c%d" % index)
        emit_mlir = "--emit=mlir" in flags
        command = [self.compile] + flags + ["-o", base + (".mlir" if emit_mlir
                                                          else "")]
        status, rc, out, err, seconds = run(command, self.args.timeout)
        verdict = classify(status, rc, out, err)
        detail = {"command": command, "rc": rc,
                  "message": (err or out)[-2000:]}
        if verdict == "ok" and os.path.exists(base + ".json"):
            try:
                with open(base + ".json") as f:
                    manifest = json.load(f)
                problems = manifest_problems(manifest)
            except ValueError as e:
                problems = ["not JSON: %s" % e]
            if not problems:
                v, mrc, message, mcommand, _ = self.check_manifest(
                    base + ".json")
                if v != "ok":
                    problems = ["bpt-run --check-manifest: " + message]
            if problems:
                verdict = "bad-manifest"
                detail["message"] = "; ".join(problems)
        self.record("compile", verdict, seconds, detail)
        for suffix in (".json", ".ptx", ".mlir", ".cubin"):
            if os.path.exists(base + suffix):
                os.remove(base + suffix)

    # -- manifests -----------------------------------------------------------

    SEED_SETS = [
        ("att", ["--op=attention", "--heads=2", "--seq=64", "--dtype=f32"]),
        ("att_gqa_causal", ["--op=attention", "--heads=4", "--kv-heads=2",
                            "--seq=64", "--kv-seq=96", "--causal"]),
        ("lse", ["--op=attention", "--lse", "--heads=2", "--seq=64"]),
        ("grad", ["--op=attention_grad", "--heads=2", "--seq=64"]),
        ("bwd", ["--op=attention", "--backward", "--heads=2", "--seq=64"]),
        ("ffn", ["--op=ffn", "--hidden=64", "--seq=64"]),
        ("ffn_swiglu", ["--op=ffn", "--hidden=64", "--seq=64",
                        "--activation=swiglu"]),
        ("block", ["--op=block", "--hidden=128", "--heads=2", "--seq=128"]),
        ("block_ln", ["--op=block", "--hidden=128", "--heads=2", "--seq=128",
                      "--norm=layer_norm", "--activation=geglu"]),
    ]

    def compile_seeds(self):
        seed_dir = os.path.join(self.work, "seeds")
        os.makedirs(seed_dir, exist_ok=True)
        seeds = []
        sets = self.SEED_SETS[:self.args.seed_sets]
        for name, flags in sets:
            base = os.path.join(seed_dir, name)
            command = [self.compile] + flags + ["--no-tensor-cores", "-o",
                                                base]
            status, rc, out, err, _ = run(command, max(self.args.timeout, 120))
            if classify(status, rc, out, err) != "ok":
                sys.exit("fuzz_tools.py: seed set %s failed to compile: %s" %
                         (name, err.strip()))
            with open(base + ".json") as f:
                seeds.append((name, json.load(f)))
        return seed_dir, seeds

    def random_path(self, node, prefix=()):
        """Every (path, value) below `node`."""
        yield prefix, node
        if isinstance(node, dict):
            for key, value in node.items():
                yield from self.random_path(value, prefix + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from self.random_path(value, prefix + (i,))

    @staticmethod
    def get_parent(root, path):
        node = root
        for key in path[:-1]:
            node = node[key]
        return node

    def mutate(self, manifest):
        """One structural mutation of a parsed manifest, in place; returns
        its description."""
        rng = self.rng
        paths = [p for p, _ in self.random_path(manifest) if p]
        kind = rng.choice([
            "delete", "retype", "number", "number", "ptx", "role", "rename",
            "rank", "dtype", "launch", "option", "duplicate", "reorder",
            "number", "bytes-consistent"])
        if kind == "delete":
            path = rng.choice(paths)
            parent = self.get_parent(manifest, path)
            del parent[path[-1]]
            return "delete %s" % (path,)
        if kind == "retype":
            path = rng.choice(paths)
            parent = self.get_parent(manifest, path)
            parent[path[-1]] = rng.choice(
                [None, True, False, "str", "", [], {}, [1, 2], {"a": 1}, 1.5,
                 -1, 0, "64"])
            return "retype %s = %r" % (path, parent[path[-1]])
        if kind == "number":
            numbers = [p for p, v in self.random_path(manifest)
                       if p and isinstance(v, (int, float)) and
                       not isinstance(v, bool)]
            if not numbers:
                return "none"
            path = rng.choice(numbers)
            parent = self.get_parent(manifest, path)
            parent[path[-1]] = rng.choice(
                [0, -1, -16384, 1, 2**31 - 1, 2**31, 2**32, 2**32 + 1,
                 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64, -(2**63), 1e308,
                 -1e308, 0.5, 16.0, 1e-300, 4294967297, 65536, 1025, 232449,
                 49153])
            return "number %s = %r" % (path, parent[path[-1]])
        if kind == "ptx":
            manifest["ptx"] = rng.choice(
                ["/dev/zero", "../x.ptx", "/etc/passwd", "", ".", "a/../b.ptx",
                 "x\u0000y.ptx", "dir/", "./" + manifest.get("ptx", "x"),
                 "missing.ptx", "link-to-zero.ptx", "fifo.ptx", "self.json",
                 "a" * 5000, "dir", "\\\\server\\x.ptx", "~/x.ptx",
                 "not-ptx.ptx", "big.ptx"])
            return "ptx = %r" % manifest["ptx"][:40]
        if kind == "role":
            buffers = manifest.get("buffers")
            if not isinstance(buffers, list) or not buffers:
                return "none"
            b = rng.choice(buffers)
            if isinstance(b, dict):
                b["role"] = rng.choice(["input", "output", "workspace",
                                        "Output", "scratch", ""])
                return "role %s = %s" % (b.get("name"), b["role"])
            return "none"
        if kind == "rename":
            buffers = manifest.get("buffers")
            if not isinstance(buffers, list) or not buffers:
                return "none"
            b = rng.choice(buffers)
            if isinstance(b, dict):
                names = [x.get("name") for x in buffers if isinstance(x, dict)]
                b["name"] = rng.choice(names + ["", "result", "q", "w_gate",
                                                "norm1_bias", "x" * 300])
                return "rename -> %r" % b["name"][:40]
            return "none"
        if kind in ("rank", "bytes-consistent"):
            buffers = [b for b in manifest.get("buffers", [])
                       if isinstance(b, dict) and
                       isinstance(b.get("shape"), list) and
                       all(isinstance(d, int) and d > 0 for d in b["shape"])]
            if not buffers:
                return "none"
            b = rng.choice(buffers)
            total = math.prod(b["shape"])
            # Another factorisation of the same element count: same bytes.
            factors = []
            n = total
            for p in (2, 3, 5, 7):
                while n % p == 0 and n > 1:
                    factors.append(p)
                    n //= p
            if n > 1:
                factors.append(n)
            rank = rng.choice([1, 2, 3, 4, 5])
            dims = [1] * rank
            for f in factors:
                dims[rng.randrange(rank)] *= f
            b["shape"] = dims
            return "reshape %s -> %r" % (b.get("name"), dims)
        if kind == "dtype":
            buffers = [b for b in manifest.get("buffers", [])
                       if isinstance(b, dict)]
            if not buffers:
                return "none"
            b = rng.choice(buffers)
            old = b.get("dtype")
            b["dtype"] = rng.choice(["f32", "f16", "bf16", "i8", "f64", ""])
            # Sometimes keep the byte count consistent with the new dtype.
            if rng.random() < 0.5 and isinstance(b.get("shape"), list) and \
                    b["dtype"] in ELEMENT_BYTES and \
                    all(isinstance(d, int) for d in b["shape"]):
                b["bytes"] = math.prod(b["shape"]) * ELEMENT_BYTES[b["dtype"]]
            return "dtype %s %s -> %s" % (b.get("name"), old, b["dtype"])
        if kind == "launch":
            launches = manifest.get("launches")
            if not isinstance(launches, list) or not launches:
                return "none"
            launch = rng.choice(launches)
            if not isinstance(launch, dict):
                return "none"
            field = rng.choice(["grid", "block", "dynamic_shared_memory",
                                "args", "kernel"])
            value = rng.choice({
                "grid": [[2**31], [0], [1, 65536], [1, 1, 65536],
                         [2**31 - 1, 65535, 65535], [], [1, 1, 1, 1]],
                "block": [[1025], [1024, 2], [1, 1, 65], [0], [32, 32]],
                "dynamic_shared_memory": [-1, 2**31, 232449, 2**32, 49152],
                "args": [[], [0] * 600, [99], [-1], [{"buffer": 0,
                                                      "byte_offset": 8}],
                         [{"tensor_map": 0}], [{"i32": 2**31}],
                         [{"buffer": 0, "tensor_map": 0}]],
                "kernel": ["", "missing_kernel", "9abc", "a b", "k" * 1000,
                           "attention_kernel"],
            }[field])
            launch[field] = value
            return "launch %s = %r" % (field, value)
        if kind == "option":
            options = manifest.setdefault("options", {})
            if not isinstance(options, dict):
                return "none"
            key = rng.choice(["heads", "kv_heads", "scale", "causal",
                              "activation", "norm", "epsilon", "q_block",
                              "unknown_key", "threads", "sm90_stages"])
            options[key] = rng.choice([0, -1, 1, 3, 8, "yes", True, None,
                                       -0.5, 1e308, "swiglu", "layer_norm",
                                       [1], {"x": 1}])
            return "option %s = %r" % (key, options[key])
        if kind == "duplicate":
            buffers = manifest.get("buffers")
            if isinstance(buffers, list) and buffers:
                buffers.append(copy.deepcopy(rng.choice(buffers)))
                return "duplicate a buffer"
            return "none"
        if kind == "reorder":
            buffers = manifest.get("buffers")
            if isinstance(buffers, list) and len(buffers) > 1:
                rng.shuffle(buffers)
                return "shuffle buffers"
            return "none"
        return "none"

    def text_mutation(self, text):
        """A mutation of the JSON text itself."""
        rng = self.rng
        kind = rng.choice(["truncate", "garbage", "flip", "nest", "empty",
                           "duplicate-key", "bom", "nan"])
        if kind == "truncate":
            return text[:rng.randrange(len(text))], kind
        if kind == "garbage":
            pos = rng.randrange(len(text))
            junk = "".join(chr(rng.randrange(0, 256)) for _ in range(
                rng.randrange(1, 8)))
            return text[:pos] + junk + text[pos:], kind
        if kind == "flip":
            chars = list(text)
            for _ in range(rng.randrange(1, 4)):
                i = rng.randrange(len(chars))
                chars[i] = rng.choice('{}[]",:0-9aeE.+-\\ \n')
            return "".join(chars), kind
        if kind == "nest":
            depth = rng.choice([100, 256, 257, 5000])
            return text.replace('"options": {', '"options": {"x": ' +
                                "[" * depth + "]" * depth + ", ", 1), kind
        if kind == "empty":
            return rng.choice(["", " ", "null", "[]", "{}", "0", '"x"']), kind
        if kind == "duplicate-key":
            return text.replace('"ptx":', '"ptx": "a.ptx", "ptx":', 1), kind
        if kind == "bom":
            return "\ufeff" + text, kind
        return text.replace("0.125", "NaN", 1).replace(
            "\"bytes\": ", "\"bytes\": -", 1), kind

    def prepare_seed_dir(self, seed_dir):
        """Files the path mutations point at."""
        def make(name, create):
            path = os.path.join(seed_dir, name)
            if not os.path.lexists(path):
                create(path)
        make("link-to-zero.ptx", lambda p: os.symlink("/dev/zero", p))
        make("dir", lambda p: os.mkdir(p))
        make("fifo.ptx", lambda p: os.mkfifo(p))
        with open(os.path.join(seed_dir, "not-ptx.ptx"), "w") as f:
            f.write("this is not PTX\n")

    def fuzz_manifest_paths(self, seed_dir):
        """The manifest argument itself: devices, a FIFO, a directory."""
        for path in ["/dev/zero", "/dev/null", "/dev/urandom",
                     os.path.join(seed_dir, "fifo.ptx"),
                     os.path.join(seed_dir, "dir"),
                     os.path.join(seed_dir, "link-to-zero.ptx"),
                     os.path.join(seed_dir, "missing.json"), ""]:
            verdict, rc, message, command, seconds = self.check_manifest(path)
            self.record("manifest", verdict, seconds,
                        {"command": command, "rc": rc,
                         "message": message[-2000:]})

    def fuzz_manifest_one(self, index, seed_dir, seeds):
        name, seed = self.rng.choice(seeds)
        manifest = copy.deepcopy(seed)
        descriptions = []
        for _ in range(self.rng.choice([1, 1, 1, 2, 3])):
            try:
                descriptions.append(self.mutate(manifest))
            except (KeyError, IndexError, TypeError):
                descriptions.append("mutation skipped")
        text = json.dumps(manifest, indent=2)
        if self.rng.random() < 0.2:
            text, kind = self.text_mutation(text)
            descriptions.append(kind)
        path = os.path.join(seed_dir, "m%d.json" % index)
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        verdict, rc, message, command, seconds = self.check_manifest(path)
        detail = {"command": command, "rc": rc, "message": message[-2000:],
                  "seed": name, "mutations": descriptions}
        if verdict in ("crash", "hang"):
            kept = os.path.join(self.finding_dir, "manifest-%d.json" % index)
            shutil.copyfile(path, kept)
            detail["reproducer"] = kept
        self.record("manifest", verdict, seconds, detail)
        if verdict == "ok" and self.args.log_accepted:
            # For auditing: what the reader let through.
            self.accepted.append({"seed": name, "mutations": descriptions})
        os.remove(path)

    # -- driver --------------------------------------------------------------

    def run(self):
        kinds = self.args.kinds.split(",")
        start = time.time()
        if "compile" in kinds:
            for i in range(self.args.count):
                self.fuzz_compile_one(i)
        if "manifest" in kinds:
            seed_dir, seeds = self.compile_seeds()
            self.prepare_seed_dir(seed_dir)
            self.fuzz_manifest_paths(seed_dir)
            for i in range(self.args.manifest_count or self.args.count):
                self.fuzz_manifest_one(i, seed_dir, seeds)
        summary = {
            "seed": self.args.seed,
            "counts": dict(sorted(self.counts.items())),
            "findings": len(self.findings),
            "seconds": round(time.time() - start, 1),
            "slowest": {"seconds": round(self.slowest[0], 2),
                        "command": self.slowest[1]},
        }
        with open(os.path.join(self.out, "findings.json"), "w") as f:
            json.dump(self.findings, f, indent=2)
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        if self.args.log_accepted:
            with open(os.path.join(self.out, "accepted.json"), "w") as f:
                json.dump(self.accepted, f, indent=1)
        for key, count in sorted(self.counts.items()):
            print("%-24s %d" % (key, count))
        print("findings: %d (in %s)" % (len(self.findings),
                                        os.path.join(self.out,
                                                     "findings.json")))
        shutil.rmtree(self.work, ignore_errors=True)
        return 1 if self.findings else 0


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=100,
                        help="inputs of each kind")
    parser.add_argument("--manifest-count", type=int, default=0,
                        help="manifest inputs (default: --count)")
    parser.add_argument("--timeout", type=float, default=20,
                        help="seconds per run before it counts as a hang")
    parser.add_argument("--bin-dir", default="build/bin",
                        help="where bpt-compile and bpt-run are")
    parser.add_argument("--bpt-compile", help="bpt-compile (default: in "
                        "--bin-dir)")
    parser.add_argument("--bpt-run", help="bpt-run (default: in --bin-dir)")
    parser.add_argument("--out", required=True,
                        help="folder for findings.json and summary.json")
    parser.add_argument("--kinds", default="compile,manifest",
                        help="compile, manifest or both (comma-separated)")
    parser.add_argument("--legacy-bpt-run", action="store_true",
                        help="for a bpt-run without --check-manifest (to "
                        "measure an older build): run it without a GPU and "
                        "count 'no GPU to run on' as accepted")
    parser.add_argument("--log-accepted", action="store_true",
                        help="write the mutations of accepted manifests to "
                        "OUT/accepted.json, to audit what the reader lets "
                        "through")
    parser.add_argument("--seed-sets", type=int,
                        default=len(Campaign.SEED_SETS),
                        help="how many of the seed kernel sets to compile")
    args = parser.parse_args()
    sys.exit(Campaign(args).run())


if __name__ == "__main__":
    main()
