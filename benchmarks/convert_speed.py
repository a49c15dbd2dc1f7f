"""Conversion speed and peak memory of ``scsa-yolo data prepare`` on generated VisDrone data.

Generates a VisDrone2019-DET-style source tree (``images/*.jpg`` + ``annotations/*.txt``,
about 54 boxes per image like the real train split, with ignore regions, category 11,
trailing commas and boxes past the border), then converts it with
:func:`scsa_yolo.data.prepare.prepare_dataset` in a fresh subprocess per measurement, so
the peak resident memory (``ru_maxrss``) belongs to the conversion alone. A second run
under ``tracemalloc`` gives the peak Python heap (it slows Python down, so its time is not
reported).

    python benchmarks/convert_speed.py                 # 3000 images, Markdown table on stdout
    python benchmarks/convert_speed.py --images 500 --out results/perf/convert_speed.md
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SPLIT_FOLDER = "VisDrone2019-DET-train"


def generate(root: Path, images: int, width: int, height: int, boxes_per_image: int, seed: int = 0) -> int:
    """Write the source tree; returns the number of annotation lines."""
    rng = np.random.default_rng(seed)
    image_dir = root / SPLIT_FOLDER / "images"
    label_dir = root / SPLIT_FOLDER / "annotations"
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    lines_total = 0
    for i in range(images):
        name = f"{i:07d}_00000_d_{i:07d}"
        pixels = np.roll(base, i * 7, axis=1)  # distinct files, no per-image noise cost
        Image.fromarray(pixels).save(image_dir / f"{name}.jpg", quality=80)
        count = int(rng.poisson(boxes_per_image))
        x = rng.integers(0, width, count)
        y = rng.integers(0, height, count)
        w = rng.integers(2, 60, count)
        h = rng.integers(2, 60, count)
        category = rng.choice(12, count, p=[0.03, *([0.94 / 10] * 10), 0.03])
        score = (category != 0).astype(int)
        rows = [
            f"{x[k]},{y[k]},{w[k]},{h[k]},{score[k]},{category[k]},0,0" + ("," if k % 5 == 0 else "")
            for k in range(count)
        ]
        (label_dir / f"{name}.txt").write_text("\n".join(rows) + "\n")
        lines_total += count
    return lines_total


def _convert(source: str, root: str, link_mode: str, traced: bool, queue) -> None:
    """Child process: one conversion; reports seconds, peak RSS and (traced) peak heap."""
    import tracemalloc

    from scsa_yolo.data.prepare import prepare_dataset

    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    result = prepare_dataset(
        "visdrone", root=root, source=source, splits=["train"], link_mode=link_mode, progress=False,
        echo=lambda message: None,
    )
    seconds = time.perf_counter() - start
    heap = tracemalloc.get_traced_memory()[1] if traced else None
    split = result.manifest["splits"]["train"]
    queue.put(
        {
            "seconds": seconds,
            "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "heap_bytes": heap,
            "images": split["images"],
            "boxes": split["boxes"],
            "ignore": split["ignore_regions"],
            "events": len(result.manifest["events"]),
        }
    )


def measure(source: Path, workdir: Path, link_mode: str, traced: bool) -> dict:
    root = workdir / f"root-{link_mode}-{int(traced)}"
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_convert, args=(str(source), str(root), link_mode, traced, queue))
    process.start()
    outcome = queue.get()
    process.join()
    shutil.rmtree(root)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--boxes", type=int, default=54, help="mean boxes per image (VisDrone train: ~53)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per link mode (best is reported)")
    parser.add_argument("--machine", default=f"{os.cpu_count()}-core CPU sandbox, {platform.machine()}, Python {platform.python_version()}")
    parser.add_argument("--out", type=Path, help="also write the Markdown to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="convert-speed-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        lines = generate(workdir / "src", args.images, args.width, args.height, args.boxes)
        generated = time.perf_counter() - started
        rows = []
        for link_mode in ("hardlink", "copy"):
            runs = [measure(workdir / "src", workdir, link_mode, traced=False) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["seconds"])
            traced = measure(workdir / "src", workdir, link_mode, traced=True)
            rows.append((link_mode, best, max(r["rss_kib"] for r in runs), traced["heap_bytes"], [r["seconds"] for r in runs]))

    header = (
        f"# Conversion speed: `scsa-yolo data prepare visdrone` on generated VisDrone-style data\n\n"
        f"Machine: {args.machine}. Source: {args.images} JPEG images of {args.width}x{args.height}, "
        f"{lines} annotation lines ({lines / args.images:.1f} per image; ~3% category 0, ~3% category 11, "
        f"boxes past the border), generated in {generated:.1f} s.\n"
        f"Each figure is a fresh subprocess (peak RSS is the conversion's own); time is the best of "
        f"{args.repeats} runs; peak Python heap is from a separate run under tracemalloc.\n"
        f"Command: `python benchmarks/convert_speed.py --images {args.images}`\n\n"
    )
    table = [
        "| images placed by | images | training boxes | ignore regions (x10 classes) | logged events | seconds (runs) | images/s | boxes/s | peak RSS MiB | peak Python heap MiB |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for link_mode, best, rss_kib, heap, all_seconds in rows:
        table.append(
            f"| {link_mode} | {best['images']} | {best['boxes']} | {best['ignore']} | {best['events']} | "
            f"{best['seconds']:.2f} ({', '.join(f'{s:.2f}' for s in all_seconds)}) | "
            f"{best['images'] / best['seconds']:.0f} | {best['boxes'] / best['seconds']:.0f} | "
            f"{rss_kib / 1024:.0f} | {heap / 2**20:.1f} |"
        )
    text = header + "\n".join(table) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
