#!/usr/bin/env python3
"""Crash loops (issue 7 §3): N cycles of start sriovd on one simulated host, run concurrent clients that
allocate, release and resize, kill -9 at a random moment, then check the invariants before and after restart.

Usage: crash-loop.py BINARY CYCLES [--seed S] [--dir DIR] [--min-run 0.3] [--max-run 2.5] [--clients 8]
Prints one line per cycle and a summary; exits 1 on the first broken invariant, printing a reproducer
(the seed, the cycle, and the directory kept for inspection).
"""
import argparse, http.client, json, os, random, re, shutil, signal, sqlite3, subprocess, sys, tempfile, threading, time

ALLOC_PFS = ["0000:5e:00.0", "0000:3b:00.0"]
RESIZE_PF = "0000:af:00.0"          # ConnectX-6 Dx, 8 VFs at most; also allocated from, so resizes meet 409s


class Failure(Exception):
    pass


class Daemon:
    def __init__(self, binary, directory):
        self.binary, self.directory = binary, directory
        self.proc = None
        self.host = self.port = None

    def start(self):
        out = open(os.path.join(self.directory, "daemon.log"), "a")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--simulate", os.path.join(self.directory, "host"),
             "--db", os.path.join(self.directory, "sriovd.db"), "--listen", "127.0.0.1:0", "--log-level", "error"],
            stdout=subprocess.PIPE, stderr=out, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://([0-9.]+):(\d+)", line)
        if not m:
            raise Failure(f"sriovd did not start: {line!r}; see {out.name}")
        self.host, self.port = m.group(1), int(m.group(2))
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if request(self, "GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise Failure("sriovd never became ready")

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def request(daemon, method, path, body=None, conn=None, headers=None):
    own = conn is None
    c = conn or http.client.HTTPConnection(daemon.host, daemon.port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data else {}
        hdrs.update(headers or {})
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        if own:
            c.close()


class Ledger:
    """What the clients saw acknowledged, across all cycles."""

    def __init__(self):
        self.lock = threading.Lock()
        self.allocated = {}          # id -> {"vf", "pf", "released": bool, "release_pending": bool}
        self.attempted_allocs = 0
        self.resize_acked = {}       # pf -> last acknowledged count
        self.resize_inflight = {}    # pf -> set of counts sent without an answer since the last ack
        self.resize_ack_count = {}   # pf -> number of acknowledged resizes (for the audit)
        self.adopted = 0             # allocations found active that no client saw acknowledged
        self.errors = []             # 5xx answers seen
        self.touched = set()         # allocation ids created or released (or attempted) this cycle


def client(daemon, ledger, rng, stop, counts, resizer):
    conn = http.client.HTTPConnection(daemon.host, daemon.port, timeout=30)
    try:
        while not stop.is_set():
            roll = rng.random()
            try:
                if roll < 0.55:
                    pf = rng.choices(ALLOC_PFS + [RESIZE_PF], weights=[60, 35, 5])[0]
                    status, body = request(daemon, "POST", "/allocations",
                                           {"owner": f"crash:{rng.randrange(1 << 30)}", "pf": pf}, conn)
                    if status == 201:
                        with ledger.lock:
                            ledger.allocated[body["id"]] = {"vf": body["vf"], "pf": pf, "released": False,
                                                            "release_pending": False}
                        ledger.touched.add(body["id"])
                        counts["create"] += 1
                    elif status >= 500:
                        ledger.errors.append(("POST /allocations", status, body))
                elif roll < 0.9:
                    with ledger.lock:
                        held = [i for i, a in ledger.allocated.items() if not a["released"] and not a["release_pending"]]
                        if not held:
                            continue
                        # Prefer releasing from the PF being resized, so that resizes are not always refused.
                        on_resize_pf = [i for i in held if ledger.allocated[i]["pf"] == RESIZE_PF]
                        target = rng.choice(on_resize_pf or held)
                        ledger.allocated[target]["release_pending"] = True
                    status, body = request(daemon, "DELETE", f"/allocations/{target}", None, conn)
                    with ledger.lock:
                        ledger.touched.add(target)
                        if status == 204:
                            ledger.allocated[target]["released"] = True
                            counts["release"] += 1
                        if status >= 500:
                            ledger.errors.append(("DELETE", status, body))
                    # A 404 here would mean an acknowledged allocation vanished; the checks catch that.
                elif resizer:
                    # One client resizes, so the order of acknowledgements is the order of the writes.
                    count = rng.randrange(0, 9)
                    with ledger.lock:
                        ledger.resize_inflight.setdefault(RESIZE_PF, set()).add(count)
                    status, body = request(daemon, "POST", f"/pfs/{RESIZE_PF}/vfs", {"count": count}, conn)
                    with ledger.lock:
                        if status == 201:
                            enabled = body["change"]["enabled"]
                            ledger.resize_acked[RESIZE_PF] = enabled
                            ledger.resize_inflight[RESIZE_PF] = set()
                            ledger.resize_ack_count[RESIZE_PF] = ledger.resize_ack_count.get(RESIZE_PF, 0) + 1
                            counts["resize"] += 1
                        else:
                            ledger.resize_inflight[RESIZE_PF].discard(count)
                            if status >= 500:
                                ledger.errors.append(("resize", status, body))
            except (OSError, http.client.HTTPException):
                # The daemon was killed mid-request: whatever was in flight is unacknowledged.
                return
    finally:
        conn.close()


def integrity_check(directory):
    path = os.path.join(directory, "sriovd.db")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        result = db.execute("PRAGMA integrity_check").fetchall()
        db.close()
        return result, "read-only"
    except sqlite3.OperationalError:
        # A read-only connection cannot rebuild the WAL index after a crash; check a copy of db + WAL instead.
        scratch = tempfile.mkdtemp()
        for suffix in ("", "-wal"):
            if os.path.exists(path + suffix):
                shutil.copy(path + suffix, os.path.join(scratch, "copy.db" + suffix))
        db = sqlite3.connect(os.path.join(scratch, "copy.db"))
        result = db.execute("PRAGMA integrity_check").fetchall()
        db.close()
        shutil.rmtree(scratch)
        return result, "copy"


def list_all(daemon, path):
    items, url = [], path
    while True:
        status, body = request(daemon, "GET", url)
        if status != 200:
            raise Failure(f"GET {url} -> {status} {body}")
        items += body["items"]
        if not body["next"]:
            return items
        sep = "&" if "?" in path else "?"
        key = "cursor" if path.startswith("/allocations") else "after"
        url = f"{path}{sep}{key}={body['next']}"


def check(daemon, ledger, rng, sample_old):
    # 1. Every acknowledged allocation is present with the right state.
    with ledger.lock:
        snapshot = dict(ledger.allocated)
    with ledger.lock:
        touched = [i for i in ledger.touched if i in snapshot]
        ledger.touched = set()
    older = [i for i in snapshot if i not in set(touched)]
    checked = touched + rng.sample(older, min(sample_old, len(older)))
    for aid in checked:
        a = snapshot[aid]
        status, body = request(daemon, "GET", f"/allocations/{aid}")
        if status != 200:
            raise Failure(f"acknowledged allocation {aid} missing: GET -> {status} {body}")
        if body["vf"] != a["vf"]:
            raise Failure(f"allocation {aid} moved from {a['vf']} to {body['vf']}")
        if a["released"] and body["state"] != "released":
            raise Failure(f"release of {aid} was acknowledged (204) but it is {body['state']}")
        if not a["released"] and not a["release_pending"] and body["state"] != "active":
            raise Failure(f"allocation {aid} never released by the client is {body['state']}")
        if a["release_pending"] and not a["released"]:
            # Unacknowledged release: either outcome is fine; learn which one happened.
            a["released"] = body["state"] == "released"
            a["release_pending"] = False
            with ledger.lock:
                ledger.allocated[aid] = a
    # 2. No VF held twice.
    active = list_all(daemon, "/allocations?state=active&limit=500")
    vfs = [x["vf"] for x in active]
    dupes = {v for v in vfs if vfs.count(v) > 1}
    if dupes:
        raise Failure(f"VFs held twice: {sorted(dupes)}")
    # Requests the kill cut off: an allocation the daemon made but the client never heard of, and a release
    # whose answer was lost. Learn what happened, so the clients can release them in the next cycle; otherwise
    # they pile up on the resized PF (8 VFs) and every later resize meets a 409.
    active_ids = {x["id"] for x in active}
    with ledger.lock:
        for x in active:
            if x["id"] not in ledger.allocated:
                ledger.allocated[x["id"]] = {"vf": x["vf"], "pf": x["pf"], "released": False,
                                             "release_pending": False}
                ledger.adopted += 1
        for a_id, a in ledger.allocated.items():
            if a["release_pending"]:
                a["released"] = a_id not in active_ids
                a["release_pending"] = False
    # 3. The audit has an event for each acknowledged change (this cycle's, and a sample of older ones).
    for aid in checked:
        a = snapshot[aid]
        for action, needed in (("allocation.create", True), ("allocation.release", a["released"])):
            if not needed:
                continue
            status, body = request(daemon, "GET", f"/audit?action={action}&target={aid}")
            if status != 200 or not any(e["outcome"] == "success" for e in body["items"]):
                raise Failure(f"no successful {action} audit event for acknowledged {aid}: {status} {body}")
    for pf, acked in ledger.resize_ack_count.items():
        events = list_all(daemon, f"/audit?action=pf.vfs.set&target={pf}&limit=500")
        ok = sum(1 for e in events if e["outcome"] == "success" and e["actor"] != "reconciler")
        if ok < acked:
            raise Failure(f"{pf}: {acked} acknowledged resizes but {ok} successful pf.vfs.set events")
    # 4. Simulated hardware matches the database.
    status, body = request(daemon, "GET", "/pfs")
    pfs = {p["address"]: p for p in body["items"]}
    for pf, count in ledger.resize_acked.items():
        allowed = {count} | ledger.resize_inflight.get(pf, set())
        if pfs[pf]["num_vfs"] not in allowed:
            raise Failure(f"{pf} has {pfs[pf]['num_vfs']} VFs; last acknowledged resize set {count}"
                          f" (in flight: {sorted(ledger.resize_inflight.get(pf, set()))})")
        ledger.resize_acked[pf] = pfs[pf]["num_vfs"]
        ledger.resize_inflight[pf] = set()
    existing = set()
    for pf in pfs:
        status, body = request(daemon, "GET", f"/pfs/{pf}/vfs")
        existing |= {v["address"] for v in (body["items"] if isinstance(body, dict) and "items" in body else body)}
    missing = [x for x in active if x["vf"] not in existing]
    if missing:
        raise Failure(f"active allocations on VFs that do not exist: {missing[:3]}")
    return len(checked), len(active)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("cycles", type=int)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--dir")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--min-run", type=float, default=0.3)
    ap.add_argument("--max-run", type=float, default=2.5)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    directory = args.dir or tempfile.mkdtemp(prefix="sriovd-crash-")
    os.makedirs(directory, exist_ok=True)
    print(f"crash loop: {args.cycles} cycles, {args.clients} clients, seed {args.seed}, dir {directory}")
    daemon = Daemon(args.binary, directory)
    ledger = Ledger()
    daemon.start()
    status, body = request(daemon, "POST", "/pfs/0000:5e:00.0/vfs", {"count": 32})
    if status != 201 and status != 409:
        raise Failure(f"setup resize: {status} {body}")
    totals = {"create": 0, "release": 0, "resize": 0}
    started = time.time()
    try:
        for cycle in range(1, args.cycles + 1):
            counts = {"create": 0, "release": 0, "resize": 0}
            stop = threading.Event()
            threads = [threading.Thread(target=client, args=(daemon, ledger, random.Random(rng.random()), stop, counts, n == 0))
                       for n in range(args.clients)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(args.min_run, args.max_run))
            daemon.kill9()
            stop.set()
            for t in threads:
                t.join()
            result, how = integrity_check(directory)
            if result != [("ok",)]:
                raise Failure(f"PRAGMA integrity_check after kill -9: {result}")
            daemon.start()
            checked, active = check(daemon, ledger, rng, 100)
            if ledger.errors:
                raise Failure(f"server errors: {ledger.errors[:3]}")
            for k in totals:
                totals[k] += counts[k]
            print(f"cycle {cycle:3d}: acked {counts['create']:4d} allocs {counts['release']:4d} releases "
                  f"{counts['resize']:3d} resizes; checked {checked} allocations, {active} active, "
                  f"integrity ok ({how}); all invariants hold", flush=True)
    except Failure as failure:
        print(f"FAILED: {failure}\nreproduce: scripts/crash-loop.sh {args.cycles} --seed {args.seed}"
              f" (state kept in {directory})", flush=True)
        try:
            daemon.kill9()
        except Exception:
            pass
        sys.exit(1)
    daemon.proc.terminate()
    daemon.proc.wait()
    elapsed = time.time() - started
    print(f"crash loop passed: {args.cycles} kill -9 cycles in {elapsed:.0f} s; acknowledged {totals['create']} "
          f"allocations, {totals['release']} releases, {totals['resize']} resizes, all present and audited; "
          f"{ledger.adopted} allocations made by requests a kill cut off were found and handed back to the clients")
    if not args.dir:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
