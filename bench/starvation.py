#!/usr/bin/env python3
"""Slot starvation (issue 12): does a flood from one anonymous address lock out the socket and token holders?

Usage: bench/starvation.py BINARY [--flood 4096] [--requests 500] [-- SERVE-OPTION ...]
Starts sriovd on a fresh simulated host with a tokens file and a Unix socket. One anonymous TCP address opens
--flood connections (as many as it can; the finding used 4,096), each sending the head of a POST with a 100-byte
body and then trickling a byte every 8 seconds (its headers never end, since without a token the body would be
refused at once). Meanwhile a Unix-socket client (root, so admin) and a TCP client with a token each make
--requests GET /pfs on one keep-alive connection, and reconnect for every tenth request (a new connection must
get a slot too). Prints how many flood connections the daemon held and refused, and both clients' p50 and p99.
Checks: both p99 under 50 ms, no error for either client. Exits 1 when a check fails.
"""
import argparse, os, re, resource, socket, statistics, subprocess, sys, tempfile, threading, time


def connect_tcp(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def connect_unix(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    return sock


def get(sock, headers):
    """One GET /pfs on `sock`: its status and the seconds it took."""
    started = time.perf_counter()
    sock.sendall(f"GET /pfs HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("closed before the answer")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head[9:12]), time.perf_counter() - started


def client(connect, headers, requests, results):
    """`requests` GETs, a new connection every tenth; appends latencies, or errors as strings."""
    sock = None
    for index in range(requests):
        try:
            if index % 10 == 0 or sock is None:
                if sock:
                    sock.close()
                sock = connect()
            status, seconds = get(sock, headers)
            results.append(seconds if status == 200 else f"status {status}")
        except OSError as error:
            results.append(f"error {error!r}")
            sock = None
    if sock:
        sock.close()


def flood(port, count, stop, held):
    """Opens up to `count` connections; each sends a head and then a byte every 8 s until `stop`."""
    for _ in range(count):
        try:
            sock = connect_tcp(port)
            sock.sendall(b"POST /allocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Slow: ")
            held.append(sock)
        except OSError:
            pass
    while not stop.wait(8):
        for sock in held:
            try:
                sock.send(b"a")
            except OSError:
                pass


def p(values, fraction):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * fraction))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--flood", type=int, default=4096)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("serve_options", nargs="*", help="more options for sriovd serve (after --)")
    args = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    directory = tempfile.mkdtemp(prefix="sriovd-starve-")
    created = subprocess.run([args.binary, "token", "create", "operator", "--role", "admin"], capture_output=True,
                             text=True, check=True).stdout.splitlines()
    token = created[1]
    with open(f"{directory}/tokens", "w") as f:
        f.write(created[3] + "\n")
    os.chmod(f"{directory}/tokens", 0o600)
    unix_path = f"{directory}/sriovd.sock"
    proc = subprocess.Popen([args.binary, "serve", "--simulate", f"{directory}/host", "--db", f"{directory}/sriovd.db",
                             "--listen", "127.0.0.1:0", "--tokens", f"{directory}/tokens", "--unix", unix_path,
                             "--log-level", "warning", "--no-access-log", *args.serve_options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = int(re.search(r"http://[0-9.]+:(\d+)", proc.stdout.readline()).group(1))
    failures = []
    stop = threading.Event()
    try:
        held = []
        flooder = threading.Thread(target=flood, args=(port, args.flood, stop, held), daemon=True)
        flooder.start()
        time.sleep(0.3)  # Deliberate: the clients start while the flood is still connecting.
        unix_results, token_results = [], []
        clients = [
            threading.Thread(target=client, args=(lambda: connect_unix(unix_path), "", args.requests, unix_results)),
            threading.Thread(target=client, args=(lambda: connect_tcp(port), f"Authorization: Bearer {token}\r\n",
                                                  args.requests, token_results)),
        ]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        open_now = len(os.listdir(f"/proc/{proc.pid}/fd"))
        print(f"starvation: {args.flood} flood connections attempted from one anonymous address, "
              f"{len(held)} connected; the daemon holds {open_now} fds; {os.cpu_count()} cores, "
              f"serve options {args.serve_options or 'default'}")
        for label, results in [("unix socket (root)", unix_results), ("tcp with a token", token_results)]:
            times = [r for r in results if isinstance(r, float)]
            errors = [r for r in results if not isinstance(r, float)]
            print(f"  {label:19}: {len(times)} answered, p50 {p(times, 0.5):.2f} ms, p99 {p(times, 0.99):.2f} ms, "
                  f"{len(errors)} errors {errors[:3]}")
            if errors:
                failures.append(f"{label}: {len(errors)} errors, e.g. {errors[:3]}")
            if times and p(times, 0.99) >= 50:
                failures.append(f"{label}: p99 {p(times, 0.99):.2f} ms >= 50 ms")
        if proc.poll() is not None:
            failures.append(f"sriovd exited with {proc.returncode}")
    finally:
        stop.set()
        proc.terminate()
        _, stderr = proc.communicate()
        warnings = [line for line in stderr.splitlines() if "client limit reached" in line]
        print(f"  limit warnings logged: {len(warnings)}" + (f", e.g. {warnings[0]}" if warnings else ""))
    if failures:
        print("STARVATION FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("starvation passed: the socket and the token holder were served within 50 ms p99 during the flood")


if __name__ == "__main__":
    main()
