#!/usr/bin/env python3
"""Raw SQLite rate of sriovd's allocate+release transactions on the same disk: a copy of a real sriovd
database (schema, inventory) in WAL mode with synchronous=FULL, one transaction per allocate (INSERT allocation
+ INSERT audit event) and one per release (UPDATE allocation + INSERT audit event), the product's SQL.
Usage: sqlite-raw.py DB [seconds=5]
Prints: cycles/s, cycle p50 and p99 ms, then one transaction's p50 and p99 ms (a request of sriovd is one)."""
import sqlite3, sys, time, uuid
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("PRAGMA foreign_keys=ON")
# The copy may hold allocations a benchmark left active; release them so every VF is free.
db.execute("UPDATE allocations SET state = 'released', released_at = '2026-01-01T00:00:00.000Z' WHERE state = 'active'")
vfs = [r[0] for r in db.execute("SELECT address FROM vfs WHERE pf = '0000:5e:00.0' ORDER BY vf_index")]
if not vfs:
    sys.exit("no VFs recorded for 0000:5e:00.0")
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5
ts = "2026-01-01T00:00:00.000Z"
n, lat, tx, start = 0, [], [], time.perf_counter()
while time.perf_counter() - start < seconds:
    vf = vfs[n % len(vfs)]
    aid = str(uuid.uuid4())
    t0 = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO allocations (id, vf, pf, vf_index, owner, labels, state, created_at, released_at, config,"
               " generation) VALUES (?, ?, '0000:5e:00.0', ?, 'bench', '{}', 'active', ?, NULL, NULL, ?)",
               (aid, vf, n % len(vfs), ts, n + 1_000_000))
    db.execute("INSERT INTO audit_events (at, actor, action, target, outcome, error, request_id, details)"
               " VALUES (?, 'bench', 'allocation.create', ?, 'success', NULL, NULL, '{}')", (ts, aid))
    db.execute("COMMIT")
    t1 = time.perf_counter()
    tx.append(t1 - t0)
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE allocations SET state = 'released', released_at = ? WHERE id = ?", (ts, aid))
    db.execute("INSERT INTO audit_events (at, actor, action, target, outcome, error, request_id, details)"
               " VALUES (?, 'bench', 'allocation.release', ?, 'success', NULL, NULL, '{}')", (ts, aid))
    db.execute("COMMIT")
    t2 = time.perf_counter()
    tx.append(t2 - t1)
    lat.append(t2 - t0)
    n += 1
elapsed = time.perf_counter() - start
lat.sort()
tx.sort()
print(f"{n / elapsed:.0f} {lat[len(lat) // 2] * 1e3:.2f} {lat[int(len(lat) * 0.99)] * 1e3:.2f}"
      f" {tx[len(tx) // 2] * 1e3:.2f} {tx[int(len(tx) * 0.99)] * 1e3:.2f}")
