#!/usr/bin/env bash
# A first read of the attention backward on the GPU machine, from the
# repository root: the GPU suite (.device/run-gpu-tests.sh), then per-kernel
# times (ncu, one run) of the kernel sets in .device/bwd (made here by
# bpt-compile --op=attention --backward at the bench shapes), and SDPA's
# backward (cuDNN, flash; CUDA events, median) at the same shapes.
# Times per kernel are printed in microseconds. Bench rows for
# docs/benchmarks.md come from bench/bench.py, not from this script.
cd "$(dirname "$0")/.."
timeout 240 .device/run-gpu-tests.sh 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported" | tail -8
for j in .device/bwd/*.json; do
  n=$(basename "$j" .json)
  timeout 60 ncu --clock-control none --cache-control none \
    --metrics gpu__time_duration.sum .device/bpt-run "$j" --no-check \
    --iterations=1 --warmup=0 > "$OUT/$n.ncu" 2>&1
  echo "$n: $(awk '/^  [a-z_0-9]+ \(/{n=$1} /gpu__time_duration/{u=$(NF-1); v=$NF; if(u=="ms") v=v*1000; printf "%s=%.0f ", n, v}' "$OUT/$n.ncu" | cut -c1-400)"
done
python3 - <<'PY'
import torch, torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
for d in (64, 128):
  h = 2048 // d
  for s in (1024, 4096, 16384):
    b = 16384 // s
    for causal in (False, True):
      q, k, v = [torch.randn(b, h, s, d, device='cuda', dtype=torch.bfloat16,
                             requires_grad=True) for _ in range(3)]
      do = torch.randn_like(q)
      flops = 4 * b * h * s * s * d * (0.5 if causal else 1) * 2.5
      row = []
      for be in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION):
        with sdpa_kernel([be]):
          o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
          ts = []
          for i in range(12):
            st, en = torch.cuda.Event(True), torch.cuda.Event(True)
            st.record()
            torch.autograd.grad(o, (q, k, v), do, retain_graph=True)
            en.record()
            torch.cuda.synchronize()
            ts.append(st.elapsed_time(en))
          t = sorted(ts[2:])[5]
          row.append(f"{be.name[:5]} {t * 1000:.0f} us {flops / t / 1e9:.0f} TF")
      print(f"sdpa bwd d{d} s{s} {'causal' if causal else ''}: " + " | ".join(row))
PY
