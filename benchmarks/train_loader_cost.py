"""CPU cost per image of Ultralytics' detection training loader (mosaic and the default
augmentations, ``cache=ram``), for several prepared datasets timed in interleaved epochs.

    python3 benchmarks/train_loader_cost.py DATA_YAML [DATA_YAML ...] [--imgsz 160] [--batch 32]
                                            [--rounds 5] [--mosaic 1.0]

Each dataset's loader runs in this process with no worker processes and one torch thread,
so an epoch's time is the CPU work one loader worker does for it; the datasets alternate
epoch by epoch (``--rounds`` each, after one untimed epoch), so drift of a shared machine
falls on all alike. Prints per dataset: objects per image, ms per image (median and minimum
over rounds). Written for issue 30's grid, whose runs each have one loader worker: the
polygon labels of the synthetic sets make every augmentation resample and transform each
object's outline (`scsa-yolo data prepare synthetic-tiny --set labels=boxes` writes boxes).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


def build_loader(data_yaml: str, imgsz: int, batch: int, mosaic: float):
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    cfg = get_cfg(overrides={"imgsz": imgsz, "batch": batch, "cache": "ram", "mosaic": mosaic, "workers": 0,
                             "data": data_yaml})
    data = check_det_dataset(cfg.data)
    dataset = build_yolo_dataset(cfg, data["train"], batch, data, mode="train", stride=32)
    return dataset, build_dataloader(dataset, batch, 0, shuffle=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="+", help="data YAMLs of prepared detection datasets")
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mosaic", type=float, default=1.0)
    args = parser.parse_args()
    from pathlib import Path

    missing = [data for data in args.data if not Path(data).is_file()]
    if missing:
        parser.error(f"no such data YAML: {', '.join(missing)} (prepare one with `scsa-yolo data prepare NAME`)")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    loaders = {}
    for data_yaml in args.data:
        dataset, loader = build_loader(data_yaml, args.imgsz, args.batch, args.mosaic)
        for _ in loader:  # untimed: the first epoch fills the RAM cache's lazy parts
            pass
        objects = sum(len(label["cls"]) for label in dataset.labels) / len(dataset.labels)
        segments = sum(len(label["segments"]) for label in dataset.labels) / len(dataset.labels)
        loaders[data_yaml] = (loader, objects, segments)
    per_image: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(args.rounds):
        for name, (loader, _, _) in loaders.items():
            start, images = time.perf_counter(), 0
            for batch in loader:
                images += batch["img"].shape[0]
            per_image[name].append((time.perf_counter() - start) / images * 1e3)
    print(f"imgsz {args.imgsz}, batch {args.batch}, mosaic {args.mosaic}, {args.rounds} interleaved rounds, "
          f"one process, no loader workers, torch threads 1; ms of CPU per training image, median / min")
    print("| data | objects / image | polygons / image | ms per image (median / min) |")
    print("|---|---|---|---|")
    for name, (_, objects, segments) in loaders.items():
        times = per_image[name]
        print(f"| {name} | {objects:.1f} | {segments:.1f} | {statistics.median(times):.2f} / {min(times):.2f} |")


if __name__ == "__main__":
    main()
