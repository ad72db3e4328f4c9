#!/usr/bin/env bash
# Runs every kernel set (*.json from bpt-compile) in a folder with bpt-run,
# then compute-sanitizer (memcheck, racecheck) on the sets named san_*.
# For the GPU machine: needs only bpt-run and the kernel sets.
#   scripts/gpu-check.sh <bpt-run> <folder> [log folder]
set -uo pipefail
run=$1 dir=$2 log=${3:-/tmp}
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
for manifest in "$dir"/*.json; do
  name=$(basename "$manifest" .json)
  echo "== $name"
  "$run" "$manifest" --iterations=10 2>&1 | tee "$log/$name.log"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "!! $name failed"; status=1; }
done
if command -v compute-sanitizer >/dev/null; then
  for manifest in "$dir"/san_*.json; do
    for tool in memcheck racecheck; do
      name=$(basename "$manifest" .json)
      echo "== compute-sanitizer --tool $tool $name"
      compute-sanitizer --tool "$tool" --error-exitcode 3 \
        "$run" "$manifest" --iterations=0 > "$log/$name.$tool.log" 2>&1
      rc=$?
      tail -3 "$log/$name.$tool.log"
      [[ $rc -eq 0 ]] || { echo "!! $tool $name: exit $rc"; status=1; }
    done
  done
else
  echo "compute-sanitizer not found"; status=1
fi
exit $status
