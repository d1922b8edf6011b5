#!/usr/bin/env bash
# Builds the container image for real and runs it: the release binaries (scripts/build-release.sh), a Debian
# bookworm base made here with debootstrap (minbase, plus libsqlite3-0 and libssl3) and imported with
# `podman import` (no registry is reachable in CI, and the base is built fresh each run, never kept in the
# repository), then
# `podman build` with deploy/container/Containerfile, `podman run` with a simulated host, and GET /healthz and
# /readyz from the running container. Needs root, podman, runc, debootstrap and curl (.ci/run installs them).
# SRIOVD_DEBIAN_MIRROR overrides the mirror debootstrap reads.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in podman runc debootstrap curl; do
    command -v "$tool" >/dev/null || { echo "build-and-run: $tool is missing (run .ci/run)" >&2; exit 1; }
done
mirror=${SRIOVD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# podman refuses a runroot path longer than 50 characters: keep the scratch folder short.
work=$(mktemp -d /tmp/sriovd-img.XXXXXX)
name=sriovd-ci-$$
podman_args=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
cat >"$work/containers.conf" <<CONF
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$work/containers.conf"
pod() { podman "${podman_args[@]}" "$@"; }
cleanup() {
    pod rm -f "$name" >/dev/null 2>&1 || true
    pod rmi -a -f >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== the release binaries (scripts/build-release.sh)"
binary=$(scripts/build-release.sh)
mkdir "$work/context"
cp "$binary" "$(dirname "$binary")/sriovd-cni" "$work/context/"

echo "== the base image: debootstrap --variant=minbase bookworm, then podman import"
started=$(date +%s)
debootstrap --variant=minbase --include=libsqlite3-0,libssl3 bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
}
echo "debootstrap took $(($(date +%s) - started)) s ($(du -sm "$work/rootfs" | cut -f1) MiB)"
tar -C "$work/rootfs" -c . | pod import - localhost/sriovd-base:bookworm >/dev/null
rm -rf "$work/rootfs"

echo "== podman build -f deploy/container/Containerfile"
# --layers=false: one commit for the image, not one per instruction (each is a whole copy with the vfs driver).
pod build --runtime runc --network none --layers=false -f deploy/container/Containerfile \
    --build-arg BASE_IMAGE=localhost/sriovd-base:bookworm -t localhost/sriovd:ci "$work/context"

echo "== podman run (a simulated host), then /healthz and /readyz"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pod run -d --name "$name" --runtime runc --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
    localhost/sriovd:ci \
    serve --simulate /var/lib/sriovd/simhost --listen "127.0.0.1:$port" >/dev/null
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    [ "$(pod inspect -f '{{.State.Running}}' "$name")" = true ] || break
    sleep 0.1
done
health=$(curl -sS --max-time 5 "http://127.0.0.1:$port/healthz") || { pod logs "$name" >&2; exit 1; }
[ "$health" = '{"status":"ok"}' ] || { echo "build-and-run: /healthz answered $health" >&2; pod logs "$name" >&2; exit 1; }
curl -sSf --max-time 5 "http://127.0.0.1:$port/readyz" >/dev/null || { pod logs "$name" >&2; exit 1; }
pfs=$(curl -sSf --max-time 5 "http://127.0.0.1:$port/pfs" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')
echo "the container answers: /healthz $health, /readyz 200, $pfs simulated PFs"
pod stop -t 15 "$name" >/dev/null
code=$(pod inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { echo "build-and-run: sriovd exited $code on SIGTERM" >&2; pod logs "$name" >&2; exit 1; }
pod logs "$name" 2>&1 | grep -q 'msg=stopped' || { echo "build-and-run: no clean stop in the log" >&2; exit 1; }
echo "== the image: built, run, healthy, stopped cleanly"
