#!/usr/bin/env python3
"""Crash loops (issue 7 §3, issue 11): N cycles of start sriovd on one simulated host, run concurrent clients that
allocate (half of them with a config), release, resize, change held VFs' settings (PATCH /allocations/{id}) and
free VFs' baselines (PATCH /vfs/{address}), kill -9 at a random moment, then check the invariants before and
after restart: nothing acknowledged lost, no VF held twice, the audit present, the hardware matching the
database, and no VF with settings other than the acknowledged ones: every free VF (not held, not reported
`vf.dirty`) reads its acknowledged baseline (the last acknowledged PATCH /vfs, else the factory settings), every
held VF reads its baseline with its allocation's acknowledged config on top, and every new allocation's VF reads
so right after the 201. Only a PATCH whose answer the kill cut off may have applied or not.

Usage: crash-loop.py BINARY CYCLES [--seed S] [--dir DIR] [--min-run 0.3] [--max-run 2.5] [--clients 8]
Prints one line per cycle and a summary; exits 1 on the first broken invariant, printing a reproducer
(the seed, the cycle, and the directory kept for inspection).
"""
import argparse, http.client, json, os, random, re, shutil, signal, sqlite3, subprocess, sys, tempfile, threading, time

ALLOC_PFS = ["0000:5e:00.0", "0000:3b:00.0"]
RESIZE_PF = "0000:af:00.0"          # ConnectX-6 Dx, 8 VFs at most; also allocated from, so resizes meet 409s
ALL_PFS = ALLOC_PFS + [RESIZE_PF]
# What GET /vfs/{address} "settings" holds for a VF nobody configured (the simulated kernel's defaults).
FACTORY = {"mac": "00:00:00:00:00:00", "vlan": 0, "qos": 0, "vlan_proto": "802.1Q", "trust": False,
           "spoof_check": True, "min_tx_rate": 0, "max_tx_rate": 0, "link_state": "auto"}
SETTING_KEYS = sorted(FACTORY)


def settings_of(view):
    """The settings compared, out of a VF view's "settings" (the driver is not: nothing here changes it)."""
    got = (view or {}).get("settings") or {}
    return {k: got.get(k) for k in SETTING_KEYS}


def overlay(base, config):
    out = dict(base)
    out.update({k: v for k, v in (config or {}).items() if k in FACTORY})
    return out


def unique(options):
    seen, out = set(), []
    for o in options:
        key = json.dumps(o, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(o)
    return out


def random_settings(rng, ledger, factory_chance=0.0):
    """A valid random change: vlan and qos always together (qos needs a vlan), rates under every PF's link."""
    if rng.random() < factory_chance:
        return dict(FACTORY)
    change = {}
    while not change:
        if rng.random() < 0.6:
            vlan = rng.choice([0, rng.randrange(1, 4095)])
            change["vlan"], change["qos"] = vlan, (rng.randrange(0, 8) if vlan else 0)
        if rng.random() < 0.4:
            change["trust"] = rng.random() < 0.5
        if rng.random() < 0.4:
            change["spoof_check"] = rng.random() < 0.5
        if rng.random() < 0.4:
            change["max_tx_rate"] = rng.choice([0, 100, 500, 1000])
        if rng.random() < 0.2:
            change["link_state"] = rng.choice(["auto", "enable", "disable"])
        if rng.random() < 0.2:
            with ledger.lock:
                ledger.mac_serial += 1
                n = ledger.mac_serial
            change["mac"] = "02:c5:%02x:%02x:%02x:%02x" % (n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)
    return change


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
        # Settings (issue 11). An allocation also has "config" (the acknowledged settings applied on top of the
        # VF's baseline: its create's config and every acknowledged PATCH), "busy" (a client is using it: a
        # PATCH or the check after the create) and "patch_pending" (a PATCH whose answer the kill cut off).
        self.baseline = {}           # vf -> its acknowledged baseline (full settings); absent: FACTORY
        self.baseline_alt = {}       # vf -> other possible baselines: PATCH /vfs cut off by a kill, unresolved
        self.vf_pending = {}         # vf -> [possible new baselines] of the PATCH /vfs in flight now
        self.mac_serial = 0
        self.vf_addresses = {}       # pf -> [vf addresses], as last listed
        self.dirty = set()           # VFs the startup reconciliation reported vf.dirty
        self.violations = []         # settings that are not what was acknowledged: must stay empty
        self.patch_acked = {"allocation": 0, "vf": 0}
        self.patch_inflight = 0      # PATCHes whose answer a kill cut off
        self.inflight_outcome = {"applied": 0, "kept": 0}   # of those, settled by a read: new or old settings
        self.checked_settings = {"free": 0, "held": 0, "created": 0}
        self.dirty_seen = 0

    def options(self, vf):
        """Every baseline the VF may have: the acknowledged one, those of PATCHes a kill cut off (unresolved),
        and those of the PATCH /vfs in flight now (it may commit before the reader's request)."""
        return unique([self.baseline.get(vf, FACTORY)] + self.baseline_alt.get(vf, [])
                      + self.vf_pending.get(vf, []))

    def violation(self, what, **details):
        self.violations.append(dict(what=what, **details))


def client(daemon, ledger, rng, stop, counts, resizer, cycle):
    conn = http.client.HTTPConnection(daemon.host, daemon.port, timeout=30)
    try:
        while not stop.is_set():
            roll = rng.random()
            try:
                if roll < 0.45:
                    create(daemon, ledger, rng, conn, counts, cycle)
                elif roll < 0.73:
                    release(daemon, ledger, rng, conn, counts)
                elif roll < 0.85:
                    patch_allocation(daemon, ledger, rng, conn, counts, cycle)
                elif roll < 0.92:
                    patch_vf(daemon, ledger, rng, conn, counts, cycle)
                elif resizer:
                    resize(daemon, ledger, rng, conn, counts)
            except (OSError, http.client.HTTPException):
                # The daemon was killed mid-request: whatever was in flight is unacknowledged.
                return
    finally:
        conn.close()


def create(daemon, ledger, rng, conn, counts, cycle):
    pf = rng.choices(ALL_PFS, weights=[60, 35, 5])[0]
    request_body = {"owner": f"crash:{rng.randrange(1 << 30)}", "pf": pf}
    config = random_settings(rng, ledger) if rng.random() < 0.5 else None
    if config:
        request_body["config"] = config
    status, body = request(daemon, "POST", "/allocations", request_body, conn)
    if status == 201:
        aid, vf = body["id"], body["vf"]
        with ledger.lock:
            ledger.allocated[aid] = {"vf": vf, "pf": pf, "released": False, "release_pending": False,
                                     "config": dict(config or {}), "busy": True, "patch_pending": None}
            ledger.touched.add(aid)
            options = [overlay(o, config) for o in ledger.options(vf)]
        counts["create"] += 1
        # The VF was handed out at its baseline, and carries exactly its config on top of it.
        status, view = request(daemon, "GET", f"/vfs/{vf}", None, conn)
        read = settings_of(view)
        with ledger.lock:
            ledger.checked_settings["created"] += 1
            if status != 200 or read not in options:
                ledger.violation("a new allocation's VF is not at its baseline with its config", cycle=cycle,
                                 request=f"POST /allocations {json.dumps(request_body)} -> 201 {aid} on {vf}",
                                 read=(status, read), expected=options)
            ledger.allocated[aid]["busy"] = False
    elif status >= 500:
        ledger.errors.append(("POST /allocations", status, body))


def release(daemon, ledger, rng, conn, counts):
    with ledger.lock:
        held = [i for i, a in ledger.allocated.items()
                if not a["released"] and not a["release_pending"] and not a.get("busy")]
        if not held:
            return
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


def patch_allocation(daemon, ledger, rng, conn, counts, cycle):
    """PATCH /allocations/{id} on a held VF; acknowledged, the VF reads its baseline with the new config."""
    change = random_settings(rng, ledger)
    with ledger.lock:
        held = [i for i, a in ledger.allocated.items()
                if not a["released"] and not a["release_pending"] and not a.get("busy")
                and a.get("config") is not None and a.get("patch_pending") is None]
        if not held:
            return
        target = rng.choice(held)
        a = ledger.allocated[target]
        a["busy"], a["patch_pending"] = True, change
        vf = a["vf"]
    status, body = request(daemon, "PATCH", f"/allocations/{target}", change, conn)
    with ledger.lock:
        a = ledger.allocated[target]
        if status == 200:
            a["config"] = {**a["config"], **change}
            a["patch_alt"] = None
            ledger.patch_acked["allocation"] += 1
            counts["patch"] += 1
        elif status >= 500:
            ledger.errors.append((f"PATCH /allocations/{target}", status, body))
        a["patch_pending"] = None
        options = [overlay(o, a["config"]) for o in ledger.options(vf)]
    if status == 200:
        status, view = request(daemon, "GET", f"/vfs/{vf}", None, conn)
        read = settings_of(view)
        with ledger.lock:
            if status != 200 or read not in options:
                ledger.violation("an acknowledged PATCH /allocations is not what the VF reads", cycle=cycle,
                                 request=f"PATCH /allocations/{target} {json.dumps(change)} -> 200 ({vf})",
                                 read=(status, read), expected=options)
    with ledger.lock:
        ledger.allocated[target]["busy"] = False


def patch_vf(daemon, ledger, rng, conn, counts, cycle):
    """PATCH /vfs/{address} on a VF no client holds: acknowledged, it is the VF's new baseline."""
    with ledger.lock:
        held = {a["vf"] for a in ledger.allocated.values() if not a["released"]}
        candidates = [v for pf in ALLOC_PFS for v in ledger.vf_addresses.get(pf, [])
                      if v not in held and v not in ledger.vf_pending and v not in ledger.dirty]
        if not candidates:
            return
        vf = rng.choice(candidates)
    change = random_settings(rng, ledger, factory_chance=0.3)
    with ledger.lock:
        if vf in ledger.vf_pending:
            return
        ledger.vf_pending[vf] = [overlay(o, change) for o in ledger.options(vf)]
    status, body = request(daemon, "PATCH", f"/vfs/{vf}", change, conn)
    with ledger.lock:
        possible = ledger.vf_pending.pop(vf)
        if status == 200:
            read = settings_of(body)
            if read not in possible:
                ledger.violation("an acknowledged PATCH /vfs answered other settings than asked", cycle=cycle,
                                 request=f"PATCH /vfs/{vf} {json.dumps(change)} -> 200", read=(200, read),
                                 expected=possible)
            ledger.baseline[vf] = read
            ledger.baseline_alt.pop(vf, None)
            ledger.patch_acked["vf"] += 1
            counts["patch_vf"] += 1
        elif status >= 500:
            ledger.errors.append((f"PATCH /vfs/{vf}", status, body))
        # 409 (held: a client's allocation took it first), 404 (gone): the baseline is unchanged.


def resize(daemon, ledger, rng, conn, counts):
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


def check(daemon, ledger, rng, sample_old, cycle):
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
                # Its create completed (else the reconciler had rolled it back): its config is applied.
                ledger.allocated[x["id"]] = {"vf": x["vf"], "pf": x["pf"], "released": False,
                                             "release_pending": False, "config": dict(x.get("config") or {}),
                                             "busy": False, "patch_pending": None}
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
    # 5. Settings (issue 11): no VF is handed out with settings other than its acknowledged baseline.
    check_settings(daemon, ledger, cycle)
    return len(checked), len(active)


def check_settings(daemon, ledger, cycle, learn=False):
    """Every free VF (not held, not reported vf.dirty) reads its acknowledged baseline; every VF held by an
    active allocation reads its baseline with the allocation's acknowledged config on top. A PATCH whose answer
    the kill cut off may have applied or not (the reconciler rolls an open one back): for that VF or allocation
    either is accepted, and what was read settles it. With learn (a --dir reused from an earlier run), what the
    free VFs read is taken as their baselines."""
    with ledger.lock:
        for vf, possible in ledger.vf_pending.items():
            ledger.baseline_alt[vf] = unique(ledger.baseline_alt.get(vf, []) + possible)
            ledger.patch_inflight += 1
        ledger.vf_pending = {}
        for a in ledger.allocated.values():
            a["busy"] = False
            if a.get("patch_pending") is not None:
                a["patch_alt"] = {**a["config"], **a["patch_pending"]}
                a["patch_pending"] = None
                ledger.patch_inflight += 1
    status, report = request(daemon, "GET", "/reconcile")
    if status != 200:
        raise Failure(f"GET /reconcile -> {status} {report}")
    ledger.dirty = {x["target"] for x in report["actions"] if x["kind"] == "vf.dirty"}
    ledger.dirty_seen += len(ledger.dirty)
    for pf in ALL_PFS:
        status, body = request(daemon, "GET", f"/pfs/{pf}/vfs")
        vfs = body["items"] if isinstance(body, dict) and "items" in body else body
        ledger.vf_addresses[pf] = [v["address"] for v in vfs]
        for v in vfs:
            vf = v["address"]
            status, view = request(daemon, "GET", f"/vfs/{vf}")
            if status != 200:
                raise Failure(f"GET /vfs/{vf} -> {status} {view}")
            read = settings_of(view)
            holder = view.get("allocation")
            if holder is None:
                if vf in ledger.dirty:
                    continue
                ledger.checked_settings["free"] += 1
                options = [read] if learn else ledger.options(vf)
                if read not in options:
                    ledger.violation("a free VF does not read its acknowledged baseline", cycle=cycle,
                                     request=f"GET /vfs/{vf} after restart", read=read, expected=options)
                else:
                    if vf in ledger.baseline_alt:
                        old = read == ledger.baseline.get(vf, FACTORY)
                        ledger.inflight_outcome["kept" if old else "applied"] += 1
                    ledger.baseline[vf] = read
                    ledger.baseline_alt.pop(vf, None)
                continue
            a = ledger.allocated.get(holder["id"])
            if a is None or holder.get("state") != "active" or a["released"]:
                continue
            ledger.checked_settings["held"] += 1
            configs = [a["config"]] + ([a["patch_alt"]] if a.get("patch_alt") is not None else [])
            options = unique([overlay(o, c) for c in configs for o in ledger.options(vf)])
            if read not in options:
                ledger.violation("a held VF does not read its baseline with its acknowledged config", cycle=cycle,
                                 request=f"GET /vfs/{vf} after restart (allocation {holder['id']})", read=read,
                                 expected=options)
            elif a.get("patch_alt") is not None:
                # Settle the cut-off PATCH: applied if the VF reads it (and not also the old config).
                applied = any(read == overlay(o, a["patch_alt"]) for o in ledger.options(vf))
                kept = any(read == overlay(o, a["config"]) for o in ledger.options(vf))
                if applied and not kept:
                    a["config"] = a["patch_alt"]
                ledger.inflight_outcome["applied" if applied and not kept else "kept"] += 1
                a["patch_alt"] = None


MOVE_PFS = ["0000:3b:00.0", "0000:5e:00.0"]


def move_phase(binary, cycles, rng, min_run, max_run):
    """Issue 18: kill -9 during moves. Allocations with an identity (MAC, VLAN, QoS, trust) are moved back and forth
    between two PFs by concurrent clients; after each kill and restart every allocation must be on exactly one VF,
    that VF must read its identity, and every free VF of both PFs its factory settings (the other VF restored)."""
    directory = tempfile.mkdtemp(prefix="sriovd-crash-move-")
    daemon = Daemon(binary, directory)
    daemon.start()
    status, body = request(daemon, "POST", f"/pfs/{MOVE_PFS[1]}/vfs", {"count": 4})
    if status != 201:
        raise Failure(f"move phase setup: {status} {body}")
    identities = {}
    for n in range(4):
        identity = {"mac": f"02:18:00:00:00:{n:02x}", "vlan": 100 + n, "qos": n % 8, "trust": n % 2 == 0}
        status, body = request(daemon, "POST", "/allocations",
                               {"owner": f"vm:move-{n}", "pf": MOVE_PFS[0], "config": identity})
        if status != 201:
            raise Failure(f"move phase allocation: {status} {body}")
        identities[body["id"]] = identity
    moved_total = recovered_total = 0
    for cycle in range(1, cycles + 1):
        stop, acked = threading.Event(), [0]

        def mover(seed):
            local = random.Random(seed)
            while not stop.is_set():
                aid = local.choice(sorted(identities))
                try:
                    status, body = request(daemon, "GET", f"/allocations/{aid}")
                    other = MOVE_PFS[1] if body["pf"] == MOVE_PFS[0] else MOVE_PFS[0]
                    status, _ = request(daemon, "POST", f"/allocations/{aid}/move", {"pf": other})
                    if status == 200:
                        acked[0] += 1
                    elif status >= 500:
                        raise Failure(f"move answered {status}")
                except (OSError, http.client.HTTPException, TypeError):
                    return
        threads = [threading.Thread(target=mover, args=(rng.random(),)) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(min_run, max_run))
        daemon.kill9()
        stop.set()
        for t in threads:
            t.join()
        daemon.start()
        holders, free_vfs = {}, []
        for pf in MOVE_PFS:
            for vf in request(daemon, "GET", f"/pfs/{pf}/vfs")[1]["items"]:
                holder = (vf.get("allocation") or {}).get("id")
                if holder:
                    holders.setdefault(holder, []).append(vf["address"])
                else:
                    free_vfs.append(vf["address"])
        for aid, identity in identities.items():
            status, body = request(daemon, "GET", f"/allocations/{aid}")
            if status != 200 or body["state"] != "active":
                raise Failure(f"cycle {cycle}: allocation {aid} is {status} {body and body.get('state')}")
            if holders.get(aid) != [body["vf"]]:
                raise Failure(f"cycle {cycle}: allocation {aid} on {body['vf']} but VFs holding it: {holders.get(aid)}")
            _, view = request(daemon, "GET", f"/vfs/{body['vf']}")
            got = settings_of(view)
            if any(got[k] != v for k, v in identity.items()):
                raise Failure(f"cycle {cycle}: {body['vf']} of {aid} reads {got}, identity {identity}")
        for vf in free_vfs:
            _, view = request(daemon, "GET", f"/vfs/{vf}")
            if settings_of(view) != FACTORY:
                raise Failure(f"cycle {cycle}: free VF {vf} not restored: {settings_of(view)}")
        _, audit = request(daemon, "GET", "/audit?action=allocation.move.recover")
        recovered = len((audit or {}).get("items", []))
        moved_total += acked[0]
        print(f"move cycle {cycle:3d}: {acked[0]:3d} moves acknowledged before kill -9; after restart every "
              f"allocation on exactly one VF with its identity, {len(free_vfs)} free VFs at factory settings; "
              f"moves recovered from intents so far: {recovered}", flush=True)
        recovered_total = recovered
    daemon.proc.terminate()
    daemon.proc.wait()
    shutil.rmtree(directory, ignore_errors=True)
    print(f"move phase passed: {cycles} kill -9 cycles, {moved_total} moves acknowledged, {recovered_total} cut-off "
          f"moves finished or rolled back by recovery", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("cycles", type=int)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--dir")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--min-run", type=float, default=0.3)
    ap.add_argument("--max-run", type=float, default=2.5)
    ap.add_argument("--move-cycles", type=int, default=0, help="first, this many kill -9 cycles during moves")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    if args.move_cycles:
        try:
            move_phase(args.binary, args.move_cycles, rng, 0.05, 0.8)
        except Failure as failure:
            print(f"FAILED (move phase): {failure}\nreproduce: scripts/crash-loop.sh 0 --move-cycles"
                  f" {args.move_cycles} --seed {args.seed}", flush=True)
            sys.exit(1)
        if args.cycles == 0:
            return
    directory = args.dir or tempfile.mkdtemp(prefix="sriovd-crash-")
    os.makedirs(directory, exist_ok=True)
    print(f"crash loop: {args.cycles} cycles, {args.clients} clients, seed {args.seed}, dir {directory}")
    reused = os.path.exists(os.path.join(directory, "sriovd.db"))
    daemon = Daemon(args.binary, directory)
    ledger = Ledger()
    daemon.start()
    status, body = request(daemon, "POST", "/pfs/0000:5e:00.0/vfs", {"count": 32})
    if status != 201 and status != 409:
        raise Failure(f"setup resize: {status} {body}")
    totals = {"create": 0, "release": 0, "resize": 0, "patch": 0, "patch_vf": 0}
    started = time.time()

    def settings_summary():
        return (f"PATCHes acknowledged: {ledger.patch_acked['allocation']} /allocations, {ledger.patch_acked['vf']}"
                f" /vfs; {ledger.patch_inflight} in flight at kills (read back as applied"
                f" {ledger.inflight_outcome['applied']}, as not applied {ledger.inflight_outcome['kept']}); settings read: {ledger.checked_settings['created']}"
                f" new allocations, {ledger.checked_settings['free']} free and {ledger.checked_settings['held']} held"
                f" VFs after restarts ({ledger.dirty_seen} reported vf.dirty, not checked); baseline violations"
                f" found: {len(ledger.violations)} (must be 0)")
    try:
        check_settings(daemon, ledger, 0, learn=reused)   # the VFs to PATCH; all at factory settings
        if ledger.violations:
            raise Failure("settings before the first cycle")
        for cycle in range(1, args.cycles + 1):
            counts = {"create": 0, "release": 0, "resize": 0, "patch": 0, "patch_vf": 0}
            stop = threading.Event()
            threads = [threading.Thread(target=client, args=(daemon, ledger, random.Random(rng.random()), stop, counts,
                                                             n == 0, cycle))
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
            checked, active = check(daemon, ledger, rng, 100, cycle)
            if ledger.errors:
                raise Failure(f"server errors: {ledger.errors[:3]}")
            if ledger.violations:
                raise Failure("VF settings other than the acknowledged ones (see above)")
            for k in totals:
                totals[k] += counts[k]
            print(f"cycle {cycle:3d}: acked {counts['create']:4d} allocs {counts['release']:4d} releases "
                  f"{counts['resize']:3d} resizes {counts['patch']:3d}+{counts['patch_vf']:3d} PATCHes; "
                  f"checked {checked} allocations, {active} active, integrity ok ({how}); all invariants hold",
                  flush=True)
    except Failure as failure:
        for v in ledger.violations[:10]:
            print(f"VIOLATION (cycle {v['cycle']}): {v['what']}\n  request: {v['request']}\n  read:     {v['read']}"
                  f"\n  expected one of: {v['expected']}", flush=True)
        print(f"FAILED: {failure}\n{settings_summary()}\nreproduce: scripts/crash-loop.sh {args.cycles} --seed"
              f" {args.seed} (state kept in {directory})", flush=True)
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
          f"{ledger.adopted} allocations made by requests a kill cut off were found and handed back to the clients; "
          f"{settings_summary()}")
    if not args.dir:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
