"""The command line the PyTorch checks of test/GPU share:

  python3 test/GPU/<check>.py --kernels DIR
      runs the check's cases with the kernel sets in DIR ($BPT_CACHE).
  python3 test/GPU/<check>.py --prebuild DIR [--chip C]
      compiles the cases' sets into DIR (no PyTorch or GPU needed; the
      build does this for the check's test).
"""
import argparse

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
