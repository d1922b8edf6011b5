#!/usr/bin/env bash
# Checks the deploy/ files: the man page is current, the systemd unit with systemd-analyze verify (its
# Documentation=man:sriovd(8) included), the DaemonSet's structure against the Kubernetes fields it uses, the
# Containerfile, and that every SRIOVD_* variable they set is an option of `sriovd serve`; then builds the container
# image for real and runs it (deploy/container/build-and-run.sh). Run after `swift build` (it reads
# `sriovd serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${SRIOVD_BINARY:-.build/debug/sriovd}
[ -x "$binary" ] || { echo "validate: build first ($binary is missing)" >&2; exit 1; }
help=$("$binary" serve --help)

echo "== docs/sriovd.8 is what the command-line definitions generate"
scripts/generate-manual.sh --check

echo "== systemd-analyze verify deploy/systemd/sriovd.service"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# verify insists that ExecStart's binary exists: point it at the one just built.
sed "s|/usr/local/bin/sriovd|$(realpath "$binary")|" deploy/systemd/sriovd.service > "$work/sriovd.service"
# ... and that Documentation=man:sriovd(8) opens with man: install the page as the README's host steps do, into a
# scratch man path. The Docker plugin drop-in is verified with the unit.
install -D -m 0644 docs/sriovd.8 "$work/man/man8/sriovd.8"
grep -q '^Documentation=man:sriovd(8)$' deploy/systemd/sriovd.service
mkdir -p "$work/sriovd.service.d"
cp deploy/systemd/sriovd.service.d/*.conf "$work/sriovd.service.d/"
verify_output=$(MANPATH="$work/man" SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$work/sriovd.service" 2>&1) || {
    echo "$verify_output" >&2
    exit 1
}
# Warnings about the unit itself are failures too; warnings about the host's other units are not ours.
if echo "$verify_output" | grep -F "$work/sriovd.service" >&2; then exit 1; fi
grep -q '^Type=notify$' deploy/systemd/sriovd.service
grep -q '^StateDirectory=sriovd$' deploy/systemd/sriovd.service
grep -q '^Restart=on-failure$' deploy/systemd/sriovd.service
if grep -q '^ProtectKernelTunables=yes' deploy/systemd/sriovd.service; then
    echo "sriovd.service: ProtectKernelTunables=yes would make /sys read-only" >&2
    exit 1
fi

echo "== deploy/kubernetes/daemonset.yaml and deploy/container/Containerfile"
SERVE_HELP="$help" python3 - <<'PY'
import os, re, sys
import yaml

errors = []
def need(condition, message):
    if not condition:
        errors.append(message)

options = set(re.findall(r"--([a-z][a-z0-9-]*)", os.environ["SERVE_HELP"]))
def check_variable(where, name):
    need(name.startswith("SRIOVD_"), f"{where}: {name} is not an SRIOVD_* variable")
    option = name[len("SRIOVD_"):].lower().replace("_", "-")
    need(option in options, f"{where}: {name} is no option of `sriovd serve` (--{option})")

documents = [d for d in yaml.safe_load_all(open("deploy/kubernetes/daemonset.yaml")) if d]
need(len(documents) == 1, "daemonset.yaml: expected one document")
ds = documents[0]
need(ds.get("apiVersion") == "apps/v1" and ds.get("kind") == "DaemonSet", "daemonset.yaml: not an apps/v1 DaemonSet")
meta = ds.get("metadata", {})
need(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", meta.get("name", "")), "metadata.name is not a DNS label")
spec = ds.get("spec", {})
template = spec.get("template", {})
selector = spec.get("selector", {}).get("matchLabels", {})
labels = template.get("metadata", {}).get("labels", {})
need(selector and all(labels.get(k) == v for k, v in selector.items()), "spec.selector does not match the template's labels")
pod = template.get("spec", {})
need(pod.get("hostNetwork") is True, "the pod must use the host network")
containers = pod.get("containers", [])
need(len(containers) == 1, "expected one container")
container = containers[0] if containers else {}
need(container.get("securityContext", {}).get("privileged") is True, "the container must be privileged")
need(isinstance(container.get("image"), str) and container["image"], "the container needs an image")
volumes = {v["name"]: v for v in pod.get("volumes", [])}
mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
for mount in mounts.values():
    need(mount["name"] in volumes, f"volumeMount {mount['name']} names no volume")
def host_path_at(path):
    mount = mounts.get(path)
    volume = volumes.get(mount["name"]) if mount else None
    return volume.get("hostPath", {}).get("path") if volume else None
need(host_path_at("/sys") == "/sys", "/sys must be the host's /sys")
need(host_path_at("/var/lib/sriovd") == "/var/lib/sriovd", "/var/lib/sriovd must come from the host")
env = {e["name"]: e.get("value") for e in container.get("env", [])}
for name in env:
    check_variable("daemonset.yaml", name)
socket = env.get("SRIOVD_UNIX")
need(socket is not None, "SRIOVD_UNIX must be set (the node-local socket)")
if socket:
    directory = os.path.dirname(socket)
    need(host_path_at(directory) is not None, f"the socket's folder {directory} must be a hostPath")
listen = env.get("SRIOVD_LISTEN", "127.0.0.1:8080")
port = int(listen.rsplit(":", 1)[1])
if not listen.startswith("127."):
    need("SRIOVD_TOKENS" in env, "TCP beyond loopback needs SRIOVD_TOKENS (sriovd refuses to start without)")
    tokens_dir = os.path.dirname(env.get("SRIOVD_TOKENS", "/"))
    need(tokens_dir in mounts, f"the tokens file's folder {tokens_dir} must be mounted")
    tls = "SRIOVD_TLS_CERT" in env
    need(tls or env.get("SRIOVD_INSECURE_HTTP") in ("1", "true", "yes", "on"),
         "TCP beyond loopback needs SRIOVD_TLS_CERT and SRIOVD_TLS_KEY, or SRIOVD_INSECURE_HTTP (sriovd refuses to start)")
    need(tls == ("SRIOVD_TLS_KEY" in env), "SRIOVD_TLS_CERT and SRIOVD_TLS_KEY go together")
    for name in ("SRIOVD_TLS_CERT", "SRIOVD_TLS_KEY", "SRIOVD_TLS_CLIENT_CA"):
        if name in env:
            need(os.path.dirname(env[name]) in mounts, f"the folder of {name} must be mounted")
    for probe in ("livenessProbe", "readinessProbe"):
        scheme = container.get(probe, {}).get("httpGet", {}).get("scheme", "HTTP")
        need(scheme == ("HTTPS" if tls else "HTTP"), f"{probe} must use scheme {'HTTPS' if tls else 'HTTP'}")
ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    get = container.get(probe, {}).get("httpGet", {})
    need(get.get("path") == path, f"{probe} must GET {path}")
    target = get.get("port")
    need(ports.get(target, target) == port, f"{probe} port {target} is not the listen port {port}")
grace = pod.get("terminationGracePeriodSeconds", 30)
need(grace > 10, "terminationGracePeriodSeconds must exceed --shutdown-grace (10 s)")

unit = open("deploy/systemd/sriovd.service").read()
for name in re.findall(r"^Environment=(SRIOVD_[A-Z_]+)=", unit, re.M):
    check_variable("sriovd.service", name)
dropin = open("deploy/systemd/sriovd.service.d/docker-plugin.conf").read()
for name in re.findall(r"^Environment=(SRIOVD_[A-Z_]+)=", dropin, re.M):
    check_variable("docker-plugin.conf", name)
for name in re.findall(r"^#?(SRIOVD_[A-Z_]+)=", open("deploy/systemd/sriovd.env").read(), re.M):
    check_variable("sriovd.env", name)

containerfile = open("deploy/container/Containerfile").read()
stages = re.findall(r"^FROM\s+(\S+)", containerfile, re.M)
need(stages == ["${BASE_IMAGE}"], "Containerfile: expected one stage, FROM ${BASE_IMAGE}")
need(re.search(r"^ARG BASE_IMAGE=\S*bookworm", containerfile, re.M), "Containerfile: the base must be Debian bookworm")
need(re.search(r"^COPY sriovd /usr/local/bin/sriovd$", containerfile, re.M),
     "Containerfile: the release sriovd (scripts/build-release.sh) must be copied from the context")
need("libsqlite3-0" in containerfile, "Containerfile: the runtime needs libsqlite3-0")
need("libssl3" in containerfile, "Containerfile: the runtime needs libssl3 (TLS)")
for name in re.findall(r"(SRIOVD_[A-Z_]+)=", containerfile):
    check_variable("Containerfile", name)

# The CNI plugin: built into the image, copied by an init container into the host's /opt/cni/bin; the example
# network configurations parse and name it.
import json
need("--product sriovd-cni" in open("scripts/build-release.sh").read(), "build-release.sh must build sriovd-cni")
need(re.search(r"^COPY sriovd-cni /usr/local/bin/sriovd-cni$", containerfile, re.M), "Containerfile: sriovd-cni not copied")
init = pod.get("initContainers", [])
installer = next((c for c in init if "sriovd-cni" in " ".join(c.get("command", []) + c.get("args", []))), None)
need(installer is not None, "daemonset.yaml: no init container copies sriovd-cni")
if installer:
    script = " ".join(installer.get("command", []) + installer.get("args", []))
    mounts = {m["mountPath"]: m["name"] for m in installer.get("volumeMounts", [])}
    targets = re.findall(r"(/\S+)/sriovd-cni(?:\s|$)", script)
    need(len(targets) >= 2, "install-cni: no destination path for sriovd-cni")
    if targets:
        volume = volumes.get(mounts.get(targets[-1], ""), {})
        need(volume.get("hostPath", {}).get("path") == "/opt/cni/bin", "install-cni must write to the host's /opt/cni/bin")
def check_plugin_config(where, config):
    plugins = config.get("plugins", [config])
    need(config.get("cniVersion") in ("0.4.0", "1.0.0", "1.1.0"), f"{where}: cniVersion sriovd-cni does not speak")
    need(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", config.get("name", "")), f"{where}: name is not a network name")
    need(any(p.get("type") == "sriovd-cni" for p in plugins), f"{where}: no sriovd-cni plugin")
check_plugin_config("deploy/cni/10-sriovd.conflist", json.load(open("deploy/cni/10-sriovd.conflist")))
nad = [d for d in yaml.safe_load_all(open("deploy/kubernetes/network-attachment-definition.yaml")) if d]
need(len(nad) == 1 and nad[0].get("kind") == "NetworkAttachmentDefinition"
     and nad[0].get("apiVersion") == "k8s.cni.cncf.io/v1", "network-attachment-definition.yaml: not a NAD")
if nad:
    check_plugin_config("network-attachment-definition.yaml", json.loads(nad[0]["spec"]["config"]))

if errors:
    print("\n".join("FAIL: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"daemonset.yaml, sriovd.service, sriovd.env and Containerfile: {len(env)} variables checked")
PY
echo "== deploy/prometheus: alerting rules (promtool check rules, promtool test rules)"
promtool check rules deploy/prometheus/alerts.yaml
(cd deploy/prometheus && promtool test rules alerts.test.yaml)
echo "== deploy/grafana: the dashboard names only metrics sriovd serves"
python3 - <<'PY'
import json, re, sys
dashboard = json.load(open("deploy/grafana/sriovd.json"))
served = set(re.findall(r"\bsriovd_[a-z_]+", open("README.md").read()))
served |= {name + suffix for name in list(served) for suffix in ("_bucket", "_sum", "_count")}
exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
used = {m for e in exprs for m in re.findall(r"\bsriovd_[a-z_]+", e)}
unknown = sorted(used - served)
if unknown or not exprs:
    sys.exit(f"FAIL: deploy/grafana/sriovd.json uses metrics the README does not list: {unknown}")
titles = " ".join(p["title"].lower() for p in dashboard["panels"])
for topic in ["capacity", "held", "dirty", "errno", "latency", "reconcile"]:
    if topic not in titles:
        sys.exit(f"FAIL: deploy/grafana/sriovd.json has no panel about {topic}")
print(f"sriovd.json: {len(dashboard['panels'])} panels, {len(used)} metrics, all served")
PY
echo "== deploy/container: the image built with podman from a debootstrap base, run, and healthy"
deploy/container/build-and-run.sh
echo "== deploy/: all checks passed"
