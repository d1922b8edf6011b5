#!/usr/bin/env python3
"""Memory under a burst of large request bodies (issue 12, "Memory before authentication").

Usage: bench/memory-burst.py BINARY [--connections 1000] [--body-mib 1] [-- SERVE-OPTION ...]
Starts sriovd on a fresh simulated host with a tokens file, then, all at once, N connections each send
POST /allocations with a 1 MiB body: first without a token (each must get 401 at its head, its body unread), then
with an admin token (bodies are read, within --client-body-mib and --body-memory-mib; the rest get 429 or 503).
VmRSS is sampled every 10 ms. Prints RSS before, the peak during and RSS after each burst (once the connections
are closed and the daemon has had up to 3 s to give memory back). Checks the tokenless burst: peak under 100 MiB,
after under 40 MiB, and every answer a refusal from the head: 401, or 429/503 for connections over the per-client
limit (`--client-connections`, 512 by default; `-- --client-connections 4096` lets all 1,000 reach the head).
A connection refused at connect may see a reset instead of its 429 ("no answer"), since it sends on after the
close. Exits 1 when a check fails.
"""
import argparse, os, re, resource, selectors, socket, subprocess, sys, tempfile, threading, time
from collections import Counter


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024


class Sampler(threading.Thread):
    """The peak VmRSS of `pid` while running."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.01)


def burst(port, connections, body, token):
    """Every connection sends its head and whole body as fast as the server takes them, and reads the answer;
    returns the answers' statuses."""
    head = (f"POST /allocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n" + (f"Authorization: Bearer {token}\r\n" if token else "") + "\r\n")
    payload = memoryview(head.encode() + body)
    selector = selectors.DefaultSelector()
    statuses = Counter()
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, {"sent": 0, "answer": b""})
    open_count = connections
    while open_count:
        for key, events in selector.select(timeout=10):
            sock, state = key.fileobj, key.data
            done = False
            try:
                if events & selectors.EVENT_WRITE and state["sent"] < len(payload):
                    state["sent"] += sock.send(payload[state["sent"]:state["sent"] + 262144])
                    if state["sent"] == len(payload):
                        selector.modify(sock, selectors.EVENT_READ, state)
                if events & selectors.EVENT_READ:
                    chunk = sock.recv(65536)
                    state["answer"] += chunk
                    # A hostile client sends its whole body whatever the answer; the daemon must not keep it.
                    done = not chunk or (b"\r\n\r\n" in state["answer"] and state["sent"] == len(payload))
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                done = True
            if done:
                match = re.match(rb"HTTP/1\.1 (\d{3})", state["answer"])
                statuses[int(match.group(1)) if match else "no answer"] += 1
                selector.unregister(sock)
                sock.close()
                open_count -= 1
    return statuses


def settle(pid, seconds=3.0):
    """RSS once two samples 250 ms apart agree (after at least 1 s), or after `seconds`."""
    started, last = time.time(), rss_mib(pid)
    while time.time() - started < seconds:
        time.sleep(0.25)
        now = rss_mib(pid)
        if time.time() - started >= 1 and abs(now - last) < 0.1:
            return now
        last = now
    return last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--body-mib", type=float, default=1)
    ap.add_argument("serve_options", nargs="*", help="more options for sriovd serve (after --)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    directory = tempfile.mkdtemp(prefix="sriovd-memory-")
    created = subprocess.run([args.binary, "token", "create", "burst", "--role", "admin"], capture_output=True,
                             text=True, check=True).stdout.splitlines()
    token = created[1]
    with open(f"{directory}/tokens", "w") as f:
        f.write(created[3] + "\n")
    os.chmod(f"{directory}/tokens", 0o600)
    proc = subprocess.Popen([args.binary, "serve", "--simulate", f"{directory}/host", "--db", f"{directory}/sriovd.db",
                             "--listen", "127.0.0.1:0", "--tokens", f"{directory}/tokens", "--log-level", "error",
                             "--no-access-log", *args.serve_options], stdout=subprocess.PIPE, text=True)
    port = int(re.search(r"http://[0-9.]+:(\d+)", proc.stdout.readline()).group(1))
    body = b"x" * int(args.body_mib * 1024 * 1024)
    failures = []
    try:
        time.sleep(0.5)  # Deliberate: let startup recovery finish before "before" is read.
        print(f"memory burst: {args.connections} connections x {args.body_mib:g} MiB body, {os.cpu_count()} cores, "
              f"serve options {args.serve_options or 'default'}")
        for label, bearer in [("without a token", None), ("with an admin token", token)]:
            before = rss_mib(proc.pid)
            sampler = Sampler(proc.pid)
            sampler.start()
            started = time.time()
            statuses = burst(port, args.connections, body, bearer)
            elapsed = time.time() - started
            sampler.running = False
            sampler.join()
            after = settle(proc.pid)
            print(f"  {label:20}: RSS before {before:.1f} MiB, peak during {sampler.peak:.1f} MiB, "
                  f"after {after:.1f} MiB; {elapsed:.1f} s; answers {dict(statuses)}")
            if bearer is None:
                if sampler.peak >= 100:
                    failures.append(f"peak RSS {sampler.peak:.1f} MiB >= 100 MiB")
                if after >= 40:
                    failures.append(f"RSS after {after:.1f} MiB >= 40 MiB")
                if not set(statuses) <= {401, 429, 503, "no answer"} or 401 not in statuses:
                    failures.append(f"answers other than refusals at the head: {dict(statuses)}")
        if proc.poll() is not None:
            failures.append(f"sriovd exited with {proc.returncode}")
    finally:
        proc.terminate()
        proc.wait()
    if failures:
        print("MEMORY BURST FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("memory burst passed: RSS under 100 MiB during and under 40 MiB after the tokenless burst")


if __name__ == "__main__":
    main()
