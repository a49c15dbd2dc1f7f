"""How much a training loop's Python slows while fused-SCSA kernels compile in background
threads (issue 28: a job compiles its kernels ahead, ``scsa_yolo.integration.job_kernels``).

Triton's compile releases the GIL for most of its work (MLIR passes, LLVM, ptxas) but not
for its Python front end, so background compiles slow a main thread that runs Python (a
training step's launches). No GPU needed: the kernels of the YOLOv8n-SCSA training-step
shapes (five forward and five backward kernels per shape) compile offline for sm_90 with
this machine's Triton, as ``scsa_compile_threads.py`` does, on T threads, while the main
thread runs a pure-Python loop; the loop's rate during the compiles, against its rate alone,
is the share of the main thread's Python that survives. Each (threads, round) is a fresh
process with an empty Triton cache; rounds alternate.

    PYTHONPATH=. python3 benchmarks/scsa_compile_gil.py --threads 0 1 2 --rounds 2 --main torch --out results/perf
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHAPES = "16x64x80x80,16x128x40x40,16x256x20x20"


def python_work(stop: threading.Event) -> int:
    """Iterations of a small dict/tuple/call loop (the flavour of a launch path) until stop."""
    table = {i: (i, str(i)) for i in range(64)}
    n = 0
    while not stop.is_set():
        for i in range(64):
            key = (i, table[i][0] & 15, len(table[i][1]))
            n += key[1] >= 0
    return n


def torch_work(stop: threading.Event) -> int:
    """Iterations of small CPU tensor operations: PyTorch drops the GIL inside each operator,
    as a training step's launches do, so this is nearer a host-bound training loop."""
    import torch

    x = torch.zeros(16)
    n = 0
    while not stop.is_set():
        for _ in range(16):
            x = (x + 1.0).mul_(0.5)
            n += 1
    return n


WORK = {"python": python_work, "torch": torch_work}
LABEL = {"python": "a pure-Python dict/tuple loop", "torch": "small CPU tensor operations, which drop the GIL"}


def rate_alone(work, seconds: float) -> float:
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    start = time.perf_counter()
    n = work(stop)
    return n / (time.perf_counter() - start)


def child(shapes: str, threads: int, main_work: str) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scsa_ptx_offline as offline  # noqa: PLC0415

    jobs = []
    for text in shapes.split(","):
        jobs += offline.launches(tuple(int(v) for v in text.split("x")), torch.float16, False)
    build = offline.compile_sm90
    work = WORK[main_work]
    if threads == 0:  # the compiles alone, on one thread, the main thread idle
        pool, start = ThreadPoolExecutor(1), time.perf_counter()
        for future in [pool.submit(build, job) for job in jobs]:
            future.result()
        return {"kernels": len(jobs), "compile_wall_s": time.perf_counter() - start, "main_rate_share": None}
    alone = rate_alone(work, 3.0)
    stop = threading.Event()
    pool = ThreadPoolExecutor(threads)
    start = time.perf_counter()
    futures = [pool.submit(build, job) for job in jobs]
    done = threading.Thread(target=lambda: ([f.result() for f in futures], stop.set()))
    done.start()
    loop_start = time.perf_counter()
    n = work(stop)
    loop_s = time.perf_counter() - loop_start
    done.join()
    wall = time.perf_counter() - start
    return {"kernels": len(jobs), "compile_wall_s": wall, "main_rate_share": (n / loop_s) / alone}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=SHAPES, help="BxCxHxW,... (fp16)")
    ap.add_argument("--threads", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--main", choices=sorted(WORK), default="torch",
                    help="the main thread's loop: small CPU tensor operations (torch) or pure Python")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.shapes, args.child, args.main)))
        return 0
    if min(args.threads) < 0 or args.rounds < 1:
        ap.error("--threads must be 0 (the compiles alone) or more each and --rounds 1 or more")
    results: dict[int, list[dict]] = {t: [] for t in args.threads}
    for _ in range(args.rounds):
        for threads in args.threads:
            with tempfile.TemporaryDirectory() as cache:
                done = subprocess.run([sys.executable, __file__, "--shapes", args.shapes, "--main", args.main,
                                       "--child", str(threads)],
                                      capture_output=True, text=True, env={**os.environ, "TRITON_CACHE_DIR": cache})
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            results[threads].append(json.loads(done.stdout.strip().splitlines()[-1]))
    import triton

    kernels = results[args.threads[0]][0]["kernels"]
    lines = ["# A main thread's Python while fused-SCSA kernels compile in background threads", "",
             f"Offline compiles for sm_90 of {kernels} kernels ({args.shapes}, fp16, forward and backward; "
             f"Triton {triton.__version__}, no GPU), {os.cpu_count()} CPU cores; {args.rounds} rounds per thread "
             "count, alternating, each a fresh process with an empty cache. Main-thread rate: its loop "
             f"({LABEL[args.main]}) during the compiles, as a share "
             "of its rate alone (median / min over rounds); threads 0: the compiles alone, no main loop.", "",
             "| compile threads | compile wall s (median / min) | main-thread Python rate during it |",
             "|---|---|---|"]
    for threads, rows in results.items():
        walls = [r["compile_wall_s"] for r in rows]
        shares = [r["main_rate_share"] for r in rows if r["main_rate_share"] is not None]
        rate = f"{100 * statistics.median(shares):.0f}% / {100 * min(shares):.0f}%" if shares else "(no main loop)"
        label = "1, main thread idle" if threads == 0 else str(threads)
        lines.append(f"| {label} | {statistics.median(walls):.1f} / {min(walls):.1f} | {rate} |")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scsa_ptx_offline import publish  # noqa: PLC0415

    publish("\n".join(lines) + "\n", args.out, f"scsa_compile_gil_{args.main}_cpu{os.cpu_count()}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
