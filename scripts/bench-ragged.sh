#!/usr/bin/env bash
# FFNs (and a block) whose rows are not multiples of 128 against eager
# PyTorch (issue 15: no performance cliffs), with bench.py's FFN and block
# tables. Here (LLVM): compile the kernel sets into DIR, for sm_90a or, with
# --chip=sm_80, the mma.sync kernels:
#   scripts/bench-ragged.sh compile DIR [bpt-compile flags...]
# On the GPU machine (PyTorch, CuPy; no LLVM), from the repository root:
#   scripts/bench-ragged.sh run DIR OUT
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-}; dir=${2:-}
[[ -n "$dir" ]] || { sed -n 2,9p "$0" >&2; exit 2; }
case "$mode" in
  compile) shift 2; BENCH_OPS=ragged "$root/bench/compile.sh" "$dir" "$@" ;;
  run) python3 "$root/bench/bench.py" --kernels "$dir" --out "${3:?OUT}" \
         --only ffn --max-seconds 2
       python3 "$root/bench/bench.py" --kernels "$dir" --out "$3/block" \
         --only block --max-seconds 2 ;;
  *) sed -n 2,9p "$0" >&2; exit 2 ;;
esac
