"""Forward tiles of the fused SCSA: the five launches under several tile settings, and each launch alone.

Run on a CUDA machine:

    PYTHONPATH=. python3 benchmarks/scsa_fwd_schedule.py --out results/perf

For every (C, H, W) at batch 32 (fp16 unless ``--dtypes`` says otherwise) and every
variant (``scsa_fast.TUNE`` overrides) it checks the output against the float32
reference, then times the forward with ``triton.testing.do_bench`` (median, L2 flushed
before each call, inputs rotated). For the default it also replays the forward from a
CUDA graph and times each of the five launches alone (L2 flushed before each, so a
launch's own reads come from HBM). Output: ``DIR/scsa_fwd_schedule.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scsa_layer import (  # noqa: E402 (benchmarks/ is not a package)
    DEFAULT_SHAPES, DTYPES, bench, capture_graph, copy_bandwidth, graph_us, log, make_layer, parse_shape,
    read_flush_buffer, rel_err, rotated, set_tune, write_atomic,
)

VARIANTS: dict[str, dict] = {
    "default": {},
    # Session 3's tiles (v4): four-warp R and P, narrow channel-attention blocks everywhere.
    "v4_tiles": dict(plane_tile=4096, plane_warps=4, pool_tile=16384, pool_warps=4, pcsa_wide_tokens=0),
    "r_w4": dict(plane_tile=4096, plane_warps=4),  # R as in v4
    "r_t512": dict(plane_tile=512),
    "r_t2k": dict(plane_tile=2048),
    "p_w4": dict(pool_tile=16384, pool_warps=4),  # P as in v4
    "p_t2k": dict(pool_tile=2048),
    "pool_forward": dict(pool_reverse=0),  # pooling pass in the same sample order as R (no L2 reuse)
    "q_narrow": dict(pcsa_wide_tokens=0),  # 16/32-channel attention blocks at every shape
    "keys_2k": dict(pcsa_key_tile=2048),
    "apply_t8k": dict(apply_tile=8192, apply_warps=8),
}
GRAPH_VARIANTS = tuple(VARIANTS)

def graph_kernel_us(fn, replays: int = 20) -> dict[str, float]:
    """Mean GPU microseconds of each kernel inside a CUDA-graph replay of ``fn`` (each
    replay after a read-only L2 flush): the launches as they run back to back."""
    from torch.profiler import ProfilerActivity, profile

    graph = capture_graph(fn)
    flush = read_flush_buffer()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(replays):
            flush.sum()
            graph.replay()
        torch.cuda.synchronize()
    out: dict[str, float] = {}
    for ev in prof.key_averages():
        if ev.key.startswith("fwd_"):
            out[ev.key] = round(ev.device_time_total / replays, 1)
    return out
GRAPH_VARIANTS = tuple(VARIANTS)


def check(layer, x, dtype) -> float:
    """Relative error of the fused output against the float32 reference on the same input."""
    with torch.no_grad():
        layer.impl = "fast"
        out = layer(x)
        truth = make_layer(x.shape[1], seed=2).to(x.device)
        truth.load_state_dict({k: v.float() for k, v in layer.state_dict().items()})
        truth.impl = "reference"
        ref = truth(x.float())
    return rel_err(out, ref)


def stage_times(layer, x, warmup_ms, rep_ms) -> dict:
    """Each of the five launches alone (its inputs left in place by a full run)."""
    from scsa_yolo.nn import scsa_fast

    prm = scsa_fast._Params(tuple(scsa_fast._params(layer)), len(layer.dwconvs))
    cfg = scsa_fast._module_info(layer)[1]
    with torch.no_grad():
        out, plan, ws = scsa_fast._forward(cfg, x, prm)
    k = scsa_fast._kernels()
    res = {}
    for (name, grid, consts), args, letter in zip(plan.split, scsa_fast._split_args(cfg, x, out, prm, plan), "RGPQA"):
        key = ("stage-bench", name, id(plan))

        def one(name=name, grid=grid, consts=consts, args=args, key=key):
            scsa_fast._launch(getattr(k.fwd, name), key, grid, args, (ws,), consts)

        res[letter] = bench(one, warmup_ms, rep_ms)
    return res


def warm(chw, batch, dtypes, variants) -> None:
    device = torch.device("cuda")
    for name in dtypes:
        x = torch.randn((batch, *chw), device=device, dtype=DTYPES[name])
        layer = make_layer(chw[0], seed=2).to(device=device, dtype=DTYPES[name]).eval()
        for v in variants:
            t0 = time.time()
            set_tune(VARIANTS[v])
            layer.impl = "fast"
            with torch.no_grad():
                layer(x)
            torch.cuda.synchronize()
            log(f"  [warm] {chw} {name} {v}: {time.time() - t0:.1f}s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--shapes", type=parse_shape, nargs="+", default=list(DEFAULT_SHAPES))
    ap.add_argument("--dtypes", nargs="+", default=["fp16"], choices=sorted(DTYPES))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--warmup-ms", type=int, default=25)
    ap.add_argument("--rep-ms", type=int, default=100)
    ap.add_argument("--in-graph", action="store_true", help="per-kernel times inside graph replays (profiler)")
    ap.add_argument("--host-profile", action="store_true", help="cProfile the eager forward (host overhead)")
    ap.add_argument("--warm-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.warm_only:
        for chw in args.shapes:
            warm(chw, args.batch, args.dtypes, args.variants)
        return 0
    if not torch.cuda.is_available():
        log("no CUDA device: nothing to do")
        return 2
    import triton

    # Compile first: one process per shape (compilation is CPU-bound, the device is not).
    t0 = time.time()
    compile_variants = list(args.variants)
    procs = [subprocess.Popen([sys.executable, __file__, "--out", str(args.out), "--warm-only", "--batch",
                               str(args.batch), "--shapes", ",".join(map(str, chw)), "--dtypes", *args.dtypes,
                               "--variants", *compile_variants]) for chw in args.shapes]
    codes = [p.wait() for p in procs]
    log(f"compiled in {time.time() - t0:.0f}s, exit codes {codes}")

    device = torch.device("cuda")
    meta = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__, "triton": triton.__version__,
            "batch": args.batch, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    meta["copy_bw_GBps"] = copy_bandwidth(device) / 1e9
    log(f"{meta['device']}: copy bandwidth {meta['copy_bw_GBps']:.0f} GB/s")
    rows = []
    for chw in args.shapes:
        for dname in args.dtypes:
            dtype = DTYPES[dname]
            shape = (args.batch, *chw)
            nbytes = torch.Size(shape).numel() * torch.finfo(dtype).bits // 8
            row = {"shape": ",".join(map(str, chw)), "dtype": dname,
                   "floor_us": 4 * nbytes / (meta["copy_bw_GBps"] * 1e9) * 1e6, "variants": {}}
            inputs, _ = rotated(shape, dtype, device)
            layer = make_layer(chw[0], seed=2).to(device=device, dtype=dtype).eval()
            layer.impl = "reference"

            def fwd():
                with torch.no_grad():
                    layer(next(inputs))

            row["reference_us"] = bench(fwd, args.warmup_ms, args.rep_ms)
            layer.impl = "fast"
            for v in args.variants:
                set_tune(VARIANTS[v])
                res = {}
                try:
                    res["err"] = check(layer, next(inputs), dtype)
                    res["us"] = bench(fwd, args.warmup_ms, args.rep_ms)
                    if v in GRAPH_VARIANTS:
                        xg = next(inputs)

                        def fwd_fixed():
                            with torch.no_grad():
                                layer(xg)

                        res["graph_us"] = graph_us(fwd_fixed, args.warmup_ms, args.rep_ms)
                        res["graph_clean_us"] = graph_us(fwd_fixed, args.warmup_ms, args.rep_ms, clean_l2=True)
                        if args.in_graph:
                            res["in_graph_us"] = graph_kernel_us(fwd_fixed)
                    # Every variant: which launch a setting changes.
                    res["stages_us"] = stage_times(layer, next(inputs), args.warmup_ms, args.rep_ms)
                except Exception as exc:  # report and go on with the other variants
                    res["error"] = f"{type(exc).__name__}: {exc}"[:300]
                row["variants"][v] = res
                log(f"{chw} {dname} {v}: {res}")
            rows.append(row)
            set_tune({})
            torch.cuda.empty_cache()
    from scsa_yolo.nn import scsa_fast

    if args.host_profile:
        import cProfile
        import io
        import pstats

        set_tune({})
        chw = args.shapes[-1]
        layer = make_layer(chw[0], seed=2).to(device=device, dtype=torch.float16).eval()
        x = torch.randn((args.batch, *chw), device=device, dtype=torch.float16)
        with torch.no_grad():
            for _ in range(20):
                layer(x)
            torch.cuda.synchronize()
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            for _ in range(200):
                layer(x)
            prof.disable()
            torch.cuda.synchronize()
            meta["host_us_per_forward"] = (time.perf_counter() - t0) / 200 * 1e6
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        log(f"host profile, forward {chw}: {meta['host_us_per_forward']:.0f} us per call (profiled)")
        log(buf.getvalue()[:6000])
        set_tune({})

    meta["direct_launch"] = {"ok": scsa_fast._Launcher.direct_ok, "error": scsa_fast._Launcher.direct_error}
    log(f"direct launch: {meta['direct_launch']}")
    lines = [f"# Fused SCSA forward tiles (batch {args.batch})", "",
             f"Device: {meta['device']}; torch {meta['torch']}, triton {meta['triton']}; copy bandwidth "
             f"{meta['copy_bw_GBps']:.0f} GB/s. Median us (do_bench, L2 flushed, inputs rotated); floor = 3 reads "
             "+ 1 write of x at the copy bandwidth; x/floor in brackets; err = relative L2 error vs float32; "
             "'graph': the same forward replayed from a CUDA graph (no host launch overhead).",
             f"Direct launches: {meta['direct_launch']}.", "",
             "| C,H,W | dtype | floor | reference | " + " | ".join(args.variants) + " |",
             "|---|---|---|---|" + "---|" * len(args.variants)]
    for r in rows:
        cells = []
        for v in args.variants:
            res = r["variants"][v]
            cell = (f"{res['us']:.0f} ({res['us'] / r['floor_us']:.2f}x, err {res['err']:.0e})" if "us" in res
                    else "failed")
            if "graph_us" in res:
                cell += f"; graph {res['graph_us']:.0f}, clean L2 {res['graph_clean_us']:.0f}"
            cells.append(cell)
        lines.append(f"| {r['shape']} | {r['dtype']} | {r['floor_us']:.0f} | {r['reference_us']:.0f} | "
                     + " | ".join(cells) + " |")
    if "default" in args.variants:
        lines += ["", "Each launch alone (us): R reduce, G gates, P pool, Q channel attention, "
                  "A output.", "", "| C,H,W | dtype | R | G | P | Q | A |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            for v in args.variants:
                st = r["variants"][v].get("stages_us", {})
                lines.append(f"| {r['shape']} | {r['dtype']} {v} | " + " | ".join(f"{st.get(s, float('nan')):.0f}"
                                                                               for s in "RGPQA") + " |")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "scsa_fwd_schedule.md", text)
    write_atomic(args.out / "scsa_fwd_schedule.json", json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
