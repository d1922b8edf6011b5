#!/usr/bin/env bash
# Moving allocations (issue 18), simulated host: the latency of POST /allocations/{id}/move between two PFs
# (p50/p99), beside PATCH /allocations/{id} with the same settings as the baseline (one VF written, one intent),
# and the time to drain a PF holding 64 allocations with settings (target: under 2 s).
# Usage: bench/move.sh [moves, default 200]  (CONFIG=debug to use a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
MOVES=${1:-200}
if [ "${CONFIG:-release}" = debug ]; then
    swift build --product sriovd >&2
    BIN="$(swift build --show-bin-path)/sriovd"
else
    BIN=$(scripts/build-release.sh)
fi
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
"$BIN" simulate create "$WORK/host" --pfs 3 --vfs-per-pf 128 >/dev/null
"$BIN" serve --simulate "$WORK/host" --db "$WORK/sriovd.db" --listen 127.0.0.1:0 --log-level error >"$WORK/out" &
PID=$!
until grep -q listening "$WORK/out" 2>/dev/null; do sleep 0.005; done
ADDR=$(grep -o 'http://[0-9.:]*' "$WORK/out")
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/readyz")" = 200 ]; do sleep 0.005; done
python3 - "$ADDR" "$MOVES" <<'PY'
import http.client, json, sys, time
host, port = sys.argv[1].removeprefix("http://").split(":")
moves = int(sys.argv[2])
conn = http.client.HTTPConnection(host, int(port), timeout=60)
def call(method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    h = {"Content-Type": "application/json"} if data else {}
    h.update(headers or {})
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    raw = r.read()
    return r.status, (json.loads(raw) if raw else None)
pfs = [p["address"] for p in call("GET", "/pfs")[1]["items"]][:3]
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000
ids = []
for n in range(64):
    status, body = call("POST", "/allocations", {"owner": f"bench:{n}", "pf": pfs[0],
                        "config": {"mac": f"02:18:00:00:01:{n:02x}", "vlan": 100 + n, "trust": True}})
    assert status == 201, body
    ids.append(body["id"])
patch, move = [], []
for n in range(moves):
    aid = ids[n % len(ids)]
    t = time.perf_counter(); s, b = call("PATCH", f"/allocations/{aid}", {"vlan": 200 + n % 100}); patch.append(time.perf_counter() - t)
    assert s == 200, b
    cur = call("GET", f"/allocations/{aid}")[1]["pf"]
    t = time.perf_counter(); s, b = call("POST", f"/allocations/{aid}/move", {"pf": pfs[1] if cur == pfs[0] else pfs[0]}); move.append(time.perf_counter() - t)
    assert s == 200, b
for aid in ids:   # all 64 back on the first PF
    if call("GET", f"/allocations/{aid}")[1]["pf"] != pfs[0]:
        assert call("POST", f"/allocations/{aid}/move", {"pf": pfs[0]})[0] == 200
print(f"{'request':<34} {'n':>5} {'p50_ms':>8} {'p99_ms':>8}")
print(f"{'PATCH /allocations/{id} (baseline)':<34} {len(patch):>5} {pct(patch, .5):>8.2f} {pct(patch, .99):>8.2f}")
print(f"{'POST /allocations/{id}/move':<34} {len(move):>5} {pct(move, .5):>8.2f} {pct(move, .99):>8.2f}")
t = time.perf_counter()
s, op = call("POST", f"/pfs/{pfs[0]}/drain", headers={"Prefer": "respond-async"})
assert s == 202, op
while op["state"] not in ("succeeded", "failed"):
    op = call("GET", op["location"] + "?wait=10")[1]
wall = time.perf_counter() - t
result = op["result"]
print(f"drain of a PF holding 64 allocations: {wall*1000:.0f} ms wall ({result['duration_ms']:.0f} ms in the daemon);"
      f" moved {result['moved']}, stayed {result['stayed']}; target < 2000 ms: {'met' if wall < 2 else 'NOT met'}")
PY
