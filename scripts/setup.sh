#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing bpt need.
# Idempotent, and silent when everything is already present.
#   scripts/setup.sh              what the build needs
#   scripts/setup.sh --tests      also PyTorch (python3-torch, CPU only) for
#                                 test/Python; a failure to install it is a
#                                 warning (those tests are then unsupported)
set -euo pipefail

packages=(
  cmake ninja-build gcc g++ python3
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  zlib1g-dev libzstd-dev
  nlohmann-json3-dev libgtest-dev
)
optional=()
[[ "${1:-}" == "--tests" ]] && optional=(python3-torch)

missing_of() {
  local pkg status
  for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || echo "$pkg"
  done
}
mapfile -t missing < <(missing_of "${packages[@]}")
mapfile -t missing_optional < <(missing_of "${optional[@]}")
[[ ${#missing[@]} -eq 0 && ${#missing_optional[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || {
    echo "bpt setup: need root (or sudo) to install:" \
      "${missing[*]} ${missing_optional[*]}" >&2
    [[ ${#missing[@]} -eq 0 ]] && exit 0
    exit 1
  }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "bpt setup: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ ${#missing_optional[@]} -gt 0 ]]; then
  echo "bpt setup: installing ${missing_optional[*]} (for test/Python)" >&2
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing_optional[@]}" >/dev/null ||
    echo "bpt setup: warning: could not install ${missing_optional[*]};" \
      "test/Python will be unsupported" >&2
fi
