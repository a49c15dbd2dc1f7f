"""Which SCSA path a real Ultralytics ``compile=True`` training runs (issue 15, "done when"):
trains ``--model`` with ``YOLO(model).train(compile=True, ...)`` (the trainer that
``yolo train ... compile=True`` runs) and profiles a few training batches once the graphs are
compiled (torch.profiler, CUDA activity). Writes ``DIR/yolo_train_compile_profile{--tag}.txt``:

- per profiled batch, the calls of the custom operators (``scsa_yolo::fused_forward`` /
  ``fused_backward``) and the launches of the fused Triton kernels (``fwd_*_kernel``,
  ``bwd_*_kernel``), against the number of SCSA layers in the model;
- the GPU kernels by total device time (the top of the table);
- the seconds per training batch once compiled (median and minimum, batch start to start).

    python3 benchmarks/yolo_train_compile_profile.py --data DATA.yaml --model yolov8n-scsa.yaml \
        --out results/perf [--mode default] [--epochs 1] [--imgsz 640] [--batch 16]

Needs scsa-yolo installed (its start-up hook registers the attention rows) and a GPU.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import torch

FUSED_KERNEL = re.compile(r"^(fwd|bwd)_\w+_kernel$")


def fused_event_counts(events) -> dict[str, int]:
    """Profiler events of the fused path by name: the custom operators (``scsa_yolo::...``)
    and the Triton kernels (``fwd_*_kernel``, ``bwd_*_kernel``); empty for the reference."""
    counts: dict[str, int] = {}
    for e in events:
        if e.name.startswith("scsa_yolo::") or FUSED_KERNEL.match(e.name):
            counts[e.name] = counts.get(e.name, 0) + 1
    return counts


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class BatchProfiler:
    """Ultralytics callbacks: profile training batches [first, first + count) and time every
    batch from one start to the next."""

    def __init__(self, first: int, count: int):
        self.first, self.count = first, count
        self.batch = -1
        self.starts: list[float] = []
        self.prof: torch.profiler.profile | None = None
        self.per_batch: list[dict[str, int]] = []

    def on_train_batch_start(self, trainer) -> None:
        sync()
        self.starts.append(time.perf_counter())
        self.batch += 1
        if self.batch == self.first:
            self.prof = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU]
                + ([torch.profiler.ProfilerActivity.CUDA] if torch.cuda.is_available() else []))
            self.prof.start()

    def on_train_batch_end(self, trainer) -> None:
        if self.prof is not None and self.batch == self.first + self.count - 1:
            sync()
            self.prof.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="yolov8n-scsa.yaml")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tag", default="")
    ap.add_argument("--mode", default="default", help="Ultralytics' compile= value (True means 'default')")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--first", type=int, default=8, help="first profiled batch (after the compile)")
    ap.add_argument("--count", type=int, default=3, help="profiled batches")
    ap.add_argument("--device", default="0", help="'cpu' for a smoke run of this script")
    args = ap.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        print("needs a CUDA GPU (or --device cpu for a smoke run)", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name() if args.device != "cpu" else "cpu"
    if not Path(args.data).is_file():
        ap.error(f"--data {args.data}: no such file (a dataset YAML, e.g. from `scsa-yolo data prepare synthetic`)")
    from ultralytics import YOLO

    try:
        model = YOLO(args.model)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        ap.error(f"--model {args.model}: {exc}")
    scsa_layers = sum(type(m).__name__ == "SCSA" for m in model.model.modules())
    prof = BatchProfiler(args.first, args.count)
    model.add_callback("on_train_batch_start", prof.on_train_batch_start)
    model.add_callback("on_train_batch_end", prof.on_train_batch_end)
    t0 = time.perf_counter()
    model.train(data=args.data, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, device=args.device, workers=4,
                compile=args.mode, plots=False, val=False, project="/tmp/scsa-compile-profile", name="run",
                exist_ok=True, verbose=False)
    wall = time.perf_counter() - t0
    if prof.prof is None:
        print(f"only {prof.batch + 1} training batches ran; lower --first", file=sys.stderr)
        return 1
    counts = fused_event_counts(prof.prof.events())
    gaps = [b - a for a, b in zip(prof.starts, prof.starts[1:])]
    steady = gaps[args.first + args.count:] or gaps[args.first:]
    lines = [
        f"# Ultralytics train, compile={args.mode!r}: {args.model}, {gpu}, "
        f"torch {torch.__version__}",
        f"data {args.data}, {args.epochs} epoch(s), imgsz {args.imgsz}, batch {args.batch}; "
        f"SCSA layers in the model: {scsa_layers}",
        f"whole train() call (compile, training, final validation): {wall:.1f} s",
        f"training batches: {len(prof.starts)}; batch 0 (compile) took {gaps[0] if gaps else float('nan'):.1f} s; "
        f"after batch {args.first + args.count}: median {statistics.median(steady) * 1e3:.1f} ms, "
        f"min {min(steady) * 1e3:.1f} ms per batch (start to start, {len(steady)} batches)",
        "",
        f"## Fused-path events in {args.count} profiled training batches (from batch {args.first})",
    ]
    lines += [f"{name}: {n} ({n / args.count:.1f} per batch)" for name, n in sorted(counts.items())] or [
        "none: no custom-operator call and no fused-kernel launch (the reference formulation ran)"]
    lines += ["", "## GPU kernels by total device time", "",
              prof.prof.key_averages().table(sort_by="device_time_total", row_limit=30, max_name_column_width=60)]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"yolo_train_compile_profile{args.tag}.txt"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:8 + len(counts)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
