#!/usr/bin/env bash
# sriovd over TLS beside nginx (Debian's package) serving the same bytes over TLS on this machine, in one run
# (issue 19 §1): keep-alive GET throughput with wrk at 1 and 64 connections (target: sriovd >= 0.5x nginx), and
# new TLS handshakes per second with `openssl s_time -new` (a full handshake and one GET per connection, no
# resumption). Both serve TLS 1.3 with the same P-256 certificate, one worker each (sriovd runs one event loop);
# sriovd's plain-HTTP figure is printed beside them for the cost of TLS itself.
# Usage: bench/tls.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-10}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
command -v nginx >/dev/null || apt-get install -y -qq nginx-light >/dev/null
BIN=$(scripts/build-release.sh)
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT

# One CA and one server certificate for 127.0.0.1, made here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$W/ca.key" -out "$W/ca.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -CA "$W/ca.pem" -CAkey "$W/ca.key" -addext subjectAltName=IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE -keyout "$W/server.key" -out "$W/server.pem" 2>/dev/null

"$BIN" serve --simulate "$W/host" --db "$W/sriovd.db" --listen 127.0.0.1:0 --log-level error --no-access-log \
    --tls-cert "$W/server.pem" --tls-key "$W/server.key" >"$W/out" &
PIDS+=($!)
"$BIN" serve --simulate "$W/plain" --db "$W/plain.db" --listen 127.0.0.1:0 --log-level error --no-access-log \
    >"$W/plain.out" &
PIDS+=($!)
for _ in $(seq 100); do grep -q listening "$W/out" "$W/plain.out" 2>/dev/null \
    && [ "$(cat "$W/out" "$W/plain.out" | grep -c listening)" = 2 ] && break; sleep 0.1; done
SRIOVD=$(grep -o 'https://[0-9.:]*' "$W/out")
PLAIN=$(grep -o 'http://[0-9.:]*' "$W/plain.out")
curl -sf --cacert "$W/ca.pem" "$SRIOVD/pfs" >"$W/pfs.json"

# nginx: the same bytes as a static file, with the same certificate.
mkdir -p "$W/www"
cp "$W/pfs.json" "$W/www/pfs"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$W/nginx.conf" <<CONF
daemon off; worker_processes 1; user $(id -un); pid $W/nginx.pid; error_log $W/nginx.err;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate $W/server.pem; ssl_certificate_key $W/server.key; ssl_protocols TLSv1.2 TLSv1.3;
        keepalive_requests 1000000;
        root $W/www; default_type application/json;
    }
}
CONF
nginx -c "$W/nginx.conf" -p "$W" &
PIDS+=($!)
NGINX=https://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf --cacert "$W/ca.pem" "$NGINX/pfs" >/dev/null 2>&1 && break; sleep 0.1; done
cmp -s "$W/pfs.json" <(curl -sf --cacert "$W/ca.pem" "$NGINX/pfs") || { echo "nginx serves other bytes" >&2; exit 1; }

rps() { # url connections -> "req/s p99 errors"
    local t=$(( $2 < 2 ? 1 : 2 )) out
    out=$(wrk -t"$t" -c"$2" -d"${D}s" --latency "$1")
    printf '%s %s %s\n' "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
        "$(echo "$out" | awk '$1=="99%" {print $2}')" \
        "$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {n+=1} END {print n+0}')"
}
handshakes() { # url -> connections per second
    openssl s_time -connect "${1#https://}" -new -time "$D" -www /pfs -CAfile "$W/ca.pem" 2>/dev/null \
        | awk '/connections in [0-9.]+ real seconds/ {printf "%.0f", $1 / $4}'
}

echo "GET /pfs ($(wc -c <"$W/pfs.json")-byte body), TLS 1.3, $D s per run, $(nproc) cores, wrk and s_time on the same machine"
printf '%-34s %12s %10s %8s\n' "keep-alive GET" req/s p99 errors
for C in 1 64; do
    read -r S SP SE <<<"$(rps "$SRIOVD/pfs" "$C")"
    read -r N NP NE <<<"$(rps "$NGINX/pfs" "$C")"
    read -r P PP PE <<<"$(rps "$PLAIN/pfs" "$C")"
    printf '%-34s %12s %10s %8s\n' "sriovd TLS, $C conn" "$S" "$SP" "$SE" "nginx TLS, $C conn" "$N" "$NP" "$NE" \
        "sriovd plain HTTP, $C conn" "$P" "$PP" "$PE"
    awk -v s="$S" -v n="$N" -v c="$C" 'BEGIN { printf "sriovd/nginx at %s conn: %.2fx (target >= 0.5x)\n", c, s / n }'
done
HS=$(handshakes "$SRIOVD")
HN=$(handshakes "$NGINX")
printf '%-34s %12s\n' "new handshakes (s_time -new)" "per second" "sriovd" "$HS" "nginx" "$HN"
awk -v s="$HS" -v n="$HN" 'BEGIN { printf "sriovd/nginx handshakes: %.2fx\n", s / n }'
