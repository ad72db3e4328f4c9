"""Launch bpt kernel sets on device pointers from PyTorch or CuPy.

A thin ctypes layer over the runtime's C API (include/bpt-c/Runtime.h) in
libbpt_runtime.so; no build step. The runtime uses the device's primary
context, the one PyTorch and CuPy use, so their device pointers can be
passed directly. Launches go to the default stream, or to the stream given
to a call (a torch.cuda.Stream, a CuPy stream or a CUstream as an integer).

    import torch, bpt
    rt = bpt.Runtime()
    attention = bpt.KernelSet(rt, "att.json")        # from bpt-compile
    out = torch.empty_like(q)
    attention(query=q, key=k, value=v, result=out)  # tensors by buffer name

TMA tensor maps that the manifest lists (version 2) are built by the
runtime over the buffers passed in (at each map's byte_offset), and rebuilt
when a buffer's address changes. With `graphs` (KernelSet(..., graphs=N)),
a call records its launches once as a CUDA graph per set of buffer
addresses (up to N, the least recently used dropped) and replays it:
one launch's cost for the whole set, which matters for short sets. An argument {"buffer": i, "byte_offset": n}
passes buffer i's pointer plus n. Without graphs, each launch's arguments
are built once per set of buffer and map addresses (up to
`KernelSet.PREPARED_LIMIT`, the least recently used dropped), so that a
call with buffers seen before costs the driver calls and little else.

The library is found through $BPT_RUNTIME_LIB, else next to this package in
a build tree (build/lib), else by the dynamic loader's search path.
"""
import ctypes
import json
import os


class RuntimeError_(RuntimeError):
    """A failure reported by the bpt runtime, with its message."""


def _find_library():
    path = os.environ.get("BPT_RUNTIME_LIB")
    if path:
        return path
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "..", "..", "build", "lib", "libbpt_runtime.so"),
                      os.path.join(here, "libbpt_runtime.so")):
        if os.path.exists(candidate):
            return candidate
    return "libbpt_runtime.so"


class _Handle(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p)]


_lib = None


def _library():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(_find_library())
        lib.bptRuntimeLastError.restype = ctypes.c_char_p
        lib.bptRuntimeCreate.argtypes = [ctypes.c_int, ctypes.POINTER(_Handle)]
        lib.bptRuntimeDestroy.argtypes = [_Handle]
        lib.bptRuntimeSynchronize.argtypes = [_Handle]
        lib.bptRuntimeMalloc.argtypes = [_Handle, ctypes.c_size_t,
                                         ctypes.POINTER(ctypes.c_uint64)]
        lib.bptRuntimeFree.argtypes = [_Handle, ctypes.c_uint64]
        lib.bptModuleLoadPTXFile.argtypes = [_Handle, ctypes.c_char_p,
                                             ctypes.POINTER(_Handle)]
        lib.bptModuleDestroy.argtypes = [_Handle]
        lib.bptRuntimeCreateTensorMap.argtypes = [
            _Handle, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_int,
            ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64),
            ctypes.c_int, ctypes.c_int, ctypes.c_int,
            ctypes.POINTER(ctypes.c_uint64)]
        lib.bptModuleLaunchWithFlags.argtypes = [
            _Handle, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32),
            ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32,
            ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t, ctypes.c_uint64,
            ctypes.c_uint32]
        lib.bptGraphBeginRecording.argtypes = [_Handle, ctypes.POINTER(ctypes.c_uint64)]
        lib.bptGraphEndRecording.argtypes = [_Handle, ctypes.c_uint64,
                                             ctypes.POINTER(_Handle)]
        lib.bptGraphLaunch.argtypes = [_Handle, ctypes.c_uint64]
        lib.bptGraphDestroy.argtypes = [_Handle]
        _lib = lib
    return _lib


# bpt-c/Runtime.h's BPT_LAUNCH_DEPENDENT: the kernel begins with
# griddepcontrol.wait (the manifest's "dependent" launches).
_LAUNCH_DEPENDENT = 1


def _check(status):
    if status != 0:
        raise RuntimeError_(_library().bptRuntimeLastError().decode())


def _pointer_and_bytes(obj):
    """(device pointer, byte size or None) of a torch/cupy array or an int."""
    if isinstance(obj, int):
        return obj, None
    if hasattr(obj, "data_ptr"):  # torch.Tensor
        if not obj.is_cuda or not obj.is_contiguous():
            raise ValueError("tensors must be contiguous CUDA tensors")
        return obj.data_ptr(), obj.numel() * obj.element_size()
    if hasattr(obj, "data") and hasattr(obj.data, "ptr"):  # cupy.ndarray
        return obj.data.ptr, obj.nbytes
    raise TypeError(f"cannot take a device pointer from {type(obj).__name__}")


def _stream_handle(stream):
    """The CUstream (an integer) of a torch.cuda.Stream, a CuPy stream, an
    integer or None (the default stream: 0)."""
    if stream is None:
        return 0
    if isinstance(stream, int):
        return stream
    for attribute in ("cuda_stream", "ptr"):  # torch, cupy
        if hasattr(stream, attribute):
            return int(getattr(stream, attribute))
    raise TypeError(f"cannot take a CUDA stream from {type(stream).__name__}")


class Runtime:
    """The driver, one device and its primary context."""

    def __init__(self, device=0):
        self._handle = _Handle()
        _check(_library().bptRuntimeCreate(device, ctypes.byref(self._handle)))

    def synchronize(self):
        _check(_library().bptRuntimeSynchronize(self._handle))

    def malloc(self, nbytes):
        pointer = ctypes.c_uint64()
        _check(_library().bptRuntimeMalloc(self._handle, nbytes, ctypes.byref(pointer)))
        return pointer.value

    def free(self, pointer):
        _check(_library().bptRuntimeFree(self._handle, pointer))

    def create_tensor_map(self, address, dtype, shape, box, swizzle_bytes=0,
                          l2_promotion_bytes=0, oob_nan=False):
        """Device address of a new TMA tensor map (128 bytes; free() it) of
        the row-major tensor at `address`, dimensions outermost first."""
        if len(shape) != len(box):
            raise ValueError(f"shape {list(shape)} and box {list(box)} differ in rank")
        rank = len(shape)
        pointer = ctypes.c_uint64()
        _check(_library().bptRuntimeCreateTensorMap(
            self._handle, address, dtype.encode(), rank,
            (ctypes.c_int64 * rank)(*shape), (ctypes.c_int64 * rank)(*box),
            swizzle_bytes, l2_promotion_bytes, 1 if oob_nan else 0,
            ctypes.byref(pointer)))
        return pointer.value

    def close(self):
        if self._handle.ptr:
            _check(_library().bptRuntimeDestroy(self._handle))
            self._handle = _Handle()


# Manifest spellings of the tensor-map options, as byte counts.
_SWIZZLE_BYTES = {"none": 0, "32b": 32, "64b": 64, "128b": 128}
_L2_PROMOTION_BYTES = {"none": 0, "64b": 64, "128b": 128, "256b": 256}


def _arg_pointer(arg, buffers, tensor_maps):
    """The device address a manifest launch argument stands for: a buffer
    index, {"buffer": i, "byte_offset": n}, {"tensor_map": i}, or the value
    of {"i32": n}."""
    if isinstance(arg, dict):
        if "i32" in arg:
            # A scalar: the driver reads the low 4 bytes of its 8-byte slot.
            return arg["i32"] & 0xFFFFFFFF
        if "tensor_map" in arg:
            return tensor_maps[arg["tensor_map"]]
        return buffers[arg["buffer"]] + arg.get("byte_offset", 0)
    return buffers[arg]


class _Launch:
    """One manifest launch as the driver call takes it: the kernel's name,
    grid, block, shared memory and flags, and its arguments' recipe."""

    def __init__(self, launch):
        self.kernel = launch["kernel"].encode()
        self.grid = (ctypes.c_uint32 * 3)(*(list(launch["grid"]) + [1, 1])[:3])
        self.block = (ctypes.c_uint32 * 3)(*(list(launch["block"]) + [1, 1])[:3])
        self.shared_bytes = launch.get("dynamic_shared_memory", 0)
        self.flags = _LAUNCH_DEPENDENT if launch.get("dependent") else 0
        self.args = launch["args"]
        self.num_args = len(self.args)

    def arguments(self, pointers, maps):
        return (ctypes.c_uint64 * self.num_args)(
            *[_arg_pointer(a, pointers, maps) for a in self.args])


class KernelSet:
    """A kernel set from bpt-compile: its manifest and its loaded PTX.

    Calling it with the input and output buffers by name launches every
    kernel of the manifest in order, on the default stream or on `stream`
    (a torch.cuda.Stream, a CuPy stream or a CUstream as an integer).
    Workspace buffers are allocated by the runtime on the first call and
    kept (pass them by name to use your own): calls of one KernelSet on
    different streams must not overlap in time, since they share them.
    """

    def __init__(self, runtime, manifest_path, graphs=0):
        self.runtime = runtime
        # (stream, buffer addresses) -> recorded graph, most recent last.
        self._graph_limit = graphs
        self._graphs = {}
        with open(manifest_path) as f:
            self.manifest = json.load(f)
        ptx = os.path.join(os.path.dirname(os.path.abspath(manifest_path)),
                           self.manifest["ptx"])
        self._module = _Handle()
        _check(_library().bptModuleLoadPTXFile(runtime._handle, ptx.encode(),
                                               ctypes.byref(self._module)))
        self._workspaces = {}
        # Per tensor map: (address of its tensor, address of the map).
        self._tensor_maps = [None] * len(self.manifest.get("tensor_maps", []))
        # What a launch needs besides its arguments, built once.
        self._launches = [_Launch(launch) for launch in self.manifest["launches"]]
        # (buffer addresses, map addresses) -> each launch's argument array,
        # most recent last.
        self._prepared = {}

    @property
    def buffers(self):
        return self.manifest["buffers"]

    def __call__(self, stream=None, **buffers):
        stream = _stream_handle(stream)
        pointers = []
        for b in self.buffers:
            name = b["name"]
            if name in buffers:
                pointer, nbytes = _pointer_and_bytes(buffers[name])
                if nbytes is not None and nbytes < b["bytes"]:
                    raise ValueError(f"buffer '{name}' has {nbytes} bytes, the "
                                     f"kernel set needs {b['bytes']}")
                if pointer == 0 or pointer % 16 != 0:
                    # Kernel sets access their buffers 16 bytes at a time
                    # (the C runtime's checkBufferPointers says the same).
                    raise ValueError(f"buffer '{name}' is at {pointer:#x}, which "
                                     "is not a 16-byte aligned device address")
            elif b["role"] == "workspace":
                if name not in self._workspaces:
                    self._workspaces[name] = self.runtime.malloc(b["bytes"])
                pointer = self._workspaces[name]
            else:
                raise ValueError(f"missing {b['role']} buffer '{name}'")
            pointers.append(pointer)
        maps, built = self._update_tensor_maps(pointers)
        if built and stream != 0:
            # A map is written by a copy on the default stream, which a
            # non-blocking stream does not wait for.
            self.runtime.synchronize()
        if self._graph_limit:
            self._replay(pointers, maps, stream)
        else:
            self._launch_all(pointers, maps, stream)

    # Argument arrays kept for this many sets of buffer addresses.
    PREPARED_LIMIT = 8

    def _arguments(self, pointers, maps):
        """Each launch's argument array for buffers at `pointers` and tensor
        maps at `maps`, built on the first call with those addresses."""
        key = (tuple(pointers), tuple(maps))
        arrays = self._prepared.pop(key, None)
        if arrays is None:
            arrays = [launch.arguments(pointers, maps) for launch in self._launches]
            if len(self._prepared) >= self.PREPARED_LIMIT:
                del self._prepared[next(iter(self._prepared))]
        self._prepared[key] = arrays
        return arrays

    def _launch_all(self, pointers, maps, stream):
        launch_with_flags = _library().bptModuleLaunchWithFlags
        for launch, args in zip(self._launches, self._arguments(pointers, maps)):
            _check(launch_with_flags(self._module, launch.kernel, launch.grid,
                                     launch.block, launch.shared_bytes, args,
                                     launch.num_args, stream, launch.flags))

    def _replay(self, pointers, maps, stream):
        """Replays the graph recorded for these buffers (recording it first:
        the launches go to a recording stream, and run only when replayed)."""
        # The maps' addresses too: a map rebuilt elsewhere (its buffer moved
        # away and back) is a new recording, never a freed map replayed.
        key = (stream, tuple(pointers), tuple(maps))
        graph = self._graphs.pop(key, None)
        if graph is None:
            lib = _library()
            recording = ctypes.c_uint64()
            _check(lib.bptGraphBeginRecording(self.runtime._handle,
                                              ctypes.byref(recording)))
            graph = _Handle()
            try:
                self._launch_all(pointers, maps, recording.value)
            finally:
                # Ends (and frees) the recording even when a launch failed.
                ended = lib.bptGraphEndRecording(self.runtime._handle,
                                                 recording.value, ctypes.byref(graph))
            _check(ended)
            if len(self._graphs) >= self._graph_limit:
                oldest = next(iter(self._graphs))
                _check(_library().bptGraphDestroy(self._graphs.pop(oldest)))
        self._graphs[key] = graph
        _check(_library().bptGraphLaunch(graph, stream))

    def _update_tensor_maps(self, pointers):
        """Tensor-map addresses for buffers at `pointers`, built on first use
        and rebuilt when their buffer moved (a map holds its address), and
        whether any was built."""
        built = False
        for i, m in enumerate(self.manifest.get("tensor_maps", [])):
            address = pointers[m["buffer"]] + m.get("byte_offset", 0)
            cached = self._tensor_maps[i]
            if cached is not None and cached[0] == address:
                continue
            new = self.runtime.create_tensor_map(
                address, m["dtype"], m["shape"], m["box"],
                _SWIZZLE_BYTES[m["swizzle"]],
                _L2_PROMOTION_BYTES[m.get("l2_promotion", "none")],
                m.get("oob_fill", "zero") == "nan")
            if cached is not None:
                # Queued kernels may still read the old map; cuMemFree only
                # "may" wait for them.
                self.runtime.synchronize()
                self.runtime.free(cached[1])
            self._tensor_maps[i] = (address, new)
            built = True
        return [entry[1] for entry in self._tensor_maps], built

    def close(self):
        self._prepared = {}
        for graph in self._graphs.values():
            _check(_library().bptGraphDestroy(graph))
        self._graphs = {}
        for pointer in self._workspaces.values():
            self.runtime.free(pointer)
        self._workspaces = {}
        for entry in self._tensor_maps:
            if entry is not None:
                self.runtime.free(entry[1])
        self._tensor_maps = [None] * len(self._tensor_maps)
        if self._module.ptr:
            _check(_library().bptModuleDestroy(self._module))
            self._module = _Handle()
