"""Kernel sets for given shapes: compiled on demand, or prebuilt.

Training needs two sets per problem. An attention (AttentionProblem) has
the forward that also returns its log-sum-exp (`bpt-compile --op=attention
--lse`, kind "lse") and the gradients (`--op=attention_grad`, kind
"grad"); a transformer block (BlockProblem) has its forward (`--op=block`,
kind "forward") and its training step (`--op=block --backward`, kind
"backward": the forward recomputed, then every gradient). Each problem
class lists its kinds in KINDS. The sets live in a cache directory
($BPT_CACHE, else ~/.cache/bpt) as <name>.json + <name>.ptx, the name
spelling every bpt-compile flag the set is compiled with (shapes, dtype,
options, chip), so a set is never reused for another problem.

A missing set is compiled with bpt-compile ($BPT_COMPILE, else on PATH,
else build/bin of this source tree). A GPU machine without LLVM has no
bpt-compile: there the sets must be prebuilt into the cache (prebuild(), or
`python3 -m bpt.cache`), and a missing one raises MissingKernelSet naming
it and the command that makes it.

No PyTorch here: bpt.torch uses this module, and the build prebuilds sets
with it on machines without PyTorch.
"""
import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Optional

DTYPES = ("bf16", "f16", "f32")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu", "swiglu", "geglu")
NORMS = ("layer_norm", "rms_norm")


class MissingKernelSet(RuntimeError):
    """A kernel set is not in the cache and there is no bpt-compile."""


@dataclasses.dataclass(frozen=True)
class AttentionProblem:
    """An attention over q [batch, heads, seq, head_dim] and k, v [batch,
    kv_heads, kv_seq, head_dim], compiled for `chip`."""
    KINDS = {"lse": ["--op=attention", "--lse"], "grad": ["--op=attention_grad"]}

    batch: int
    heads: int
    kv_heads: int
    seq: int
    kv_seq: int
    head_dim: int
    dtype: str
    causal: bool = False
    scale: Optional[float] = None  # None: 1/sqrt(head_dim)
    chip: str = "sm_90a"
    tensor_cores: bool = True

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        sizes = (self.batch, self.heads, self.kv_heads, self.seq, self.kv_seq, self.head_dim)
        if min(sizes) < 1:
            raise ValueError(f"sizes must be positive, got {self}")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads "
                             f"({self.kv_heads})")
        if self.scale is not None and not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")

    def flags(self, kind):
        """bpt-compile's flags for the set of `kind` ("lse" or "grad")."""
        flags = self.KINDS[kind] + [
            f"--batch={self.batch}", f"--heads={self.heads}",
            f"--kv-heads={self.kv_heads}", f"--seq={self.seq}",
            f"--kv-seq={self.kv_seq}", f"--head-dim={self.head_dim}",
            f"--dtype={self.dtype}", f"--chip={self.chip}"]
        if self.causal:
            flags.append("--causal")
        if self.scale is not None:
            flags.append(f"--scale={float(self.scale)!r}")
        if not self.tensor_cores:
            flags.append("--no-tensor-cores")
        return flags

    def name(self, kind):
        """The set's file name (without .json): every field spelled out;
        the scale as Python's repr, which reads back to the same float."""
        _check_kind(self, kind)
        parts = [f"attention-{kind}", f"b{self.batch}", f"h{self.heads}",
                 f"kv{self.kv_heads}", f"s{self.seq}", f"kvs{self.kv_seq}",
                 f"d{self.head_dim}", self.dtype]
        if self.causal:
            parts.append("causal")
        if self.scale is not None:
            parts.append(f"scale{float(self.scale)!r}")
        parts.append(self.chip)
        if not self.tensor_cores:
            parts.append("portable")
        return "-".join(parts)


@dataclasses.dataclass(frozen=True)
class BlockProblem:
    """A pre-norm transformer block (bpt.transformer_block) over x [batch,
    seq, hidden], heads of hidden / heads, FFN width ffn, compiled for
    `chip`. bpt-compile has no epsilon flag: its blocks use 1e-5."""
    KINDS = {"forward": ["--op=block"], "backward": ["--op=block", "--backward"]}

    batch: int
    seq: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    activation: str
    norm: str
    dtype: str
    causal: bool = False
    chip: str = "sm_90a"
    tensor_cores: bool = True

    def __post_init__(self):
        for field, value, allowed in (("dtype", self.dtype, DTYPES),
                                      ("activation", self.activation, ACTIVATIONS),
                                      ("norm", self.norm, NORMS)):
            if value not in allowed:
                raise ValueError(f"{field} must be one of {', '.join(allowed)}, got {value!r}")
        sizes = (self.batch, self.seq, self.hidden, self.heads, self.kv_heads, self.ffn)
        if min(sizes) < 1:
            raise ValueError(f"sizes must be positive, got {self}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads "
                             f"({self.heads})")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads "
                             f"({self.kv_heads})")

    def flags(self, kind):
        """bpt-compile's flags for the set of `kind` ("forward" or "backward")."""
        flags = self.KINDS[kind] + [
            f"--batch={self.batch}", f"--seq={self.seq}", f"--hidden={self.hidden}",
            f"--heads={self.heads}", f"--kv-heads={self.kv_heads}", f"--ffn={self.ffn}",
            f"--activation={self.activation}", f"--norm={self.norm}",
            f"--dtype={self.dtype}", f"--chip={self.chip}"]
        if self.causal:
            flags.append("--causal")
        if not self.tensor_cores:
            flags.append("--no-tensor-cores")
        return flags

    def name(self, kind):
        """The set's file name (without .json): every flag spelled out."""
        _check_kind(self, kind)
        parts = [f"block-{kind}", f"b{self.batch}", f"s{self.seq}", f"h{self.hidden}",
                 f"heads{self.heads}", f"kv{self.kv_heads}", f"ffn{self.ffn}",
                 self.activation, self.norm, self.dtype]
        if self.causal:
            parts.append("causal")
        parts.append(self.chip)
        if not self.tensor_cores:
            parts.append("portable")
        return "-".join(parts)


def _check_kind(problem, kind):
    if kind not in problem.KINDS:
        raise ValueError(f"kind must be one of {', '.join(problem.KINDS)}, got {kind!r}")


def chip_for_capability(major, minor):
    """(chip, tensor_cores) to compile for a device of compute capability
    major.minor: sm_90a (wgmma) for 9.0, sm_8x (mma.sync) for 8.x, else the
    portable path for the device's own architecture."""
    if (major, minor) == (9, 0):
        return "sm_90a", True
    if major == 8:
        return f"sm_8{minor}", True
    return f"sm_{major}{minor}", False


def cache_dir():
    return os.environ.get("BPT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "bpt")


def find_compiler():
    """bpt-compile's path, or None: $BPT_COMPILE, PATH, this tree's build."""
    explicit = os.environ.get("BPT_COMPILE")
    if explicit:
        return explicit
    found = shutil.which("bpt-compile")
    if found:
        return found
    here = os.path.dirname(os.path.abspath(__file__))
    built = os.path.join(here, "..", "..", "build", "bin", "bpt-compile")
    return os.path.normpath(built) if os.access(built, os.X_OK) else None


def compile_set(compiler, problem, kind, directory):
    """Compiles the set into `directory`; returns its manifest's path. The
    files are written elsewhere and moved in, the manifest last, so a
    manifest in the cache always has its PTX beside it."""
    os.makedirs(directory, exist_ok=True)
    name = problem.name(kind)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        command = [compiler] + problem.flags(kind) + ["-o", os.path.join(scratch, name)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"bpt-compile failed for kernel set {name} "
                               f"({' '.join(command)}):\n{done.stderr.strip()}")
        for extension in (".ptx", ".json"):
            os.replace(os.path.join(scratch, name + extension),
                       os.path.join(directory, name + extension))
    return os.path.join(directory, name + ".json")


def kernel_set(problem, kind, directory=None):
    """The manifest path of the set of `kind` for `problem`: from the
    cache, else compiled into it."""
    directory = directory or cache_dir()
    path = os.path.join(directory, problem.name(kind) + ".json")
    if os.path.exists(path):
        return path
    compiler = find_compiler()
    if compiler is None:
        raise MissingKernelSet(
            f"kernel set {problem.name(kind)} is not in {directory} and there is no "
            f"bpt-compile to make it (set $BPT_COMPILE, or put bpt-compile on PATH). "
            f"Where bpt-compile runs: bpt-compile {' '.join(problem.flags(kind))} "
            f"-o {os.path.join(directory, problem.name(kind))}; then copy the .json and "
            f".ptx here, or point $BPT_CACHE at their directory.")
    return compile_set(compiler, problem, kind, directory)


def prebuild(problems, directory, compiler=None):
    """Compiles every set of each problem (each kind in its KINDS) into
    `directory` (for a machine without bpt-compile); returns the manifest
    paths."""
    compiler = compiler or find_compiler()
    if compiler is None:
        raise MissingKernelSet("no bpt-compile to prebuild with (set $BPT_COMPILE)")
    return [compile_set(compiler, p, kind, directory) for p in problems for kind in p.KINDS]


def main(argv=None):
    """python3 -m bpt.cache --out DIR [--op block] [--chip C] --batch ... :
    prebuilds the two sets of one problem (an attention by default)."""
    ap = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="cache directory (default $BPT_CACHE)")
    ap.add_argument("--op", default="attention", choices=("attention", "block"))
    ap.add_argument("--chip", default="sm_90a")
    ap.add_argument("--no-tensor-cores", action="store_true")
    for size in ("batch", "heads", "kv-heads", "seq", "kv-seq", "head-dim", "hidden",
                 "ffn"):
        ap.add_argument(f"--{size}", type=int, required=size in ("batch", "heads", "seq"))
    ap.add_argument("--dtype", default="bf16", choices=DTYPES)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--scale", type=float, default=None, help="attention only")
    # bpt-compile's defaults.
    ap.add_argument("--activation", default="gelu", choices=ACTIVATIONS, help="block only")
    ap.add_argument("--norm", default="rms_norm", choices=NORMS, help="block only")
    args = ap.parse_args(argv)
    needed = ("head_dim",) if args.op == "attention" else ("hidden",)
    for name in needed:
        if getattr(args, name) is None:
            ap.error(f"--op={args.op} needs --{name.replace('_', '-')}")
    if args.op == "attention":
        problem = AttentionProblem(
            args.batch, args.heads, args.kv_heads or args.heads, args.seq,
            args.kv_seq or args.seq, args.head_dim, args.dtype, args.causal,
            args.scale, args.chip, not args.no_tensor_cores)
    else:
        problem = BlockProblem(
            args.batch, args.seq, args.hidden, args.heads, args.kv_heads or args.heads,
            args.ffn or 4 * args.hidden, args.activation, args.norm, args.dtype,
            args.causal, args.chip, not args.no_tensor_cores)
    for path in prebuild([problem], args.out or cache_dir()):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
