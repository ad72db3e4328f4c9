"""What the PyTorch checks of test/GPU share: their command line,

  python3 test/GPU/<check>.py --kernels DIR
      runs the check's cases with the kernel sets in DIR ($BPT_CACHE).
  python3 test/GPU/<check>.py --prebuild DIR [--chip C]
      compiles the cases' sets into DIR (no PyTorch or GPU needed; the
      build does this for the check's test).

and their start on the device (open_device) and their run of checks, each
failing alone (run_checks).
"""
import argparse
import os
import traceback

from bpt import cache  # noqa: E402  (no torch; the caller set sys.path)


def check_main(doc, problems, run):
    """Parses the command line; `problems(chip)` lists the cases' problems
    for --prebuild, `run(kernels)` runs the check and returns its exit
    status."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--kernels", help="kernel set directory ($BPT_CACHE)")
    ap.add_argument("--prebuild", metavar="DIR", help="compile the cases' sets into DIR")
    ap.add_argument("--chip", default="sm_90a", help="with --prebuild")
    args = ap.parse_args()
    if args.prebuild:
        cache.prebuild(problems(args.chip), args.prebuild)
        return 0
    if not args.kernels:
        ap.error("give --kernels DIR or --prebuild DIR")
    return run(args.kernels)


def open_device(kernels):
    """The device's (chip, tensor_cores), after pointing $BPT_CACHE at
    `kernels` and printing what runs where; None, after a FAIL line, when
    PyTorch finds no CUDA device."""
    import torch
    if not torch.cuda.is_available():
        print("FAIL: no CUDA device for PyTorch")
        return None
    os.environ["BPT_CACHE"] = os.path.abspath(kernels)
    chip, tensor_cores = cache.chip_for_capability(*torch.cuda.get_device_capability())
    print(f"{torch.cuda.get_device_name()} ({chip}), torch {torch.__version__}, "
          f"kernel sets in {kernels}")
    return chip, tensor_cores


def run_checks(checks, what="checks"):
    """Runs each (label, check) of `checks`: a check returns whether it
    passed, and one that raises fails with its traceback while the others
    still run. Returns the exit status: 0 if all passed."""
    results = []
    for label, check in checks:
        try:
            results.append(bool(check()))
        except Exception:
            print(f"FAIL: {label}:\n{traceback.format_exc()}")
            results.append(False)
    print(f"{sum(results)} of {len(results)} {what} passed")
    return 0 if all(results) else 1
