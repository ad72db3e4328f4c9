"""Per-opcode share of ncu's warp stall samples and of executed instructions,
with each opcode's top stall reasons, from `ncu --page source --print-source
sass --csv` output (call5.sh). Usage:
  python3 sass_stalls.py <(zcat call5-b64-sass.csv.gz)
"""
import csv,sys,collections
rows=[]
with open(sys.argv[1]) as f:
    lines=f.read().splitlines()
i=[k for k,l in enumerate(lines) if l.startswith('"Address"')][0]
r=list(csv.reader(lines[i:]))
h=r[0]; data=r[1:]
col={n:k for k,n in enumerate(h)}
stalls=[n for n in h if n.startswith('stall_') and 'Not Issued' not in n]
tot=collections.Counter(); ex=collections.Counter(); st=collections.defaultdict(collections.Counter)
allsamp=0; allex=0
for d in data:
    if len(d)<len(h): continue
    src=d[col['Source']].strip()
    op=src.split()[0]
    if op.startswith('@'): op=src.split()[1]
    op=op.split('.')[0]
    s=int(d[col['Warp Stall Sampling (All Samples)']] or 0); e=int(d[col['Instructions Executed']] or 0)
    tot[op]+=s; ex[op]+=e; allsamp+=s; allex+=e
    for n in stalls: st[op][n]+=int(d[col[n]] or 0)
print("total samples",allsamp,"warp instructions",allex)
for op,s in tot.most_common(25):
    top=", ".join(f"{n[6:]} {100*v/max(s,1):.0f}" for n,v in st[op].most_common(4))
    print(f"{op:10s} samples {100*s/allsamp:5.1f}%  inst {100*ex[op]/allex:5.1f}%  [{top}]")
agg=collections.Counter()
for op in st:
    for n,v in st[op].items(): agg[n]+=v
print("stalls:", ", ".join(f"{n[6:]} {100*v/allsamp:.1f}" for n,v in agg.most_common(10)))
