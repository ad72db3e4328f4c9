"""Python access to bpt's GPU runtime (ctypes over the runtime's C API)."""
from .runtime import KernelSet, Runtime, RuntimeError_  # noqa: F401
