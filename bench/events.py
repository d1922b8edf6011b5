#!/usr/bin/env python3
"""GET /events under load, in one run: N SSE subscribers connected while mutations run at a fixed rate.

Prints, for each scenario (every subscriber unfiltered; every subscriber filtered on an owner of its own):
event delivery latency p50/p99 from the audit record's timestamp (taken inside the committing transaction) to the
subscriber's socket, measured on a sample of subscribers that parse every event; GET /pfs throughput (wrk) with the
subscribers beside the rate without them; the daemon's RSS per subscriber.

Usage: bench/events.py URL PID [--subscribers 1000] [--rate 500] [--seconds 10] [--sample 20]
(bench/events.sh starts a release daemon and calls this.)
"""
import argparse, calendar, json, selectors, socket, subprocess, threading, time, urllib.parse
from datetime import datetime


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Subscribers:
    """N streams on one selector thread; the first `sample` parse every event, the rest only drain bytes."""

    def __init__(self, host, port, count, sample, path_for):
        self.selector = selectors.DefaultSelector()
        self.latencies, self.events, self.bytes, self.running = [], 0, 0, True
        self.buffers = {}
        for index in range(count):
            sock = socket.create_connection((host, port))
            path = path_for(index)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
            sock.setblocking(False)
            self.buffers[sock] = b""
            self.selector.register(sock, selectors.EVENT_READ, index < sample)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            for key, _ in self.selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(1 << 18)
                except BlockingIOError:
                    continue
                if not data:
                    self.selector.unregister(key.fileobj)
                    continue
                self.bytes += len(data)
                if key.data:
                    self.parse(key.fileobj, data, time.time())

    def parse(self, sock, data, now):
        buffer = self.buffers[sock] + data
        *frames, rest = buffer.split(b"\n\n")
        self.buffers[sock] = rest
        for frame in frames:
            for line in frame.split(b"\n"):
                if line.startswith(b"data: {"):
                    at = json.loads(line[6:])["at"]
                    parsed = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ")
                    stamp = calendar.timegm(parsed.timetuple()) + parsed.microsecond / 1e6
                    self.latencies.append((now - stamp) * 1000)
                    self.events += 1

    def close(self):
        self.running = False
        self.thread.join()
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()


def mutate(host, port, rate, seconds, owners, stop):
    """Allocate+release cycles at `rate` mutations/s (two per cycle), cycling through `owners`."""
    sock = socket.create_connection((host, port))
    reader = sock.makefile("rb")

    def call(method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(data)}\r\n"
        head += "Content-Type: application/json\r\n" if body is not None else ""
        sock.sendall(head.encode() + b"\r\n" + data)
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return status, reader.read(length)

    interval, next_at, done, n = 2.0 / rate, time.time(), 0, 0
    while not stop.is_set() and done < rate * seconds:
        status, body = call("POST", "/allocations", {"owner": owners[n % len(owners)], "pf": "0000:5e:00.0"})
        n += 1
        if status == 201:
            call("DELETE", "/allocations/" + json.loads(body)["id"])
        done += 2
        next_at += interval
        time.sleep(max(0, next_at - time.time()))
    sock.close()


def wrk(url, seconds):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", url + "/pfs"], capture_output=True, text=True).stdout
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * fraction))] if values else float("nan")


def scenario(name, args, url, pid, path_for, count=None):
    count = args.subscribers if count is None else count
    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    idle = rss_mib(pid)
    subscribers = Subscribers(host, port, count, min(args.sample, count), path_for)
    time.sleep(1)
    connected = rss_mib(pid)
    stop = threading.Event()
    owners = [f"bench:{i}" for i in range(max(args.subscribers, 1))]
    load = threading.Thread(target=mutate, args=(host, port, args.rate, args.seconds + 2, owners, stop))
    load.start()
    rate = wrk(url, args.seconds)
    stop.set()
    load.join()
    time.sleep(0.5)
    subscribers.close()
    lat = subscribers.latencies
    print(f"{name}: {count} subscribers, {args.rate} mutations/s")
    if count:
        print(f"  delivery latency (audit timestamp to socket, {len(lat)} events on {min(args.sample, count)} "
              f"sampled subscribers): p50 {percentile(lat, 0.5):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms")
        print(f"  RSS {idle:.1f} MiB before, {connected:.1f} MiB with them: "
              f"{(connected - idle) * 1024 / count:.1f} KiB per subscriber; {subscribers.bytes / 1e6:.1f} MB streamed")
    print(f"  GET /pfs at 64 connections: {rate:.0f} req/s")
    return rate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("pid", type=int)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--sample", type=int, default=20)
    args = parser.parse_args()
    base = scenario("no subscribers", args, args.url, args.pid, None, count=0)
    filtered = scenario("owner-filtered", args, args.url, args.pid,
                        lambda i: "/events?owner=" + urllib.parse.quote(f"bench:{i}"))
    print(f"  GET /pfs ratio to no subscribers: {filtered / base:.2f}x")
    everything = scenario("unfiltered", args, args.url, args.pid, lambda i: "/events")
    print(f"  GET /pfs ratio to no subscribers: {everything / base:.2f}x")

if __name__ == "__main__":
    main()
