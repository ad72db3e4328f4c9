# cuBLAS on the FFN's GEMM shapes: time (events) and, under ncu, which kernel.
import sys, torch
torch.manual_seed(0)
shapes = [(2048, 8192, 2048, "up-chunk"), (2048, 2048, 8192, "down-chunk"),
          (16384, 8192, 2048, "up-full"), (16384, 2048, 8192, "down-full")]
under_ncu = len(sys.argv) > 1 and sys.argv[1] == "ncu"
data = []
for M, N, K, name in shapes:
    a = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(K, N, device="cuda", dtype=torch.bfloat16)
    bias = torch.zeros(N, device="cuda", dtype=torch.bfloat16)
    data.append((M, N, K, name, a, w, bias))
torch.cuda.synchronize()
def timeit(f, iters=40):
    for _ in range(5): f()
    torch.cuda.synchronize()
    s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    best = 1e9
    for _ in range(5):
        s.record()
        for _ in range(iters): f()
        e.record(); torch.cuda.synchronize()
        best = min(best, s.elapsed_time(e) / iters)
    return best
for M, N, K, name, a, w, bias in data:
    ops = [("mm", lambda: a @ w)]
    if N == 8192:
        ops.append(("mm+gelu(lt)", lambda: torch._addmm_activation(bias, a, w, use_gelu=True)))
    for op, f in ops:
        if under_ncu:
            f(); torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStart(); f(); torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStop()
        else:
            ms = timeit(f)
            print(f"{name:11s} {op:12s} M{M} N{N} K{K}: {ms*1e3:8.1f} us  {2*M*N*K/ms/1e9:6.0f} TFLOP/s")
