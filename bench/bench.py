#!/usr/bin/env python3
"""Side-by-side benchmark of bpt kernel sets and PyTorch on one GPU.

Runs, in one process on one GPU, with CUDA events, warm-up and the median of
several runs (an FFN's, block's or training step's bpt and eager samples in
alternation, time_pair_ms):
  * attention: our kernel set vs PyTorch scaled_dot_product_attention with
    the flash, cuDNN and efficient back ends (bf16, TFLOP/s = 4*B*H*S^2*D,
    halved when causal), and the relative difference of our output to SDPA's;
  * attention backward: our attention_grad set vs SDPA's backward
    (torch.autograd.grad after a forward under the cuDNN and flash back
    ends), FLOPs 2.5 x the forward's; o and lse for our set come from our
    --lse forward set of the same shape; the relative difference of our
    dq, dk, dv to SDPA's (cuDNN's, else flash's);
  * the fused transformer block: our kernel set vs an eager PyTorch block
    (SDPA flash + cuBLAS matmuls) with the same weights, time and peak
    device memory (bytes allocated while the block runs, output included).

Kernel sets come from bpt-compile (bench/compile.sh); they are loaded from
their PTX with CuPy and launched on PyTorch's stream with PyTorch-allocated
buffers, in the order of the manifest. TMA tensor maps the manifest lists
are encoded with the driver's cuTensorMapEncodeTiled (through ctypes) when
the buffers are allocated, at each map's byte_offset into its buffer, and
kept in PyTorch-allocated device memory. An argument {"buffer": i,
"byte_offset": n} passes buffer i's address plus n.

  python3 bench/bench.py --kernels DIR --out DIR [--max-seconds S]
      [--only attention|backward|block|ffn|shapes|train|maxlen]
"""
import argparse
import ctypes
import json
import math
import os
import statistics
import sys
import warnings

import cupy
import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

TORCH_DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16,
                "f32": torch.float32, "i8": torch.uint8}


# Tensor-map enums of cuda.h, by manifest spelling.
CU_TENSOR_MAP_DATA_TYPES = {"f16": 6, "f32": 7, "bf16": 9}
CU_TENSOR_MAP_SWIZZLES = {"none": 0, "32b": 1, "64b": 2, "128b": 3}
CU_TENSOR_MAP_L2_PROMOTIONS = {"none": 0, "64b": 1, "128b": 2, "256b": 3}
ELEMENT_BYTES = {"f16": 2, "bf16": 2, "f32": 4}
_libcuda = None


def libcuda():
    """The driver library (ctypes), loaded once."""
    global _libcuda
    if _libcuda is None:
        lib = ctypes.CDLL("libcuda.so.1")
        u32p, u64p = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64)
        lib.cuTensorMapEncodeTiled.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p,
            u64p, u64p, u32p, u32p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
            ctypes.c_int]
        lib.cuTensorMapEncodeTiled.restype = ctypes.c_int
        lib.cuLaunchKernelEx.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.c_void_p, ctypes.c_void_p]
        lib.cuLaunchKernelEx.restype = ctypes.c_int
        _libcuda = lib
    return _libcuda


class _LaunchAttribute(ctypes.Structure):
    # cuda.h's CUlaunchAttribute: an id, then a 64-byte value 8 bytes in.
    _fields_ = [("id", ctypes.c_int), ("pad", ctypes.c_char * 4),
                ("value", ctypes.c_int * 16)]


class _LaunchConfig(ctypes.Structure):
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
                ("shared", ctypes.c_uint), ("stream", ctypes.c_void_p),
                ("attrs", ctypes.POINTER(_LaunchAttribute)),
                ("num_attrs", ctypes.c_uint)]


# CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION.
_PROGRAMMATIC_STREAM_SERIALIZATION = 6
# BPT_DEPENDENT_LAUNCH=0 launches every kernel plainly, as bpt's runtime does.
DEPENDENT_LAUNCH = (os.environ.get("BPT_DEPENDENT_LAUNCH", "1") != "0"
                    and torch.cuda.is_available()
                    and torch.cuda.get_device_capability()[0] >= 9)


class DriverCall:
    """One cuLaunchKernelEx call of `function` (a CUfunction address) with
    `values` (ctypes scalars) as its parameters; `dependent` adds
    programmatic stream serialization, as the runtime launches a manifest's
    "dependent" launch (its blocks start as the previous kernel drains; the
    kernel waits for it with griddepcontrol.wait). Built once, launched on
    any stream."""

    def __init__(self, function, grid, block, shared, values, dependent):
        # The ctypes objects the pointers below refer to live as long as this.
        self.values = values
        self.params = (ctypes.c_void_p * max(1, len(values)))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        self.function = ctypes.c_void_p(function)
        self.attribute = _LaunchAttribute(id=_PROGRAMMATIC_STREAM_SERIALIZATION)
        self.attribute.value[0] = 1
        self.config = _LaunchConfig((ctypes.c_uint * 3)(*(list(grid) + [1, 1])[:3]),
                                    (ctypes.c_uint * 3)(*(list(block) + [1, 1])[:3]),
                                    shared, None,
                                    ctypes.pointer(self.attribute) if dependent else None,
                                    1 if dependent else 0)
        self.config_ref = ctypes.byref(self.config)

    def launch(self, stream):
        self.config.stream = stream
        status = libcuda().cuLaunchKernelEx(self.config_ref, self.function,
                                            self.params, None)
        if status != 0:
            raise RuntimeError(f"cuLaunchKernelEx failed (CUDA error {status})")


def launch_dependent(function, grid, block, shared, args, stream):
    """Launches `function` as a manifest's "dependent" launch (DriverCall),
    built for this call. `args`: numpy scalars."""
    values = [ctypes.c_uint64(int(a)) if a.dtype == np.uint64 else ctypes.c_int32(int(a))
              for a in args]
    DriverCall(function, grid, block, shared, values, dependent=True).launch(stream)


def encode_tensor_map(m, address):
    """Manifest tensor map `m` over the buffer at device `address` (the
    tensor starts at address + m's byte_offset): its 128-byte CUtensorMap
    in a CUDA uint8 tensor, whose address the kernel takes. The manifest
    reader has checked TMA's rules; the driver checks again."""
    address += m.get("byte_offset", 0)
    # CUDA counts dimensions innermost first; strides (bytes) of dims 1..r-1.
    dims = list(reversed(m["shape"]))
    box = list(reversed(m["box"]))
    rank = len(dims)
    strides, stride = [], ELEMENT_BYTES[m["dtype"]]
    for d in dims[:-1]:
        stride *= d
        strides.append(stride)
    # A CUtensorMap is 64-byte aligned.
    raw = ctypes.create_string_buffer(128 + 64)
    offset = -ctypes.addressof(raw) % 64
    status = libcuda().cuTensorMapEncodeTiled(
        ctypes.addressof(raw) + offset, CU_TENSOR_MAP_DATA_TYPES[m["dtype"]],
        rank, address, (ctypes.c_uint64 * rank)(*dims),
        (ctypes.c_uint64 * len(strides))(*strides),
        (ctypes.c_uint32 * rank)(*box), (ctypes.c_uint32 * rank)(*[1] * rank),
        0, CU_TENSOR_MAP_SWIZZLES[m["swizzle"]],
        CU_TENSOR_MAP_L2_PROMOTIONS[m.get("l2_promotion", "none")],
        1 if m.get("oob_fill", "zero") == "nan" else 0)
    if status != 0:
        raise RuntimeError(f"cuTensorMapEncodeTiled failed (CUDA error {status}) "
                           f"for tensor map {m} at 0x{address:x}")
    host = torch.frombuffer(bytearray(raw.raw[offset:offset + 128]), dtype=torch.uint8)
    return host.to("cuda")


class KernelSet:
    """A bpt kernel set: PTX module, manifest, device buffers."""

    def __init__(self, manifest_path):
        with open(manifest_path) as f:
            self.manifest = json.load(f)
        ptx = os.path.join(os.path.dirname(manifest_path), self.manifest["ptx"])
        self.module = cupy.RawModule(path=ptx)
        self.kernels = {}
        for launch in self.manifest["launches"]:
            kernel = self.module.get_function(launch["kernel"])
            if launch.get("dynamic_shared_memory", 0) > 48 * 1024:
                kernel.max_dynamic_shared_size_bytes = launch["dynamic_shared_memory"]
            self.kernels[launch["kernel"]] = kernel
        self.buffers = None
        self.tensor_maps = None
        self.prepared = None

    def buffer(self, name):
        for i, b in enumerate(self.manifest["buffers"]):
            if b["name"] == name:
                return self.buffers[i]
        raise KeyError(name)

    def allocate(self, inputs):
        """inputs: name -> tensor (placed as given); others allocated here."""
        self.buffers = []
        for b in self.manifest["buffers"]:
            if b["name"] in inputs:
                t = inputs[b["name"]].contiguous()
                assert list(t.shape) == b["shape"], (b["name"], t.shape)
            else:
                t = torch.empty(b["shape"], dtype=TORCH_DTYPES[b["dtype"]],
                                device="cuda")
            self.buffers.append(t)
        # A map holds its buffer's address, so it is built per allocation.
        self.tensor_maps = [
            encode_tensor_map(m, self.buffers[m["buffer"]].data_ptr())
            for m in self.manifest.get("tensor_maps", [])]
        self.prepared = [self.prepare(launch) for launch in self.manifest["launches"]]

    def prepare(self, launch):
        """A launch's driver call (DriverCall), built once per allocation.
        Built per call in Python (numpy scalars, ctypes values, CuPy's
        argument conversion) they took longer than the shape table's short
        kernels run (decode-q1-k4096-gqa: 0.049 ms a call against bpt-run's
        0.011, session 32), so those rows timed the host."""
        values = [ctypes.c_int32(a["i32"]) if isinstance(a, dict) and "i32" in a
                  else ctypes.c_uint64(self.arg_pointer(a))
                  for a in launch["args"]]
        kernel = self.kernels[launch["kernel"]]
        # RawModule.get_function's kernel: its CUfunction.
        return DriverCall(getattr(kernel, "kernel", kernel).ptr, launch["grid"],
                          launch["block"], launch.get("dynamic_shared_memory", 0),
                          values, bool(launch.get("dependent")) and DEPENDENT_LAUNCH)

    def release(self):
        self.buffers = None
        self.tensor_maps = None
        self.prepared = None

    def arg_pointer(self, arg):
        """The device address a manifest launch argument stands for: a
        buffer index, {"buffer": i, "byte_offset": n} or {"tensor_map": i}
        ({"i32": n} scalars are passed by run())."""
        if isinstance(arg, dict):
            if "tensor_map" in arg:
                return self.tensor_maps[arg["tensor_map"]].data_ptr()
            return self.buffers[arg["buffer"]].data_ptr() + arg.get("byte_offset", 0)
        return self.buffers[arg].data_ptr()

    def run(self, events=None):
        """Launches the set in order; with `events` (a list), records a CUDA
        event before and after each launch (for profile()). Without events,
        the calls prepare() built; profile()'s events time each launch on
        the GPU, so it keeps building them per call."""
        if events is None:
            stream = torch.cuda.current_stream().cuda_stream
            for call in self.prepared:
                call.launch(stream)
            return
        stream = cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
        with stream:
            for launch in self.manifest["launches"]:
                args = tuple(np.int32(a["i32"]) if isinstance(a, dict) and "i32" in a
                             else np.uint64(self.arg_pointer(a))
                             for a in launch["args"])
                if events is not None:
                    events.append(cupy.cuda.Event())
                    events[-1].record(stream)
                kernel = self.kernels[launch["kernel"]]
                shared = launch.get("dynamic_shared_memory", 0)
                if launch.get("dependent") and DEPENDENT_LAUNCH:
                    # RawModule.get_function's kernel: its CUfunction.
                    launch_dependent(getattr(kernel, "kernel", kernel).ptr,
                                     launch["grid"],
                                     launch["block"], shared, args, stream.ptr)
                else:
                    kernel(tuple(launch["grid"]), tuple(launch["block"]), args,
                           shared_mem=shared)
                if events is not None:
                    events.append(cupy.cuda.Event())
                    events[-1].record(stream)

    def profile(self):
        """Milliseconds of each launch (one run, an event pair around each),
        summed by kernel kind: GEMMs, attention, the rest (portable); each
        kind's launches in order under "launches_ms"."""
        self.run()
        events = []
        self.run(events)
        events[-1].synchronize()
        kinds = {}
        # Each launch between its own pair of events: a pause of the host
        # between launches (seen once at 100 ms) is not counted.
        for launch, a, b in zip(self.manifest["launches"], events[::2], events[1::2]):
            name = launch["kernel"]
            kind = ("gemm " + ("grad" if any(t in name for t in ("_at", "_bt")) else "fwd")
                    if name.startswith("gemm") else
                    "attention_grad" if name.startswith("attention_grad") else
                    "attention" if name.startswith("attention") else "portable")
            ms = cupy.cuda.get_elapsed_time(a, b)
            k = kinds.setdefault(kind, {"ms": 0.0, "launches": 0, "slowest": []})
            k["ms"] += ms
            k["launches"] += 1
            k["slowest"].append((round(ms, 3), name))
            k.setdefault("launches_ms", []).append((round(ms, 4), name))
        for k in kinds.values():
            k["slowest"] = sorted(k["slowest"], reverse=True)[:4]
        return kinds


class Sampler:
    """Timed samples of fn(), in milliseconds a call (`times`).

    A sample is `reps` calls back to back between two events, `reps` such
    that a sample lasts about a millisecond: with one call a sample, a
    function of tens of microseconds was timed with the host's launch of it
    (the GPU idles from the first event until the launch arrives), which
    penalised whichever side's launch path was slower in Python."""

    def __init__(self, fn, warmup):
        self.fn = fn
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        # One call sizes the samples; under a millisecond it is not kept.
        self.reps = 1
        self.times = [self._sample()]
        if self.times[0] < 1.0:
            self.reps = min(100, math.ceil(1.0 / max(self.times.pop(), 1e-3)))

    def _sample(self):
        start, end = torch.cuda.Event(True), torch.cuda.Event(True)
        start.record()
        for _ in range(self.reps):
            self.fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / self.reps

    def sample(self):
        self.times.append(self._sample())

    def spent_ms(self):
        return sum(self.times) * self.reps


def time_ms(fn, max_seconds, warmup=1, max_runs=20):
    """Median milliseconds of fn(); fewer runs for slow functions."""
    s = Sampler(fn, warmup)
    budget = max_seconds * 1000.0
    while len(s.times) < max_runs and (not s.times or s.spent_ms() < budget / 2):
        s.sample()
    return statistics.median(s.times), len(s.times)


def time_pair_ms(fn_a, fn_b, max_seconds, warmup=1, max_runs=20):
    """Median milliseconds of fn_a() and of fn_b() and the samples each
    took, the samples in alternation (a, b, a, b, ...): a card running
    GEMMs at full power slows as it heats, so a side timed after the other
    paid for it (session 30, an H100: the 16k FFN set went from 1.57 to
    1.77 ms and eager's FFN from 1.65 to 1.91 over one bench.py row; eager
    was timed first). Each side gets about half of the time budget."""
    a, b = Sampler(fn_a, warmup), Sampler(fn_b, warmup)
    budget = max_seconds * 1000.0
    while (min(len(a.times), len(b.times)) < max_runs and
           (not a.times or not b.times or a.spent_ms() + b.spent_ms() < budget)):
        for s in (a, b):
            if len(s.times) < max_runs:
                s.sample()
    return (statistics.median(a.times), statistics.median(b.times),
            min(len(a.times), len(b.times)))


GRAPHS = False
"""--graphs: also time each FFN, block and training-step set (and each
attention set of the shape table, with its SDPA peer) as one CUDA
graph (bpt_graph_ms, peer_graph_ms): its launches recorded once and replayed, what the
runtime's graphs (bpt-run --graph, bptGraphBeginRecording) give a short
sequence of kernels."""


def graphed(fn):
    """`fn` (launches on torch's current stream, no synchronization)
    recorded once as a CUDA graph; returns the graph's replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()  # warm-up off the default stream, as torch.cuda.graph asks
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def time_graph(row, fn, max_seconds):
    """With --graphs, row["bpt_graph_ms"]: `fn` timed as one CUDA graph."""
    if GRAPHS:
        row["bpt_graph_ms"], _ = time_ms(graphed(fn), max_seconds)


def rel(a, b):
    a, b = a.double(), b.double()
    return (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()


def bench_attention(path, max_seconds):
    ks = KernelSet(path)
    q_shape = ks.manifest["buffers"][0]["shape"]
    k_shape = ks.manifest["buffers"][1]["shape"]
    B, H, S, D = q_shape
    causal = ks.manifest["options"].get("causal", False)
    dtype = TORCH_DTYPES[ks.manifest["buffers"][0]["dtype"]]
    gen = torch.Generator(device="cuda").manual_seed(0)
    q = torch.rand(q_shape, device="cuda", generator=gen, dtype=torch.float32).mul_(2).sub_(1).to(dtype)
    k = torch.rand(k_shape, device="cuda", generator=gen, dtype=torch.float32).mul_(2).sub_(1).to(dtype)
    v = torch.rand(k_shape, device="cuda", generator=gen, dtype=torch.float32).mul_(2).sub_(1).to(dtype)
    flops = 4.0 * B * H * S * k_shape[2] * D / (2 if causal else 1)
    row = {"B": B, "H": H, "S": S, "D": D, "causal": causal,
           "path": kernel_path(ks.manifest)}
    ks.allocate({"query": q, "key": k, "value": v})
    ks.buffer("result").fill_(float("nan"))
    ms, runs = time_ms(ks.run, max_seconds)
    row["bpt_ms"], row["bpt_runs"] = ms, runs
    row["bpt"] = flops / ms / 1e9
    ours = ks.buffer("result").clone()
    ks.release()
    for name, backend in [("flash", SDPBackend.FLASH_ATTENTION),
                          ("cudnn", SDPBackend.CUDNN_ATTENTION),
                          ("efficient", SDPBackend.EFFICIENT_ATTENTION)]:
        try:
            with sdpa_kernel(backend):
                fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                out = fn()
                ms, _ = time_ms(fn, max_seconds)
            row[name] = flops / ms / 1e9
            if name == "flash":
                row["rel_diff_to_sdpa"] = rel(ours, out)
        except RuntimeError as e:
            row[name] = None
            print(f"  {name}: not available ({str(e).splitlines()[0]})")
    return row


def uniform(shape, gen, dtype):
    """Uniform in [-1, 1), as bpt-run draws its inputs."""
    t = torch.rand(shape, device="cuda", generator=gen, dtype=torch.float32)
    return t.mul_(2).sub_(1).to(dtype)


def kernel_path(manifest):
    """Which attention kernels a set runs: wgmma, mma.sync (split over the
    keys for decode) or portable."""
    kernels = [l["kernel"] for l in manifest["launches"]]
    if any("split_kv_sm80" in k for k in kernels):
        return "mma.sync split-K/V"
    if any("_sm90" in k for k in kernels):
        return "wgmma"
    return "mma.sync" if any("_sm80" in k for k in kernels) else "portable"


def bench_backward(grad_path, lse_path, max_seconds):
    """bpt's attention_grad set against SDPA's backward (cuDNN, flash).

    Our set's o and lse inputs come from our --lse forward set, so they are
    consistent with q, k, v as in training."""
    grad, fwd = KernelSet(grad_path), KernelSet(lse_path)
    buffers = {b["name"]: b for b in grad.manifest["buffers"]}
    q_shape, k_shape = buffers["query"]["shape"], buffers["key"]["shape"]
    B, H, S, D = q_shape
    causal = grad.manifest["options"].get("causal", False)
    dtype = TORCH_DTYPES[buffers["query"]["dtype"]]
    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (uniform(shape, gen, dtype) for shape in (q_shape, k_shape, k_shape))
    do = uniform(q_shape, gen, dtype)
    flops = 2.5 * 4.0 * B * H * S * k_shape[2] * D / (2 if causal else 1)
    row = {"B": B, "H": H, "S": S, "D": D, "causal": causal,
           "path": kernel_path(grad.manifest)}

    fwd.allocate({"query": q, "key": k, "value": v})
    fwd.run()
    o, lse = fwd.buffer("output").clone(), fwd.buffer("lse").clone()
    fwd.release()
    # Memory of the backward step: what it allocates beyond its inputs
    # (gradients, workspaces, temporaries), by the torch allocator's peak,
    # which holds every buffer of our set.
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    grad.allocate({"query": q, "key": k, "value": v, "output": o,
                   "output_grad": do, "lse": lse})
    for name in ("query_grad", "key_grad", "value_grad"):
        grad.buffer(name).fill_(float("nan"))
    grad.run()
    torch.cuda.synchronize()
    row["bpt_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    row["bpt_ms"], row["bpt_runs"] = time_ms(grad.run, max_seconds)
    row["bpt"] = flops / row["bpt_ms"] / 1e9
    ours = [grad.buffer(n).clone() for n in ("query_grad", "key_grad", "value_grad")]
    grad.release()

    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    gqa = H != k_shape[1]
    for name, backend in [("cudnn", SDPBackend.CUDNN_ATTENTION),
                          ("flash", SDPBackend.FLASH_ATTENTION)]:
        try:
            with sdpa_kernel(backend):
                out = F.scaled_dot_product_attention(*leaves, is_causal=causal,
                                                     enable_gqa=gqa)
                fn = lambda: torch.autograd.grad(out, leaves, do, retain_graph=True)
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                theirs = fn()
                torch.cuda.synchronize()
                row[name + "_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
                ms, _ = time_ms(fn, max_seconds)
            row[name + "_ms"], row[name] = ms, flops / ms / 1e9
            if "rel_diff_to" not in row:  # the first back end that runs
                row["rel_diff_to"] = name
                for n, a, b in zip(("dq", "dk", "dv"), ours, theirs):
                    row[f"rel_diff_{n}"] = rel(a, b)
            del out
        except RuntimeError as e:
            row[name + "_ms"] = row[name] = None
            print(f"  {name} backward: not available ({str(e).splitlines()[0]})")
    return row


def print_backward_table(kernels, names, max_seconds, results):
    """The attention-backward table: one row per attention_grad set that has
    an --lse forward set of the same shape beside it (bench/compile.sh)."""
    grads = [n for n in names if manifest_op(kernels, n) == "attention_grad"]
    if not grads:
        return
    print("attention backward (bpt/x: bpt's TFLOP/s over x's; differences to cuDNN's "
          "gradients, else flash's)")
    print("| D | S | B x H | causal | bpt kernel | bpt ms | bpt TFLOP/s | cuDNN ms | cuDNN TFLOP/s "
          "| flash ms | flash TFLOP/s | bpt/cuDNN | bpt/flash | rel. diff dq, dk, dv to SDPA "
          "| MiB bpt, cuDNN, flash |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in grads:
        lse_name = n.replace("attention-grad-", "attention-lse-", 1)
        if lse_name == n or lse_name not in names:
            print(f"  {n}: no forward set {lse_name} beside it (bench/compile.sh "
                  f"makes both); skipped")
            continue
        r = bench_backward(os.path.join(kernels, n), os.path.join(kernels, lse_name),
                           max_seconds)
        results["backward"].append(r)
        fmt = lambda v, f=".2f": "n/a" if v is None else format(v, f)
        ratio = lambda key: r["bpt"] / r[key] if r.get(key) else None
        diffs = ", ".join(fmt(r.get(f"rel_diff_{g}"), ".1e") for g in ("dq", "dk", "dv"))
        print(f"| {r['D']} | {r['S']} | {r['B']} x {r['H']} | {r['causal']} | {r['path']} | "
              f"{r['bpt_ms']:.3f} | {r['bpt']:.1f} | {fmt(r.get('cudnn_ms'), '.3f')} | "
              f"{fmt(r.get('cudnn'), '.1f')} | {fmt(r.get('flash_ms'), '.3f')} | "
              f"{fmt(r.get('flash'), '.1f')} | {fmt(ratio('cudnn'))} | {fmt(ratio('flash'))} | "
              f"{diffs} | {fmt(r.get('bpt_mib'), '.0f')}, {fmt(r.get('cudnn_mib'), '.0f')}, "
              f"{fmt(r.get('flash_mib'), '.0f')} |", flush=True)


def manifest_op(kernels, name):
    """The op of manifest `name` in `kernels`, or None for other files."""
    if not name.endswith(".json"):
        return None
    with open(os.path.join(kernels, name)) as f:
        return json.load(f).get("op")


ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu,
               "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}
GATES = {"swiglu": F.silu, "geglu": F.gelu}


def eager_ffn(x, p, act):
    """bpt.ffn in eager PyTorch (weights [in, out])."""
    if act in GATES:
        return (GATES[act](x @ p["w_gate"]) * (x @ p["w_in"])) @ p["w_out"]
    return ACTIVATIONS[act](x @ p["w_in"]) @ p["w_out"]


def eager_norm(x, p, which, opts):
    eps = opts.get("epsilon", 1e-5)
    if opts.get("norm", "rms_norm") == "layer_norm":
        return F.layer_norm(x, (x.shape[-1],), p[which + "_weight"],
                            p[which + "_bias"], eps)
    return F.rms_norm(x, (x.shape[-1],), p[which + "_weight"], eps)


def eager_block(x, p, opts):
    """Pre-norm block with bpt's layouts (weights [in, out]) and the kernel
    set's options (heads, kv_heads, causal, norm, activation)."""
    heads, kv_heads, causal = opts["heads"], opts["kv_heads"], opts["causal"]
    B, S, Hd = x.shape
    D = p["w_q"].shape[1] // heads
    h = eager_norm(x, p, "norm1", opts)
    q = (h @ p["w_q"]).view(B, S, heads, D).transpose(1, 2)
    k = (h @ p["w_k"]).view(B, S, kv_heads, D).transpose(1, 2)
    v = (h @ p["w_v"]).view(B, S, kv_heads, D).transpose(1, 2)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        a = F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                           enable_gqa=heads != kv_heads)
    r = x + a.transpose(1, 2).reshape(B, S, heads * D) @ p["w_o"]
    h2 = eager_norm(r, p, "norm2", opts)
    return r + eager_ffn(h2, p, opts.get("activation", "gelu"))


def random_inputs(manifest):
    """Seeded uniform inputs for a set's input buffers: weights (2-D) in
    [-1, 1] / sqrt(fan-in), the rest in [-1, 1]."""
    gen = torch.Generator(device="cuda").manual_seed(0)
    params = {}
    for b in manifest["buffers"]:
        if b["role"] != "input":
            continue
        scale = 1.0 / math.sqrt(b["shape"][0]) if len(b["shape"]) == 2 else 1.0
        t = torch.rand(b["shape"], device="cuda", generator=gen, dtype=torch.float32)
        params[b["name"]] = t.mul_(2).sub_(1).mul_(scale).to(TORCH_DTYPES[b["dtype"]])
    return params


def peak_bytes(fn):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base, out


def bench_block(path, max_seconds, est_seconds=None):
    ks = KernelSet(path)
    m = ks.manifest
    opts = m["options"]
    params = random_inputs(m)
    x = params["input"]
    B, S, Hd = x.shape
    row = {"S": S, "hidden": Hd, "ffn": params["w_in"].shape[1],
           "heads": opts["heads"]}
    fn = lambda: eager_block(x, params, opts)
    row["eager_peak_bytes"], ref = peak_bytes(fn)

    def ours():
        ks.allocate(params)
        ks.run()
        return ks.buffer("result")
    if est_seconds is not None and est_seconds > max_seconds:
        # Too slow on the portable path to time here: allocate only.
        row["bpt_peak_bytes"], _ = peak_bytes(lambda: ks.allocate(params))
        row["eager_ms"], _ = time_ms(fn, max_seconds)
        row["bpt_ms"] = None
        row["bpt_note"] = f"not timed (estimated {est_seconds:.0f} s per run)"
    else:
        row["bpt_peak_bytes"], out = peak_bytes(ours)
        row["rel_diff_to_eager"] = rel(out, ref)
        # A few runs when slow (the portable path), the median of 20 when
        # not, alternating with eager's.
        slow = est_seconds is not None and est_seconds > 1
        if slow:
            row["eager_ms"], _ = time_ms(fn, max_seconds)
            row["bpt_ms"], row["bpt_runs"] = time_ms(
                ks.run, max_seconds, warmup=0, max_runs=3)
        else:
            row["eager_ms"], row["bpt_ms"], row["bpt_runs"] = time_pair_ms(
                fn, ks.run, max_seconds, warmup=2)
            row["bpt_profile"] = ks.profile()
            time_graph(row, ks.run, max_seconds)
    ks.release()
    return row


def bench_train(path, max_seconds):
    """A block's training step: bpt's `--op=block --backward` set against
    eager PyTorch's forward + backward (autograd, SDPA flash) on the same
    inputs and upstream gradient; time, allocator peak above the inputs and
    weights (weight gradients included, both), each gradient's difference,
    and bpt's time per kind of kernel."""
    ks = KernelSet(path)
    m = ks.manifest
    opts = m["options"]
    params = random_inputs(m)
    x = params["input"].detach().requires_grad_()
    dy = params["output_grad"]
    weights = {k: v.detach().requires_grad_() for k, v in params.items()
               if k not in ("input", "output_grad")}
    B, S, Hd = x.shape
    row = {"S": S, "B": B, "hidden": Hd, "ffn": params["w_in"].shape[1],
           "heads": opts["heads"], "activation": opts.get("activation")}

    def eager_step():
        for t in [x, *weights.values()]:
            t.grad = None
        y = eager_block(x, weights, opts)
        y.backward(dy)
        return y
    row["eager_peak_bytes"], _ = peak_bytes(eager_step)
    eager_grads = {"input_grad": x.grad}
    eager_grads.update({k + "_grad": w.grad for k, w in weights.items()})

    def ours():
        ks.allocate(params)
        ks.run()
    # Above the inputs and weights, as eager's: the set's copies of them
    # are allocated inside the window.
    input_bytes = sum(torch.empty(b["shape"], dtype=TORCH_DTYPES[b["dtype"]], device="meta")
                      .nbytes for b in m["buffers"] if b["role"] == "input")
    peak, _ = peak_bytes(ours)
    row["bpt_peak_bytes"] = peak - input_bytes
    row["rel_diff_to_eager"] = {k: rel(ks.buffer(k), g) for k, g in eager_grads.items()}
    # The step's gradients above are kept: eager_step gives the weights
    # new ones.
    row["eager_ms"], row["bpt_ms"], row["bpt_runs"] = time_pair_ms(
        eager_step, ks.run, max_seconds, warmup=2)
    row["bpt_profile"] = ks.profile()
    time_graph(row, ks.run, max_seconds)
    ks.release()
    return row


def bench_maxlen(kernels, names, cap_gib):
    """The longest sequence one block's training step fits in under a
    device-memory cap (issue 13): eager PyTorch by search under
    torch.cuda.set_per_process_memory_fraction (inputs, weights, gradients
    and every temporary inside the cap), bpt from its manifests (every
    buffer: inputs, weights, outputs, workspaces) of `maxlen-s*` sets; the
    longest bpt set that fits is then run under the same cap."""
    sets = sorted((n for n in names if n.startswith("maxlen-s") and n.endswith(".json")),
                  key=lambda n: int(n[len("maxlen-s"):-len(".json")]))
    if not sets:
        return None
    cap = int(cap_gib * 2**30)
    total = torch.cuda.get_device_properties(0).total_memory
    manifests = {n: json.load(open(os.path.join(kernels, n))) for n in sets}
    first = manifests[sets[0]]
    opts = first["options"]
    weight_buffers = [b for b in first["buffers"] if b["role"] == "input"
                      and b["name"] not in ("input", "output_grad")]
    hidden = next(b["shape"][0] for b in weight_buffers if b["name"] == "w_q")
    weight_bytes = sum(b["bytes"] for b in weight_buffers)
    torch.cuda.set_per_process_memory_fraction(cap / total)

    def eager_fits(S):
        try:
            ws = {k: v.detach().requires_grad_() for k, v in random_inputs(first).items()
                  if k not in ("input", "output_grad")}
            x = torch.rand(1, S, hidden, device="cuda", dtype=torch.bfloat16).requires_grad_()
            dy = torch.rand(1, S, hidden, device="cuda", dtype=torch.bfloat16)
            eager_block(x, ws, opts).backward(dy)
            torch.cuda.synchronize()
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            ws = x = dy = None
            torch.cuda.empty_cache()

    lo, hi = 0, 1024
    while eager_fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1024:
        mid = (lo + hi) // 2 // 1024 * 1024
        lo, hi = (mid, hi) if eager_fits(mid) else (lo, mid)
    row = {"cap_gib": cap_gib, "eager_max_seq": lo, "weight_bytes": weight_bytes}
    fitting = [(int(n[len("maxlen-s"):-len(".json")]), n) for n in sets
               if sum(b["bytes"] for b in manifests[n]["buffers"]) <= cap]
    row["bpt_sets"] = {n: sum(b["bytes"] for b in manifests[n]["buffers"]) for n in sets}
    # The longest set whose manifest fits is run under the cap; where the
    # caching allocator's fragmentation still makes it fail, the next
    # shorter one (each failure is reported, not hidden).
    row["bpt_oom"] = []
    for S, n in reversed(fitting):
        ks = KernelSet(os.path.join(kernels, n))
        try:
            params = random_inputs(ks.manifest)
            torch.cuda.empty_cache()
            ks.allocate(params)
            ks.run()
            torch.cuda.synchronize()
        except torch.OutOfMemoryError:
            row["bpt_oom"].append(S)
            ks.release()
            params = None
            torch.cuda.empty_cache()
            continue
        row["bpt_max_seq"] = S
        # The check's own temporaries are not the step's: lift the cap first.
        torch.cuda.set_per_process_memory_fraction(1.0)
        row["bpt_ran"] = bool(torch.isfinite(ks.buffer("input_grad")).all())
        ks.release()
        params = None
        torch.cuda.empty_cache()
        break
    torch.cuda.set_per_process_memory_fraction(1.0)
    return row


def bench_ffn(path, max_seconds):
    """An FFN kernel set against eager PyTorch (cuBLAS GEMMs + activation)."""
    ks = KernelSet(path)
    m = ks.manifest
    act = m["options"]["activation"]
    params = random_inputs(m)
    x, w_in = params["input"], params["w_in"]
    fn = lambda: eager_ffn(x, params, act)
    rows = x.numel() // x.shape[-1]
    flops = 2.0 * rows * x.shape[-1] * w_in.shape[1] * (3 if "w_gate" in params else 2)
    row = {"rows": rows, "hidden": x.shape[-1], "ffn": w_in.shape[1], "activation": act}
    ref = fn()
    ks.allocate(params)
    ks.buffer("result").fill_(float("nan"))
    row["eager_ms"], row["bpt_ms"], row["bpt_runs"] = time_pair_ms(
        fn, ks.run, max_seconds)
    time_graph(row, ks.run, max_seconds)
    row["rel_diff_to_eager"] = rel(ks.buffer("result"), ref)
    row["bpt_profile"] = ks.profile()
    row["bpt_tflops"] = flops / row["bpt_ms"] / 1e9
    row["eager_tflops"] = flops / row["eager_ms"] / 1e9
    ks.release()
    return row


def plot(results, path):
    """Bar charts: attention TFLOP/s per back end; block peak memory."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not found: no plot")
        return
    device = results["device"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    att = results["attention"]
    if att:
        labels = [f"D{r['D']} S{r['S']//1024}k{' c' if r['causal'] else ''}" for r in att]
        xs = np.arange(len(att))
        for i, key in enumerate(["bpt", "flash", "cudnn", "efficient"]):
            axes[0].bar(xs + (i - 1.5) * 0.2, [r.get(key) or 0 for r in att], 0.2, label=key)
        axes[0].set_xticks(xs, labels, rotation=60, fontsize=7)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("TFLOP/s (bf16)")
        axes[0].set_title("attention forward")
        axes[0].legend()
    blk = results["block"]
    if blk:
        xs = np.arange(len(blk))
        axes[1].bar(xs - 0.2, [r["eager_peak_bytes"] / 2**20 for r in blk], 0.4, label="eager PyTorch")
        axes[1].bar(xs + 0.2, [r["bpt_peak_bytes"] / 2**20 for r in blk], 0.4, label="bpt fused")
        axes[1].set_xticks(xs, [f"S {r['S']//1024}k" for r in blk])
        axes[1].set_ylabel("peak device memory while running (MiB)")
        axes[1].set_title(f"block, hidden {blk[0]['hidden']}, ffn {blk[0]['ffn']}")
        axes[1].legend()
    fig.suptitle(device)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def copy_bandwidth_gbps(max_seconds):
    """Device-to-device copy of 1 GiB: bytes read plus bytes written."""
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms, _ = time_ms(lambda: dst.copy_(src), max_seconds)
    del src, dst
    return 2 * 2**30 / ms / 1e6


def bench_shape_attention(path, max_seconds, copy_gbps):
    """One attention set against the fastest SDPA back end on its inputs
    (GQA through enable_gqa; causal with Sq != Skv bottom-right aligned,
    as bpt.attention is)."""
    from torch.nn.attention.bias import causal_lower_right
    ks = KernelSet(path)
    q_shape = ks.manifest["buffers"][0]["shape"]
    k_shape = ks.manifest["buffers"][1]["shape"]
    causal = ks.manifest["options"].get("causal", False)
    dtype = TORCH_DTYPES[ks.manifest["buffers"][0]["dtype"]]
    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (uniform(s, gen, dtype) for s in (q_shape, k_shape, k_shape))
    row = {"path": kernel_path(ks.manifest)}
    ks.allocate({"query": q, "key": k, "value": v})
    ks.buffer("result").fill_(float("nan"))
    row["bpt_ms"], _ = time_ms(ks.run, max_seconds)
    time_graph(row, ks.run, max_seconds)
    ours = ks.buffer("result").clone()
    if len(ks.manifest["launches"]) > 1:  # e.g. split-K/V partials + combine
        row["bpt_profile"] = ks.profile()
    ks.release()
    Sq, Skv = q_shape[2], k_shape[2]
    kw = {"enable_gqa": q_shape[1] != k_shape[1]}
    if causal and Sq != Skv:
        kw["attn_mask"] = causal_lower_right(Sq, Skv)
    else:
        kw["is_causal"] = causal
    best = None
    for name, backend in [("flash", SDPBackend.FLASH_ATTENTION),
                          ("cudnn", SDPBackend.CUDNN_ATTENTION),
                          ("efficient", SDPBackend.EFFICIENT_ATTENTION)]:
        try:
            # A back end that cannot take the shape warns, then raises.
            with sdpa_kernel(backend), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                fn = lambda: F.scaled_dot_product_attention(q, k, v, **kw)
                out = fn()
                ms, _ = time_ms(fn, max_seconds)
        except RuntimeError:
            continue
        if best is None or ms < best[1]:
            best = (name, ms, out, backend)
    if best:
        row["peer"], row["peer_ms"] = best[0], best[1]
        row["rel_diff_to_peer"] = rel(ours, best[2])
        if GRAPHS:
            # The peer as one CUDA graph too: at tens of microseconds both
            # sides' host launch paths can outlast the kernels.
            with sdpa_kernel(best[3]), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                row["peer_graph_ms"], _ = time_ms(
                    graphed(lambda: F.scaled_dot_product_attention(q, k, v, **kw)),
                    max_seconds)
    if Sq <= 64:  # decode: the K and V bytes against the copy bandwidth
        kv_bytes = 2 * k.numel() * k.element_size()
        row["kv_gbps"] = kv_bytes / row["bpt_ms"] / 1e6
        row["kv_share_of_copy"] = row["kv_gbps"] / copy_gbps
    return row


def bench_shapes(kernels, names, max_seconds, results):
    """bench/shapes.txt's kernel sets (shape-NAME.json), each against the
    best PyTorch peer for its op."""
    shapes = [n for n in names if n.startswith("shape-") and n.endswith(".json")]
    if not shapes:
        return
    copy_gbps = copy_bandwidth_gbps(max_seconds)
    print(f"copy bandwidth: {copy_gbps:.0f} GB/s")
    print("| shape | op | bpt path | bpt ms | peer | peer ms | bpt/peer time | <= 1.1 | K/V share of copy | rel. diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in shapes:
        path = os.path.join(kernels, n)
        op = manifest_op(kernels, n)
        if op == "attention":
            r = bench_shape_attention(path, max_seconds, copy_gbps)
        elif op == "ffn":
            r = bench_ffn(path, max_seconds)
            r.update(peer="eager", peer_ms=r["eager_ms"], path=kernel_path(json.load(open(path))),
                     rel_diff_to_peer=r["rel_diff_to_eager"])
        elif op == "block":
            r = bench_block(path, max_seconds)
            r.update(peer="eager", peer_ms=r["eager_ms"], path=kernel_path(json.load(open(path))),
                     rel_diff_to_peer=r.get("rel_diff_to_eager", float("nan")))
        else:
            continue
        r["shape"], r["op"] = n[len("shape-"):-len(".json")], op
        results["shapes"].append(r)
        ratio = r["bpt_ms"] / r["peer_ms"] if r.get("peer_ms") else float("nan")
        share = f"{r['kv_share_of_copy']:.0%}" if "kv_share_of_copy" in r else ""
        graph = f" (graph {r['bpt_graph_ms']:.3f})" if "bpt_graph_ms" in r else ""
        peer_graph = f" (graph {r['peer_graph_ms']:.3f})" if "peer_graph_ms" in r else ""
        print(f"| {r['shape']} | {op} | {r['path']} | {r['bpt_ms']:.3f}{graph} | {r.get('peer', 'n/a')} | "
              f"{r.get('peer_ms', float('nan')):.3f}{peer_graph} | {ratio:.2f} | {'yes' if ratio <= 1.1 else 'NO'} | "
              f"{share} | {r.get('rel_diff_to_peer', float('nan')):.1e} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels")
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot", metavar="RESULTS_JSON",
                    help="only draw the plot of a results file into --out")
    ap.add_argument("--max-seconds", type=float, default=20.0)
    ap.add_argument("--only", default="",
                    help="attention, backward, block, ffn, shapes, train "
                         "(block training steps) or maxlen (the longest "
                         "training step under --cap-gib), or several "
                         "separated by commas; the last three only when "
                         "asked")
    ap.add_argument("--cap-gib", type=float, default=8.0,
                    help="device-memory cap of --only maxlen")
    ap.add_argument("--graphs", action="store_true",
                    help="also time FFN, block and training-step sets as one "
                         "CUDA graph each (bpt_graph_ms), and the shape "
                         "table's attention sets and their peers "
                         "(peer_graph_ms)")
    args = ap.parse_args()
    kinds = {"attention", "backward", "block", "ffn", "shapes", "train",
             "maxlen"}
    only = {k for k in args.only.split(",") if k}
    if only - kinds:
        ap.error(f"--only: unknown {', '.join(sorted(only - kinds))} "
                 f"(one or more of {', '.join(sorted(kinds))})")
    default = {"attention", "backward", "block", "ffn"}

    def wants(kind):
        return kind in (only or default)
    global GRAPHS
    GRAPHS = args.graphs
    if args.plot:
        with open(args.plot) as f:
            plot(json.load(f), os.path.join(args.out, "bench.png"))
        return 0
    if not args.kernels:
        ap.error("--kernels is required")
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.cuda.get_device_name()
    print(f"device: {device}, torch {torch.__version__}, cupy {cupy.__version__}")
    names = sorted(os.listdir(args.kernels))
    results = {"device": device, "torch": torch.__version__,
               "attention": [], "backward": [], "block": [], "ffn": [],
               "shapes": []}
    if wants("attention"):
        print("| D | S | B x H | causal | bpt kernel | bpt TFLOP/s | flash | cuDNN | efficient | bpt/flash | rel. diff to SDPA |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for n in names:
            if manifest_op(args.kernels, n) == "attention":
                r = bench_attention(os.path.join(args.kernels, n), args.max_seconds)
                results["attention"].append(r)
                fmt = lambda v: "n/a" if v is None else f"{v:.2f}"
                ratio = r["bpt"] / r["flash"] if r.get("flash") else float("nan")
                print(f"| {r['D']} | {r['S']} | {r['B']} x {r['H']} | {r['causal']} | {r['path']} | "
                      f"{r['bpt']:.3f} | {fmt(r['flash'])} | {fmt(r['cudnn'])} | "
                      f"{fmt(r['efficient'])} | {ratio:.4f} | {r.get('rel_diff_to_sdpa', float('nan')):.1e} |",
                      flush=True)
    if wants("backward"):
        print_backward_table(args.kernels, names, args.max_seconds, results)
    if wants("block"):
        print("| S | hidden | ffn | eager ms | bpt ms | bpt/eager time | eager peak MiB | bpt peak MiB | bpt/eager memory | rel. diff to eager |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        last = None
        for n in sorted((n for n in names if n.startswith("block") and n.endswith(".json")),
                        key=lambda n: json.load(open(os.path.join(args.kernels, n)))["buffers"][0]["shape"][1]):
            est = None
            if last and last.get("bpt_ms"):
                # The portable path's time grows with S^2 (attention).
                s = json.load(open(os.path.join(args.kernels, n)))["buffers"][0]["shape"][1]
                est = last["bpt_ms"] / 1000 * (s / last["S"]) ** 2
            r = bench_block(os.path.join(args.kernels, n), args.max_seconds, est)
            results["block"].append(r)
            last = r
            mib = lambda b: b / 2**20
            bpt_ms = "n/a" if r["bpt_ms"] is None else f"{r['bpt_ms']:.2f}"
            ratio = "n/a" if r["bpt_ms"] is None else f"{r['bpt_ms'] / r['eager_ms']:.2f}"
            print(f"| {r['S']} | {r['hidden']} | {r['ffn']} | {r['eager_ms']:.2f} | {bpt_ms} | {ratio} | "
                  f"{mib(r['eager_peak_bytes']):.0f} | {mib(r['bpt_peak_bytes']):.0f} | "
                  f"{r['bpt_peak_bytes'] / r['eager_peak_bytes']:.2f} | "
                  f"{r.get('rel_diff_to_eager', float('nan')):.1e} | {r.get('bpt_note', '')}", flush=True)
    if wants("train"):
        print("| B x S | hidden | ffn | activation | eager ms | bpt ms | bpt/eager time | eager peak MiB | bpt peak MiB | bpt/eager memory | largest gradient diff to eager |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for n in names:
            # maxlen-* sets (BENCH_OPS=maxlen, same op) are --only maxlen's.
            if n.startswith("maxlen-") or manifest_op(args.kernels, n) != "block_backward":
                continue
            r = bench_train(os.path.join(args.kernels, n), args.max_seconds)
            results.setdefault("train", []).append(r)
            mib = lambda b: b / 2**20
            worst = max(r["rel_diff_to_eager"].items(), key=lambda kv: kv[1])
            print(f"| {r['B']} x {r['S']} | {r['hidden']} | {r['ffn']} | {r['activation']} | "
                  f"{r['eager_ms']:.2f} | {r['bpt_ms']:.2f} | {r['bpt_ms'] / r['eager_ms']:.2f} | "
                  f"{mib(r['eager_peak_bytes']):.0f} | {mib(r['bpt_peak_bytes']):.0f} | "
                  f"{r['bpt_peak_bytes'] / r['eager_peak_bytes']:.2f} | "
                  f"{worst[1]:.1e} ({worst[0]}) |", flush=True)
            for kind, k in r["bpt_profile"].items():
                print(f"    {kind}: {k['ms']:.2f} ms in {k['launches']} launches; "
                      f"slowest {k['slowest']}", flush=True)
    if wants("ffn"):
        ffns = [n for n in names if n.startswith("ffn") and n.endswith(".json")]
        if ffns:
            print("| rows | hidden | ffn | activation | eager ms | bpt ms | bpt TFLOP/s | eager TFLOP/s | bpt/eager time | rel. diff to eager |")
            print("|---|---|---|---|---|---|---|---|---|---|")
        for n in ffns:
            r = bench_ffn(os.path.join(args.kernels, n), args.max_seconds)
            results["ffn"].append(r)
            print(f"| {r['rows']} | {r['hidden']} | {r['ffn']} | {r['activation']} | "
                  f"{r['eager_ms']:.3f} | {r['bpt_ms']:.3f} | {r['bpt_tflops']:.0f} | "
                  f"{r['eager_tflops']:.0f} | {r['bpt_ms'] / r['eager_ms']:.2f} | "
                  f"{r['rel_diff_to_eager']:.1e} |", flush=True)
    if wants("maxlen"):
        r = bench_maxlen(args.kernels, names, args.cap_gib)
        if r:
            results["maxlen"] = r
            ratio = r.get("bpt_max_seq", 0) / max(r["eager_max_seq"], 1)
            print(f"cap {r['cap_gib']} GiB: eager {r['eager_max_seq']} tokens, bpt "
                  f"{r.get('bpt_max_seq', 'none')} (ran: {r.get('bpt_ran')}), "
                  f"{ratio:.2f}x; out of memory under the cap: {r['bpt_oom']}; "
                  f"bpt sets (bytes): {r['bpt_sets']}", flush=True)
    if wants("shapes"):
        bench_shapes(args.kernels, names, args.max_seconds, results)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    plot(results, os.path.join(args.out, "bench.png"))

if __name__ == "__main__":
    sys.exit(main())
