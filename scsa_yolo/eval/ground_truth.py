"""Find, or build, the COCO ground truth of one split of an Ultralytics dataset.

A prepared dataset (``scsa-yolo data prepare``) ships ``annotations/{split}.json`` with its
ignore regions; that file is used as is. Any other Ultralytics data YAML gets a ground
truth built from its YOLO labels (same conventions: category id = class + 1, image ids
1..N, file names relative to the split's image folder). Built files go to a cache folder
chosen by the caller (the evaluation's output folder), never into the user's dataset.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scsa_yolo.atomic import write_json_atomic
from scsa_yolo.data.convert.images import IMAGE_SUFFIXES
from scsa_yolo.data.layout.ground_truth import GtImage, build_coco_gt, read_yolo_split
from scsa_yolo.data.layout.paths import ground_truth_path


@dataclass(frozen=True)
class GroundTruth:
    """A COCO ground-truth file and the folder its ``file_name`` entries are relative to."""

    path: Path
    images_base: Path
    built: bool  # True when made here from YOLO labels (no ignore regions known)


def split_image_files(data: dict[str, Any], split: str) -> tuple[list[Path], Path]:
    """Image files of ``split`` as Ultralytics lists them, and their common base folder.

    The split entry may be a folder, a ``.txt`` list of images, or a list of either.
    """
    if split not in data or not data[split]:
        available = [k for k in ("train", "val", "test", "minival") if data.get(k)]
        raise ValueError(f"split '{split}' is not defined in {data.get('yaml_file', 'the data YAML')}; available: {available}")
    entries = data[split] if isinstance(data[split], (list, tuple)) else [data[split]]
    files: list[Path] = []
    for entry in entries:
        entry = Path(entry)
        if entry.is_dir():
            files += sorted(p.resolve() for p in entry.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif entry.is_file() and entry.suffix == ".txt":
            parent = entry.parent
            for line in entry.read_text().splitlines():
                line = line.strip()
                if line:  # Ultralytics' rule: "./x" is relative to the list's folder
                    files.append((parent / line[2:] if line.startswith("./") else Path(line)).resolve())
        else:
            raise FileNotFoundError(f"split '{split}' entry {entry} is neither a folder nor a .txt image list")
    if not files:
        raise FileNotFoundError(f"split '{split}' has no images ({entries})")
    if len(entries) == 1 and Path(entries[0]).is_dir():
        base = Path(entries[0]).resolve()
    else:
        base = Path(os.path.commonpath([str(f.parent) for f in files]))
    return files, base


def ground_truth_for(data_yaml: str | Path, split: str, cache_dir: str | Path) -> GroundTruth:
    """The ground truth to evaluate ``split`` of ``data_yaml`` against.

    Uses the dataset's ``annotations/{split}.json`` when present (prepared datasets), else
    builds ``cache_dir/gt_{split}.json`` from the split's YOLO labels.
    """
    from scsa_yolo.integration.datasets import read_data_yaml  # imports ultralytics: only when needed

    data = read_data_yaml(data_yaml)
    files, base = split_image_files(data, split)
    shipped = ground_truth_path(data["path"], split)
    if shipped.is_file():
        return GroundTruth(shipped.resolve(), base, built=False)

    wanted = set(files)
    images: list[GtImage] = []
    for folder in sorted({f.parent for f in files}):
        for record in read_yolo_split(folder):
            full = (folder / record.file_name).resolve()
            if full in wanted and full.parent == folder:
                images.append(GtImage(full.relative_to(base).as_posix(), record.width, record.height, record.boxes))
    images.sort(key=lambda im: im.file_name)
    names = data["names"]
    class_names = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)
    path = write_json_atomic(build_coco_gt(images, class_names), Path(cache_dir) / f"gt_{split}.json")
    return GroundTruth(path.resolve(), base, built=True)
