# -*- Python -*-
# lit configuration for the bpt test suite.

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "BPT"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.bpt_obj_root, "test")
# GPU/ is a suite of its own (plain lit, runnable on a GPU machine alone).
config.excludes = ["CMakeLists.txt", "README.md", "lit.cfg.py", "lit.site.cfg.py", "GPU", "Inputs"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%bpt_src_root", config.bpt_src_root))
config.substitutions.append(("%bpt_lib", os.path.join(config.bpt_obj_root, "lib")))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

# FileCheck, not and count come from LLVM's tools; bpt's own from the build.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
tool_dirs = [config.bpt_tools_dir, config.llvm_tools_dir]
tools = ["bpt-compile", "bpt-cpu-run", "bpt-opt", "bpt-reference-test",
         "bpt-run", "bpt-runtime-test"]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# Tests of bpt-run's no-GPU behaviour only make sense without a GPU.
import subprocess
_probe = subprocess.run([os.path.join(config.bpt_tools_dir, "bpt-run"), "--probe"],
                        capture_output=True)
if _probe.returncode == 0:
    config.available_features.add("gpu")

# PyTorch with torch.distributed's gloo back end, for the CPU tests of
# python/bpt (test/Python): the first interpreter that has it, as
# %torch_python (Debian's python3-torch lives in /usr/bin/python3's path).
for _python in ("python3", "/usr/bin/python3"):
    try:
        _found = subprocess.run(
            [_python, "-c", "import torch.distributed as d; "
             "assert d.is_available() and d.is_gloo_available()"],
            capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        _found = False
    if _found:
        config.available_features.add("torch")
        config.substitutions.append(("%torch_python", _python))
        break
