#!/usr/bin/env python3
"""Per-phase latency of durable changes between two scrapes of GET /metrics (sriovd_phase_duration_seconds).
Usage: phases.py BEFORE AFTER [label]
Prints one line per phase seen: observations, mean, p50, p99, p99.9 and the slowest bucket (upper bounds of the
histogram's buckets, ten per decade, so each figure is within about 12 %), in milliseconds."""
import re, sys

LINE = re.compile(r'^sriovd_phase_duration_seconds_(bucket|sum)\{(.*)\} (\S+)$')


def read(path):
    buckets, sums = {}, {}
    for line in open(path):
        m = LINE.match(line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        phase = labels["phase"]
        if m.group(1) == "sum":
            sums[phase] = float(m.group(3))
        else:
            le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            buckets.setdefault(phase, []).append((le, float(m.group(3))))
    return buckets, sums


def quantile(cumulative, q):
    total = cumulative[-1][1]
    for le, count in cumulative:
        if count >= q * total:
            return le
    return float("inf")


def main():
    b0, s0 = read(sys.argv[1])
    b1, s1 = read(sys.argv[2])
    label = sys.argv[3] if len(sys.argv) > 3 else ""
    for phase, rows in b1.items():
        before = dict(b0.get(phase, []))
        delta = [(le, c - before.get(le, 0)) for le, c in sorted(rows)]
        n = delta[-1][1]
        if n <= 0:
            continue
        prev, top = 0, 0
        for le, c in delta:
            if c > prev:
                top = le
            prev = c
        mean = (s1[phase] - s0.get(phase, 0)) / n
        ms = lambda v: "inf" if v == float("inf") else f"{v * 1e3:.3f}"
        print(f"{label:10} {phase:14} {int(n):9d} {mean * 1e3:9.3f} {ms(quantile(delta, .5)):>9} "
              f"{ms(quantile(delta, .99)):>9} {ms(quantile(delta, .999)):>9} {ms(top):>9}")


main()
