#!/usr/bin/env python3
"""Medians of bench/compare.sh's reports: one row per (load, kind).

    bench/summarise.py OUT_DIR

Columns: runs, in/out per s, p50/p99/p99.9 (ms), relay CPU per delivery (µs),
relay CPU (% of a core), RSS per connection (B, idle rows), and whether
every run passed (no loss, duplicate, reorder, seq gap or failed socket).
"""
import glob
import json
import os
import statistics
import sys
from collections import defaultdict


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main(out):
    rows = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(out, "*.json"))):
        base = os.path.basename(path)
        if base.startswith("prov-"):
            continue
        # KIND.NAME.RUN.json, NAME may hold a dot (a rate of 12.5)
        kind, rest = base.split(".", 1)
        name = rest.rsplit(".", 2)[0]
        with open(path) as f:
            rows[(name, kind)].append(json.load(f))
    print("| load | kind | runs | in/s | out/s | p50 ms | p99 ms | p99.9 ms | CPU µs/delivery | CPU % | B/socket | all passed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, kind), rs in sorted(rows.items()):
        ev = [r["events"] for r in rs]
        rel = [r.get("relay") or {} for r in rs]
        idle = name.startswith("idle")
        print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            name, kind, len(rs),
            fmt(med([e["in_per_s"] for e in ev]), ".0f"),
            fmt(med([e["out_per_s"] for e in ev]), ".0f"),
            fmt(med([e["latency"]["p50_ms"] for e in ev]), ".2f"),
            fmt(med([e["latency"]["p99_ms"] for e in ev]), ".2f"),
            fmt(med([e["latency"]["p999_ms"] for e in ev]), ".2f"),
            fmt(med([p.get("cpu_us_per_delivery") for p in rel]), ".1f"),
            fmt(med([p.get("cpu_pct") for p in rel]), ".0f"),
            fmt(med([p.get("rss_per_connection_bytes") for p in rel]) if idle else None, ".0f"),
            all(r["passed"] for r in rs),
        ))
        if not idle:
            print("|  | {} runs: p99 {}; µs/delivery {} |".format(
                kind,
                ", ".join(fmt(e["latency"]["p99_ms"], ".1f") for e in ev),
                ", ".join(fmt(p.get("cpu_us_per_delivery"), ".1f") for p in rel)))


if __name__ == "__main__":
    main(sys.argv[1])
