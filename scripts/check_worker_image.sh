#!/usr/bin/env bash
# Builds deploy/docker/Dockerfile.worker and renders a small image inside it with no network,
# as the image's unprivileged user: the check that the image carries working binaries, libtorch
# and readable weights. Needs a running Docker engine with BuildKit (Debian's docker.io will
# do). Slow the first time (torch download and a release build), minutes after that.
#
#   scripts/check_worker_image.sh [--offline-bases]
#
# --offline-bases: for machines that reach no container registry (this project's sandbox):
# makes local stand-ins for the two base images under their official names when they are
# missing (debian:bookworm-slim from `debootstrap --variant=minbase bookworm`; rust:1.95-bookworm
# from that, Debian's build tools and this machine's Rust 1.95.0 toolchain laid out as the
# official image lays it out), and drops the Dockerfile's `# syntax=` line, whose frontend
# image would come from Docker Hub; the engine's built-in frontend reads the rest unchanged.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
IMAGE=deepstyle/worker:check
RUST_IMAGE=rust:1.95-bookworm
SLIM_IMAGE=debian:bookworm-slim
source "$ROOT/scripts/say.sh"
say() { say_as check_worker_image "$@"; }
die() { say "error: $*"; exit 1; }

# Debian's docker.io ships a client with BuildKit built in; a newer client without the buildx
# plugin cannot use it.
DOCKER=${DOCKER:-docker}
[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers ($DOCKER info failed)"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DOCKERFILE=deploy/docker/Dockerfile.worker

if [ "${1:-}" = "--offline-bases" ]; then
  if ! "$DOCKER" image inspect "$SLIM_IMAGE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    say "making $SLIM_IMAGE with debootstrap"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >/dev/null
    chroot "$WORK/rootfs" apt-get clean
    tar -C "$WORK/rootfs" -c . | "$DOCKER" import - "$SLIM_IMAGE" >/dev/null
    rm -rf "$WORK/rootfs"
  fi
  if ! "$DOCKER" image inspect "$RUST_IMAGE" >/dev/null 2>&1; then
    toolchain=$(rustup toolchain list -v | awk '/^1\.95|^stable/ {print $NF; exit}')
    [ -x "$toolchain/bin/cargo" ] || die "no Rust 1.95 toolchain found by rustup"
    "$toolchain/bin/rustc" --version | grep -q '^rustc 1\.95\.' || die "$toolchain is not Rust 1.95"
    say "making $RUST_IMAGE from $SLIM_IMAGE and $toolchain"
    mkdir -p "$WORK/rust"
    cp -a "$toolchain" "$WORK/rust/toolchain"
    cp "$(command -v rustup)" "$WORK/rust/rustup"
    # The host's CA bundle, so that a TLS-inspecting proxy in front of PyPI is trusted too.
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rust/"
    cat >"$WORK/rust/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates curl git gcc g++ make libc6-dev pkg-config libssl-dev xz-utils procps \
 && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY toolchain /usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu
COPY rustup /usr/local/cargo/bin/rustup
RUN cd /usr/local/cargo/bin \
 && for t in cargo cargo-clippy cargo-fmt rustc rustdoc rustfmt clippy-driver; do ln -s rustup $t; done \
 && printf 'version = "12"\ndefault_toolchain = "1.95.0-x86_64-unknown-linux-gnu"\nprofile = "minimal"\n' \
      >/usr/local/rustup/settings.toml \
 && cargo --version
EOF
    DOCKER_BUILDKIT=0 "$DOCKER" build -q --network host -t "$RUST_IMAGE" "$WORK/rust" >/dev/null
    rm -rf "$WORK/rust"
  fi
  sed '1{/^# syntax=/d}' "$DOCKERFILE" >"$WORK/Dockerfile.worker"
  DOCKERFILE="$WORK/Dockerfile.worker"
fi

say "building $IMAGE"
start=$SECONDS
DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain --network host -f "$DOCKERFILE" -t "$IMAGE" . \
  >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; die "the image did not build"; }
say "built $IMAGE in $((SECONDS - start)) s ($("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" \
  | awk '{printf "%.2f GB", $1 / 1e9}'))"

# A small render as the image's user, with no network: nothing may be downloaded at run time.
mkdir -p "$WORK/out"
chmod 0777 "$WORK/out"
"$DOCKER" run --rm --network none -v "$ROOT/examples/inputs:/in:ro" -v "$WORK/out:/out" \
  --entrypoint deepstyle "$IMAGE" render /in/tubingen.jpg --style /in/starry_night.jpg \
  --size 96 --iterations 20 -o /out/check.png 2>"$WORK/render.log" \
  || { tail -20 "$WORK/render.log" >&2; die "the render in $IMAGE failed"; }
[ -s "$WORK/out/check.png" ] || die "the render in $IMAGE wrote no image"
"$DOCKER" run --rm --network none "$IMAGE" --help >/dev/null || die "deepstyle-worker --help failed"
say "ok: $IMAGE rendered $(wc -c <"$WORK/out/check.png") bytes of PNG offline as $("$DOCKER" run \
  --rm --network none --entrypoint id "$IMAGE" -un)"
