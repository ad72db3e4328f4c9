#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs check-bpt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
ninja -C "$root/build" check-bpt
