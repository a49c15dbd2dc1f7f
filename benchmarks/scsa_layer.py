"""Time the SCSA layer: reference formulation vs the fused Triton path vs the bandwidth floor.

Run on a CUDA machine (imports only torch, triton and scsa_yolo.nn):

    PYTHONPATH=. python3 benchmarks/scsa_layer.py --out results/perf

For every (C, H, W) at batch 32 and every dtype it

1. checks numbers first: the output, dx and every parameter gradient of the fused path
   and of the reference path run in that dtype, each against the reference in float32 on
   the same (dtype-rounded) inputs and parameters, as relative L2 errors
   ``||a - ref|| / ||ref||``;
2. times the forward (inference style: ``module.to(dtype)``, no autograd) and the forward +
   backward (training style: float32 parameters under autocast, gradients of x and every
   parameter via ``torch.autograd.grad``) of both paths with ``triton.testing.do_bench``
   (median, L2 flushed before each call, inputs rotated);
3. compares with the bandwidth floor: 3 reads + 1 write of x over the measured
   device-to-device copy bandwidth (forward), 8 passes for forward + backward (the
   fused backward reads dout twice and x once and writes dx).

It prints a Markdown table and writes ``DIR/scsa_layer.md`` and ``DIR/scsa_layer.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

DEFAULT_SHAPES = ((64, 80, 80), (128, 40, 40), (256, 20, 20), (128, 80, 80), (256, 40, 40), (512, 20, 20))
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    """||a - ref|| / ||ref|| in float64; inf for non-finite values."""
    a64, r64 = a.detach().double(), ref.detach().double()
    if not torch.isfinite(a64).all():
        return float("inf")
    return ((a64 - r64).norm() / r64.norm().clamp_min(1e-30)).item()


def make_layer(channels: int, seed: int):
    """An SCSA layer with every parameter random (not the init's ones and zeros)."""
    from scsa_yolo.nn.scsa import SCSA

    torch.manual_seed(seed)
    layer = SCSA(channels)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            # Norm scales near 1, everything else centred: realistic, and no symmetry.
            base = 1.0 if name.endswith("weight") and name.startswith("norm") else 0.0
            p.copy_(base + 0.3 * torch.randn_like(p))
    return layer


def layer_grads(layer, x: torch.Tensor, dout: torch.Tensor, impl: str, autocast_dtype=None):
    """(out, dx, [param grads]) of ``layer`` on x with upstream gradient dout."""
    layer.impl = impl
    x = x.detach().requires_grad_(True)
    params = list(layer.parameters())
    ctx = torch.autocast("cuda", dtype=autocast_dtype) if autocast_dtype is not None else torch.autocast("cuda", enabled=False)
    with ctx:
        out = layer(x)
    grads = torch.autograd.grad(out, [x, *params], dout.to(out.dtype))
    return out.detach(), grads[0], list(grads[1:])


def check_numbers(shape, dtype, device) -> dict:
    """Errors of the fused and the reference path in ``dtype`` against float32."""
    from scsa_yolo.nn import scsa_fast

    b, c, h, w = shape
    layer = make_layer(c, seed=1).to(device)
    x = torch.randn(shape, device=device).to(dtype)
    dout = torch.randn(shape, device=device).to(dtype)
    low = layer.to(dtype)
    why = scsa_fast.unsupported_reason(low, x)
    if why is not None:
        return {"fast_supported": False, "reason": why}
    truth_layer = make_layer(c, seed=1).to(device)
    truth_layer.load_state_dict({k: v.float() for k, v in low.state_dict().items()})  # dtype-rounded params
    out32, dx32, g32 = layer_grads(truth_layer, x.float(), dout.float(), "reference")
    res = {"fast_supported": True}
    # Twice: the first call goes through Triton's JIT launch, later ones through the
    # cached direct launch; both must give bit-identical results (also a race check).
    first = layer_grads(low, x, dout, "fast")
    again = layer_grads(low, x, dout, "fast")
    res["fast_repeat_identical"] = all(
        torch.equal(a, b) for a, b in zip([first[0], first[1], *first[2]], [again[0], again[1], *again[2]]))
    for impl in ("fast", "reference"):
        out, dx, grads = layer_grads(low, x, dout, impl)
        res[impl] = {
            "out": rel_err(out, out32),
            "dx": rel_err(dx, dx32),
            "params_max": max(rel_err(g, r) for g, r in zip(grads, g32)),
            "params": {n: rel_err(g, r) for (n, _), g, r in zip(low.named_parameters(), grads, g32)},
        }
    return res


def copy_bandwidth(device) -> float:
    """Device-to-device copy bandwidth in bytes/s (bytes read + bytes written)."""
    import triton.testing

    src = torch.randn(1 << 28, device=device, dtype=torch.float32)  # 1 GiB
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=50, rep=300, return_mode="median")
    return 2 * src.numel() * src.element_size() / (ms * 1e-3)


def rotated(shape, dtype, device, min_bytes=256 << 20, max_count=16):
    """Several distinct random inputs (together well beyond L2) to cycle through."""
    one = torch.Size(shape).numel() * torch.finfo(dtype).bits // 8
    count = max(2, min(max_count, -(-min_bytes // one)))
    xs = [torch.randn(shape, device=device, dtype=dtype) for _ in range(count)]
    return itertools.cycle(xs), count


def bench(fn, warmup_ms: int, rep_ms: int) -> float:
    import triton.testing

    return triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median") * 1e3  # us


_READ_FLUSH: list = []


def read_flush_buffer() -> torch.Tensor:
    """A 256 MB float32 buffer whose sum evicts L2 by reads (allocated once)."""
    if not _READ_FLUSH:
        _READ_FLUSH.append(torch.ones(64 << 20, device="cuda", dtype=torch.float32))
    return _READ_FLUSH[0]


def bench_clean_l2(fn, reps: int = 100, warmup: int = 10) -> float:
    """Median microseconds of ``fn`` after an L2 flush by *reads* (summing a 256 MB
    buffer), so L2 holds clean lines. Use it on a CUDA-graph replay: the events bracket
    the host's launches too, so an eager call would be timed host-bound. do_bench flushes by writing zeros: L2 is then full of
    dirty lines that the timed kernels' first reads must write back to HBM, a cost no
    layer in a network pays (there L2 holds the previous layer's output, i.e. x itself)."""
    buf = read_flush_buffer()
    for _ in range(warmup):
        fn()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        buf.sum()
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    times = sorted(st.elapsed_time(en) for st, en in zip(starts, ends))
    return times[len(times) // 2] * 1e3


def time_shape(shape, dtype, device, warmup_ms, rep_ms) -> dict:
    """Median microseconds of forward and forward + backward, reference and fused."""
    b, c, h, w = shape
    res: dict[str, float] = {}
    inputs, count = rotated(shape, dtype, device)
    res["rotated_inputs"] = count
    dout = torch.randn(shape, device=device, dtype=dtype)

    infer = make_layer(c, seed=2).to(device=device, dtype=dtype).eval()
    for impl in ("reference", "fast"):
        infer.impl = impl

        def fwd():
            with torch.no_grad():
                infer(next(inputs))

        res[f"{impl}_fwd_us"] = bench(fwd, warmup_ms, rep_ms)

    train = make_layer(c, seed=3).to(device)
    params = list(train.parameters())
    xs_grad = [next(inputs).detach().clone().requires_grad_(True) for _ in range(count)]
    cycle_grad = itertools.cycle(xs_grad)
    for impl in ("reference", "fast"):
        train.impl = impl

        def fwd_bwd():
            x = next(cycle_grad)
            with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
                out = train(x)
            torch.autograd.grad(out, [x, *params], dout)

        res[f"{impl}_fwdbwd_us"] = bench(fwd_bwd, warmup_ms, rep_ms)
    return res


def capture_graph(fn) -> "torch.cuda.CUDAGraph":
    """``fn`` captured in a CUDA graph (after three warm-up calls on a side stream)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph


def graph_us(fn, warmup_ms: int, rep_ms: int, clean_l2: bool = False) -> float:
    """Median microseconds of ``fn`` captured in a CUDA graph: GPU time without host
    launch overhead (after do_bench's write flush, or with ``clean_l2`` a read flush)."""
    graph = capture_graph(fn)
    return bench_clean_l2(graph.replay) if clean_l2 else bench(graph.replay, warmup_ms, rep_ms)


def time_fused_variant(shape, dtype, device, warmup_ms, rep_ms) -> dict:
    """Fused path only: eager and graph-replayed forward and forward + backward."""
    b, c, h, w = shape
    res = {}
    x = torch.randn(shape, device=device, dtype=dtype)
    dout = torch.randn(shape, device=device, dtype=dtype)
    infer = make_layer(c, seed=2).to(device=device, dtype=dtype).eval()
    infer.impl = "fast"

    def fwd():
        with torch.no_grad():
            infer(x)

    train = make_layer(c, seed=3).to(device)
    train.impl = "fast"
    params = list(train.parameters())
    xg = x.detach().clone().requires_grad_(True)

    def fwd_bwd():
        with torch.autocast("cuda", dtype=dtype):
            out = train(xg)
        torch.autograd.grad(out, [xg, *params], dout)

    res["fwd_us"] = bench(fwd, warmup_ms, rep_ms)
    res["fwdbwd_us"] = bench(fwd_bwd, warmup_ms, rep_ms)
    for name, fn, clean in (("fwd_graph_us", fwd, False), ("fwdbwd_graph_us", fwd_bwd, False),
                            ("fwd_graph_clean_us", fwd, True)):
        try:
            res[name] = graph_us(fn, warmup_ms, rep_ms, clean)
        except Exception as exc:  # capture can fail on some stacks; the eager number stands
            res[name] = float("nan")
            res[name + "_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return res


_TUNE_DEFAULTS: dict = {}


def set_tune(overrides: dict) -> None:
    """The module's default tiles with ``overrides`` on top (never on top of a previous
    call's overrides: a variant must not leak into the next measurement)."""
    from scsa_yolo.nn import scsa_fast

    if not _TUNE_DEFAULTS:
        _TUNE_DEFAULTS.update(scsa_fast.TUNE)
    scsa_fast.TUNE.clear()
    scsa_fast.TUNE.update({**_TUNE_DEFAULTS, **overrides})
    scsa_fast._plans.clear()
    scsa_fast._launch.cache.clear()


SWEEP = {
    # Session 3's forward tiles (four-warp R and P, narrow channel-attention blocks).
    "v4_tiles": dict(plane_tile=4096, plane_warps=4, pool_tile=16384, pool_warps=4, pcsa_wide_tokens=0),
    # The backward's streaming passes as in v4 (four warps), and with two.
    "bwd_v4": dict(bred_tile=2048, bred_warps=4, dx_tile=2048, dx_warps=4),
    "bwd_w2": dict(bred_tile=2048, bred_warps=2, dx_tile=2048, dx_warps=2),
    "bwd_t512": dict(bred_tile=512, dx_tile=512),
}


def profile_kernels(shape, dtype, device, iters=20) -> list[dict]:
    """Per-kernel GPU time of the fused forward + backward (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    b, c, h, w = shape
    train = make_layer(c, seed=4).to(device)
    x = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
    dout = torch.randn(shape, device=device, dtype=dtype)
    params = list(train.parameters())

    def step():
        with torch.autocast("cuda", dtype=dtype):
            out = train(x)
        torch.autograd.grad(out, [x, *params], dout)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            step()
        torch.cuda.synchronize()
    rows = []
    for evt in prof.key_averages():
        dev_us = getattr(evt, "device_time_total", None)
        if dev_us is None:
            dev_us = getattr(evt, "cuda_time_total", 0.0)
        if dev_us > 0:
            rows.append({"kernel": evt.key[:60], "us_per_step": dev_us / iters, "calls_per_step": evt.count / iters})
    return sorted(rows, key=lambda r: -r["us_per_step"])


def warm(chw, batch: int, dtypes: list[str], device) -> None:
    """Compile every kernel variant the run will use (Triton caches them on disk)."""
    shape = (batch, *chw)
    for name in dtypes:
        t0 = time.time()
        dtype = DTYPES[name]
        x = torch.randn(shape, device=device, dtype=dtype)
        layer = make_layer(chw[0], seed=0).to(device)
        layer_grads(layer, x, x, "fast", autocast_dtype=None if dtype == torch.float32 else dtype)
        if dtype != torch.float32:
            layer_grads(layer.to(dtype), x, x, "fast")
        torch.cuda.synchronize()
        log(f"  [warm pid {os.getpid()}] {chw} {name}: {time.time() - t0:.1f}s")


def precompile(args, jobs: int, timeout_s: float) -> None:
    """Warm the Triton cache with ``jobs`` parallel processes (compiling is CPU-bound).

    Workers still running after ``timeout_s`` are killed; whatever they did not compile is
    compiled lazily by the main run.
    """
    import subprocess

    work = [(chw, name, "") for chw in args.shapes for name in sorted(set(args.dtypes) | set(args.check_dtypes))]
    if args.sweep:
        work += [(chw, "fp16", v) for chw in args.shapes for v in SWEEP]
    chunks = [work[i::jobs] for i in range(jobs) if work[i::jobs]]
    procs = []
    t0 = time.time()
    for chunk in chunks:
        cmd = [sys.executable, __file__, "--out", str(args.out), "--batch", str(args.batch), "--warm-only"]
        for chw, name, variant in chunk:
            cmd += ["--warm", f"{chw[0]},{chw[1]},{chw[2]}:{name}:{variant}"]
        procs.append(subprocess.Popen(cmd))
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(1.0, timeout_s - (time.time() - t0))))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append("killed")
    log(f"precompiled {len(work)} (shape, dtype) variants in {len(chunks)} processes: "
        f"{time.time() - t0:.1f}s, exit codes {codes}")


def markdown_extra(result: dict) -> str:
    """Fused-path timings eager vs CUDA-graph replay, and the tile sweep."""
    lines = []
    if result.get("graph"):
        lines += ["", "Fused path, fp16, eager vs replayed from a CUDA graph (the gap is host launch overhead). "
                  "'clean L2': the graph replayed after a read-only flush (a 256 MB sum), so L2 holds clean lines; "
                  "do_bench flushes by writing zeros, and the first kernel's reads then also pay for writing those "
                  "dirty lines back, which no layer inside a network pays:", "",
                  "| C,H,W | fwd eager | fwd graph | fwd graph, clean L2 | f+b eager | f+b graph |",
                  "|---|---|---|---|---|---|"]
        for shape, g in result["graph"].items():
            lines.append(f"| {shape} | {g['fwd_us']:.0f} | {g['fwd_graph_us']:.0f} "
                         f"| {g.get('fwd_graph_clean_us', float('nan')):.0f} | {g['fwdbwd_us']:.0f} "
                         f"| {g['fwdbwd_graph_us']:.0f} |")
    if result.get("sweep"):
        shapes = sorted({s for v in result["sweep"].values() for s in v})
        lines += ["", "Tile sweep (fp16, graph-replayed fwd / f+b, us):", "",
                  "| variant | " + " | ".join(shapes) + " |", "|---" * (len(shapes) + 1) + "|"]
        for variant, per in result["sweep"].items():
            cells = [f"{per[s]['fwd_graph_us']:.0f} / {per[s]['fwdbwd_graph_us']:.0f}" if s in per else "-"
                     for s in shapes]
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"# SCSA layer: reference vs fused (batch {meta['batch']})",
        "",
        f"Device: {meta['device']}; torch {meta['torch']}, triton {meta['triton']}; "
        f"copy bandwidth {meta['copy_bw_GBps']:.0f} GB/s (read + write, 1 GiB D2D copy).",
        "Times: median microseconds (triton.testing.do_bench, L2 flushed, inputs rotated). "
        "Forward: parameters in the input dtype, no autograd. Forward + backward: float32 parameters "
        "under autocast, gradients of x and all parameters. Floor: forward 4 passes over x "
        "(3 reads + 1 write), forward + backward 8 passes, at the copy bandwidth.",
        "Errors: relative L2 error vs the float32 reference on the same rounded inputs/parameters, "
        "fused (reference in the same dtype for comparison); 'grad' is the worst of dx and all "
        "parameter gradients.",
        "",
        "| C,H,W | dtype | ref fwd | fused fwd | speedup | floor | fused/floor | ref f+b | fused f+b | speedup "
        "| f+b floor | out err | grad err |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, e = r.get("times", {}), r.get("errors", {})
        if not t:
            lines.append(f"| {r['shape']} | {r['dtype']} | fused path unsupported: {e.get('reason', '?')} |")
            continue
        f, ref = e.get("fast", {}), e.get("reference", {})
        gerr = max(f.get("dx", float("nan")), f.get("params_max", float("nan")))
        rgerr = max(ref.get("dx", float("nan")), ref.get("params_max", float("nan")))
        lines.append(
            f"| {r['shape']} | {r['dtype']} | {t['reference_fwd_us']:.0f} | {t['fast_fwd_us']:.0f} "
            f"| {t['reference_fwd_us'] / t['fast_fwd_us']:.2f}x | {r['floor_fwd_us']:.0f} "
            f"| {t['fast_fwd_us'] / r['floor_fwd_us']:.2f} | {t['reference_fwdbwd_us']:.0f} "
            f"| {t['fast_fwdbwd_us']:.0f} | {t['reference_fwdbwd_us'] / t['fast_fwdbwd_us']:.2f}x "
            f"| {r['floor_fwdbwd_us']:.0f} | {f.get('out', float('nan')):.1e} ({ref.get('out', float('nan')):.1e}) "
            f"| {gerr:.1e} ({rgerr:.1e}) |"
        )
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def parse_shape(text: str) -> tuple[int, int, int]:
    parts = tuple(int(v) for v in text.lower().replace("x", ",").split(","))
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"shape {text!r} must be C,H,W")
    return parts  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="directory for scsa_layer.md / scsa_layer.json")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--shapes", type=parse_shape, nargs="+", default=list(DEFAULT_SHAPES), help="C,H,W ...")
    ap.add_argument("--dtypes", nargs="+", default=["fp16", "bf16"], choices=sorted(DTYPES))
    ap.add_argument("--check-dtypes", nargs="+", default=["fp32", "fp16", "bf16"], choices=sorted(DTYPES),
                    help="dtypes of the correctness check (fp32 checks the float32 path too)")
    ap.add_argument("--warmup-ms", type=int, default=25)
    ap.add_argument("--rep-ms", type=int, default=100)
    ap.add_argument("--profile", action="store_true", help="per-kernel GPU times of the fused fwd+bwd (fp16)")
    ap.add_argument("--sweep", action="store_true", help="also time the fused path under several tile configurations")
    ap.add_argument("--precompile", type=int, default=min(8, os.cpu_count() or 1),
                    help="parallel processes that compile the kernels first (0: compile lazily)")
    ap.add_argument("--precompile-timeout", type=float, default=150.0, help="seconds before workers are killed")
    ap.add_argument("--warm-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--warm", action="append", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.warm_only:
        for item in args.warm:
            chw, name, variant = item.split(":")
            set_tune(SWEEP[variant] if variant else {})
            warm(parse_shape(chw), args.batch, [name], torch.device("cuda"))
        return 0

    if not torch.cuda.is_available():
        log("no CUDA device: this benchmark times GPU kernels; nothing to do")
        return 2
    import triton

    device = torch.device("cuda")
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "batch": args.batch,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    log(f"device {meta['device']}, torch {meta['torch']}, triton {meta['triton']}")
    meta["copy_bw_GBps"] = copy_bandwidth(device) / 1e9
    log(f"copy bandwidth {meta['copy_bw_GBps']:.0f} GB/s")

    from scsa_yolo.nn import scsa_fast

    meta["tune"] = dict(scsa_fast.TUNE)
    if args.precompile > 0:
        precompile(args, args.precompile, args.precompile_timeout)

    rows = []
    failures = []
    for chw in args.shapes:
        shape = (args.batch, *chw)
        errors = {}
        for name in args.check_dtypes:
            t0 = time.time()
            try:
                errors[name] = check_numbers(shape, DTYPES[name], device)
            except Exception as exc:  # keep measuring the rest; the failure is reported
                log(traceback.format_exc())
                errors[name] = {"fast_supported": False, "reason": f"{type(exc).__name__}: {exc}"[:300]}
                failures.append(f"{chw} {name}: check raised {type(exc).__name__}")
            e = errors[name]
            if e.get("fast_supported"):
                log(f"check {chw} {name}: fused out {e['fast']['out']:.1e} dx {e['fast']['dx']:.1e} "
                    f"params {e['fast']['params_max']:.1e} | reference out {e['reference']['out']:.1e} "
                    f"dx {e['reference']['dx']:.1e} params {e['reference']['params_max']:.1e} ({time.time() - t0:.1f}s)")
                if not e.get("fast_repeat_identical", False):
                    failures.append(f"{chw} {name}: fused results differ between two identical calls")
                worst = max(e["fast"]["out"], e["fast"]["dx"], e["fast"]["params_max"])
                limit = 1e-4 if name == "fp32" else max(
                    3 * max(e["reference"]["out"], e["reference"]["dx"], e["reference"]["params_max"]), 2e-2)
                if not worst <= limit:
                    failures.append(f"{chw} {name}: fused error {worst:.2e} > {limit:.1e}")
            else:
                log(f"check {chw} {name}: fused path unsupported: {e.get('reason')}")
        for name in args.dtypes:
            dtype = DTYPES[name]
            nbytes = args.batch * chw[0] * chw[1] * chw[2] * torch.finfo(dtype).bits // 8
            row = {
                "shape": ",".join(map(str, chw)),
                "dtype": name,
                "errors": errors.get(name, {}),
                "bytes_x": nbytes,
                "floor_fwd_us": 4 * nbytes / (meta["copy_bw_GBps"] * 1e9) * 1e6,
                "floor_fwdbwd_us": 8 * nbytes / (meta["copy_bw_GBps"] * 1e9) * 1e6,
            }
            t0 = time.time()
            try:
                row["times"] = time_shape(shape, dtype, device, args.warmup_ms, args.rep_ms)
            except Exception as exc:
                log(traceback.format_exc())
                failures.append(f"{chw} {name}: timing raised {type(exc).__name__}: {exc}"[:300])
                rows.append(row)
                continue
            t = row["times"]
            log(f"time {chw} {name}: fwd ref {t['reference_fwd_us']:.0f} fused {t['fast_fwd_us']:.0f} "
                f"(floor {row['floor_fwd_us']:.0f}) | f+b ref {t['reference_fwdbwd_us']:.0f} "
                f"fused {t['fast_fwdbwd_us']:.0f} us ({time.time() - t0:.1f}s)")
            rows.append(row)
            torch.cuda.empty_cache()

    result = {"meta": meta, "rows": rows, "check_failures": failures}

    def save() -> str:
        meta["direct_launch"] = {"ok": scsa_fast._Launcher.direct_ok, "error": scsa_fast._Launcher.direct_error}
        text = markdown(meta, rows) + markdown_extra(result)
        if failures:
            text += "\nCHECK FAILURES:\n" + "\n".join(f"- {f}" for f in failures) + "\n"
        write_atomic(args.out / "scsa_layer.json", json.dumps(result, indent=1))
        write_atomic(args.out / "scsa_layer.md", text)
        return text

    save()
    def fused_timings(label: str) -> dict:
        """Fused path eager and graph-replayed (host overhead = gap) at every shape, fp16."""
        out = {}
        for chw in args.shapes:
            try:
                g = time_fused_variant((args.batch, *chw), torch.float16, device, args.warmup_ms, args.rep_ms)
            except Exception:
                log(traceback.format_exc())
                continue
            out[",".join(map(str, chw))] = g
            log(f"{label} {chw} fp16: fwd eager {g['fwd_us']:.0f} graph {g['fwd_graph_us']:.0f} | "
                f"f+b eager {g['fwdbwd_us']:.0f} graph {g['fwdbwd_graph_us']:.0f}")
        return out

    result["graph"] = fused_timings("graph")
    save()
    if args.sweep:
        result["sweep"] = {}
        for variant, overrides in SWEEP.items():
            set_tune(overrides)
            result["sweep"][variant] = fused_timings(f"sweep {variant}")
        set_tune({})
        save()
    if args.profile:
        result["profile"] = {}
        for chw in args.shapes:
            try:
                prof = profile_kernels((args.batch, *chw), torch.float16, device)
            except Exception:
                log(traceback.format_exc())
                continue
            result["profile"][",".join(map(str, chw))] = prof
            log(f"profile {chw} fp16 fused fwd+bwd:")
            for p in prof[:14]:
                log(f"   {p['us_per_step']:8.1f} us  x{p['calls_per_step']:.0f}  {p['kernel']}")
    text = save()
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
