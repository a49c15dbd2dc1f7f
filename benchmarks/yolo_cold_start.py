"""What a fresh machine pays for the fused SCSA kernels in a short stock training run
(issue 28 item 2), cold and warm, SCSA against plain.

It writes a small detection set whose validation images have mixed aspect ratios (so
Ultralytics' rectangular validation batches come in several shapes, as on VisDrone, COCO or
FLIR), then trains YOLOv8n and YOLOv8n-SCSA with Ultralytics' trainer (``YOLO(...).train``,
what ``yolo train`` runs; AMP on, validation after every epoch), each run a fresh process:

* ``cold``: an empty ``TRITON_CACHE_DIR`` (and Inductor cache): everything compiles;
* ``warm``: the cache folder the cold run of the same model and tree filled;
* ``warmed``: (with ``--warmup-jobs``) ``scsa-yolo warmup`` into an empty folder first
  (timed on its own), then the run;
* ``old cold``: (with ``--old-site``) the SCSA run of another scsa-yolo installation, cold;
* ``cold, compiled at first launch``: (with ``--compare-ahead``) the SCSA run cold with
  ``SCSA_YOLO_COMPILE_AHEAD=0``, in each round after the default SCSA cold run (whose trainer
  queues the job's kernels at setup, to compile in background threads), and a warm one after
  each warm SCSA run (what the setup's planning costs when every kernel is cached).

Per run: the wall seconds of the process (start-up and imports included), of ``train()``
alone, our kernels in the cache folder afterwards, ``scsa_fast.kernel_stats()`` and the
validation batch shapes. Rounds interleave plain and SCSA.

    PYTHONPATH=SITE python3 benchmarks/yolo_cold_start.py --work /tmp/cold --out results/perf/cold_start
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

#: Validation image sizes (width, height): landscape and portrait photos, a wide drone frame
#: (VisDrone's 1360 x 765), a thermal frame (FLIR's 640 x 512), squares.
VAL_SIZES = ((640, 480), (480, 640), (1360, 765), (640, 512), (512, 640), (640, 360), (360, 640), (640, 640))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_dataset(root: Path, n_train: int, n_val: int, seed: int = 0) -> Path:
    """Images with coloured boxes (class = colour) and YOLO labels; returns the data YAML."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    colours = [(40, 40, 220), (60, 190, 40), (230, 80, 50)]
    for split, count in (("train", n_train), ("val", n_val)):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            w, h = VAL_SIZES[i % len(VAL_SIZES)] if split == "val" else (640, 640 - 32 * (i % 6))
            image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
            lines = []
            for _ in range(int(rng.integers(1, 5))):
                cls = int(rng.integers(0, len(colours)))
                bw, bh = int(rng.integers(w // 12, w // 3)), int(rng.integers(h // 12, h // 3))
                x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                cv2.rectangle(image, (x0, y0), (x0 + bw, y0 + bh), colours[cls], -1)
                lines.append(f"{cls} {(x0 + bw / 2) / w:.6f} {(y0 + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}")
            cv2.imwrite(str(root / split / "images" / f"{i:05d}.jpg"), image)
            (root / split / "labels" / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: train/images\nval: val/images\nnames:\n  0: red\n  1: green\n  2: blue\n")
    return yaml


def our_cached_kernels(folder: Path) -> int:
    return len(our_cache_entries(folder))


def our_cache_entries(folder: Path) -> set[str]:
    """Our kernels in a Triton cache folder, as ``<entry hash>/<kernel>.cubin`` paths."""
    if not folder.is_dir():
        return set()
    return {f"{p.parent.name}/{p.name}" for p in folder.rglob("*.cubin") if p.name.startswith(("fwd_", "bwd_"))}


def child(args) -> int:
    """One training run in this process; prints one JSON line."""
    t0 = time.perf_counter()
    from scsa_yolo.integration import register

    register()
    from ultralytics import YOLO

    model = YOLO(args.model)
    t1 = time.perf_counter()
    model.train(data=args.data, epochs=args.epochs, imgsz=640, batch=args.batch, device=0, workers=4,
                project=args.project, name=args.name, exist_ok=True, plots=False, verbose=False, amp=True)
    t2 = time.perf_counter()
    from scsa_yolo.nn import scsa_fast

    try:  # the 60 slowest first launches: after a warm-up, the variants it did not cover
        stats = scsa_fast.kernel_stats(slowest=60)
    except TypeError:  # an older tree (--old-site)
        stats = scsa_fast.kernel_stats() if hasattr(scsa_fast, "kernel_stats") else None
    shapes = None
    loader = getattr(model.trainer, "test_loader", None)
    if loader is not None and getattr(loader.dataset, "batch_shapes", None) is not None:
        shapes = sorted({tuple(int(v) for v in s) for s in loader.dataset.batch_shapes})
    print(json.dumps({"setup_s": t1 - t0, "train_s": t2 - t1, "stats": stats, "val_batch_shapes": shapes}))
    return 0


def run_child(args, model: str, cache: Path, name: str, site: str | None = None,
              env_extra: dict | None = None) -> dict:
    env = dict(os.environ, TRITON_CACHE_DIR=str(cache / "triton"), TORCHINDUCTOR_CACHE_DIR=str(cache / "inductor"),
               YOLO_OFFLINE="1", PYTHONUNBUFFERED="1", **(env_extra or {}))
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--child", "--model", model, "--data", str(args.data), "--epochs",
           str(args.epochs), "--batch", str(args.batch), "--project", str(args.work / "runs"), "--name", name]
    before = our_cache_entries(cache / "triton")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    wall = time.perf_counter() - start
    (args.out / f"{name}.log").write_text(proc.stdout[-20000:] + "\n--- stderr ---\n" + proc.stderr[-20000:])
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    res = json.loads(lines[-1]) if proc.returncode == 0 and lines else {"error": proc.stderr[-1500:]}
    after = our_cache_entries(cache / "triton")
    added = sorted(after - before)  # what this run compiled (a warm cache adds nothing)
    res.update(name=name, model=model, rc=proc.returncode, wall_s=wall, cache_kernels=len(after),
               new_cache_entries=len(added),
               new_cache_kernels=dict(Counter(entry.split("/")[1].removesuffix(".cubin") for entry in added)))
    log(f"{name}: rc {proc.returncode}, wall {wall:.1f} s, train {res.get('train_s', float('nan')):.1f} s, "
        f"kernels in cache {res['cache_kernels']}, stats {res.get('stats')}")
    return res


def run_warmup(args, cache: Path) -> dict:
    env = dict(os.environ, TRITON_CACHE_DIR=str(cache / "triton"), YOLO_OFFLINE="1")
    # Not `python -m`: run from a source checkout, that imports the checkout's scsa_yolo/ (no
    # cli package there) instead of the installed one; session 12's first GPU run lost it so.
    from scsa_yolo.child_process import cli_command

    cmd = cli_command("warmup", "--model", args.scsa_model, "--imgsz", "640", "--batch", str(args.batch),
                      "--jobs", str(args.warmup_jobs))
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    wall = time.perf_counter() - start
    (args.out / "warmup.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr[-20000:])
    log(f"warmup: rc {proc.returncode}, {wall:.1f} s\n{proc.stdout}")
    return {"name": "warmup", "rc": proc.returncode, "wall_s": wall, "cache_kernels": our_cached_kernels(cache / "triton"),
            "output": proc.stdout[-3000:]}


def markdown(meta: dict, runs: list[dict]) -> str:
    lines = ["# Cold start: stock training (YOLO(...).train) of YOLOv8n and YOLOv8n-SCSA", "",
             f"{meta['device']}, torch {meta['torch']}, triton {meta['triton']}, ultralytics {meta['ultralytics']}; "
             f"{meta['epochs']} epochs at 640 px, batch {meta['batch']}, {meta['n_train']} training and "
             f"{meta['n_val']} validation images (validation batches of {2 * meta['batch']} in "
             f"{meta['val_shapes']} rectangular shapes); {meta['date']}.", "",
             "| run | process wall s | train() s | our kernels in the cache | kernel variants (first-launch s) "
             "| compiled ahead: queued / launched / taken back / unpredicted, s waited, s planning |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        st = r.get("stats") or {}
        variants = f"{st.get('variants')} ({st.get('first_launch_s', 0):.1f})" if st else "-"
        train = f"{r['train_s']:.1f}" if "train_s" in r else "-"
        ahead = st.get("ahead") or {}
        ahead_cell = (f"{ahead['queued']} / {ahead['used']} / {ahead.get('taken_back', '-')} / "
                      f"{ahead['unpredicted']}, {ahead['wait_s']:.1f}, {ahead.get('plan_s', float('nan')):.1f}"
                      if ahead.get("queued") else "-")
        lines.append(f"| {r['name']} | {r['wall_s']:.1f} | {train} | {r['cache_kernels']} | {variants} "
                     f"| {ahead_cell} |")
    for r in runs:  # which kernels a run had to compile, by name (a warm cache: none)
        if r.get("new_cache_entries"):
            kinds = ", ".join(f"{name} x{n}" for name, n in sorted(r["new_cache_kernels"].items()))
            lines.append(f"\n{r['name']} compiled {r['new_cache_entries']} kernel(s): {kinds}.")
            slow = [v for v in (r.get("stats") or {}).get("slowest", []) if v[0] >= 0.05]
            if slow and "warmup" in r["name"]:  # the variants the warm-up missed, with their keys
                lines += ["", "| first launch s | kernel | constants | argument kinds |", "|---|---|---|---|"]
                lines += [f"| {sec} | {name} | {consts} | {' '.join(kinds)} |" for sec, name, consts, kinds in slow]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--project", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--name", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "scsa-cold-start")
    ap.add_argument("--out", type=Path, default=Path("runs/cold-start"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--n-train", type=int, default=64)
    ap.add_argument("--n-val", type=int, default=192)
    ap.add_argument("--rounds", type=int, default=1, help="rounds of (plain cold, SCSA cold, warm pairs)")
    ap.add_argument("--warm-repeats", type=int, default=1, help="warm (plain, SCSA) pairs per round")
    ap.add_argument("--skip-plain-warm", action="store_true", help="warm runs of SCSA only")
    ap.add_argument("--plain-model", default="yolov8n.yaml")
    ap.add_argument("--scsa-model", default="yolov8n-scsa.yaml")
    ap.add_argument("--old-site", default=None, help="PYTHONPATH entry of another scsa-yolo: its SCSA run, cold")
    ap.add_argument("--warmup-jobs", type=int, default=0, help="also: `scsa-yolo warmup --jobs N`, then the run")
    ap.add_argument("--compare-ahead", action="store_true",
                    help="also SCSA runs with SCSA_YOLO_COMPILE_AHEAD=0: a cold one each round, a warm one "
                         "after each warm SCSA run")
    ap.add_argument("--timeout", type=float, default=200, help="seconds per run")
    args = ap.parse_args()
    if args.child:
        return child(args)

    import torch
    import triton
    import ultralytics

    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    args.data = make_dataset(args.work / "data", args.n_train, args.n_val)
    meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "triton": triton.__version__,
            "ultralytics": ultralytics.__version__, "epochs": args.epochs, "batch": args.batch,
            "n_train": args.n_train, "n_val": args.n_val, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    caches = args.work / "caches"
    runs = []

    def save() -> None:
        shapes = next((r["val_batch_shapes"] for r in runs if r.get("val_batch_shapes")), None)
        meta["val_shapes"] = len(shapes) if shapes else "?"
        meta["val_batch_shapes"] = shapes
        (args.out / "yolo_cold_start.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
        (args.out / "yolo_cold_start.md").write_text(markdown(meta, runs))

    for r in range(1, args.rounds + 1):
        plain_cache, scsa_cache = caches / f"plain_{r}", caches / f"scsa_{r}"
        runs.append(run_child(args, args.plain_model, plain_cache, f"plain_cold_r{r}"))
        runs.append(run_child(args, args.scsa_model, scsa_cache, f"scsa_cold_r{r}"))
        if args.compare_ahead:
            runs.append(run_child(args, args.scsa_model, caches / f"scsa_noahead_{r}", f"scsa_cold_noahead_r{r}",
                                  env_extra={"SCSA_YOLO_COMPILE_AHEAD": "0"}))
        for k in range(1, args.warm_repeats + 1):
            if not args.skip_plain_warm:  # plain YOLOv8n compiles nothing in eager training
                runs.append(run_child(args, args.plain_model, plain_cache, f"plain_warm_r{r}_{k}"))
            runs.append(run_child(args, args.scsa_model, scsa_cache, f"scsa_warm_r{r}_{k}"))
            if args.compare_ahead:  # what planning ahead costs a job whose kernels are all cached
                runs.append(run_child(args, args.scsa_model, scsa_cache, f"scsa_warm_noahead_r{r}_{k}",
                                      env_extra={"SCSA_YOLO_COMPILE_AHEAD": "0"}))
        save()
    if args.warmup_jobs:
        cache = caches / "warmed"
        runs.append(run_warmup(args, cache))
        runs.append(run_child(args, args.scsa_model, cache, "scsa_after_warmup"))
        save()
    if args.old_site:
        runs.append(run_child(args, args.scsa_model, caches / "old", "scsa_cold_old_tree", site=args.old_site))
        save()
    print(markdown(meta, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
