#!/usr/bin/env bash
# Create the venv if missing and install every package (editable) with the pinned versions.
# torch comes first, from its CPU build, so nothing pulls a CUDA build in as a dependency.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip setuptools wheel
"${PIP[@]}" torch==2.13.0
args=()
for pkg in "$@"; do
  if [ "$pkg" = "libs/common" ]; then args+=(-e "libs/common[embedded,models,retrieval,testing]"); else args+=(-e "$pkg"); fi
done
"${PIP[@]}" -c constraints.txt "${args[@]}" -e ".[dev]"
# Chromium for the browser tests (Debian packages), when this machine can install them
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "install.sh: could not install chromium; the browser tests will fail" >&2
fi
# promtool for the alert-rule tests (Debian package prometheus), when this machine can install it
if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
    || echo "install.sh: could not install prometheus (promtool); the alert-rule tests will fail" >&2
fi
