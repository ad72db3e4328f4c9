"""Python access to bpt's GPU runtime (ctypes over the runtime's C API).

Submodules: bpt.cache (attention and transformer-block kernel sets by
shape, compiled on demand or prebuilt), bpt.torch (PyTorch autograd:
bpt.torch.attention, bpt.torch.TransformerBlock) and bpt.ring (ring
attention across the ranks of a torch.distributed group); only the last
two import torch, so `import bpt` stays light.
"""
from .runtime import KernelSet, Runtime, RuntimeError_  # noqa: F401
