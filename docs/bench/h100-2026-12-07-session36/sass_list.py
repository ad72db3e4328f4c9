"""SASS instructions FIRST..LAST of an `ncu --page source --csv` listing,
each with its stall samples and its two largest stall reasons. Usage:
  python3 sass_list.py <(zcat call5-b64-sass.csv.gz) 279 330
"""
import csv,sys
lines=open(sys.argv[1]).read().splitlines()
i=[k for k,l in enumerate(lines) if l.startswith('"Address"')][0]
r=list(csv.reader(lines[i:])); h=r[0]; col={n:k for k,n in enumerate(h)}
stalls=[n for n in h if n.startswith('stall_') and 'Not Issued' not in n]
data=[d for d in r[1:] if len(d)==len(h)]
a,b=int(sys.argv[2]),int(sys.argv[3])
for k in range(a,b):
    d=data[k]; s=int(d[col['Warp Stall Sampling (All Samples)']] or 0)
    st=sorted(((int(d[col[n]] or 0),n[6:]) for n in stalls),reverse=True)[:2]
    print(f"{k:4d} {s:6d} {d[col['Source']].strip()[:70]:70s} {st[0][1]}:{st[0][0]} {st[1][1]}:{st[1][0]}")
