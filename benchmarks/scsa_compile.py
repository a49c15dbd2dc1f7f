"""SCSA layer per call under torch.compile (issue 15 items 1-2): eager (autograd Function), eager
through the custom ops, torch.compile with the ops (mode default and reduce-overhead) and
torch.compile of the reference formulation. fp16 autocast, fp32 parameters, forward + backward.
'host' = time to issue a call, 'wall' = until the GPU is done.

Every variant is built and warmed first (one shape at a time, Dynamo reset between shapes),
then the variants are timed in interleaved rounds, so host drift falls on all of them alike;
medians and minima over the rounds. The compiled-ops variants run their timed calls under
torch.cuda.set_sync_debug_mode("error"): a host synchronisation inside them would raise.

    PYTHONPATH=. python3 benchmarks/scsa_compile.py --device cuda --shapes 128x80x80,256x20x20 \
        --rounds 5 --out results/perf
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [".", "benchmarks"]
from scsa_layer import DEFAULT_SHAPES, make_layer  # noqa: E402
from yolo_train_compile_profile import fused_event_counts  # noqa: E402
from scsa_yolo.nn import scsa_fast as F  # noqa: E402  (scsa loads it at import)

VARIANTS = ("eager", "eager-ops", "compile-ops", "reduce-overhead-ops", "compile-ref")


def set_path(variant: str) -> None:
    """The module switches each variant stands for (read while tracing and per eager call)."""
    F.COMPILE_OPS = variant != "compile-ref"
    F.EAGER_OPS = variant == "eager-ops"


def build_step(variant: str, channels: int, x: torch.Tensor, dout: torch.Tensor, amp: torch.dtype):
    """One forward + backward of a fresh layer through ``variant``, as a no-argument callable."""
    layer = make_layer(channels, seed=2).to(x.device)
    fn = layer if variant.startswith("eager") else torch.compile(
        layer, fullgraph=True, mode="reduce-overhead" if variant.startswith("reduce") else None)

    def step():
        # Gradients set to None first, as a trainer's zero_grad does: under CUDA graphs the
        # previous call's gradient buffers are overwritten, so they must not be accumulated into.
        x.grad = None
        layer.zero_grad(set_to_none=True)
        if variant.startswith("reduce"):
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(x.device.type, dtype=amp):
            out = fn(x)
        out.backward(dout)
    return step


def fused_events(step) -> list[str]:
    """Names of the profiler events of one call that belong to the fused path: the custom ops
    (scsa_yolo::...) and the Triton kernels (fwd_*/bwd_*), each with its count; empty when the
    call ran the reference formulation."""
    with torch.profiler.profile() as prof:
        step()
    return [f"{k} x{v}" for k, v in sorted(fused_event_counts(prof.events()).items())]


def time_calls(step, n: int, sync, checked: bool) -> tuple[float, float]:
    """(host, wall) microseconds per call over n calls."""
    sync()
    if checked:
        torch.cuda.set_sync_debug_mode("error")
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        t1 = time.perf_counter()
        sync()
        t2 = time.perf_counter()
    finally:
        if checked:
            torch.cuda.set_sync_debug_mode("default")
    return (t1 - t0) / n * 1e6, (t2 - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shapes", default=None, help="CxHxW,... (default: the six YOLO shapes on cuda)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=None, help="timed calls per variant and round")
    ap.add_argument("--out", default=None, help="folder for scsa_compile.{md,json}")
    args = ap.parse_args()
    dev = args.device
    cuda = dev == "cuda"
    batch, n = (32, args.calls or 100) if cuda else (2, args.calls or 2)
    shapes = DEFAULT_SHAPES if cuda else ((16, 9, 11),)
    if args.shapes:
        try:
            shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
        except ValueError:
            shapes = []
        if not shapes or any(len(s) != 3 or min(s) < 1 for s in shapes):
            ap.error(f"--shapes {args.shapes!r}: give CxHxW,... with positive integers, e.g. 128x80x80,256x20x20")
    amp = torch.float16 if cuda else torch.bfloat16
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    variants = [v for v in VARIANTS if cuda or v != "reduce-overhead-ops"]
    torch._dynamo.config.cache_size_limit = 64  # the variants share one forward code object
    rows = []
    for c, h, w in shapes:
        torch._dynamo.reset()
        x = torch.randn(batch, c, h, w, device=dev, dtype=amp, requires_grad=True)
        dout = torch.randn_like(x)
        steps, build_s, fused = {}, {}, {}
        for variant in variants:
            set_path(variant)
            t0 = time.perf_counter()
            steps[variant] = build_step(variant, c, x, dout, amp)
            for _ in range(3 if not cuda else 20):
                steps[variant]()
            sync()
            build_s[variant] = time.perf_counter() - t0
            fused[variant] = fused_events(steps[variant])
            print(f"({batch},{c},{h},{w}) {variant:20s} built and warmed in {build_s[variant]:.1f} s; "
                  f"fused events in one call: {', '.join(fused[variant]) or 'none'}", flush=True)
        samples = {v: [] for v in variants}
        for r in range(args.rounds):
            for variant in variants:
                set_path(variant)
                for _ in range(3):  # re-enter this variant's cache entry before timing
                    steps[variant]()
                checked = cuda and variant.endswith("-ops") and variant != "eager-ops"
                samples[variant].append(time_calls(steps[variant], n, sync, checked))
            print(f"({batch},{c},{h},{w}) round {r + 1}: " + ", ".join(
                f"{v} {samples[v][-1][1]:.0f}" for v in variants) + " us wall", flush=True)
        for variant in variants:
            host = [s[0] for s in samples[variant]]
            wall = [s[1] for s in samples[variant]]
            rows.append(dict(shape=[batch, c, h, w], variant=variant, build_s=round(build_s[variant], 1),
                             fused_events=fused[variant],
                             host_median_us=statistics.median(host), host_min_us=min(host),
                             wall_median_us=statistics.median(wall), wall_min_us=min(wall)))
            r = rows[-1]
            print(f"({batch},{c},{h},{w}) {variant:20s} f+b host {r['host_median_us']:7.0f} / "
                  f"{r['host_min_us']:6.0f} us  wall {r['wall_median_us']:7.0f} / {r['wall_min_us']:6.0f} us",
                  flush=True)
    set_path("eager")
    if args.out:
        write(Path(args.out), rows, args, dev)


def write(out: Path, rows: list[dict], args, dev: str) -> None:
    """scsa_compile.json (rows and environment) and scsa_compile.md (one table)."""
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    env = dict(gpu=gpu, torch=torch.__version__, rounds=args.rounds, calls_per_round=args.calls)
    (out / "scsa_compile.json").write_text(json.dumps(dict(env=env, rows=rows), indent=1) + "\n")
    lines = [f"# SCSA layer per call, eager vs torch.compile ({gpu}, torch {torch.__version__})", "",
             f"fp16 autocast, fp32 parameters, forward + backward; {args.rounds} interleaved rounds, "
             "median / min in us per call. host = issuing the calls, wall = until the GPU is done.", "",
             "| shape | variant | host median / min | wall median / min | build + warm-up (s) | fused events per call |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {'x'.join(map(str, r['shape']))} | {r['variant']} | {r['host_median_us']:.0f} / "
                     f"{r['host_min_us']:.0f} | {r['wall_median_us']:.0f} / {r['wall_min_us']:.0f} | {r['build_s']} | "
                     f"{', '.join(r['fused_events']) or 'none'} |")
    (out / "scsa_compile.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
