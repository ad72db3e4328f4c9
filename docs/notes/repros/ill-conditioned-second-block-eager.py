# Eager PyTorch (CPU, f32 against float64) on the architecture of
# ill-conditioned-second-block.mlir with bpt-cpu-run's initialisation (uniform
# [-1, 1), matrices / sqrt(rows)): the second block's W_q / W_k gradients (a17,
# a18) show eager's own f32 error at 7e-6 to 2.1e-5, 30-100x the others.
# Run: /usr/bin/python3 docs/notes/repros/ill-conditioned-second-block-eager.py
import torch, math
torch.manual_seed(0)
def U(*s, mat=False):
    t = torch.rand(*s, dtype=torch.float64) * 2 - 1
    return t / math.sqrt(s[0]) if mat else t
def layer_norm(x, g, b, eps=1e-5):
    m = x.mean(-1, keepdim=True); v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + eps) * g + b
def rms_norm(x, g, eps=1e-5):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g
def attn(n, wq, wk, wv, wo, h, kvh):
    B, S, H = n.shape; d = wq.shape[1] // h
    q = (n @ wq).view(B, S, h, d).transpose(1, 2)
    k = (n @ wk).view(B, S, kvh, d).transpose(1, 2).repeat_interleave(h // kvh, 1)
    v = (n @ wv).view(B, S, kvh, d).transpose(1, 2).repeat_interleave(h // kvh, 1)
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1)
    return ((p @ v).transpose(1, 2).reshape(B, S, h * d)) @ wo
def swiglu(x, wi, wo, wg):
    return (torch.nn.functional.silu(x @ wg) * (x @ wi)) @ wo
def geglu(x, wi, wo, wg):
    return (torch.nn.functional.gelu(x @ wg) * (x @ wi)) @ wo
def model(P):
    v1 = geglu(P['x'], P['a1'], P['a2'], P['a3'])
    v2 = v1 @ P['a4']
    n = layer_norm(v2, P['a5'], P['a6'])
    y = v2 + attn(n, P['a7'], P['a8'], P['a9'], P['a10'], 16, 4)
    v3 = y + swiglu(layer_norm(y, P['a11'], P['a12']), P['a13'], P['a14'], P['a15'])
    n = rms_norm(v3, P['a16'])
    y = v3 + attn(n, P['a17'], P['a18'], P['a19'], P['a20'], 1, 1)
    v4 = y + swiglu(rms_norm(y, P['a21']), P['a22'], P['a23'], P['a24'])
    return v4, v2
shapes = dict(x=(1,48,16), a1=(16,512), a2=(512,16), a3=(16,512), a4=(16,32), a5=(32,), a6=(32,),
  a7=(32,256), a8=(32,64), a9=(32,64), a10=(256,32), a11=(32,), a12=(32,), a13=(32,64), a14=(64,32), a15=(32,64),
  a16=(32,), a17=(32,32), a18=(32,32), a19=(32,32), a20=(32,32), a21=(32,), a22=(32,64), a23=(64,32), a24=(32,64))
import sys
for trial in range(3):
    P = {k: U(*s, mat=len(s)==2) for k, s in shapes.items()}
    dy = (U(1,48,32), U(1,48,32))
    grads = {}
    for dt in (torch.float64, torch.float32):
        Q = {k: v.detach().clone().to(dt).requires_grad_() for k, v in P.items()}
        out = model(Q)
        torch.autograd.backward(out, [d.to(dt) for d in dy])
        grads[dt] = {k: v.grad.double() for k, v in Q.items()}
    errs = {k: ((grads[torch.float32][k] - grads[torch.float64][k]).norm() / grads[torch.float64][k].norm()).item() for k in shapes}
    print(trial, ' '.join('%s %.1e' % (k, e) for k, e in errs.items() if k in ('a7','a8','a17','a18','a16','a19','x')))
