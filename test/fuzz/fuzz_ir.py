#!/usr/bin/env python3
"""IR fuzzer for bpt's compiler: mutated lit inputs and random bpt programs.

Each input is run through bpt-opt pipelines (bpt-blockwise, bpt-to-cpu with
and without GEMM tiles, bpt-to-nvvm for sm_90a and sm_80, the strategy +
tensor-core passes one at a time) and, when small, through bpt-cpu-run (half
of the runs with --tile-gemms). Training inputs (chains of norms,
projections, FFNs, residual sums, attention and blocks) are differentiated:
bpt-cpu-run --backward checks every gradient against float64, and bpt-opt
compiles bpt-build-backward's functions for the CPU and the GPUs. Every run
is classified:

  ok      exit 0
  error   non-zero exit with a diagnostic
  crash   a signal, an abort, "LLVM ERROR", "PLEASE submit a bug report", a
          stack dump, an exit status above 127, or a non-zero exit with
          no output at all
  wrong   bpt-cpu-run ran and its result did not match the reference
  marginal  a training check (bpt-cpu-run --backward) failed by at most
          MARGIN (16-bit: MARGIN_16BIT) times its tolerance, its finite
          differences passing
          (rounding through a deep chain of ops), or at a point on a kink;
          not a finding
  hang    the run took longer than --timeout seconds

Crashes, wrong results and hangs are findings: the input and the command
are saved under --out, and the exit status is 1. Only the standard library
is used. Example (the README's longer campaign):

  python3 test/fuzz/fuzz_ir.py --bin-dir build/bin --mode all --count 4000 \\
      --seed 7 --out /tmp/bpt-fuzz-ir
"""

import argparse
import os
import random
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHIPS = ["sm_90a", "sm_80", "sm_86", "sm_89", "sm_90", "sm_75"]

# Pipelines every input may take. {chip} is filled in per run.
PIPELINES = [
    ["--bpt-blockwise"],
    ["--bpt-blockwise=chip={chip}", "--bpt-to-cpu"],
    ["--bpt-to-cpu"],
    ["--bpt-to-cpu=tile-gemms=1"],
    ["--bpt-to-nvvm=chip=sm_90a"],
    ["--bpt-to-nvvm=chip=sm_80"],
    ["--bpt-to-nvvm=chip={chip}"],
    ["--bpt-select-strategy=chip=sm_90a", "--bpt-decompose-block",
     "--bpt-select-strategy=chip=sm_90a", "--bpt-tile-attention",
     "--bpt-chunk-ffn", "--bpt-block-to-sm90"],
    ["--bpt-select-strategy=chip=sm_90a", "--bpt-tile-attention",
     "--bpt-attention-to-sm90"],
    ["--bpt-select-strategy=chip=sm_90a", "--bpt-tile-attention",
     "--bpt-attention-grad-to-sm90"],
    ["--bpt-select-strategy=chip=sm_90a", "--bpt-chunk-ffn",
     "--bpt-ffn-to-sm90"],
    ["--bpt-select-strategy=chip=sm_80", "--bpt-tile-attention",
     "--bpt-attention-to-sm80"],
    ["--bpt-select-strategy=chip=sm_80", "--bpt-chunk-ffn",
     "--bpt-ffn-to-sm80"],
    ["--bpt-select-strategy=chip=sm_80", "--bpt-linear-to-sm80"],
    ["--bpt-decompose-block", "--bpt-fuse-ffn-residual",
     "--bpt-tile-attention", "--bpt-convert-to-linalg"],
]

CRASH_MARKERS = ["LLVM ERROR", "PLEASE submit a bug report", "Stack dump",
                 "Assertion", "Segmentation fault", "terminate called",
                 "UNREACHABLE"]

BOUNDARY = [0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 96, 127,
            128, 129, 255, 256, 1000, 1024, 4096, 65535, 65536, 2**31 - 1,
            2**31, 2**32, 2**40, 2**53, 2**62, 2**63 - 1, -1]

ODD_NAMES = ['"my-attention"', '"0start"', '"a.b"', '"with space"',
             '"$dollar"', '"caf\\C3\\A9"', '"x-y.z"', "_", '"-"', '"1"']

# ---------------------------------------------------------------------------
# Running and classifying
# ---------------------------------------------------------------------------


# A training check whose failures are all within MARGIN times their
# tolerance is marginal (gradients through a chain of a block, norms and
# projections round more than one op does); a wrong chain rule is off by
# far more, and a float64 gradient that its finite differences reject is a
# finding at any size. 16-bit gradients get more room: the attention's
# query and key projections' gradients go through dS = P ∘ (dP − D), whose
# cancellation amplifies rounding ~10-35x on small heads (f32: 2e-6 where
# the other gradients are 2e-7; bf16: 1.6e-2 to 4.8e-2 on the same chain).
MARGIN = 4.0
MARGIN_16BIT = 10.0


def marginal(output):
    # The random point lies on a kink (a ReLU input within ~1e-7 of 0): the
    # compiled gradient may take the other side of it, by any amount.
    if "no smooth direction" in output:
        return True
    fails = [line for line in output.splitlines() if ": FAIL" in line]
    failures = re.findall(r"relative error ([^,\s]+)(?:, vs first "
                          r"configuration ([^,\s]+))? \(tolerance "
                          r"([^)\s]+)\): FAIL", output)
    if not failures or len(failures) != len(fails) or any(
            line.startswith("finite differences") for line in fails):
        return False
    for error, difference, tolerance in failures:
        worst = max(float(error), float(difference or 0))
        margin = MARGIN_16BIT if float(tolerance) >= 1e-2 else MARGIN
        if not worst <= margin * float(tolerance):  # NaN is not marginal
            return False
    return True


def classify(proc_rc, output, timed_out, cpu_run, training=False):
    if timed_out:
        return "hang"
    if any(marker in output for marker in CRASH_MARKERS):
        return "crash"
    if proc_rc < 0 or proc_rc >= 128:
        return "crash"
    if proc_rc == 0:
        return "ok"
    if cpu_run and re.search(r"^FAIL|: FAIL", output, re.M) and \
            "error:" not in output:
        return "marginal" if training and marginal(output) else "wrong"
    if output.strip():
        return "error"
    return "crash"  # a failure that says nothing is a bug too


def run(cmd, text, timeout):
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, input=text.encode(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        return proc.returncode, proc.stdout.decode(errors="replace"), False, \
            time.monotonic() - start
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        return -9, out, True, time.monotonic() - start


# ---------------------------------------------------------------------------
# Mutants of the lit inputs
# ---------------------------------------------------------------------------


def lit_seeds():
    """Each `// -----` case of every test/**/*.mlir, with the bpt-opt options
    of the file's RUN lines."""
    seeds = []
    for path in sorted((REPO / "test").rglob("*.mlir")):
        text = path.read_text(errors="replace")
        options = []
        for line in text.splitlines():
            m = re.match(r"//\s*RUN:.*?bpt-opt\s+%s\s+(.*?)(\||$|2>)", line)
            if m:
                try:
                    words = shlex.split(m.group(1))
                except ValueError:
                    continue
                opts = [o for o in words
                        if o.startswith("--") and "split-input-file" not in o
                        and "verify-diagnostics" not in o]
                if opts:
                    options.append(opts)
        for case in re.split(r"^// -----\s*$", text, flags=re.M):
            body = "\n".join(line for line in case.splitlines()
                             if not line.lstrip().startswith("//"))
            if "func.func" in body or "module" in body:
                seeds.append((str(path.relative_to(REPO)), body, options))
    return seeds


def mutate_numbers(rng, text):
    numbers = list(re.finditer(r"(?<![\w.%#@])\d+(?![\w.])", text))
    if not numbers:
        return text
    m = rng.choice(numbers)
    value = rng.choice(BOUNDARY + [int(m.group()) * rng.choice([2, 3]),
                                   max(int(m.group()) - 1, 0),
                                   int(m.group()) + 1])
    return text[:m.start()] + str(value) + text[m.end():]


def mutate_shape(rng, text):
    """Changes one dimension size everywhere it occurs in tensor types."""
    dims = re.findall(r"(?<=[<x])(\d+)(?=x)", text)
    if not dims:
        return text
    old = rng.choice(dims)
    new = str(rng.choice(BOUNDARY[1:-1] + [int(old) * 2, int(old) + 1]))
    everywhere = rng.random() < 0.7
    pattern = r"(?<=[<x])" + old + r"(?=x)"
    return re.sub(pattern, new, text, count=0 if everywhere else 1)


def mutate_type(rng, text):
    types = ["f32", "f16", "bf16", "f64", "i32", "f8E4M3FN", "index"]
    present = [t for t in types if re.search(r"x" + t + r">", text)]
    if not present:
        return text
    old = rng.choice(present)
    new = rng.choice([t for t in types if t != old])
    if rng.random() < 0.7:
        return re.sub(r"x" + old + r">", "x" + new + ">", text)
    return re.sub(r"x" + old + r">", "x" + new + ">", text, count=1)


def mutate_attribute(rng, text):
    choices = []
    if " causal" in text:
        choices.append(lambda t: t.replace(" causal", "", 1))
    if "bpt.attention " in text:
        choices.append(lambda t: re.sub(
            r"(bpt\.attention %\w+, %\w+, %\w+)",
            r"\1 scale(" + rng.choice(["0.0", "-1.0", "3.0e+38", "1.0e-40",
                                       "65536.0", "65537.0", "1.0e+30",
                                       "0x7FF8000000000000"]) + ")", t, 1))
        choices.append(lambda t: t.replace("bpt.attention %", "bpt.attention %",
                                           1).replace(" :", " causal :", 1))
    for word, options in [
            ("gelu", ["relu", "silu", "swiglu", "geglu", "gelu_tanh", "bogus"]),
            ("rms_norm", ["layer_norm"]), ("layer_norm", ["rms_norm"])]:
        if word in text:
            choices.append(lambda t, w=word, o=options: t.replace(
                w, rng.choice(o), 1))
    for key in ["heads", "kv_heads", "q_block", "kv_block", "chunk_rows",
                "stages", "warps", "scale", "epsilon"]:
        if key in text:
            choices.append(lambda t, k=key: re.sub(
                r"(\b" + k + r"\s*[(=]\s*)-?[\d.e+-]+",
                lambda m: m.group(1) + str(rng.choice(BOUNDARY)), t, 1))
    if "func.func @" in text:
        name = "func.func @" + rng.choice(ODD_NAMES)
        choices.append(lambda t: re.sub(r"func\.func @[\w\"-]+",
                                        lambda m: name, t, count=1))
    if "return %" in text:
        choices.append(duplicate_return)
    choices.append(lambda t: t.replace("#bpt.strategy<portable",
                                       "#bpt.strategy<wgmma", 1))
    return rng.choice(choices)(text)


def duplicate_return(text):
    """`return %a : T` -> `return %a, %a : T, T` in the first function whose
    signature can be patched the same way."""
    m = re.search(r"return (%[\w#]+) : ([^\n]+)\n", text)
    if not m or "," in m.group(2):
        return text
    value, type_ = m.group(1), m.group(2).strip()
    text = text[:m.start()] + "return %s, %s : %s, %s\n" % (
        value, value, type_, type_) + text[m.end():]
    return re.sub(r"\) -> " + re.escape(type_) + r"( \{|\s*attributes)",
                  ") -> (%s, %s)\\1" % (type_, type_), text, count=1)


def mutate_lines(rng, text):
    lines = text.splitlines()
    if len(lines) < 3:
        return text
    i = rng.randrange(len(lines))
    kind = rng.randrange(3)
    if kind == 0:
        del lines[i]
    elif kind == 1:
        lines.insert(i, lines[i])
    else:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def mutate_options(rng, options):
    out = []
    for opt in options:
        if rng.random() < 0.3:
            opt = re.sub(r"(?<==)\d+|(?<= )\d+|(?<=-block=)\d+",
                         lambda m: str(rng.choice(BOUNDARY)), opt)
            opt = re.sub(r"sm_\d+a?", lambda m: rng.choice(CHIPS), opt)
        out.append(opt)
    return out


MUTATORS = [mutate_numbers, mutate_shape, mutate_type, mutate_attribute,
            mutate_lines]


def make_mutant(rng, seeds):
    # Mostly valid inputs: a mutant of an error test is usually just another
    # error.
    valid = [s for s in seeds if not re.search(r"invalid|malformed|errors",
                                               s[0])]
    source, text, options = rng.choice(valid if rng.random() < 0.8 else seeds)
    for _ in range(rng.choice([1, 1, 2, 3])):
        text = rng.choice(MUTATORS)(rng, text)
    if options and rng.random() < 0.5:
        pipeline = mutate_options(rng, rng.choice(options))
    else:
        pipeline = rng.choice(PIPELINES)
    return "mutant of " + source, text, [pipeline]


# ---------------------------------------------------------------------------
# Random well-formed programs
# ---------------------------------------------------------------------------


def tensor(shape, dtype):
    return "tensor<%sx%s>" % ("x".join(str(d) for d in shape), dtype)


class Program:
    def __init__(self, rng, small, training=False):
        self.rng = rng
        self.small = small
        # Differentiated by bpt-build-backward: no gradient ops of its own,
        # ordinary scales and epsilons.
        self.training = training
        self.args = []      # (name, type)
        self.body = []
        self.counter = 0

    def arg(self, type_):
        name = "%%a%d" % len(self.args)
        self.args.append((name, type_))
        return name

    def value(self):
        self.counter += 1
        return "%%v%d" % self.counter

    def dim(self, typical):
        rng = self.rng
        if self.small or rng.random() < 0.75:
            return rng.choice(typical)
        return rng.choice(BOUNDARY[1:-1])

    def activations(self, dtype):
        acts = ["gelu", "gelu_tanh", "relu", "silu", "swiglu", "geglu"]
        # ReLU's gradient is a step: a 16-bit pre-activation near 0 rounds
        # to the other side of it than float64's, and on these small shapes
        # one such unit moves a weight gradient by ~1e-2 (measured: 4e-2 to
        # 6e-2 on a 32-row f16 / bf16 block, 2e-7 in f32).
        if self.training and dtype != "f32":
            acts.remove("relu")
        return acts

    def scale(self):
        rng = self.rng
        r = rng.random()
        if r < 0.6:
            return ""
        # A gradient through a saturated softmax (scale · q·k spread >> 1) is
        # ~0 in float64 and f32 rounding noise here: its relative error says
        # nothing, so training takes ordinary scales only.
        if self.training:
            return " scale(%s)" % rng.choice(["0.125", "0.5", "1.0"])
        if r < 0.9:
            return " scale(%s)" % rng.choice(["0.125", "0.5", "1.0", "2.0",
                                              "0.01"])
        return " scale(%s)" % rng.choice(["65536.0", "70000.0", "1.0e-38",
                                          "1.2e-38", "3.0e+38", "0.0"])

    def attention(self, dtype):
        rng = self.rng
        b = self.dim([1, 2])
        kvh = self.dim([1, 2])
        h = kvh * rng.choice([1, 2, 4]) if rng.random() < 0.9 else self.dim(
            [3, 5])
        sq = self.dim([16, 32, 64, 100, 128])
        skv = sq if rng.random() < 0.6 else self.dim([16, 48, 64, 96, 128,
                                                      256])
        d = rng.choice([64, 128] if not self.small else [16, 32, 64]) \
            if rng.random() < 0.9 else self.dim([8, 80])
        q = self.arg(tensor([b, h, sq, d], dtype))
        k = self.arg(tensor([b, kvh, skv, d], dtype))
        v = self.arg(tensor([b, kvh, skv, d], dtype))
        causal = " causal" if rng.random() < 0.5 else ""
        grad = not self.training and rng.random() < 0.2
        # Gradients take ordinary scales only (see scale()).
        scale = self.scale() if not grad or rng.random() < 0.5 else ""
        if grad and scale and float(scale[7:-1]) > 4:
            scale = " scale(0.5)"
        qtype = tensor([b, h, sq, d], dtype)
        kvtype = tensor([b, kvh, skv, d], dtype)
        lsetype = tensor([b, h, sq], "f32")
        out = self.value()
        lse = grad or (not self.training and rng.random() < 0.2)
        if lse:
            lse_v = self.value()
            self.body.append(
                "  %s, %s = bpt.attention %s, %s, %s%s%s : (%s, %s, %s) -> "
                "(%s, %s)" % (out, lse_v, q, k, v, causal, scale, qtype,
                              kvtype, kvtype, qtype, lsetype))
        else:
            self.body.append(
                "  %s = bpt.attention %s, %s, %s%s%s : (%s, %s, %s) -> %s" %
                (out, q, k, v, causal, scale, qtype, kvtype, kvtype, qtype))
        results = [(out, qtype)]
        if lse:
            results.append((lse_v, lsetype))
        if grad:
            do = self.arg(qtype)
            dq, dk, dv = self.value(), self.value(), self.value()
            self.body.append(
                "  %s, %s, %s = bpt.attention_grad %s, %s, %s, %s, %s, %s%s%s"
                " : (%s, %s, %s, %s, %s, %s) -> (%s, %s, %s)" %
                (dq, dk, dv, q, k, v, out, do, lse_v, causal, scale, qtype,
                 kvtype, kvtype, qtype, qtype, lsetype, qtype, kvtype, kvtype))
            results = [(dq, qtype), (dk, kvtype), (dv, kvtype)]
        # Chained: another attention reading the first one's output as Q.
        if not grad and rng.random() < 0.25:
            again = self.value()
            self.body.append(
                "  %s = bpt.attention %s, %s, %s%s : (%s, %s, %s) -> %s" %
                (again, out, k, v, causal, qtype, kvtype, kvtype, qtype))
            results = [(again, qtype)] + results[1:]
        return results

    def rows(self, hidden, dtype):
        rng = self.rng
        if rng.random() < 0.7:
            shape = [self.dim([1, 2]), self.dim([16, 64, 128, 100]), hidden]
        else:
            shape = [self.dim([32, 128, 256]), hidden]
        return self.arg(tensor(shape, dtype)), shape

    def ffn(self, dtype, x=None, shape=None):
        """x (a fresh argument unless given, with its shape) through an FFN;
        the same for linear, norm and block."""
        rng = self.rng
        hidden = self.dim([32, 64, 128, 256]) if x is None else shape[-1]
        width = self.dim([64, 128, 256, 512])
        act = rng.choice(self.activations(dtype))
        if x is None:
            x, shape = self.rows(hidden, dtype)
        w1 = self.arg(tensor([hidden, width], dtype))
        w2 = self.arg(tensor([width, hidden], dtype))
        operands = [x, w1, w2]
        types = [tensor(shape, dtype), tensor([hidden, width], dtype),
                 tensor([width, hidden], dtype)]
        if act in ("swiglu", "geglu"):
            operands.append("gate " + self.arg(tensor([hidden, width], dtype)))
            types.append(types[1])
        out = self.value()
        self.body.append("  %s = bpt.ffn %s %s : (%s) -> %s" % (
            out, act, ", ".join(operands), ", ".join(types),
            tensor(shape, dtype)))
        results = [(out, tensor(shape, dtype))]
        if rng.random() < 0.3:
            g = self.arg(tensor([hidden], dtype))
            normed = self.value()
            self.body.append("  %s = bpt.rms_norm %s, %s : (%s, %s) -> %s" % (
                normed, out, g, tensor(shape, dtype), tensor([hidden], dtype),
                tensor(shape, dtype)))
            results = [(normed, tensor(shape, dtype))]
        return results

    def linear(self, dtype, x=None, shape=None):
        rng = self.rng
        k = self.dim([32, 64, 128, 256]) if x is None else shape[-1]
        n = self.dim([32, 64, 128, 256])
        if x is None:
            x, shape = self.rows(k, dtype)
        w = self.arg(tensor([k, n], dtype))
        operands, types = [x, w], [tensor(shape, dtype), tensor([k, n], dtype)]
        if rng.random() < 0.3:
            operands.append(self.arg(tensor([n], dtype)))
            types.append(tensor([n], dtype))
        out_shape = shape[:-1] + [n]
        out = self.value()
        self.body.append("  %s = bpt.linear %s : (%s) -> %s" % (
            out, ", ".join(operands), ", ".join(types),
            tensor(out_shape, dtype)))
        return [(out, tensor(out_shape, dtype))]

    def norm(self, dtype, x=None, shape=None):
        rng = self.rng
        hidden = self.dim([16, 64, 128]) if x is None else shape[-1]
        if x is None:
            x, shape = self.rows(hidden, dtype)
        g = self.arg(tensor([hidden], dtype))
        eps = "" if rng.random() < 0.7 else " {epsilon = %s}" % rng.choice(
            ["1.0e-05", "1.0e-03"] if self.training else
            ["0.0", "1.0e-05", "1.0e+30", "1.0e+300"])
        out = self.value()
        if rng.random() < 0.5:
            b = self.arg(tensor([hidden], dtype))
            self.body.append(
                "  %s = bpt.layer_norm %s, %s, %s%s : (%s, %s, %s) -> %s" % (
                    out, x, g, b, eps, tensor(shape, dtype),
                    tensor([hidden], dtype), tensor([hidden], dtype),
                    tensor(shape, dtype)))
        else:
            self.body.append("  %s = bpt.rms_norm %s, %s%s : (%s, %s) -> %s" % (
                out, x, g, eps, tensor(shape, dtype), tensor([hidden], dtype),
                tensor(shape, dtype)))
        return [(out, tensor(shape, dtype))]

    def block(self, dtype, x=None, shape=None):
        rng = self.rng
        kv_heads = self.dim([1, 2, 4])
        heads = kv_heads * rng.choice([1, 2, 4])
        head_dim = rng.choice([16, 32, 64] if self.small else [64, 128, 32])
        if x is None:
            hidden = rng.choice([64, 128, 256] if self.small else [256, 512])
            seq = self.dim([16, 32, 64, 128, 256] if not self.small
                           else [16, 32, 64])
            batch = self.dim([1, 2])
        else:
            batch, seq, hidden = shape
        width = rng.choice([128, 256, 512])
        layer = rng.random() < 0.5
        act = rng.choice(self.activations(dtype))
        gated = act in ("swiglu", "geglu")
        x_t = tensor([batch, seq, hidden], dtype)
        vec = tensor([hidden], dtype)
        types = [x_t, vec]
        names = [self.arg(x_t) if x is None else x, self.arg(vec)]
        norm1 = [names[1]]
        if layer:
            norm1.append(self.arg(vec))
            types.append(vec)
        proj = []
        for shape in ([hidden, heads * head_dim],
                      [hidden, kv_heads * head_dim],
                      [hidden, kv_heads * head_dim],
                      [heads * head_dim, hidden]):
            proj.append(self.arg(tensor(shape, dtype)))
            types.append(tensor(shape, dtype))
        norm2 = [self.arg(vec)]
        types.append(vec)
        if layer:
            norm2.append(self.arg(vec))
            types.append(vec)
        ffn = [self.arg(tensor([hidden, width], dtype)),
               self.arg(tensor([width, hidden], dtype))]
        types += [tensor([hidden, width], dtype), tensor([width, hidden],
                                                         dtype)]
        ffn_text = ", ".join(ffn)
        if gated:
            ffn_text += ", gate " + self.arg(tensor([hidden, width], dtype))
            types.append(tensor([hidden, width], dtype))
        out = self.value()
        causal = " causal" if rng.random() < 0.5 else ""
        self.body.append(
            "  %s = bpt.transformer_block %s norm1(%s) attention(%s) norm2(%s)"
            " ffn(%s) heads(%d) kv_heads(%d)%s activation(%s) norm(%s) : (%s)"
            " -> %s" % (out, names[0], ", ".join(norm1), ", ".join(proj),
                        ", ".join(norm2), ffn_text, heads, kv_heads, causal,
                        act, "layer_norm" if layer else "rms_norm",
                        ", ".join(types), x_t))
        return [(out, x_t)]

    def chain(self, dtype):
        """A residual stream for training: x through one to four norms,
        projections, FFNs, residual sums and blocks, each reading the last
        value; sometimes an earlier value is returned too, so that a value
        gets gradients from two places."""
        rng = self.rng
        shape = [rng.choice([1, 2]), rng.choice([8, 16, 32, 48]),
                 rng.choice([16, 32, 64])]
        x = self.arg(tensor(shape, dtype))
        stream = [(x, shape)]
        for _ in range(rng.choice([1, 2, 3, 4])):
            value, shape = stream[-1]
            kind = rng.choice(["norm", "linear", "ffn", "add", "block"])
            if kind == "add":
                # A residual: the last value plus an earlier one of its shape.
                same = [v for v, s in stream[:-1] if s == shape]
                other = rng.choice(same) if same else self.arg(
                    tensor(shape, dtype))
                out = self.value()
                self.body.append("  %s = arith.addf %s, %s : %s" % (
                    out, value, other, tensor(shape, dtype)))
                stream.append((out, shape))
                continue
            if kind == "block" and len(shape) != 3:
                kind = "norm"
            (out, type_), = getattr(self, kind)(dtype, value, shape)[:1]
            dims = re.match(r"tensor<(.*)x\w+>", type_).group(1)
            stream.append((out, [int(d) for d in dims.split("x")]))
        results = [(stream[-1][0], tensor(stream[-1][1], dtype))]
        if len(stream) > 2 and rng.random() < 0.3:
            value, shape = rng.choice(stream[1:-1])
            results.append((value, tensor(shape, dtype)))
        return results

    def text(self, name, results):
        args = ", ".join("%s: %s" % a for a in self.args)
        rtypes = ", ".join(t for _, t in results)
        if len(results) != 1:
            rtypes = "(" + rtypes + ")"
        return "func.func @%s(%s) -> %s {\n%s\n  return %s : %s\n}\n" % (
            name, args, rtypes, "\n".join(self.body),
            ", ".join(v for v, _ in results), ", ".join(t for _, t in results))


def make_program(rng):
    small = rng.random() < 0.6
    prog = Program(rng, small)
    dtype = rng.choice(["f32", "f16", "bf16"])
    kinds = [prog.attention, prog.ffn, prog.linear, prog.norm, prog.block]
    results = []
    for _ in range(rng.choice([1, 1, 1, 2])):
        results += rng.choice(kinds)(dtype)
    if rng.random() < 0.2:  # the same value returned twice
        results.append(results[0])
    name = rng.choice(["f", "attention", "block"]) if rng.random() < 0.8 \
        else rng.choice(ODD_NAMES)
    text = prog.text(name, results)
    pipelines = rng.sample(PIPELINES, 2)
    # Block sizes and chunk rows as pipeline options.
    for opts in list(pipelines):
        if "=chip=" in opts[0] and rng.random() < 0.4:
            option = rng.choice(["q-block", "kv-block", "chunk-rows",
                                 "sm90-kv-block", "sm80-q-block"])
            value = rng.choice([16, 32, 64, 128, 256, 1, 0, 100])
            pipelines.append(["%s %s=%d" % (opts[0], option, value)] +
                             opts[1:])
    return "program", text, pipelines, small


TRAINING_PIPELINES = [
    ["--bpt-build-backward", "--bpt-to-cpu"],
    ["--bpt-build-backward", "--bpt-to-cpu=tile-gemms=1"],
    ["--bpt-build-backward", "--bpt-to-nvvm=chip=sm_90a"],
    ["--bpt-build-backward", "--bpt-to-nvvm=chip=sm_80"],
    ["--bpt-build-backward", "--bpt-to-nvvm=chip={chip}"],
    ["--bpt-build-backward",
     "--bpt-to-nvvm=chip=sm_90a recompute-projections=1"],
    ["--bpt-build-backward=query-chunk=16", "--bpt-to-nvvm=chip=sm_90a"],
    ["--bpt-build-backward=query-chunk=16", "--bpt-to-cpu"],
]


def make_training_program(rng):
    """A small program to differentiate: bpt-cpu-run --backward checks its
    gradients, bpt-opt compiles its training functions."""
    prog = Program(rng, small=True, training=True)
    dtype = rng.choice(["f32", "f32", "f16", "bf16"])
    kinds = [prog.chain, prog.chain, prog.chain, prog.attention, prog.ffn,
             prog.linear, prog.norm, prog.block]
    results = []
    for _ in range(rng.choice([1, 1, 1, 2])):
        results += rng.choice(kinds)(dtype)
    text = prog.text(rng.choice(["f", "block", "train"]), results)
    flags = ["--backward"]
    if rng.random() < 0.3:
        flags.append("--query-chunk=%d" % rng.choice([8, 16, 32]))
    if rng.random() < 0.3:
        flags.append("--recompute-projections")
    if rng.random() < 0.3:
        flags.append("--tile-gemms")
    if rng.random() < 0.2:
        flags.append("--no-fuse")
    if rng.random() < 0.2:
        flags += ["--q-block=%d" % rng.choice([8, 16, 32]),
                  "--kv-block=%d" % rng.choice([8, 16, 32])]
    return "training program", text, rng.sample(TRAINING_PIPELINES, 2), flags


# ---------------------------------------------------------------------------
# The campaign
# ---------------------------------------------------------------------------


def fix_options(opts, chip):
    return [o.replace("{chip}", chip) for o in opts]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=100,
                        help="inputs of each kind")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds per run before it counts as a hang")
    parser.add_argument("--bin-dir", default=str(REPO / "build" / "bin"))
    parser.add_argument("--out", default="fuzz-ir-findings")
    parser.add_argument("--mode",
                        choices=["mutants", "programs", "training", "all"],
                        default="all")
    parser.add_argument("--max-seconds", type=float, default=0,
                        help="stop starting new inputs after this long "
                             "(0: no limit)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()

    bpt_opt = os.path.join(args.bin_dir, "bpt-opt")
    cpu_run = os.path.join(args.bin_dir, "bpt-cpu-run")
    for tool in (bpt_opt, cpu_run):
        if not os.access(tool, os.X_OK):
            sys.exit("fuzz_ir.py: no executable %s (--bin-dir)" % tool)
    rng = random.Random(args.seed)
    seeds = lit_seeds()
    out = Path(args.out)
    counts = {}
    findings = []
    started = time.monotonic()

    kinds = []
    if args.mode in ("mutants", "all"):
        kinds.append("mutants")
    if args.mode in ("programs", "all"):
        kinds.append("programs")
    if args.mode in ("training", "all"):
        kinds.append("training")
    schedule = [k for _ in range(args.count) for k in kinds]

    for index, kind in enumerate(schedule):
        if args.max_seconds and time.monotonic() - started > args.max_seconds:
            print("fuzz_ir.py: --max-seconds reached after %d inputs" % index)
            break
        small = False
        run_flags = None
        if kind == "mutants":
            origin, text, pipelines = make_mutant(rng, seeds)
        elif kind == "programs":
            origin, text, pipelines, small = make_program(rng)
            if small:
                run_flags = ["--tile-gemms"] if rng.random() < 0.5 else []
        else:
            origin, text, pipelines, run_flags = make_training_program(rng)
        chip = rng.choice(CHIPS)
        commands = [[bpt_opt, "-", "-o", os.devnull] + fix_options(p, chip)
                    for p in pipelines]
        if run_flags is not None:
            commands.append([cpu_run, "-", "--seed=%d" % rng.randrange(100)] +
                            run_flags)
        for cmd in commands:
            rc, output, timed_out, seconds = run(cmd, text, args.timeout)
            verdict = classify(rc, output, timed_out, cmd[0] == cpu_run,
                               training=kind == "training")
            counts[(kind, verdict)] = counts.get((kind, verdict), 0) + 1
            if args.verbose:
                print("%5d %-8s %-6s %5.1fs %s" % (
                    index, kind, verdict, seconds, " ".join(cmd[1:])))
            if verdict in ("crash", "hang", "wrong"):
                out.mkdir(parents=True, exist_ok=True)
                base = out / ("%s-%s-%d" % (verdict, kind, index))
                base.with_suffix(".mlir").write_text(text)
                tail = "\n".join(output.splitlines()[-30:])
                base.with_suffix(".txt").write_text(
                    "origin: %s\ncommand: %s < %s\nrc: %d\n\n%s\n" % (
                        origin, " ".join(cmd), base.with_suffix(".mlir"), rc,
                        tail))
                findings.append((verdict, str(base.with_suffix(".mlir")),
                                 " ".join(cmd[1:])))
                print("FINDING %s: %s (%s)" % (verdict, base.with_suffix(
                    ".mlir"), " ".join(cmd[1:])))

    for kind in kinds:
        row = ", ".join("%s %d" % (v, counts.get((kind, v), 0))
                        for v in ("ok", "error", "crash", "wrong", "marginal",
                                  "hang"))
        print("%s: %s runs: %s" % (kind, sum(
            n for (k, _), n in counts.items() if k == kind), row))
    print("findings: %d (%.0f s)" % (len(findings), time.monotonic() - started))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
