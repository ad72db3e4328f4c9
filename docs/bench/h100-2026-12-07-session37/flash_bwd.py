# One SDPA flash backward (bf16, non-causal, 16k tokens, hidden 2048) for
# ncu: python3 flash_bwd.py [HEAD_DIM [SEQ]] (default 64, 16384).
import sys
import torch, torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
D = int(sys.argv[1]) if len(sys.argv) > 1 else 64
S = int(sys.argv[2]) if len(sys.argv) > 2 else 16384
q, k, v = (torch.randn(16384 // S, 2048 // D, S, D, device="cuda", dtype=torch.bfloat16,
                       requires_grad=True) for _ in range(3))
with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
    o = F.scaled_dot_product_attention(q, k, v)
    g = torch.randn_like(o)
    torch.autograd.grad(o, (q, k, v), g)
torch.cuda.synchronize()
