"""Where the eager fused SCSA's host time goes (issue 15 item 2, issue 28 item 5): one layer,
forward + backward, at a shape whose GPU work is a few microseconds, so that every microsecond
measured is host work.

    PYTHONPATH=. python3 benchmarks/scsa_host_profile.py [--shape 2,256,20,20] [--rounds 5] [--out DIR]
    python3 benchmarks/scsa_host_profile.py --compare OLD_TREE NEW_TREE [--procs 3] [--out DIR]

Prints, per call:
  1. host time of several forms of the same step, timed in interleaved rounds (each round runs
     one block of calls of every form, so drift of the host falls on all forms alike), median
     and minimum over rounds:
       - ``fwd``: forward only, no grad;
       - ``fb-accum``: forward + backward with gradients accumulating (no zero_grad);
       - ``fb-none``: forward + backward after ``zero_grad(set_to_none=True)`` (how a
         trainer runs: AccumulateGrad steals the new gradient, no add kernel);
       - ``fb-conv``: a plain Conv2d 3x3 + BatchNorm2d of the same width, for scale;
       - ``empty5``: five ``torch.empty`` + five tiny ``add_`` kernels, a floor for five
         launches through PyTorch;
     then ``fb-noparams`` (only x requires grad: the Function's parameter bookkeeping idle), and
     ``fb-none / fb-conv`` per round: issue 28's target is 1.5 or less;
  2. cProfile of the ``fb-none`` step (top functions by own time);
  3. torch.profiler CPU totals of the same step (top ops by self CPU time).
``--quick`` skips 2 and 3. ``--compare OLD NEW`` runs the script in fresh processes, OLD and NEW
alternating (``--procs`` of each; each process imports scsa_yolo from its tree), and prints per
tree the median and minimum over all rounds of every form and of the fb-none / fb-conv ratio:
the ratio, taken within one round of one process, is what can be compared across processes.
Needs a CUDA device (``--device cpu`` runs the plumbing on the CPU, Triton's interpreter, for
a rehearsal; its figures mean nothing).
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
FORMS = ("fwd", "fb-accum", "fb-none", "fb-conv", "empty5")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def block_us(step, n: int, device: str) -> float:
    """Host microseconds per call of one block of ``n`` calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    per_call = (time.perf_counter() - t0) / n * 1e6
    sync(device)
    return per_call


def interleaved_us(steps: dict, rounds: int, n: int, warm: int, device: str) -> dict[str, list[float]]:
    """Per form, the per-call host microseconds of each round (every round runs each form once)."""
    for step in steps.values():
        for _ in range(warm):
            step()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(block_us(step, n, device))
    return times


def ratios(times: dict[str, list[float]]) -> list[float]:
    """fb-none / fb-conv of each round."""
    return [a / b for a, b in zip(times["fb-none"], times["fb-conv"])]


def summary_line(name: str, values: list[float], unit: str = "us") -> str:
    return f"{name:16s} median {statistics.median(values):8.2f} {unit}  min {min(values):8.2f} {unit}  ({len(values)} rounds)"


def profile_one_tree(args) -> dict:
    """Time the forms in this process (scsa_yolo from PYTHONPATH) and return the figures."""
    sys.path[:0] = [str(HERE)]
    from scsa_layer import make_layer

    device = args.device
    shape = tuple(int(s) for s in args.shape.split(","))
    lines: list[str] = []

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)
        lines.append(text)

    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (rehearsal: figures mean nothing)"
    say(f"# host time per call, {name}, torch {torch.__version__}, shape {shape}, "
        f"{args.rounds} interleaved rounds of {args.calls} calls per form")
    layer = make_layer(shape[1], seed=2).to(device)
    layer.impl = "fast"
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    x = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
    x_nograd = x.detach()
    dout = torch.randn(shape, device=device, dtype=dtype)
    conv = torch.nn.Sequential(torch.nn.Conv2d(shape[1], shape[1], 3, padding=1, bias=False),
                               torch.nn.BatchNorm2d(shape[1])).to(device)

    def autocast():
        return torch.autocast(device, dtype=dtype)

    def fwd():
        with torch.no_grad(), autocast():
            layer(x_nograd)

    def fb_accum():
        with autocast():
            out = layer(x)
        out.backward(dout)

    def fresh_grads_step(module):
        """Forward + backward after setting gradients to None, as a trainer's step does."""
        def step():
            module.zero_grad(set_to_none=True)
            x.grad = None
            with autocast():
                out = module(x)
            out.backward(dout.to(out.dtype))
        return step

    fb_none, fb_conv = fresh_grads_step(layer), fresh_grads_step(conv)
    small = torch.zeros(16, device=device)

    def empty5():
        for _ in range(5):
            torch.empty(1024, device=device)
            small.add_(1)

    steps = {"fwd": fwd, "fb-accum": fb_accum, "fb-none": fb_none, "fb-conv": fb_conv, "empty5": empty5}
    times = interleaved_us(steps, args.rounds, args.calls, args.warm, device)
    for p in layer.parameters():
        p.requires_grad_(False)
    times["fb-noparams"] = interleaved_us({"x": fb_none}, args.rounds, args.calls, args.warm, device)["x"]
    for p in layer.parameters():
        p.requires_grad_(True)
    for form, values in times.items():
        say(summary_line(form, values))
    say(summary_line("fb-none/fb-conv", ratios(times), unit="x "))

    if not args.quick:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.calls):
            fb_none()
        sync(device)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
        say(f"\n# cProfile, {args.calls} calls of fb-none, by own time\n" + buf.getvalue())

        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as tp:
            for _ in range(args.calls):
                fb_none()
            sync(device)
        say(f"# torch.profiler, {args.calls} calls of fb-none, by self CPU time\n"
            + tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"scsa_host_profile_{'x'.join(map(str, shape))}.txt").write_text("\n".join(lines) + "\n")
    import scsa_yolo

    return {"device": name, "shape": list(shape), "times_us": times, "ratio": ratios(times),
            "scsa_yolo": str(Path(scsa_yolo.__file__).parent)}


def compare_trees(args) -> int:
    """OLD and NEW alternating in fresh processes; per tree, all their rounds pooled."""
    trees = {"old": os.path.abspath(args.compare[0]), "new": os.path.abspath(args.compare[1])}
    pooled: dict[str, dict[str, list[float]]] = {tag: {} for tag in trees}
    passthrough = ["--shape", args.shape, "--rounds", str(args.rounds), "--calls", str(args.calls),
                   "--warm", str(args.warm), "--device", args.device, "--quick", "--json"]
    device_name = ""
    for proc in range(args.procs):
        for tag, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
            done = subprocess.run([sys.executable, __file__, *passthrough], capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"{tag} tree {tree}, process {proc + 1}: exit {done.returncode}\n{done.stderr[-3000:]}", file=sys.stderr)
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if not result["scsa_yolo"].startswith(tree):  # an installed copy shadowed the tree
                print(f"{tag} tree {tree}: scsa_yolo was imported from {result['scsa_yolo']}", file=sys.stderr)
                return 1
            device_name = result["device"]
            for form, values in result["times_us"].items():
                pooled[tag].setdefault(form, []).extend(values)
            pooled[tag].setdefault("fb-none/fb-conv", []).extend(result["ratio"])
    lines = [f"# host time per call, {device_name}, torch {torch.__version__}, shape {args.shape}: "
             f"{args.procs} processes per tree alternating (old, new, ...), {args.rounds} interleaved rounds "
             f"of {args.calls} calls per form each; median / min over all rounds of a tree",
             f"# old = {trees['old']}", f"# new = {trees['new']}", "",
             "| form | old median | old min | new median | new min | new / old (medians) |", "|---|---|---|---|---|---|"]
    for form in pooled["old"]:
        old, new = pooled["old"][form], pooled["new"][form]
        lines.append(f"| {form} | {statistics.median(old):.2f} | {min(old):.2f} | {statistics.median(new):.2f} | "
                     f"{min(new):.2f} | {statistics.median(new) / statistics.median(old):.3f} |")
    lines.append("")
    lines.append("Times in us per call; fb-none/fb-conv is a ratio taken within each round (issue 28 target: <= 1.5).")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        stem = Path(args.out) / f"scsa_host_compare_{args.shape.replace(',', 'x')}"
        stem.with_suffix(".md").write_text(text)
        stem.with_suffix(".json").write_text(json.dumps({"trees": trees, "pooled": pooled}, indent=1) + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="2,256,20,20")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (one block of each form per round)")
    ap.add_argument("--calls", type=int, default=200, help="calls per block")
    ap.add_argument("--warm", type=int, default=30, help="warm-up calls per form")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--quick", action="store_true", help="skip cProfile and torch.profiler")
    ap.add_argument("--json", action="store_true", help="print only the figures, as one JSON line")
    ap.add_argument("--compare", nargs=2, metavar=("OLD_TREE", "NEW_TREE"))
    ap.add_argument("--procs", type=int, default=3, help="with --compare: processes per tree")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    for tree in args.compare or ():
        if not (Path(tree) / "scsa_yolo").is_dir():
            ap.error(f"--compare {tree}: no scsa_yolo package folder there; give two source trees (checkouts)")
    if args.device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")
        os.environ.setdefault("SCSA_YOLO_TRITON_INTERPRET", "1")
    elif not torch.cuda.is_available():
        ap.error("no CUDA device: this measures a GPU host's time (--device cpu only rehearses the plumbing)")
    if args.compare:
        return compare_trees(args)
    result = profile_one_tree(args)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
