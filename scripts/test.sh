#!/usr/bin/env bash
# Runs the whole test suite: deploy-file checks, formatting, lints, unit and end-to-end tests.
# Installs whatever is missing first (see setup.sh); safe to re-run.
set -euo pipefail
"$(dirname "$0")/setup.sh" --no-build
source "$(dirname "$0")/env.sh"
source "$DEEPSTYLE_ROOT/scripts/say.sh"
cd "$DEEPSTYLE_ROOT"

scripts/check_deploy.sh

# An S3-compatible server (moto) for the object-store blob tests, once, under .tools/moto.
MOTO=.tools/moto
MOTO_VERSION=5.2.5
if ! "$MOTO/bin/python" -c "import importlib.metadata as m; assert m.version('moto') == '$MOTO_VERSION'; import flask" 2>/dev/null; then
  say_as test "installing moto[server]==$MOTO_VERSION into $MOTO"
  python3 -m venv "$MOTO"
  "$MOTO/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
export MOTO_SERVER="$DEEPSTYLE_ROOT/$MOTO/bin/moto_server"

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Not --quiet: each binary's "Running tests/farm.rs" line tells the suites apart.
cargo test --workspace --no-fail-fast "$@"
