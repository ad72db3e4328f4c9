"""Session 30: why bench.py's FFN row (1.78 ms) exceeds bpt-run's (1.57 ms)
on the same 16k GELU FFN set. Times the same KernelSet several ways."""
import json, os, sys, time, statistics, subprocess
sys.path.insert(0, "bench")
import bench, torch
path = sys.argv[1]
ks = bench.KernelSet(path)
m = ks.manifest
params = bench.random_inputs(m)
act = m["options"]["activation"]
eager = lambda: bench.eager_ffn(params["input"], params, act)
ks.allocate(params)

def events_ms(fn, reps):
    s, e = torch.cuda.Event(True), torch.cuda.Event(True)
    torch.cuda.synchronize(); s.record()
    for _ in range(reps): fn()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / reps

def med(fn, reps, n=15):
    fn(); torch.cuda.synchronize()
    return statistics.median(events_ms(fn, reps) for _ in range(n))

out = {}
out["bench_time_ms"] = bench.time_ms(ks.run, 1)[0]
out["eager_bench_time_ms"] = bench.time_ms(eager, 1)[0]
out["bench_time_ms_after_eager"] = bench.time_ms(ks.run, 1)[0]
for reps in (1, 5, 20):
    out[f"bpt_reps{reps}"] = med(ks.run, reps)
    out[f"eager_reps{reps}"] = med(eager, reps)
# Host cost of issuing one set (no sync): if it exceeds the GPU time, the
# row is host-bound.
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(10): ks.run()
out["host_issue_ms_per_set"] = (time.perf_counter() - t) * 100
torch.cuda.synchronize()
prof = ks.profile()
out["profile_sum_ms"] = sum(k["ms"] for k in prof.values())
out["profile"] = {k: round(v["ms"], 4) for k, v in prof.items()}
out["profile_launches"] = prof.get("gemm fwd", {}).get("launches_ms")
g = bench.graphed(ks.run)
out["graph_reps5"] = med(g, 5)
bench.DEPENDENT_LAUNCH = False
out["plain_reps5"] = med(ks.run, 5)
out["plain_host_issue"] = None
bench.DEPENDENT_LAUNCH = True
# Alternating rounds, 5 reps each.
alt = {"bpt": [], "eager": []}
for _ in range(6):
    alt["bpt"].append(events_ms(ks.run, 5)); alt["eager"].append(events_ms(eager, 5))
out["alternating_median"] = {k: statistics.median(v) for k, v in alt.items()}
print(json.dumps(out, indent=1))
