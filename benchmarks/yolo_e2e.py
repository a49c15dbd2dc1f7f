"""End-to-end cost of SCSA in YOLO: inference throughput and training step time.

    PYTHONPATH=. python3 benchmarks/yolo_e2e.py --out results/perf [--models yolov8n,yolov8s,yolo11n]
        [--compile] [--reference] [--kernels N] [--host N]

Models are built from YAML (no weights are downloaded): per base, the plain ``{base}.yaml``
and ``{base}-scsa.yaml`` (SCSA in the default placement, from :mod:`scsa_yolo.integration`)
with the fused kernels (``impl='fast'``); ``--reference`` adds the SCSA model with
``impl='reference'``. ``--compile`` compiles every model (both sides) the way Ultralytics'
``compile=True`` does (``ultralytics.utils.torch_utils.attempt_compile``, mode "default"):
the training step compiles the network's forward on the images and computes the loss outside
it, as Ultralytics' trainer does with ``compile=True``. ``--what train`` times the training
step only (a compiled run then compiles one graph per model, not two). With ``--prime`` the
inference models run one eager batch before they are compiled: Ultralytics' inference head
computes its anchors from the stride tensor (``make_anchors``: a graph break) only when the
map sizes change, so a model primed at the timed shape compiles into one graph instead of one
per layer (Dynamo gives up on the layer loop after the break; on the CPU, YOLO11n: 21 graphs,
with SCSA 24; primed: 1 each). Ultralytics compiles before any eager call, so unprimed is
what ``yolo val compile=True`` runs.

* Inference: fused Conv+BN, fp16, batch ``--batch`` (32) at 640x640, ``torch.no_grad``;
  images/s from the median batch time (``triton.testing.do_bench`` when available, else
  CUDA events).
* Training step: batch ``--train-batch`` (16), float32 parameters, fp16 autocast with a
  GradScaler, the model's own detection loss on random images with random boxes (4 per
  image), backward and an SGD step.

``--host N`` measures the host side of every step: how long the host takes to issue one step
when the GPU is idle at its start (so the launch queue never pushes back), and, per base, the N
operators and the N Python functions whose host time differs most between plain and SCSA
(``DIR/yolo_e2e{--tag}_host.md``). A compiled model that keeps the GPU busy leaves no slack, so
host time that SCSA adds shows up as GPU idle time in the batch time.

Prints a Markdown table and writes ``DIR/yolo_e2e{--tag}.md`` and ``.json``. Needs
ultralytics; without it (or without CUDA, unless ``--device cpu`` is given for a smoke
run) it says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median_ms(fn, device: torch.device, warmup: int = 5, reps: int = 30) -> float:
    """Median milliseconds of fn()."""
    if device.type == "cuda":
        try:
            import triton.testing

            return triton.testing.do_bench(fn, warmup=100, rep=max(200, reps * 10), return_mode="median")
        except ImportError:
            pass
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def ensure_cfg_package() -> None:
    """Make ``scsa_yolo.cfg`` importable from a source checkout that was not pip-installed
    (e.g. ``PYTHONPATH=.`` on a GPU machine): the model YAMLs live in ``cfg/`` at the
    repository root and are packaged as ``scsa_yolo.cfg`` only by an install."""
    import importlib.util

    try:
        import scsa_yolo.cfg  # noqa: F401
        return
    except ModuleNotFoundError:
        pass
    repo_cfg = Path(__file__).resolve().parents[1] / "cfg"
    spec = importlib.util.spec_from_file_location(
        "scsa_yolo.cfg", repo_cfg / "__init__.py", submodule_search_locations=[str(repo_cfg)])
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"scsa_yolo.cfg: not installed and {repo_cfg} has no __init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["scsa_yolo.cfg"] = module
    spec.loader.exec_module(module)


def build(yaml_name: str, device: torch.device):
    """A DetectionModel from a YAML name (ultralytics resolves the scale from the name)."""
    from ultralytics import YOLO

    return YOLO(yaml_name, task="detect").model.to(device)


def set_impl(model, impl: str) -> int:
    """Set every SCSA layer's impl ("fast-unfolded": fast, with the residual placements'
    expression computed outside the kernel, as before it was folded into the output pass);
    returns how many layers there are."""
    from scsa_yolo.nn.scsa import SCSA

    layers = [m for m in model.modules() if isinstance(m, SCSA)]
    for layer in layers:
        layer.impl = "fast" if impl == "fast-unfolded" else impl
        layer.fold_residual = impl != "fast-unfolded"
    return len(layers)


def dummy_batch(batch: int, imgsz: int, device: torch.device, boxes_per_image: int = 4) -> dict:
    """Random images and random normalised xywh boxes in Ultralytics' batch format."""
    g = torch.Generator().manual_seed(0)
    n = batch * boxes_per_image
    xy = torch.rand(n, 2, generator=g) * 0.6 + 0.2
    wh = torch.rand(n, 2, generator=g) * 0.3 + 0.05
    return {
        "img": torch.rand(batch, 3, imgsz, imgsz, generator=g).to(device),
        "batch_idx": torch.arange(batch).repeat_interleave(boxes_per_image).float().to(device),
        "cls": torch.randint(0, 80, (n, 1), generator=g).float().to(device),
        "bboxes": torch.cat([xy, wh], 1).to(device),
    }


def compiled_graphs() -> int:
    """Graphs Dynamo has compiled in this process so far (a model timed after another is
    counted for the graphs it could not reuse from it). Ultralytics' inference head
    breaks the graph (``make_anchors`` reads the stride tensor as a number), after which
    Dynamo runs the model's layer loop eagerly and compiles each layer as its own graph:
    every added layer is another graph call per batch."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def maybe_compile(model, args, device):
    """The model as Ultralytics' ``compile=True`` compiles it, or unchanged."""
    if not args.compile:
        return model
    from ultralytics.utils.torch_utils import attempt_compile

    return attempt_compile(model, device=device, imgsz=args.imgsz, mode="default")


def inference_step(yaml_name: str, impl: str | None, args, device):
    """(step fn, SCSA layer count): one fused fp16 no-grad forward of a batch."""
    model = build(yaml_name, device)
    n_scsa = set_impl(model, impl) if impl else 0
    model = model.fuse().eval()
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    x = torch.rand(args.batch, 3, args.imgsz, args.imgsz, device=device, dtype=dtype)
    model = model.to(dtype)
    if args.prime and args.compile:  # fills the head's anchor cache for this shape: one graph
        with torch.no_grad():
            model(x)
    model = maybe_compile(model, args, device)

    def step():
        with torch.no_grad():
            model(x)

    return step, n_scsa


def train_channels_last(layout: str, device: torch.device) -> bool:
    """Whether the training step runs the model in channels-last memory: ``trainer`` as
    Ultralytics' trainer does on ``device`` by default (channels-last on a GPU outside
    Windows), or ``channels-last`` / ``contiguous``. The fused kernels read either layout;
    they are compiled and timed per layout."""
    if layout == "trainer":
        from scsa_yolo.integration.training import trains_channels_last

        return trains_channels_last(device)
    return layout == "channels-last"


def training_step(yaml_name: str, impl: str | None, args, device):
    """(step fn, SCSA layer count): one AMP training step with the detection loss."""
    from ultralytics.cfg import get_cfg

    model = build(yaml_name, device).train()
    if train_channels_last(args.train_layout, device):
        model = model.to(memory_format=torch.channels_last)
    n_scsa = set_impl(model, impl) if impl else 0
    model.args = get_cfg()
    for p in model.parameters():
        p.requires_grad_(True)
    batch = dummy_batch(args.train_batch, args.imgsz, device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    compiled = maybe_compile(model, args, device)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            if args.compile:  # as Ultralytics' trainer: only the network is compiled, the loss runs eagerly
                loss, _ = model.loss(batch, compiled(batch["img"]))
            else:
                loss, _ = model(batch)  # a batch dict: DetectionModel.forward returns the loss
        scaler.scale(loss.sum()).backward()
        scaler.step(opt)
        scaler.update()

    return step, n_scsa


def kernel_times(step, device: torch.device, steps: int = 3) -> dict[str, float]:
    """Microseconds per kernel name in one step (mean over ``steps`` profiled steps): GPU
    kernels on CUDA; on a CPU (a rehearsal) the operators' own CPU time."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    step()  # compiled graphs and lazy kernels are built before the profile
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    times: dict[str, float] = {}
    for event in prof.key_averages():
        if cuda and event.device_type != DeviceType.CUDA:
            continue
        total = event.device_time_total if cuda else event.self_cpu_time_total
        if total > 0:
            times[event.key] = times.get(event.key, 0.0) + total / steps
    return times


def host_times(step, device: torch.device, steps: int = 20) -> dict:
    """The host side of one step: ``issue_ms`` (host milliseconds to issue one step, the GPU
    idle at its start, one figure per step), ``ops`` (self CPU microseconds per operator per
    step, 3 profiled steps) and ``py`` (Python functions' own seconds per step under cProfile,
    3 steps, keyed ``file:line(function)``)."""
    import cProfile
    import pstats

    from torch.profiler import ProfilerActivity, profile

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    step()  # compiled graphs and lazy kernels are built first
    issue = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        step()
        issue.append((time.perf_counter() - t0) * 1e3)
    sync()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
        sync()
    ops = {e.key: e.self_cpu_time_total / 3 for e in prof.key_averages() if e.self_cpu_time_total > 0}
    prof_py = cProfile.Profile()
    prof_py.enable()
    for _ in range(3):
        step()
    sync()
    prof_py.disable()
    stats = pstats.Stats(prof_py).stats  # (file, line, name) -> (calls, prim calls, tottime, cumtime, callers)
    py = {f"{Path(f).name}:{line}({name})": v[2] / 3 for (f, line, name), v in stats.items() if v[2] > 0}
    return {"issue_ms": issue, "ops": ops, "py": py}


def host_diff_markdown(pairs: list[tuple[str, str, dict, dict]], top: int) -> str:
    """Per (base, what): the host issue time of plain and SCSA, then the operators and the
    Python functions whose host time differs most; ``pairs`` holds (base, what, plain
    :func:`host_times`, SCSA :func:`host_times`)."""
    def mid(v: list[float]) -> float:
        return sorted(v)[len(v) // 2]

    lines = ["# Host time per step, plain vs SCSA", "",
             "Issue time: host milliseconds to issue one step with the GPU idle at its start (median / min "
             "over the steps). Operators: self CPU time per step (torch.profiler, 3 steps). Python: own "
             "time per function per step (cProfile, 3 steps; the profiler slows Python, so compare rows, "
             "not totals with the issue time).", ""]
    for base, what, plain, scsa in pairs:
        a, b = plain["issue_ms"], scsa["issue_ms"]
        lines += [f"## {base}, {what}", "",
                  f"Issue time: plain {mid(a):.3f} / {min(a):.3f} ms, SCSA {mid(b):.3f} / {min(b):.3f} ms, "
                  f"SCSA - plain {mid(b) - mid(a):+.3f} ms (medians).", ""]
        for label, key, scale, unit in (("operator", "ops", 1.0, "us"), ("Python function", "py", 1e6, "us")):
            p, s = plain[key], scsa[key]
            diffs = sorted(set(p) | set(s), key=lambda k: -abs(s.get(k, 0.0) - p.get(k, 0.0)))
            lines += [f"| {label} | plain {unit} | SCSA {unit} | SCSA - plain |", "|---|---|---|---|"]
            for name in diffs[:top]:
                x, y = p.get(name, 0.0) * scale, s.get(name, 0.0) * scale
                shown = name if len(name) <= 90 else name[:87] + "..."
                lines.append(f"| `{shown}` | {x:.1f} | {y:.1f} | {y - x:+.1f} |")
            x, y = sum(p.values()) * scale, sum(s.values()) * scale
            lines += [f"| all {len(p)} / {len(s)} | {x:.1f} | {y:.1f} | {y - x:+.1f} |", ""]
    return "\n".join(lines) + "\n"


def kernel_diff_markdown(pairs: list[tuple[str, str, dict, dict]], top: int, unit: str) -> str:
    """Per (base, what): the kernels whose time differs most between the plain and the SCSA
    model, then the totals; ``pairs`` holds (base, what, plain times, SCSA times)."""
    lines = [f"# Per-kernel time, plain vs SCSA ({unit} per step, mean of 3 profiled steps)", ""]
    for base, what, plain, scsa in pairs:
        diffs = sorted(set(plain) | set(scsa), key=lambda k: -abs(scsa.get(k, 0.0) - plain.get(k, 0.0)))
        lines += [f"## {base}, {what}", "", "| kernel | plain | SCSA | SCSA - plain |", "|---|---|---|---|"]
        for name in diffs[:top]:
            a, b = plain.get(name, 0.0), scsa.get(name, 0.0)
            shown = name if len(name) <= 90 else name[:87] + "..."
            lines.append(f"| `{shown}` | {a:.1f} | {b:.1f} | {b - a:+.1f} |")
        a, b = sum(plain.values()), sum(scsa.values())
        lines += [f"| all {len(plain)} / {len(scsa)} kernels | {a:.1f} | {b:.1f} | {b - a:+.1f} |", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=32, help="inference batch")
    ap.add_argument("--train-batch", type=int, default=16, help="training-step batch")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--models", default="yolov8n", help="comma list of bases; each is timed plain and with SCSA")
    ap.add_argument("--reference", action="store_true", help="also time the SCSA models with impl='reference'")
    ap.add_argument("--unfolded", action="store_true",
                    help="also time the SCSA models with the residual computed outside the fused kernel "
                         "(impl 'fast-unfolded'), interleaved with the folded ones")
    ap.add_argument("--compile", action="store_true", help="torch.compile every model as Ultralytics' compile=True")
    ap.add_argument("--prime", action="store_true",
                    help="with --compile: one eager inference batch before compiling (the model then compiles "
                         "into one graph; unprimed, as Ultralytics compiles, layer by layer)")
    ap.add_argument("--tag", default="", help="suffix of the output file names")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds over all models (median reported)")
    ap.add_argument("--what", choices=("both", "infer", "train"), default="both", help="which steps to time")
    ap.add_argument("--train-layout", choices=("trainer", "channels-last", "contiguous"), default="trainer",
                    help="memory layout of the training step's model (trainer: as Ultralytics' trainer on this "
                         "device, channels-last on a GPU; records before session 15 timed contiguous models)")
    ap.add_argument("--kernels", type=int, default=0, metavar="N",
                    help="also profile 3 steps of every model and write, per base, the N kernels whose "
                         "time differs most between plain and SCSA (DIR/yolo_e2e{--tag}_kernels.md)")
    ap.add_argument("--host", type=int, default=0, metavar="N",
                    help="also measure every step's host issue time and write, per base, the N operators and "
                         "Python functions whose host time differs most (DIR/yolo_e2e{--tag}_host.md)")
    args = ap.parse_args(argv)
    if args.host < 0:
        ap.error(f"--host {args.host}: give how many operators and functions to list per base (0: none)")
    if args.prime and not args.compile:
        ap.error("--prime primes the models for torch.compile: give it with --compile")
    if args.kernels < 0:
        ap.error(f"--kernels {args.kernels}: give how many kernels to list per base (0: no profile)")

    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        log("ultralytics is not installed: skipping the end-to-end benchmark")
        return 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        log("no CUDA device: this benchmark times the GPU; use --device cpu for a smoke run")
        return 2
    ensure_cfg_package()
    from scsa_yolo.integration import register

    register()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for base in args.models.split(","):
        runs += [(f"{base}.yaml", None), (f"{base}-scsa.yaml", "fast")]
        if args.unfolded:
            runs.append((f"{base}-scsa.yaml", "fast-unfolded"))
        if args.reference:
            runs.append((f"{base}-scsa.yaml", "reference"))
    # Every model is built once; the timings then go round the models `rounds` times and
    # each figure is the median over rounds: the host-bound training step drifts by 10-20%
    # over a minute on the lent machine, and interleaving keeps that drift out of the ratios.
    rows, steps = [], {}
    for yaml_name, impl in runs:
        row = {"model": yaml_name, "impl": impl or "-"}
        for what, make in (("infer", inference_step), ("train", training_step)):
            if args.what not in ("both", what):
                row[what] = {"error": "not timed (--what)"}
                continue
            try:
                steps[(len(rows), what)], n_scsa = make(yaml_name, impl, args, device)
                row[what] = {"rounds_ms": [], "scsa_layers": n_scsa}
            except Exception as exc:  # keep the others; the failure is in the table
                row[what] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                log(f"{yaml_name} {impl or ''} {what}: FAILED {row[what]['error']}")
        rows.append(row)
    for rnd in range(args.rounds):
        for (i, what), step in steps.items():
            cell = rows[i][what]
            if "error" in cell:
                continue
            try:
                if rnd == 0 and args.compile:  # how many graphs Dynamo cut this model into
                    before = compiled_graphs()
                    step()
                    cell["graphs"] = compiled_graphs() - before
                cell["rounds_ms"].append(median_ms(step, device))
                log(f"round {rnd}: {rows[i]['model']} {rows[i]['impl']} {what}: {cell['rounds_ms'][-1]:.2f} ms")
            except Exception as exc:
                cell["error"] = f"{type(exc).__name__}: {exc}"[:300]
    for row in rows:
        for what in ("infer", "train"):
            cell = row[what]
            if cell.get("rounds_ms") and "error" not in cell:
                cell["ms"] = sorted(cell["rounds_ms"])[len(cell["rounds_ms"]) // 2]
                if what == "infer":
                    cell["imgs_per_s"] = args.batch / (cell["ms"] * 1e-3)

    for row in rows:
        for what in ("infer", "train"):
            if row[what].get("rounds_ms") and "error" not in row[what]:
                row[what]["min_ms"] = min(row[what]["rounds_ms"])
    if args.compile:  # which SCSA path ran inside the compiled graphs: the custom ops, or not
        from torch.profiler import ProfilerActivity, profile

        for (i, what), step in steps.items():
            if rows[i]["impl"] == "-" or "error" in rows[i][what]:
                continue
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
            ops = sorted({e.key for e in prof.key_averages() if "scsa" in e.key.lower()})
            rows[i][what]["scsa_events"] = {e.key: e.count for e in prof.key_averages() if e.key in ops}
            log(f"{rows[i]['model']} {what}: profiler events with 'scsa': {rows[i][what]['scsa_events']}")
    if args.kernels:  # where SCSA's extra time goes, kernel by kernel (e.g. layout copies under compile)
        pairs, plain_of = [], {}
        for (i, what), step in steps.items():
            if "error" in rows[i][what]:
                continue
            times = kernel_times(step, device)
            base = rows[i]["model"].removesuffix(".yaml").removesuffix("-scsa")
            if rows[i]["impl"] == "-":
                plain_of[(base, what)] = times
            elif (base, what) in plain_of:
                pairs.append((base, f"{what} ({rows[i]['impl']})", plain_of[(base, what)], times))
        unit = "GPU us" if device.type == "cuda" else "CPU us (operators' self time)"
        (args.out / f"yolo_e2e{args.tag}_kernels.md").write_text(kernel_diff_markdown(pairs, args.kernels, unit))
    if args.host:  # where SCSA's host time goes (a busy compiled graph turns it into GPU idle time)
        pairs, plain_of = [], {}
        for (i, what), step in steps.items():
            if "error" in rows[i][what]:
                continue
            host = host_times(step, device)
            rows[i][what]["host_issue_ms"] = host["issue_ms"]
            base = rows[i]["model"].removesuffix(".yaml").removesuffix("-scsa")
            if rows[i]["impl"] == "-":
                plain_of[(base, what)] = host
            elif (base, what) in plain_of:
                pairs.append((base, f"{what} ({rows[i]['impl']})", plain_of[(base, what)], host))
        (args.out / f"yolo_e2e{args.tag}_host.md").write_text(host_diff_markdown(pairs, args.host))
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    mode = "torch.compile (Ultralytics attempt_compile, mode default) on every model" if args.compile else "eager"
    if args.compile and args.prime:
        mode += ", inference models primed with one eager batch (one graph each)"
    lines = [
        f"# Plain vs SCSA ({args.models}), {mode}",
        "",
        f"Device: {dev_name}; torch {torch.__version__}. Inference: fused, fp16, no_grad, batch {args.batch}, "
        f"{args.imgsz}x{args.imgsz}. Training step: batch {args.train_batch}, fp32 parameters + fp16 autocast + "
        "GradScaler, detection loss on random boxes, SGD step, "
        f"{'channels-last' if train_channels_last(args.train_layout, device) else 'contiguous'} model. "
        f"Each figure: the median (and minimum) over {args.rounds} rounds, each round timing every model in "
        "turn (median batch time per round); 'vs plain' compares with the plain model of the same base.",
        "",
        "| model | SCSA impl | infer ms/batch (median / min) | imgs/s | % of plain (median / min) "
        "| train step ms (median / min) | vs plain (median / min) |",
        "|---|---|---|---|---|---|---|",
    ]
    plain: dict = {}
    for r in rows:
        if r["impl"] == "-":
            plain = r
        inf, tr, p_inf, p_tr = r["infer"], r["train"], plain.get("infer", {}), plain.get("train", {})
        inf_cells = (f"{inf['ms']:.2f} / {inf['min_ms']:.2f} | {inf['imgs_per_s']:.0f} | "
                     f"{100 * p_inf['ms'] / inf['ms']:.1f}% / {100 * p_inf['min_ms'] / inf['min_ms']:.1f}%"
                     if "ms" in inf and "ms" in p_inf else f"{inf.get('error', '?')} | - | -")
        tr_cells = (f"{tr['ms']:.1f} / {tr['min_ms']:.1f} | {100 * (tr['ms'] / p_tr['ms'] - 1):+.1f}% / "
                    f"{100 * (tr['min_ms'] / p_tr['min_ms'] - 1):+.1f}%"
                    if "ms" in tr and "ms" in p_tr else f"{tr.get('error', '?')} | -")
        lines.append(f"| {r['model']} | {r['impl']} | {inf_cells} | {tr_cells} |")
    lines += ["", "Per round (ms, infer / train):", ""]
    for r in rows:
        per = [" / ".join(f"{v:.2f}" for v in r[w].get("rounds_ms", [])) for w in ("infer", "train")]
        lines.append(f"- {r['model']} ({r['impl']}): infer {per[0]}; train {per[1]}")
        for w in ("infer", "train"):
            if "graphs" in r[w]:
                lines.append(f"  - {w}: {r[w]['graphs']} graph(s) compiled for it (not counting graphs reused "
                             "from a model timed before it)")
        for w in ("infer", "train"):
            if "scsa_events" in r[w]:
                lines.append(f"  - {w}, one profiled step, events named *scsa*: {r[w]['scsa_events'] or 'none'}")
    text = "\n".join(lines) + "\n"
    meta = {"device": dev_name, "torch": torch.__version__, "batch": args.batch, "train_batch": args.train_batch,
            "imgsz": args.imgsz, "compile": args.compile, "prime": args.prime, "rounds": args.rounds,
            "train_channels_last": train_channels_last(args.train_layout, device),
            "commit": os.environ.get("SCSA_YOLO_GIT_COMMIT", ""), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    for name, content in ((f"yolo_e2e{args.tag}.json", json.dumps({"meta": meta, "rows": rows}, indent=1)),
                          (f"yolo_e2e{args.tag}.md", text)):
        tmp = args.out / (name + ".tmp")
        tmp.write_text(content)
        os.replace(tmp, args.out / name)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
