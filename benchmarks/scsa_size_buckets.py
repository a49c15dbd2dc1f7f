"""Issue 28 item 1 on a GPU: what a new map size costs the fused SCSA, and what the
run-time sizes cost the kernels.

Three modes (run on a CUDA machine; imports only torch, triton and scsa_yolo.nn):

``sizes``
    The three SCSA layers of YOLOv8n-SCSA (64, 128, 256 channels at strides 8, 16, 32)
    go through one training step at 640 x 640 (batch 16, fp16 autocast, float32
    parameters, forward + backward) and then, as Ultralytics' rectangular validation
    does, through batches of 32 at several image shapes (fp16 parameters, no grad).
    After each step it records the wall seconds of that step (the first call of each new
    shape: compiling or loading kernels included), the number of our kernels in Triton's
    cache directory (``TRITON_CACHE_DIR``: set it to an empty folder for a cold count) and,
    where the package has it, ``scsa_fast.kernel_stats()``. Run it once per tree to
    compare (the script runs with any scsa_yolo on ``PYTHONPATH``).
``parity``
    The fused path against the float32 reference at the six YOLO shapes and at
    rectangular ones, fp32 and fp16 (forward, dx and every parameter gradient), and with
    channels-last inputs.
``time``
    CUDA-graph-replayed forward (fp16, no grad; after a read flush of L2) and forward +
    backward (fp16 autocast; do_bench) at the six YOLO shapes, in ``--rounds`` rounds;
    median and minimum per shape. Alternate processes of two trees to compare them.

``paths``
    Item 4: the small-map forward (two launches) against the five-launch forward, both
    forced (``scsa_fast.TUNE["small_map_max"]``) in one process, CUDA-graph replayed
    (fp16, no grad; after a read flush of L2, and back to back with x left in L2), in
    ``--rounds`` interleaved rounds at batch 32 and 1 (``--batches``), 20 x 20 and 40 x 40
    maps; median and minimum per path against the memory floor (3 reads + 1 write of x
    at the measured copy bandwidth). Sets the threshold: where the small path wins.
``small-parity``
    The small-map path forced, against the float32 reference and against the five-launch
    path (forward, dx and every parameter gradient) in fp32, fp16, bf16 and with
    channels-last fp16 / bf16 inputs, also at 40 x 40 (where the threshold may not take it);
    then the ``paths`` mode's batch-32 forward graphs of both paths, all captured first,
    each replayed and compared with its eager forward.

Writes ``DIR/scsa_size_buckets_MODE[_TAG].json`` and prints a Markdown table.

    TRITON_CACHE_DIR=$(mktemp -d) PYTHONPATH=. python3 benchmarks/scsa_size_buckets.py sizes --out DIR --tag new
    PYTHONPATH=. python3 benchmarks/scsa_size_buckets.py parity --out DIR
    PYTHONPATH=. python3 benchmarks/scsa_size_buckets.py time --out DIR --tag new --rounds 5
    PYTHONPATH=. python3 benchmarks/scsa_size_buckets.py paths --out DIR --rounds 7
    PYTHONPATH=. python3 benchmarks/scsa_size_buckets.py small-parity --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scsa_layer as sl  # noqa: E402  (helpers: layers with random parameters, graph capture, L2 flush)

#: YOLOv8n-SCSA's three SCSA layers: (channels, stride).
LAYERS = ((64, 8), (128, 16), (256, 32))
#: Image shapes (H, W) of validation batches: Ultralytics' rect batches at imgsz 640 have a
#: long side of 672 (ceil(640 / 32 + 0.5) * 32) and a short side of ceil(r * 20 + 0.5) * 32.
VAL_SHAPES = ((672, 672), (672, 512), (512, 672), (672, 384), (384, 672), (672, 480), (480, 672),
              (672, 352), (352, 672), (672, 576), (576, 672), (672, 416), (416, 672), (672, 224))
SIX = ((64, 80, 80), (128, 40, 40), (256, 20, 20), (128, 80, 80), (256, 40, 40), (512, 20, 20))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def our_cache_entries() -> int:
    """Compiled kernels of ours (fwd_*/bwd_* cubins) in Triton's cache directory."""
    root = Path(os.environ.get("TRITON_CACHE_DIR") or Path.home() / ".triton" / "cache")
    if not root.is_dir():
        return 0
    return sum(1 for p in root.rglob("*.cubin") if p.name.startswith(("fwd_", "bwd_")))


def kernel_stats() -> dict | None:
    from scsa_yolo.nn import scsa_fast

    fn = getattr(scsa_fast, "kernel_stats", None)
    return fn() if fn is not None else None


def mode_sizes(args) -> dict:
    device = torch.device("cuda")
    train_layers = [sl.make_layer(c, seed=i).to(device) for i, (c, _) in enumerate(LAYERS)]
    val_layers = [sl.make_layer(c, seed=i).to(device).half().eval() for i, (c, _) in enumerate(LAYERS)]
    steps = [("train", 640, 640, 16)] + [("val", h, w, 32) for h, w in VAL_SHAPES[:args.val_shapes]]
    rows = []
    for kind, h, w, batch in steps:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for (c, stride), tl_, vl in zip(LAYERS, train_layers, val_layers):
            shape = (batch, c, h // stride, w // stride)
            if kind == "train":
                x = torch.randn(shape, device=device, dtype=torch.float16, requires_grad=True)
                with torch.autocast("cuda", dtype=torch.float16):
                    out = tl_(x)
                torch.autograd.grad(out, [x, *tl_.parameters()], torch.randn_like(out))
            else:
                with torch.no_grad():
                    vl(torch.randn(shape, device=device, dtype=torch.float16))
        torch.cuda.synchronize()
        row = {"step": f"{kind} {h}x{w} b{batch}", "maps": [f"{h // s}x{w // s}" for _, s in LAYERS],
               "seconds": time.perf_counter() - t0, "cache_entries": our_cache_entries(), "stats": kernel_stats()}
        rows.append(row)
        log(f"{row['step']}: {row['seconds']:.2f} s, cache entries {row['cache_entries']}, stats {row['stats']}")
    return {"rows": rows}


def mode_parity(args) -> dict:
    from scsa_yolo.nn import scsa_fast

    device = torch.device("cuda")
    shapes = [(32, *s) for s in SIX] + [(32, 64, 84, 64), (32, 128, 42, 32), (32, 256, 21, 16), (32, 256, 21, 7),
                                        (16, 64, 60, 84), (8, 256, 13, 22)]
    rows, failures = [], []
    for shape in shard(args, shapes):
        for name in ("fp32", "fp16"):
            e = sl.check_numbers(shape, sl.DTYPES[name], device)
            worst = max(e["fast"]["out"], e["fast"]["dx"], e["fast"]["params_max"])
            ref = max(e["reference"]["out"], e["reference"]["dx"], e["reference"]["params_max"])
            limit = 1e-4 if name == "fp32" else max(3 * ref, 2e-2)
            ok = worst <= limit and e.get("fast_repeat_identical", False)
            rows.append({"shape": shape, "dtype": name, "fused_worst": worst, "reference_worst": ref, "ok": ok,
                         "fast": e["fast"], "reference": e["reference"]})
            if not ok:
                failures.append(f"{shape} {name}: {worst:.2e} > {limit:.1e} or not repeatable")
            log(f"{shape} {name}: fused {worst:.1e} reference {ref:.1e} {'ok' if ok else 'FAIL'}")
    # channels-last input: fused vs the float32 reference on the same values
    for shape in shard(args, [(32, 64, 80, 80), (32, 256, 21, 16)]):
        layer = sl.make_layer(shape[1], seed=5).to(device)
        x = torch.randn(shape, device=device).half().to(memory_format=torch.channels_last)
        dout = torch.randn(shape, device=device).half()
        out32, dx32, g32 = sl.layer_grads(layer, x.float().contiguous(), dout.float(), "reference")
        out, dx, grads = sl.layer_grads(layer, x, dout, "fast", torch.float16)
        worst = max(sl.rel_err(out, out32), sl.rel_err(dx, dx32), max(sl.rel_err(g, r) for g, r in zip(grads, g32)))
        ok = worst < 2e-2 and out.is_contiguous(memory_format=torch.channels_last)
        rows.append({"shape": shape, "dtype": "fp16 channels_last", "fused_worst": worst, "ok": ok,
                     "supported": scsa_fast.supports(layer, x)})
        if not ok:
            failures.append(f"{shape} channels_last: {worst:.2e}")
        log(f"{shape} channels_last: fused {worst:.1e} {'ok' if ok else 'FAIL'}")
    return {"rows": rows, "failures": failures}


def mode_time(args) -> dict:
    device = torch.device("cuda")
    calls = {}
    for c, h, w in shard(args, SIX):
        shape = (32, c, h, w)
        x = torch.randn(shape, device=device, dtype=torch.float16)
        dout = torch.randn(shape, device=device, dtype=torch.float16)
        infer = sl.make_layer(c, seed=2).to(device=device, dtype=torch.float16).eval()
        train = sl.make_layer(c, seed=3).to(device)
        params = list(train.parameters())
        xg = x.detach().clone().requires_grad_(True)

        def fwd(infer=infer, x=x):
            with torch.no_grad():
                infer(x)

        def fwd_bwd(train=train, xg=xg, params=params, dout=dout):
            with torch.autocast("cuda", dtype=torch.float16):
                out = train(xg)
            torch.autograd.grad(out, [xg, *params], dout)

        fwd(), fwd_bwd()
        calls[f"{c}x{h}x{w}"] = (fwd, fwd_bwd)
    torch.cuda.synchronize()
    if args.warm_only:
        return {}
    times = {k: {"fwd": [], "fwdbwd": []} for k in calls}
    for r in range(args.rounds):
        for k, (fwd, fwd_bwd) in calls.items():
            # one graph at a time, captured, timed and dropped, as scsa_layer.graph_us: the
            # forward after a read flush of L2, the forward + backward with do_bench (its
            # write flush), as session 8 timed it (read flushes around replays of captured
            # backward graphs hit an illegal address on an H100 in both trees, once)
            graph = sl.capture_graph(fwd)
            times[k]["fwd"].append(sl.bench_clean_l2(graph.replay, reps=50))
            del graph
            graph = sl.capture_graph(fwd_bwd)
            times[k]["fwdbwd"].append(sl.bench(graph.replay, 10, 40))
            del graph
        log(f"round {r + 1}: " + ", ".join(f"{k} {v['fwd'][-1]:.0f}/{v['fwdbwd'][-1]:.0f}" for k, v in times.items()))
    summary = {k: {m: {"median": sorted(v)[len(v) // 2], "min": min(v), "all": v} for m, v in d.items()}
               for k, d in times.items()}
    return {"times_us": summary, "rounds": args.rounds}


#: Item 4's shapes (C, H, W): the small path's home (20 x 20) and 40 x 40, where it may or
#: may not win (both paths are timed everywhere, to set TUNE["small_map_max"]).
PATH_SHAPES = ((64, 20, 20), (256, 20, 20), (512, 20, 20), (128, 40, 40), (256, 40, 40))
PATHS = ("small", "five")
#: Tile variants of the small path timed beside the default (S1 with 8 warps, 8192-element
#: chunks; ``--small-variants``): S1 with 4 or 16 warps, S2 with 32 query channels a program.
#: (One-warp S1 spills its gate tiles: not worth a run.)
SMALL_VARIANTS = ("w4:small_warps=4,small_tile=4096", "w16:small_warps=16,small_tile=32768",
                  "q32:small_queries=32,small_out_tile=8192,small_out_warps=8")
_TUNE_SAVED: dict = {}


def force_path(path: str, tune: dict | None = None) -> None:
    """Plan later inputs on the two-launch small-map path ("small"), the five-launch path
    ("five") or by the default threshold ("auto"), with ``tune`` (TUNE overrides) on top of
    the default tiles. Captured graphs keep the launches they recorded, so graphs of every
    path can be replayed in turn afterwards."""
    from scsa_yolo.nn import scsa_fast

    if not _TUNE_SAVED:
        _TUNE_SAVED.update(scsa_fast.TUNE)
    scsa_fast.TUNE.clear()
    scsa_fast.TUNE.update({**_TUNE_SAVED, **(tune or {})})
    if path != "auto":
        scsa_fast.TUNE["small_map_max"] = {"small": 1 << 30, "five": 0}[path]
        scsa_fast.TUNE["small_min_programs"] = 0
        scsa_fast.TUNE["small_max_channels"] = 1 << 30
    scsa_fast._plans.clear()


def parse_variants(items: list[str]) -> dict[str, dict]:
    """``NAME:key=value,key=value`` items -> {"small:NAME": {key: int(value)}}."""
    out = {}
    for item in items:
        name, _, spec = item.partition(":")
        out[f"small:{name}"] = {k.strip(): int(v) for k, _, v in (kv.partition("=") for kv in spec.split(",") if kv)}
    return out


def floor_us(shape, bytes_per_element: int, copy_bw_gbps: float) -> float:
    """Forward memory floor: 3 reads + 1 write of x at the copy bandwidth (read + write bytes/s)."""
    b, c, h, w = shape
    return 4 * b * c * h * w * bytes_per_element / (copy_bw_gbps * 1e9) * 1e6


def summarise_paths(times: dict, floors: dict) -> dict:
    """Per shape key: per path the median, minimum and median / floor of its samples (us),
    and the five-launch median over the small-path median (> 1: the small path wins)."""
    out = {}
    for key, per_path in times.items():
        row = {"floor_us": floors[key]}
        for path, modes in per_path.items():
            row[path] = {}
            for mode, v in modes.items():
                med = sorted(v)[len(v) // 2]
                row[path][mode] = {"median": med, "min": min(v), "x_floor": med / floors[key], "all": v}
        # five-launch median over each small path's median (> 1: the small path wins)
        row["speedup"] = {m: row["five"][m]["median"] / row["small"][m]["median"] for m in row["small"]}
        row["variants"] = {p: row["five"]["clean"]["median"] / row[p]["clean"]["median"]
                           for p in per_path if p.startswith("small:")}
        out[key] = row
    return out


class Replay:
    """A captured forward and everything its graph reads: ``replay()`` runs the graph.

    A CUDA graph records raw addresses (the input, the layer's parameters) and keeps alive
    only what it allocated itself. ``torch.cuda.graph`` empties the allocator's cache
    when a capture begins, so an input freed after its graph was captured goes back to
    the driver at the next capture, and replaying the first graph then reads unmapped
    memory: the illegal memory access of the first ``paths`` run at batch 32 (at batch 1
    the inputs shared 2 MB allocator segments with live tensors and were never
    unmapped, so the graphs replayed on stale but mapped bytes). Holding ``fn`` (whose
    defaults are the input and the layer) for as long as the graph fixes that."""

    def __init__(self, graph, fn) -> None:
        self.graph, self.fn = graph, fn

    def replay(self) -> None:
        self.graph.replay()


def capture_paths(shape, paths: list[str], variants: dict, device, capture=None) -> dict[str, Replay]:
    """Per path (see :func:`force_path`), the fp16 no-grad forward of one layer at
    ``shape`` captured by ``capture`` (default ``scsa_layer.capture_graph``; None: the
    kernels are only compiled), each holding its input and layer."""
    x = torch.randn(shape, device=device, dtype=torch.float16)
    layer = sl.make_layer(shape[1], seed=2).to(device=device, dtype=torch.float16).eval()

    def fwd(layer=layer, x=x):
        with torch.no_grad():
            layer(x)

    out = {}
    for path in paths:
        force_path(path.split(":")[0], variants.get(path))
        fwd()  # compiles (or loads) this path's kernels
        if capture is not None:
            out[path] = Replay(capture(fwd), fwd)
    return out


def mode_paths(args) -> dict:
    device = torch.device("cuda")
    items = [(b, *chw) for b in args.batches for chw in PATH_SHAPES]
    variants = parse_variants(args.small_variants)
    paths = list(PATHS) + list(variants)
    graphs: dict = {}
    for shape in shard(args, items):
        graphs["x".join(map(str, shape))] = capture_paths(shape, paths, variants, device,
                                                          None if args.warm_only else sl.capture_graph)
    force_path("auto")
    torch.cuda.synchronize()
    if args.warm_only:
        return {}
    bw = sl.copy_bandwidth(device) / 1e9
    floors = {k: floor_us(tuple(int(v) for v in k.split("x")), 2, bw) for k in graphs}
    times = {k: {p: {"clean": [], "hot": []} for p in paths} for k in graphs}
    for r in range(args.rounds):
        for k, per_path in graphs.items():
            for path in (paths if r % 2 == 0 else paths[::-1]):  # alternate which goes first
                graph = per_path[path]
                times[k][path]["clean"].append(sl.bench_clean_l2(graph.replay, reps=50))
                times[k][path]["hot"].append(hot_us(graph.replay))
        log(f"round {r + 1}: " + ", ".join(f"{k} {v['small']['clean'][-1]:.1f}/{v['five']['clean'][-1]:.1f}"
                                           for k, v in times.items()))
    return {"copy_bw_GBps": bw, "rounds": args.rounds, "variants": variants, "paths": summarise_paths(times, floors)}


def hot_us(fn, reps: int = 50) -> float:
    """Mean microseconds of ``fn`` replayed back to back (x stays in L2, as after the
    layer that wrote it)."""
    for _ in range(5):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / reps


def mode_small_parity(args) -> dict:
    """Small path forced, in every dtype and channels-last: against float32 and the five launches."""
    device = torch.device("cuda")
    cases = [((32, 256, 20, 20), n, False) for n in ("fp32", "fp16", "bf16")]
    cases += [((1, 512, 20, 20), "fp16", False), ((8, 64, 20, 12), "fp32", False), ((2, 64, 5, 6), "fp32", False),
              ((8, 128, 40, 40), "fp16", False), ((32, 256, 20, 20), "fp16", True), ((8, 64, 12, 20), "bf16", True)]
    # The rest of the paths mode's batch-32 shapes: 16-channel groups, 512 channels, 40 x 40 forced.
    cases += [((32, 64, 20, 20), "fp16", False), ((32, 512, 20, 20), "fp16", False),
              ((32, 128, 40, 40), "fp16", False), ((32, 256, 40, 40), "fp16", False)]
    rows, failures = [], []
    for shape, name, channels_last in shard(args, cases):
        dtype = sl.DTYPES[name]
        layer = sl.make_layer(shape[1], seed=5).to(device)
        x = torch.randn(shape, device=device).to(dtype)
        dout = torch.randn(shape, device=device).to(dtype)
        if channels_last:
            x = x.to(memory_format=torch.channels_last)
        truth = sl.layer_grads(layer, x.float().contiguous(), dout.float(), "reference")
        autocast = None if dtype == torch.float32 else dtype
        got = {}
        for path in PATHS:
            force_path(path)
            got[path] = sl.layer_grads(layer, x, dout, "fast", autocast)
            got[path + "_again"] = sl.layer_grads(layer, x, dout, "fast", autocast)
        force_path("auto")
        if args.warm_only:
            continue

        def worst(a, b):
            return max(sl.rel_err(a[0], b[0]), sl.rel_err(a[1], b[1]),
                       max(sl.rel_err(g, r) for g, r in zip(a[2], b[2])))

        small, five = worst(got["small"], truth), worst(got["five"], truth)
        vs_five = worst(got["small"], got["five"])
        repeat = all(torch.equal(a, b) for a, b in zip([got["small"][0], got["small"][1], *got["small"][2]],
                                                       [got["small_again"][0], got["small_again"][1],
                                                        *got["small_again"][2]]))
        limit = 1e-4 if name == "fp32" else max(3 * five, 2e-2 if name == "bf16" else 2e-3)
        ok = small <= limit and repeat and (not channels_last or got["small"][0].is_contiguous(
            memory_format=torch.channels_last))
        label = name + (" channels_last" if channels_last else "")
        rows.append({"shape": shape, "dtype": label, "fused_worst": small, "reference_worst": five,
                     "small_vs_five": vs_five, "repeat_identical": repeat, "ok": ok})
        if not ok:
            failures.append(f"{shape} {label}: small path {small:.2e} (five launches {five:.2e}), "
                            f"repeat identical {repeat}")
        log(f"{shape} {label}: small {small:.1e} five {five:.1e} small-vs-five {vs_five:.1e} {'ok' if ok else 'FAIL'}")
    if not args.warm_only:
        for row in graph_replays(device, [(32, *chw) for chw in PATH_SHAPES]):
            rows.append(row)
            if not row["ok"]:
                failures.append(f"{row['shape']} {row['dtype']}: replay vs eager {row['fused_worst']:.2e} (small), "
                                f"{row['reference_worst']:.2e} (five launches)")
    return {"rows": rows, "failures": failures}


def graph_replays(device, shapes: list) -> list[dict]:
    """The paths mode's order: the fp16 forward of both paths captured for every shape,
    then each graph replayed (its output first set to NaN) and compared with the eager
    forward of its path: a kernel or plan that goes wrong under capture, or a graph that
    outlives what it reads, shows here (the first paths run crashed at its first replay)."""
    kept = []
    for shape in shapes:
        x = torch.randn(shape, device=device, dtype=torch.float16)
        layer = sl.make_layer(shape[1], seed=3).to(device=device, dtype=torch.float16).eval()
        for path in PATHS:
            force_path(path)
            box: dict = {}

            def fwd(layer=layer, x=x, box=box):
                with torch.no_grad():
                    box["out"] = layer(x)

            fwd()
            eager = box["out"].clone()
            kept.append((shape, path, Replay(sl.capture_graph(fwd), fwd), box, eager))
    force_path("auto")
    errors: dict = {}
    for shape, path, replay, box, eager in kept:
        box["out"].fill_(float("nan"))
        replay.replay()
        torch.cuda.synchronize()
        errors.setdefault(shape, {})[path] = (sl.rel_err(box["out"], eager), eager)
    rows = []
    for shape, e in errors.items():
        small, five = e["small"][0], e["five"][0]
        rows.append({"shape": shape, "dtype": "fp16 graph replay", "fused_worst": small, "reference_worst": five,
                     "small_vs_five": sl.rel_err(e["small"][1], e["five"][1]), "repeat_identical": None,
                     "ok": small <= 1e-6 and five <= 1e-6})
        log(f"{shape} graph replay vs eager: small {small:.1e} five {five:.1e}")
    return rows


def shard(args, items: list) -> list:
    """This process's share of ``items`` (all of them unless --shard K/N)."""
    if args.shard is None:
        return list(items)
    k, n = (int(v) for v in args.shard.split("/"))
    return [item for i, item in enumerate(items) if i % n == k]


def precompile(args) -> None:
    """Run the mode's shapes in --jobs parallel processes first, so their kernels are
    compiled into the shared Triton cache at once (compiling is CPU work, one process
    compiles one kernel at a time); the measuring process then loads them."""
    import subprocess

    start = time.time()
    procs = [subprocess.Popen([sys.executable, __file__, args.mode, "--out", str(args.out), "--warm-only",
                               "--shard", f"{k}/{args.jobs}", "--batches", *map(str, args.batches),
                              "--small-variants", *args.small_variants])
             for k in range(args.jobs)]
    codes = [p.wait() for p in procs]
    log(f"precompiled in {args.jobs} processes: {time.time() - start:.1f} s, exit codes {codes}")


def markdown(mode: str, res: dict, meta: dict) -> str:
    lines = [f"# scsa_size_buckets {mode} ({meta['tag']})", "",
             f"{meta['device']}, torch {meta['torch']}, triton {meta['triton']}, {meta['date']}", ""]
    if mode == "sizes":
        lines += ["| step | SCSA maps | seconds | our kernels in the Triton cache | kernel_stats |", "|---|---|---|---|---|"]
        lines += [f"| {r['step']} | {', '.join(r['maps'])} | {r['seconds']:.2f} | {r['cache_entries']} | {r['stats']} |"
                  for r in res["rows"]]
    elif mode == "parity":
        lines += ["| shape | dtype | fused worst rel. error | reference worst | ok |", "|---|---|---|---|---|"]
        lines += [f"| {r['shape']} | {r['dtype']} | {r['fused_worst']:.2e} | {r.get('reference_worst', float('nan')):.2e} "
                  f"| {r['ok']} |" for r in res["rows"]]
        lines += ["", f"failures: {res['failures'] or 'none'}"]
    elif mode == "small-parity":
        lines += ["Small-map path forced; errors: worst of out, dx and every parameter gradient against the float32 "
                  "reference (five-launch path's in the 'reference' column). 'graph replay' rows: the forward of each "
                  "path graph-replayed after every capture, against its eager forward.", "",
                  "| shape | dtype | small path | five launches | small vs five | ok |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['shape']} | {r['dtype']} | {r['fused_worst']:.2e} | {r['reference_worst']:.2e} "
                  f"| {r['small_vs_five']:.1e} | {r['ok']} |" for r in res["rows"]]
        lines += ["", f"failures: {res['failures'] or 'none'}"]
    elif mode == "paths":
        lines += paths_table(res)
    else:
        lines += [f"CUDA-graph replay, batch 32, fp16 (forward after a read flush of L2, forward + backward "
                  f"with do_bench); {res['rounds']} rounds, us.", "",
                  "| C,H,W | fwd median | fwd min | fwd+bwd median | fwd+bwd min |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['fwd']['median']:.1f} | {v['fwd']['min']:.1f} | {v['fwdbwd']['median']:.1f} | "
                  f"{v['fwdbwd']['min']:.1f} |" for k, v in res["times_us"].items()]
    return "\n".join(lines) + "\n"


def paths_table(res: dict) -> list[str]:
    lines = [f"Forward, CUDA-graph replay, fp16, no grad; small-map path (2 launches) vs five launches, "
             f"{res['rounds']} interleaved rounds, us (median / min). 'clean': after a read flush of L2; 'hot': "
             f"back to back, x in L2. Floor: 3 reads + 1 write of x at {res['copy_bw_GBps']:.0f} GB/s.", "",
             "| B,C,H,W | floor | small clean | five clean | small/floor | five/floor | speedup | small hot "
             "| five hot |" + "".join(f" {p} clean |" for p in res.get("variants", {})),
             "|---|---|---|---|---|---|---|---|---|" + "---|" * len(res.get("variants", {}))]
    for k, r in res["paths"].items():
        s, f = r["small"], r["five"]
        lines.append(f"| {k} | {r['floor_us']:.1f} | {s['clean']['median']:.1f} / {s['clean']['min']:.1f} "
                     f"| {f['clean']['median']:.1f} / {f['clean']['min']:.1f} | {s['clean']['x_floor']:.2f}x "
                     f"| {f['clean']['x_floor']:.2f}x | {r['speedup']['clean']:.2f}x "
                     f"| {s['hot']['median']:.1f} | {f['hot']['median']:.1f} |"
                     + "".join(f" {r[p]['clean']['median']:.1f} / {r[p]['clean']['min']:.1f} |"
                               for p in res.get("variants", {})))
    if res.get("variants"):
        lines += ["", "Variants (TUNE overrides of the small path): "
                  + "; ".join(f"{p}: {v}" for p, v in res["variants"].items())]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("sizes", "parity", "time", "paths", "small-parity"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tag", default="")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 1], help="paths: batch sizes")
    ap.add_argument("--small-variants", nargs="*", default=list(SMALL_VARIANTS),
                    help="paths: small-path tile variants timed too, NAME:key=value,... (TUNE entries)")
    ap.add_argument("--val-shapes", type=int, default=len(VAL_SHAPES), help="sizes: the first N validation shapes")
    ap.add_argument("--jobs", type=int, default=6, help="parity/time: processes that compile the kernels first")
    ap.add_argument("--shard", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--warm-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        log("no CUDA device: nothing to measure")
        return 2
    import triton

    import scsa_yolo

    meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "triton": triton.__version__,
            "scsa_yolo": str(Path(scsa_yolo.__file__).parent), "tag": args.tag or "-",
            "triton_cache_dir": os.environ.get("TRITON_CACHE_DIR"), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    log(f"{meta['device']} torch {meta['torch']} triton {meta['triton']} scsa_yolo from {meta['scsa_yolo']}")
    modes = {"sizes": mode_sizes, "parity": mode_parity, "time": mode_time, "paths": mode_paths,
             "small-parity": mode_small_parity}
    if args.warm_only:
        modes[args.mode](args)
        return 0
    if args.mode != "sizes" and args.jobs > 1:
        precompile(args)
    res = modes[args.mode](args)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"scsa_size_buckets_{args.mode}" + (f"_{args.tag}" if args.tag else "")
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, **res}, indent=1, default=str))
    text = markdown(args.mode, res, meta)
    (args.out / f"{stem}.md").write_text(text)
    print(text)
    return 1 if res.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
