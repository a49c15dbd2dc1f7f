"""Compare two `scsa-yolo bench` console logs of the same grid, run by two backends: the
per-epoch training loss of every run (as the console prints it, 3 decimals) and the
seconds per epoch. Used for issue 16's GPU evidence (benchmarks/ray_gpu_compare.sh).

    python3 benchmarks/compare_bench_logs.py results/ray_gpu/local.log results/ray_gpu/ray.log
"""
from __future__ import annotations

import re
import statistics
import sys

LINE = re.compile(r"\[\d+/\d+\] (\S+): epoch (\d+)/(\d+), loss ([\d.]+), ([\d.]+) s/epoch")


def epochs(path: str) -> dict[str, dict[int, tuple[str, float]]]:
    """run id -> epoch -> (loss as printed, seconds per epoch)."""
    runs: dict[str, dict[int, tuple[str, float]]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = LINE.search(line)
            if m:
                runs.setdefault(m.group(1), {})[int(m.group(2))] = (m.group(4), float(m.group(5)))
    return runs


def main(a_path: str, b_path: str) -> int:
    a, b = epochs(a_path), epochs(b_path)
    pairs = [(run, e) for run in a for e in a[run] if e in b.get(run, {})]
    differ = [(run, e, a[run][e][0], b[run][e][0]) for run, e in pairs if a[run][e][0] != b[run][e][0]]
    print(f"runs: {len(a)} in {a_path}, {len(b)} in {b_path}, {len(set(a) & set(b))} in both")
    print(f"epoch losses compared: {len(pairs)}; equal: {len(pairs) - len(differ)}; different: {len(differ)}")
    for run, e, x, y in differ[:20]:
        print(f"  {run} epoch {e}: {x} vs {y}")
    for name, runs in ((a_path, a), (b_path, b)):
        last = [max(r) for r in runs.values()]
        secs = [v[1] for r in runs.values() for e, v in r.items() if e >= 2]
        print(f"{name}: last epoch reached per run {min(last)}-{max(last)}; s/epoch from epoch 2, "
              f"median {statistics.median(secs):.1f}, min {min(secs):.1f}, max {max(secs):.1f} ({len(secs)} epochs)")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
