#!/usr/bin/env bash
# Installs the system libraries isosweep builds against, if any is missing (Debian/Ubuntu);
# with --test, also the tools the tests drive (chromium, promtool, shellcheck, iproute2, and
# kubernetes-validate in .build/test-python).
set -euo pipefail

missing=()
pkg-config --version >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists openblas 2>/dev/null || missing+=(libopenblas-dev)
pkg-config --exists libzmq 2>/dev/null || missing+=(libzmq3-dev)
pkg-config --exists sqlite3 2>/dev/null || missing+=(libsqlite3-dev)
# glibc's vector math library (CKernels' float64 activations link -lmvec).
[ -e /usr/lib/x86_64-linux-gnu/libmvec.so ] || [ "$(uname -m)" != x86_64 ] || missing+=(libc6-dev)
command -v rsvg-convert >/dev/null 2>&1 || missing+=(librsvg2-bin)   # PNG copies of the report's SVG figures
if [ "${1:-}" = "--test" ]; then
  # What the tests use besides the build: a real browser for the live page, promtool for
  # /metrics, shellcheck for the deploy scripts, iproute2 for the multi-host namespaces.
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  # The Kubernetes manifests are validated offline by kubernetes-validate, from PyPI, in a venv.
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "isosweep: installing missing system packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO=sudo
    else
      echo "isosweep: run as root, or install them yourself: apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  ${SUDO:-} apt-get update -qq
  ${SUDO:-} apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = "--test" ]; then
  venv=".build/test-python"
  if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "isosweep: installing kubernetes-validate (PyPI) into $venv"
    mkdir -p .build
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
  fi
fi
