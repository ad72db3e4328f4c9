# One SDPA flash backward at D 64, S 16k, 32 heads, bf16, non-causal (for ncu).
import torch, torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
q, k, v = (torch.randn(1, 32, 16384, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
    o = F.scaled_dot_product_attention(q, k, v)
    g = torch.randn_like(o)
    torch.autograd.grad(o, (q, k, v), g)
torch.cuda.synchronize()
