#!/usr/bin/env bash
# Install what one kind of command needs (the Makefile keeps one stamp per part):
#   scripts/install.sh runtime PKG...  venv + torch + every package, editable, pinned: what `make run`,
#                                      `make eval`, `make bench` and `make report` need; nothing for tests
#   scripts/install.sh test PKG...     on top of that: the test/dev extras (root .[dev], pickwise-common[testing])
#                                      and the Debian packages the tests drive: chromium + chromium-driver
#                                      (browser tests) and prometheus (promtool, alert-rule tests)
# torch comes first and alone, so no other package pulls a different build in as a dependency. Where pip
# is not set up for the CPU build, set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu.
set -euo pipefail
PART=${1:?usage: install.sh runtime|test PACKAGE...}
shift
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

common_spec() {  # libs/common with the extras this part needs
  if [ "$PART" = "test" ]; then echo "libs/common[embedded,models,retrieval,testing]"; else echo "libs/common[embedded,models,retrieval]"; fi
}

editable_args=()
for pkg in "$@"; do
  if [ "$pkg" = "libs/common" ]; then editable_args+=(-e "$(common_spec)"); else editable_args+=(-e "$pkg"); fi
done

case "$PART" in
  runtime)
    if [ ! -x "$VENV/bin/python" ]; then
      "$PYTHON" -m venv "$VENV"
    fi
    "${PIP[@]}" --upgrade pip setuptools wheel
    if [ -n "$TORCH_INDEX_URL" ]; then
      "${PIP[@]}" torch==2.13.0 --index-url "$TORCH_INDEX_URL"
    else
      "${PIP[@]}" torch==2.13.0
    fi
    "${PIP[@]}" -c constraints.txt "${editable_args[@]}"
    # the query encoder's ONNX export, built from the bundled model's local weights (decision 0906); on failure
    # the services encode with torch, so this never fails the install
    "$VENV/bin/python" -m pickwise_common.onnx_encoder || true
    ;;
  test)
    "${PIP[@]}" -c constraints.txt "${editable_args[@]}" -e ".[dev]"
    missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    if [ "${#missing[@]}" -gt 0 ]; then
      if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
      elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n apt-get update -qq
        sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
      else
        echo "install.sh: the tests need the Debian packages: ${missing[*]}" >&2
        echo "install.sh: install them (sudo apt-get install ${missing[*]}) and run make test again" >&2
        exit 1
      fi
    fi
    ;;
  *)
    echo "install.sh: unknown part '$PART' (runtime or test)" >&2
    exit 2
    ;;
esac
