#!/usr/bin/env bash
# Packs what the GPU tests need into .device/ (ignored by git): bpt-run,
# bpt-runtime-test (the runtime's unit tests, run on the device),
# libbpt_runtime.so (the Python tests; lit looks for it beside bpt-run), the
# kernel sets the build compiled for test/GPU (kernels/torch: the PyTorch
# test's cache), and lit's Python package.
# On a GPU machine (which needs no LLVM), from the repository root:
#   .device/run-gpu-tests.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" bpt-run bpt-runtime-test BPTRuntimeShared \
  bpt-gpu-test-kernels >/dev/null
out="$root/.device"
rm -rf "$out" && mkdir -p "$out"
cp "$root/build/bin/bpt-run" "$root/build/bin/bpt-runtime-test" \
  "$root/build/lib/libbpt_runtime.so" "$out/"
cp -r "$root/build/test/GPU/kernels" "$out/kernels"
cp -r /usr/lib/llvm-22/utils/lit/lit "$out/lit"
find "$out/lit" -name __pycache__ -prune -exec rm -rf {} +
cat > "$out/run-gpu-tests.sh" <<'EOS'
#!/usr/bin/env bash
# Runs test/GPU with the bundled lit, bpt-run and kernel sets; without
# arguments, then the tests that need the GPU to themselves (gpu-alone:
# device-wide measurements) in a serial pass of their own.
# Each test gets BPT_GPU_TEST_TIMEOUT seconds (default 300; lit needs
# psutil for it): a hung kernel, or a float64 reference too large for the
# host, then fails its test instead of holding the whole run (session 23
# lost a device call to one).
here=$(cd "$(dirname "$0")" && pwd)
limit=()
if python3 -c "import psutil" 2>/dev/null; then
  limit=(--timeout="${BPT_GPU_TEST_TIMEOUT:-300}")
fi
lit() {
  (cd "$here" && python3 -c "import sys; sys.path.insert(0, '.'); \
from lit.main import main; main()" -sv "$here/../test/GPU" \
    --param bpt_bin="$here" --param bpt_kernels="$here/kernels" \
    "${limit[@]}" "$@")
}
lit "$@"; status=$?
if [[ $# -eq 0 ]]; then
  lit --param gpu_alone=1 -j1 --filter memory-report || status=1
fi
exit $status
EOS
chmod +x "$out/run-gpu-tests.sh"
echo "bundle in $out ($(du -sh "$out" | cut -f1)); on the GPU machine: .device/run-gpu-tests.sh"
