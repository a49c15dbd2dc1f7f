"""How long a cold input kind waits for its fused-SCSA kernels to compile, one after another
(Triton's lazy compile at each first launch) against side by side in threads (what branch
``par-compile`` makes ``scsa_fast`` do, ``SCSA_YOLO_COMPILE_THREADS``; issue 28's cold start).

No GPU needed: each launch group (the five forward kernels of a layer shape, the five
backward kernels) is compiled offline for sm_90 with this machine's Triton, the way
``scsa_ptx_offline.py`` does. Every (mode, round) runs in a fresh process with an empty
Triton cache folder, rounds alternating (serial, threads, serial, ...). On a GPU host the
same compiles run in the training process; the host's core count bounds the overlap.

    PYTHONPATH=. python3 benchmarks/scsa_compile_threads.py --threads 5 --rounds 2 --out results/perf
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPES = "32x64x80x80,32x128x40x40,32x256x20x20"


def compile_groups(shapes: str, threads: int) -> dict:
    """Compile every group of every shape (threads=1: one after another); wall seconds per group."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scsa_ptx_offline as offline  # noqa: PLC0415

    build = offline.compile_sm90
    groups = {}
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    for text in shapes.split(","):
        shape = tuple(int(v) for v in text.split("x"))
        jobs = offline.launches(shape, torch.float16, False)
        for name, group in (("forward", jobs[:5]), ("backward", jobs[5:])):
            start = time.perf_counter()
            if pool is None:
                slowest = 0.0
                for job in group:
                    one = time.perf_counter()
                    build(job)
                    slowest = max(slowest, time.perf_counter() - one)
                groups[f"{text} {name} ({len(group)} kernels) slowest"] = slowest
            else:
                list(pool.map(build, group))
            groups[f"{text} {name} ({len(group)} kernels)"] = time.perf_counter() - start
    return groups


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=SHAPES, help="BxCxHxW,... (fp16)")
    ap.add_argument("--threads", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    for text in args.shapes.split(","):
        parts = text.split("x")
        if len(parts) != 4 or not all(v.isdigit() and int(v) > 0 for v in parts):
            ap.error(f"--shapes: {text!r} is not BxCxHxW with four positive integers (e.g. 32x64x80x80)")
    if args.threads < 2 or args.rounds < 1:
        ap.error("--threads must be 2 or more (1 is the serial side) and --rounds 1 or more")
    if args.child is not None:
        print(json.dumps(compile_groups(args.shapes, args.child)))
        return 0
    walls: dict[str, dict[str, list[float]]] = {"serial": {}, "threads": {}}
    for _ in range(args.rounds):
        for mode, threads in (("serial", 1), ("threads", args.threads)):
            with tempfile.TemporaryDirectory() as cache:
                done = subprocess.run([sys.executable, __file__, "--shapes", args.shapes, "--child", str(threads)],
                                      capture_output=True, text=True, env={**os.environ, "TRITON_CACHE_DIR": cache})
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            for group, seconds in json.loads(done.stdout.strip().splitlines()[-1]).items():
                walls[mode].setdefault(group, []).append(seconds)
    import triton

    lines = [f"# Compile wait per launch group: one after another vs {args.threads} threads",
             "", f"Offline compiles for sm_90 (Triton {triton.__version__}, no GPU), {os.cpu_count()} CPU cores; "
             f"{args.rounds} rounds per mode, alternating, each a fresh process with an empty cache; "
             "seconds, median / min.", "",
             "| group | serial | threads | serial / threads (medians) | slowest kernel (serial) |",
             "|---|---|---|---|---|"]
    totals = {"serial": 0.0, "threads": 0.0, "slowest": 0.0}
    for group, serial in walls["serial"].items():
        if group.endswith(" slowest"):
            continue
        threaded, slowest = walls["threads"][group], statistics.median(walls["serial"][group + " slowest"])
        totals["serial"] += statistics.median(serial)
        totals["threads"] += statistics.median(threaded)
        totals["slowest"] += slowest
        lines.append(f"| {group} | {statistics.median(serial):.2f} / {min(serial):.2f} | "
                     f"{statistics.median(threaded):.2f} / {min(threaded):.2f} | "
                     f"{statistics.median(serial) / statistics.median(threaded):.2f} | {slowest:.2f} |")
    lines.append(f"| all groups | {totals['serial']:.2f} | {totals['threads']:.2f} | "
                 f"{totals['serial'] / totals['threads']:.2f} | {totals['slowest']:.2f} |")
    lines += ["", "The slowest kernel of a group is its wait when there are as many free cores as kernels "
              "(the GIL is released for most of a compile: compare the serial sum with the threads' wall)."]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scsa_ptx_offline import publish  # noqa: PLC0415

    publish("\n".join(lines) + "\n", args.out, f"scsa_compile_threads_cpu{os.cpu_count()}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
