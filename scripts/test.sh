#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs check-bpt
# (lit: dialect, passes, pipelines, tools, CPU numerics, python/bpt on CPU
# processes where PyTorch is found; GPU tests where a GPU is found), then builds and runs the example consumer against an
# installed copy of bpt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" --tests
"$root/scripts/build.sh"
ninja -C "$root/build" check-bpt
"$root/scripts/check-consumers.sh"
