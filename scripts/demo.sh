#!/usr/bin/env bash
# Renders the bundled example (Tübingen in the style of The Starry Night) to
# out/tubingen_starry_night.png, installing whatever is missing first.
set -euo pipefail
"$(dirname "$0")/setup.sh"
source "$(dirname "$0")/env.sh"
cd "$DEEPSTYLE_ROOT"
mkdir -p out
./target/release/deepstyle render examples/inputs/tubingen.jpg \
  --style examples/inputs/starry_night.jpg --size 256 --iterations 200 \
  -o out/tubingen_starry_night.png "$@"
