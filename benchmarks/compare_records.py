"""Compare the run records of one grid run by two backends (two `scsa-yolo bench --out`
folders): every record's fields must be equal, except what names where and when it ran
(paths, time stamps, wall times, environment) and the timed throughput/latency, which are
measurements of the moment. Used for issue 16's GPU evidence (benchmarks/ray_gpu_compare.sh).

    python3 benchmarks/compare_records.py OUT_A OUT_B
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

# Fields that differ between two faithful runs of one grid point.
WHERE_AND_WHEN = {"created_at", "run_dir", "wall_time_s", "env"}
PATH_ARGS = {"project", "save_dir"}
TIMED = {"throughput", "latency_ms"}


def comparable(record: dict) -> dict:
    """The record without the fields above."""
    out = {k: v for k, v in record.items() if k not in WHERE_AND_WHEN}
    spec = dict(out.get("spec", {}))
    spec["train_args"] = {k: v for k, v in spec.get("train_args", {}).items() if k not in PATH_ARGS}
    out["spec"] = spec
    out["profile"] = {k: v for k, v in (out.get("profile") or {}).items() if k not in TIMED}
    return out


def records(root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(root.glob("*/*/record.json"))}


def main(a_dir: str, b_dir: str) -> int:
    a, b = records(Path(a_dir)), records(Path(b_dir))
    for d, recs in ((a_dir, a), (b_dir, b)):
        if not recs:
            sys.exit(f"compare_records: no run records (*/*/record.json) under {d}; "
                     "give two `scsa-yolo bench --out` folders")
    both = sorted(set(a) & set(b))
    differ = [(run, sorted(k for k in comparable(a[run]) if comparable(a[run])[k] != comparable(b[run]).get(k)))
              for run in both if comparable(a[run]) != comparable(b[run])]
    print(f"records: {len(a)} in {a_dir}, {len(b)} in {b_dir}, {len(both)} in both")
    print(f"equal apart from paths, time stamps, wall times, environment and timed throughput/latency: "
          f"{len(both) - len(differ)}; different: {len(differ)}")
    for run, keys in differ:
        print(f"  {run}: {', '.join(keys)}")
    for name, recs in ((a_dir, a), (b_dir, b)):
        walls = [r["wall_time_s"]["total"] for r in recs.values()]
        if walls:
            print(f"{name}: run wall time (s) median {statistics.median(walls):.1f}, "
                  f"min {min(walls):.1f}, max {max(walls):.1f}")
    return 1 if differ or len(both) != len(a) or len(both) != len(b) else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python3 benchmarks/compare_records.py OUT_A OUT_B")
    sys.exit(main(sys.argv[1], sys.argv[2]))
