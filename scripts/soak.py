#!/usr/bin/env python3
"""Soak with hostile clients (issue 7 §4).

Usage: soak.py BINARY [seconds=60] [--connections 64] [--hostiles 1] [--slow-clients 900]
1. Starts sriovd on a fresh simulated host with a tokens file and gives 0000:5e:00.0 128 VFs.
2. Baseline: the well-behaved clients alone for a quarter of the duration (min 5 s): their p99.
3. Soak: the same clients for the full duration with hostile clients alongside (slowloris, stalled after a partial
   request, garbage bytes, 40 KiB headers, a pipeliner that never reads). Samples VmRSS and open fds every 0.5 s.
4. Slow clients (issue 12): the same clients for a quarter of the duration (min 15 s) while one anonymous address
   opens --slow-clients connections (900, well past the 512 one client may hold, so that the limit is reached
   however fast the connections are opened and timed out) that trickle their headers a byte a second,
   and 32 connections with a token of their own trickle request bodies a byte a second.
Well-behaved clients (64 keep-alive connections, with an admin token) do GET /pfs, GET /vfs, GET /allocations,
GET /audit, and POST /allocations + DELETE /allocations/{id}. Checks: no 5xx or unexpected status, no connection
error for well-behaved clients; RSS and fds flat (last-quarter median <= first-quarter median * 1.2 + slack, slack
4 MiB for RSS and 8 for fds); soak and slow-client p99 <= max(baseline p99 * 3, baseline p99 + 20 ms); in the
slow-client phase the daemon refused connections over the per-client limit and timed out the tricklers (its
/metrics say so). Exits 1 when a check fails.
"""
import argparse, asyncio, json, multiprocessing, os, random, re, resource, statistics, subprocess, sys, tempfile
import time

PF = "0000:5e:00.0"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


TOKEN = {}  # "good" and "slow": the bearer tokens of the well-behaved clients and of the body tricklers


async def roundtrip(reader, writer, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN['good']}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    writer.write(head.encode() + b"\r\n" + data)
    await writer.drain()
    raw = await reader.readuntil(b"\r\n\r\n")
    status = int(raw[9:12])
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", raw)
    length = int(m.group(1)) if m else 0
    payload = await reader.readexactly(length) if length else b""
    return status, payload


class Stats:
    def __init__(self):
        self.latencies = []
        self.errors = []
        self.requests = 0


async def good_client(host, port, stats, stop, rng):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while not stop.is_set():
            r = rng.random()
            t0 = time.perf_counter()
            try:
                if r < 0.55:
                    calls = [("GET", "/pfs", None, {200})]
                elif r < 0.65:
                    calls = [("GET", f"/vfs?pf={PF}", None, {200})]
                elif r < 0.72:
                    calls = [("GET", "/allocations?limit=50", None, {200})]
                elif r < 0.77:
                    calls = [("GET", "/audit?limit=20", None, {200})]
                else:
                    calls = [("POST", "/allocations", {"owner": f"soak:{rng.randrange(1 << 30)}", "pf": PF}, {201, 409})]
                for method, path, body, ok in calls:
                    t0 = time.perf_counter()
                    status, payload = await roundtrip(reader, writer, method, path, body)
                    stats.latencies.append(time.perf_counter() - t0)
                    stats.requests += 1
                    if status not in ok:
                        stats.errors.append(f"{method} {path} -> {status} {payload[:200]!r}")
                    if method == "POST" and status == 201:
                        aid = json.loads(payload)["id"]
                        t0 = time.perf_counter()
                        status, payload = await roundtrip(reader, writer, "DELETE", f"/allocations/{aid}")
                        stats.latencies.append(time.perf_counter() - t0)
                        stats.requests += 1
                        if status != 204:
                            stats.errors.append(f"DELETE -> {status} {payload[:200]!r}")
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                stats.errors.append(f"connection error: {error!r}")
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def hostile(kind, host, port, stop, rng, counts):
    """Misbehaving clients; they reconnect whenever the server closes them."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "slowloris":
                writer.write(b"GET /pfs HTTP/1.1\r\nHost: localhost\r\n")
                while not stop.is_set():
                    writer.write(b"X-a: b\r\n")
                    await writer.drain()
                    await asyncio.sleep(1)
            elif kind == "stalled":
                writer.write(b"POST /allocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"own")
                await writer.drain()
                await reader.read()                     # until the server gives up on us (401 at once: no token)
                await asyncio.sleep(0.05)
            elif kind == "trickle-head":
                # A byte a second of an endless header section, until the header deadline closes it.
                writer.write(b"GET /pfs HTTP/1.1\r\nHost: x\r\n")
                while not stop.is_set() and not reader.at_eof():
                    writer.write(b"X")
                    await writer.drain()
                    try:
                        await asyncio.wait_for(reader.read(4096), 1)  # paces the trickle; any answer ends it
                        break
                    except asyncio.TimeoutError:
                        pass
                await asyncio.sleep(1)
            elif kind == "trickle-body":
                # A token holder whose body arrives at a byte a second, below the minimum rate.
                writer.write(f"POST /allocations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN['slow']}\r\n"
                             "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode())
                while not stop.is_set() and not reader.at_eof():
                    writer.write(b" ")
                    await writer.drain()
                    try:
                        await asyncio.wait_for(reader.read(4096), 1)
                        break
                    except asyncio.TimeoutError:
                        pass
                await asyncio.sleep(1)
            elif kind == "silent":
                await reader.read()                     # connect, never send a byte
            elif kind == "garbage":
                writer.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2048))) + b"\r\n\r\n")
                await writer.drain()
                await reader.read()
                await asyncio.sleep(0.05)
            elif kind == "hugeheaders":
                writer.write(b"GET /pfs HTTP/1.1\r\nHost: localhost\r\n" + b"X-Big: " + b"a" * 40000 + b"\r\n\r\n")
                await writer.drain()
                await reader.read()
                await asyncio.sleep(0.05)
            elif kind == "nonreader":
                # Pipelines requests and never reads the answers: the server must bound what it buffers.
                for _ in range(2000):
                    if stop.is_set():
                        break
                    writer.write(b"GET /pfs HTTP/1.1\r\nHost: localhost\r\n\r\n" * 50)
                    await asyncio.wait_for(writer.drain(), 5)
                await asyncio.sleep(5)
            writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            await asyncio.sleep(0.05)


def p99(values):
    values = sorted(values)
    return values[int(len(values) * 0.99)] if values else float("nan")


HOSTILE_MIX = ["slowloris"] * 4 + ["stalled"] * 4 + ["silent"] * 4 + ["garbage"] * 2 + ["hugeheaders"] * 2 + [
    "nonreader"]


async def run_phase(host, port, seconds, connections, kinds, pid, seed, beside=None):
    """The well-behaved clients for `seconds`, with hostile clients of `kinds` in this process and `beside()`
    started once the well-behaved ones have connected (for hostiles in a process of their own)."""
    stop = asyncio.Event()
    stats = Stats()
    rng = random.Random(seed)
    counts = {}
    tasks = [asyncio.create_task(good_client(host, port, stats, stop, random.Random(rng.random())))
             for _ in range(connections)]
    # The well-behaved clients connect first, as the daemon's regular clients would have.
    while stats.requests < connections and (kinds or beside):
        await asyncio.sleep(0.01)
    if beside:
        beside()
    htasks = [asyncio.create_task(hostile(k, host, port, stop, random.Random(rng.random()), counts)) for k in kinds]
    samples = []
    start = time.time()
    while time.time() - start < seconds:
        await asyncio.sleep(0.5)
        samples.append((time.time() - start, rss_kib(pid), fd_count(pid), stats.requests))
    stop.set()
    await asyncio.wait(tasks, timeout=15)
    for t in htasks:
        t.cancel()
    await asyncio.gather(*htasks, return_exceptions=True)
    return stats, samples, counts


def make_tokens(binary, path):
    """A tokens file with two admin tokens, "soak" (the well-behaved clients) and "slow" (the body tricklers)."""
    lines = []
    for name in ["good", "slow"]:
        out = subprocess.run([binary, "token", "create", f"soak-{name}", "--role", "admin"], capture_output=True,
                             text=True, check=True).stdout.splitlines()
        TOKEN[name] = out[1]
        lines.append(out[3])
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def limit_refusals(host, port):
    """sriovd_http_limit_refusals_total by limit, from GET /metrics."""
    async def read():
        reader, writer = await asyncio.open_connection(host, port)
        status, payload = await roundtrip(reader, writer, "GET", "/metrics")
        writer.close()
        return payload.decode()
    text = asyncio.run(read())
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'sriovd_http_limit_refusals_total\{limit="(\w+)"\} (\S+)', text)}


def run_hostiles(host, port, kinds, seconds, tokens):
    """Hostile clients of `kinds` for `seconds`, in this (child) process."""
    TOKEN.update(tokens)

    async def run():
        stop = asyncio.Event()
        rng = random.Random(11)
        tasks = [asyncio.create_task(hostile(k, host, port, stop, random.Random(rng.random()), {})) for k in kinds]
        await asyncio.sleep(seconds)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    asyncio.run(run())


def slow_client_phase(host, port, args, pid, base_p99):
    """Phase 4: header and body tricklers beside the well-behaved clients; returns the failed checks."""
    seconds = max(15.0, args.seconds / 4)
    before = limit_refusals(host, port)
    kinds = ["trickle-head"] * args.slow_clients + ["trickle-body"] * 32
    # The tricklers run in a process of their own, so that they do not slow the well-behaved clients' event loop.
    tricklers = multiprocessing.Process(target=run_hostiles, args=(host, port, kinds, seconds, dict(TOKEN)))
    slow, samples, counts = asyncio.run(run_phase(host, port, seconds, args.connections, [], pid, args.seed + 2,
                                                  beside=tricklers.start))
    tricklers.join()
    after = limit_refusals(host, port)
    refused = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) > before.get(k, 0)}
    slow_p99 = p99(slow.latencies) * 1000
    print(f"  slow clients: {args.slow_clients} anonymous header tricklers and 32 token body tricklers for "
          f"{seconds:.0f} s: {slow.requests} requests, p50 {statistics.median(slow.latencies) * 1000:.2f} ms, "
          f"p99 {slow_p99:.2f} ms, {len(slow.errors)} errors; refusals by limit {refused}; "
          f"RSS max {max(s[1] for s in samples) / 1024:.1f} MiB")
    failures = []
    if slow.errors:
        failures.append(f"{len(slow.errors)} errors for well-behaved clients among slow ones, e.g. {slow.errors[:3]}")
    if slow_p99 > max(base_p99 * 3, base_p99 + 20):
        failures.append(f"slow clients slowed the others: p99 {base_p99:.2f} -> {slow_p99:.2f} ms")
    if args.slow_clients > 512 and not refused.get("peer_connections"):
        failures.append("no connection was refused for the per-client limit")
    if not refused.get("slow_client"):
        failures.append("no trickler was timed out")
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("seconds", type=float, nargs="?", default=60)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--hostiles", type=int, default=1, help="multiplier for the hostile mix (0: none)")
    ap.add_argument("--slow-clients", type=int, default=900, help="anonymous header tricklers in phase 4 (0: skip)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    directory = tempfile.mkdtemp(prefix="sriovd-soak-")
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    make_tokens(args.binary, f"{directory}/tokens")
    proc = subprocess.Popen([args.binary, "serve", "--simulate", f"{directory}/host", "--db", f"{directory}/sriovd.db",
                             "--listen", "127.0.0.1:0", "--tokens", f"{directory}/tokens", "--log-level", "error"],
                            stdout=subprocess.PIPE, text=True)
    m = re.search(r"http://([0-9.]+):(\d+)", proc.stdout.readline())
    host, port = m.group(1), int(m.group(2))
    failures = []
    try:
        async def setup():
            for _ in range(100):
                try:
                    r, w = await asyncio.open_connection(host, port)
                    status, _ = await roundtrip(r, w, "GET", "/readyz")
                    if status == 200:
                        status, body = await roundtrip(r, w, "POST", f"/pfs/{PF}/vfs", {"count": 128})
                        w.close()
                        return status
                    w.close()
                except OSError:
                    pass
                await asyncio.sleep(0.1)
        assert asyncio.run(setup()) == 201
        base_seconds = max(5.0, args.seconds / 4)
        base, _, _ = asyncio.run(run_phase(host, port, base_seconds, args.connections, [], proc.pid, args.seed))
        soak, samples, counts = asyncio.run(run_phase(host, port, args.seconds, args.connections,
                                                      HOSTILE_MIX * args.hostiles, proc.pid, args.seed + 1))
        q = max(1, len(samples) // 4)
        first, last = samples[:q], samples[-q:]
        rss1, rss4 = statistics.median(s[1] for s in first), statistics.median(s[1] for s in last)
        fd1, fd4 = statistics.median(s[2] for s in first), statistics.median(s[2] for s in last)
        base_p99, soak_p99 = p99(base.latencies) * 1000, p99(soak.latencies) * 1000
        print(f"soak: {args.connections} well-behaved connections, {args.seconds:.0f} s with hostiles "
              f"(after a {base_seconds:.0f} s baseline without), {os.cpu_count()} cores")
        print(f"  baseline : {base.requests} requests, {base.requests / base_seconds:.0f} req/s, "
              f"p50 {statistics.median(base.latencies) * 1000:.2f} ms, p99 {base_p99:.2f} ms, {len(base.errors)} errors")
        print(f"  soak     : {soak.requests} requests, {soak.requests / args.seconds:.0f} req/s, "
              f"p50 {statistics.median(soak.latencies) * 1000:.2f} ms, p99 {soak_p99:.2f} ms, {len(soak.errors)} errors")
        print(f"  hostile connections opened: {counts}")
        print(f"  RSS  first-quarter median {rss1 / 1024:.1f} MiB, last-quarter {rss4 / 1024:.1f} MiB, "
              f"max {max(s[1] for s in samples) / 1024:.1f} MiB")
        print(f"  fds  first-quarter median {fd1:.0f}, last-quarter {fd4:.0f}, max {max(s[2] for s in samples)}")
        errors = base.errors + soak.errors
        if errors:
            failures.append(f"{len(errors)} errors for well-behaved clients, e.g. {errors[:3]}")
        if rss4 > rss1 * 1.2 + 4096:
            failures.append(f"RSS grew: {rss1 / 1024:.1f} -> {rss4 / 1024:.1f} MiB")
        if fd4 > fd1 * 1.2 + 8:
            failures.append(f"open fds grew: {fd1} -> {fd4}")
        if soak_p99 > max(base_p99 * 3, base_p99 + 20):
            failures.append(f"hostile clients slowed the others: p99 {base_p99:.2f} -> {soak_p99:.2f} ms")
        if args.slow_clients:
            failures += slow_client_phase(host, port, args, proc.pid, base_p99)
        if proc.poll() is not None:
            failures.append(f"sriovd exited with {proc.returncode}")
    finally:
        proc.terminate()
        proc.wait()
    if failures:
        print("SOAK FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("soak passed: no errors, RSS and fds flat, hostile clients did not hurt the others")


if __name__ == "__main__":
    main()
