"""Launch bpt kernel sets on device pointers from PyTorch or CuPy.

A thin ctypes layer over the runtime's C API (include/bpt-c/Runtime.h) in
libbpt_runtime.so; no build step. The runtime uses the device's primary
context, the one PyTorch and CuPy use, so their device pointers can be
passed directly, and launches go to the default stream.

    import torch, bpt
    rt = bpt.Runtime()
    attention = bpt.KernelSet(rt, "att.json")        # from bpt-compile
    out = torch.empty_like(q)
    attention(query=q, key=k, value=v, result=out)  # tensors by buffer name

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
        lib.bptModuleLaunch.argtypes = [
            _Handle, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32),
            ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32,
            ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t]
        _lib = lib
    return _lib


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

    def close(self):
        if self._handle.ptr:
            _check(_library().bptRuntimeDestroy(self._handle))
            self._handle = _Handle()


class KernelSet:
    """A kernel set from bpt-compile: its manifest and its loaded PTX.

    Calling it with the input and output buffers by name launches every
    kernel of the manifest in order. Workspace buffers are allocated by the
    runtime on the first call and kept; pass them by name to use your own.
    """

    def __init__(self, runtime, manifest_path):
        self.runtime = runtime
        with open(manifest_path) as f:
            self.manifest = json.load(f)
        ptx = os.path.join(os.path.dirname(os.path.abspath(manifest_path)),
                           self.manifest["ptx"])
        self._module = _Handle()
        _check(_library().bptModuleLoadPTXFile(runtime._handle, ptx.encode(),
                                               ctypes.byref(self._module)))
        self._workspaces = {}

    @property
    def buffers(self):
        return self.manifest["buffers"]

    def __call__(self, **buffers):
        pointers = []
        for b in self.buffers:
            name = b["name"]
            if name in buffers:
                pointer, nbytes = _pointer_and_bytes(buffers[name])
                if nbytes is not None and nbytes < b["bytes"]:
                    raise ValueError(f"buffer '{name}' has {nbytes} bytes, the "
                                     f"kernel set needs {b['bytes']}")
            elif b["role"] == "workspace":
                if name not in self._workspaces:
                    self._workspaces[name] = self.runtime.malloc(b["bytes"])
                pointer = self._workspaces[name]
            else:
                raise ValueError(f"missing {b['role']} buffer '{name}'")
            pointers.append(pointer)
        lib = _library()
        for launch in self.manifest["launches"]:
            grid = (ctypes.c_uint32 * 3)(*launch["grid"])
            block = (ctypes.c_uint32 * 3)(*launch["block"])
            args = (ctypes.c_uint64 * len(launch["args"]))(
                *[pointers[i] for i in launch["args"]])
            _check(lib.bptModuleLaunch(self._module, launch["kernel"].encode(),
                                       grid, block,
                                       launch["dynamic_shared_memory"],
                                       args, len(launch["args"])))

    def close(self):
        for pointer in self._workspaces.values():
            self.runtime.free(pointer)
        self._workspaces = {}
        if self._module.ptr:
            _check(_library().bptModuleDestroy(self._module))
            self._module = _Handle()
