#!/usr/bin/env bash
# Runs the whole test suite: deploy-file checks, formatting, lints, unit and end-to-end tests.
# Installs whatever is missing first (see setup.sh); safe to re-run.
set -euo pipefail
"$(dirname "$0")/setup.sh" --no-build
source "$(dirname "$0")/env.sh"
cd "$DEEPSTYLE_ROOT"

scripts/check_deploy.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --no-fail-fast --quiet "$@"
