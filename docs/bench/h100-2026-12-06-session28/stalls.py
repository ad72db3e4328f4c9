"""Top stalled SASS instructions of an ncu source-page CSV (argv[1])."""
import csv, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
# Find the header row (has 'Source' and a sampling column).
h = next(i for i, r in enumerate(rows) if any("Sampling" in c for c in r))
head = rows[h]
print("columns:", [c for c in head][:30])
src = next(i for i, c in enumerate(head) if c.strip() in ("Source", "# Source") or c.startswith("Source"))
samp = [i for i, c in enumerate(head) if "Sampling (All" in c] or [i for i, c in enumerate(head) if "Sampling" in c]
s = samp[0]
body = [r for r in rows[h + 1:] if len(r) > s]
def num(x):
    try: return float(x.replace(",", ""))
    except ValueError: return 0.0
total = sum(num(r[s]) for r in body)
print("total samples", total, "instructions", len(body))
order = sorted(range(len(body)), key=lambda i: -num(body[i][s]))
for i in order[:45]:
    r = body[i]
    print(f"{i:5d} {num(r[s]) / total * 100:5.1f}%  {r[src][:110]}")
