#!/usr/bin/env python3
"""Peak heap by gateway function, from a heaptrack flame-graph file with the `peak` cost.

Each allocation's stack is charged to its innermost frame in one of the project's modules
(else to its innermost frame), and the sums are printed largest first, demangled. The total
is heaptrack's peak heap. Used by `HEAPTRACK=DIR bash Benchmarks/memory.sh`.

    heaptrack_print -f FILE.zst -p 0 -a 0 -l 0 -T 0 -F flame.txt --flamegraph-cost-type peak
    python3 Benchmarks/heap-sites.py flame.txt [N]
"""
import collections
import re
import subprocess
import sys

MODULES = {
    "Advisories", "Aggregation", "Alerts", "API", "Campaigns", "Fleet", "Gateway", "Geo", "HTTP", "Ingest",
    "JSON", "Logging", "Metrics", "MQTT", "OTA", "Privacy", "RingStore", "SQLite", "Telemetry", "Threads",
    "Upstream", "gatewayd",
}
MANGLED = re.compile(r"^\$s(\d+)(\w+)")


def in_project(frame):
    match = MANGLED.match(frame)
    return bool(match) and match.group(2)[: int(match.group(1))] in MODULES


sums = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, cost = line.rstrip().rpartition(" ")
    frames = [frame.split(" (")[0] for frame in stack.split(";") if frame]
    ours = [frame for frame in frames if in_project(frame)]
    sums[ours[-1] if ours else "(outside the gateway) " + (frames[-1] if frames else "?")] += int(cost)
top = sums.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 25)
names = subprocess.run(
    ["swift", "demangle", "--simplified"], input="\n".join(name for name, _ in top), capture_output=True, text=True
).stdout.split("\n")
print(f"peak heap {sum(sums.values()) / 1e6:.2f} MB")
for (_, cost), name in zip(top, names):
    print(f"{cost / 1e6:8.2f} MB  {name[:160]}")
