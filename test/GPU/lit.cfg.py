# -*- Python -*-
# The GPU test suite: plain lit (no LLVM tools), so that it also runs on a
# GPU machine that has only bpt-run and the kernel sets the build compiled:
#   lit test/GPU --param bpt_bin=<dir> --param bpt_kernels=<dir>
# Tests need the `gpu` feature, set when `bpt-run --probe` finds a usable
# GPU; elsewhere they are reported as unsupported, not failed.

import os
import shutil
import subprocess

import lit.formats

config.name = "BPT-GPU"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".test"]
config.test_source_root = os.path.dirname(__file__)
if getattr(config, "bpt_exec_root", None):
    config.test_exec_root = config.bpt_exec_root

bin_dir = lit_config.params.get("bpt_bin", getattr(config, "bpt_bin", None))
kernels = lit_config.params.get("bpt_kernels",
                                getattr(config, "bpt_kernels", None))
if not bin_dir or not kernels:
    lit_config.fatal("set --param bpt_bin=<dir of bpt-run> and "
                     "--param bpt_kernels=<dir of compiled kernel sets>")
bpt_run = os.path.join(os.path.abspath(bin_dir), "bpt-run")
config.substitutions.append(("%bpt-run", bpt_run))
# The runtime's unit tests (GoogleTest, no LLVM), beside bpt-run.
config.substitutions.append(("%bpt-runtime-test",
                             os.path.join(os.path.abspath(bin_dir), "bpt-runtime-test")))
config.substitutions.append(("%kernels", os.path.abspath(kernels)))
# libbpt_runtime.so for the Python tests: build/lib in a build tree, beside
# bpt-run in the device bundle (scripts/gpu-bundle.sh).
lib_dir = lit_config.params.get("bpt_lib", getattr(config, "bpt_lib", bin_dir))
config.substitutions.append(("%bpt_runtime_lib",
                             os.path.join(os.path.abspath(lib_dir), "libbpt_runtime.so")))
config.environment["PATH"] = os.environ.get("PATH", "")
for name in ["CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "HOME"]:
    if name in os.environ:
        config.environment[name] = os.environ[name]

# Tests that measure the whole device (the driver's free memory) need it to
# themselves: `REQUIRES: gpu-alone`, run by a separate pass with
# `--param gpu_alone=1 -j1` (.device/run-gpu-tests.sh does), since lit runs
# other tests' processes on the same GPU in parallel.
if lit_config.params.get("gpu_alone") == "1":
    config.available_features.add("gpu-alone")

probe = subprocess.run([bpt_run, "--probe"], capture_output=True, text=True)
if probe.returncode == 0:
    config.available_features.add("gpu")
    lit_config.note("GPU: " + probe.stdout.strip())
else:
    lit_config.note("GPU tests unsupported here: " + probe.stdout.strip())
# The CUDA toolkit's bin directory, where the GPU machines keep ptxas and
# cuobjdump (the SASS test) when it is not on PATH.
cuda_bin = "/usr/local/cuda/bin"
if os.path.isdir(cuda_bin):
    config.environment["PATH"] += os.pathsep + cuda_bin
path = config.environment["PATH"]
if shutil.which("compute-sanitizer", path=path):
    config.available_features.add("compute-sanitizer")
if shutil.which("ptxas", path=path) and shutil.which("cuobjdump", path=path):
    config.available_features.add("cuda-tools")
# PyTorch with a usable GPU, for python/bpt/torch.py's tests.
torch_probe = subprocess.run(
    ["python3", "-c", "import torch; assert torch.cuda.is_available()"],
    capture_output=True, text=True)
if torch_probe.returncode == 0:
    config.available_features.add("torch")
else:
    lit_config.note("PyTorch tests unsupported here: no torch with CUDA")
