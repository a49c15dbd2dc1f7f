"""Find, or build, the COCO ground truth of one split of an Ultralytics dataset.

A prepared dataset (``scsa-yolo data prepare``) ships ``annotations/{split}.json`` with its
ignore regions; that file is used as is. Any other Ultralytics data YAML gets a ground
truth built from its YOLO labels (same conventions: category id = class + 1, image ids
1..N, file names relative to the split's image folder). Built files go to a cache folder
chosen by the caller (the evaluation's output folder), never into the user's dataset.

For a segmentation model (``masks=True``) the labels are Ultralytics' polygon lines
(``class x1 y1 x2 y2 ...``, normalised); each becomes an annotation with that polygon in
pixels as its ``segmentation``, its extent as ``bbox`` and, as for boxes, the box area as
``area``. :func:`check_masks` says, before anything trains, when a split has none.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scsa_yolo.atomic import write_json_atomic
from scsa_yolo.errors import ScsaYoloError
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


def ground_truth_for(data_yaml: str | Path, split: str, cache_dir: str | Path, masks: bool = False) -> GroundTruth:
    """The ground truth to evaluate ``split`` of ``data_yaml`` against.

    Uses the dataset's ``annotations/{split}.json`` when present (prepared datasets), else
    builds ``cache_dir/gt_{split}.json`` from the split's YOLO labels (polygon labels, with
    their masks, when ``masks``).

    Raises:
        ValueError: a label line that is not a box (or, with ``masks``, a box or a polygon),
            naming the file and line.
        FileNotFoundError, SyntaxError, TypeError: a split or data YAML Ultralytics cannot read.
    """
    from scsa_yolo.integration.datasets import read_data_yaml  # imports ultralytics: only when needed

    data = read_data_yaml(data_yaml)
    files, base = split_image_files(data, split)
    shipped = ground_truth_path(data["path"], split)
    if shipped.is_file():
        return GroundTruth(shipped.resolve(), base, built=False)

    if masks:
        return _build_polygon_gt(data, files, base, split, cache_dir)
    wanted = set(files)
    images: list[GtImage] = []
    for folder in sorted({f.parent for f in files}):
        for record in read_yolo_split(folder):
            full = (folder / record.file_name).resolve()
            if full in wanted and full.parent == folder:
                images.append(GtImage(full.relative_to(base).as_posix(), record.width, record.height, record.boxes))
    images.sort(key=lambda im: im.file_name)
    path = write_json_atomic(build_coco_gt(images, _class_names(data)), Path(cache_dir) / f"gt_{split}.json")
    return GroundTruth(path.resolve(), base, built=True)


def _class_names(data: dict[str, Any]) -> list[str]:
    names = data["names"]
    return [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)


def _polygon_annotations(label_path: Path, width: int, height: int) -> list[dict]:
    """COCO annotations (without ids) of one YOLO label file: polygons with their masks,
    box lines (``class cx cy w h``) without one."""
    from scsa_yolo.data.layout.ground_truth import category_id_for_class, parse_label_line

    found = []
    for line_no, line in enumerate(label_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cls, values = parse_label_line(line)
        except ValueError as error:
            raise ValueError(f"{label_path}:{line_no}: {error}") from None
        if len(values) == 4:
            cx, cy, w, h = values
            annotation = {"bbox": [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]}
        elif len(values) >= 6 and len(values) % 2 == 0:
            xs, ys = [v * width for v in values[0::2]], [v * height for v in values[1::2]]
            polygon = [round(c, 3) for xy in zip(xs, ys) for c in xy]
            annotation = {"bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], "segmentation": [polygon]}
        else:
            raise ValueError(f"{label_path}:{line_no}: expected a box 'class cx cy w h' or a polygon 'class x1 y1 x2 y2 "
                             f"x3 y3 ...' (an even count of 6 or more coordinates), got {len(values)} numbers")
        annotation["bbox"] = [round(float(v), 3) for v in annotation["bbox"]]
        annotation.update(category_id=category_id_for_class(cls), iscrowd=0,
                          area=round(annotation["bbox"][2] * annotation["bbox"][3], 3))
        found.append(annotation)
    return found


def _build_polygon_gt(data: dict[str, Any], files: list[Path], base: Path, split: str, cache_dir: str | Path) -> GroundTruth:
    """``cache_dir/gt_{split}.json`` from the split's polygon labels (see the module docstring)."""
    from PIL import Image

    from scsa_yolo.data.layout.ground_truth import _labels_dir_for, category_id_for_class

    names = _class_names(data)
    images, annotations = [], []
    for image_id, image_path in enumerate(sorted(files, key=lambda f: f.relative_to(base).as_posix()), start=1):
        with Image.open(image_path) as img:
            width, height = img.size
        images.append({"id": image_id, "file_name": image_path.relative_to(base).as_posix(), "width": width,
                       "height": height})
        label_path = (_labels_dir_for(image_path.parent) / image_path.name).with_suffix(".txt")
        if not label_path.is_file():
            continue
        for annotation in _polygon_annotations(label_path, width, height):
            if not 1 <= annotation["category_id"] <= len(names):
                raise ValueError(f"{label_path}: class index {annotation['category_id'] - 1} outside "
                                 f"0..{len(names) - 1}")
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **annotation})
    categories = [{"id": category_id_for_class(i), "name": str(n), "yolo_index": i} for i, n in enumerate(names)]
    path = write_json_atomic({"images": images, "annotations": annotations, "categories": categories},
                             Path(cache_dir) / f"gt_{split}.json")
    return GroundTruth(path.resolve(), base, built=True)


def check_masks(ground_truth: GroundTruth, split: str, data_yaml: str | Path) -> None:
    """Refuse a ground truth without masks for a segmentation model.

    Raises:
        MissingMasks: an annotation (not an ignore region) without ``segmentation``, or no
            annotation at all; the message names the split and how to get masks.
    """
    import json

    from scsa_yolo.eval.coco import missing_masks

    content = json.loads(ground_truth.path.read_text())
    unmasked = missing_masks(content)
    if not unmasked and any(not a.get("iscrowd", 0) for a in content.get("annotations", [])):
        return
    where = f"the ground truth {ground_truth.path}" if not ground_truth.built else f"the labels of {data_yaml}"
    what = (f"{len(unmasked)} of its {len(content.get('annotations', []))} objects have no mask (box labels, "
            f"e.g. annotation {unmasked[0]})" if unmasked else "it has no objects")
    lacking = "has no masks" if not unmasked or len(unmasked) == len(content["annotations"]) else "lacks masks"
    raise MissingMasks(
        f"split '{split}' {lacking} for a segmentation model: {what} in {where}. Segmentation needs polygon "
        "labels ('class x1 y1 x2 y2 ...'): prepare the dataset with masks (`scsa-yolo data prepare synthetic` and "
        "`scsa-yolo data prepare coco` write polygons beside the boxes), or train a detection model on it")


class MissingMasks(ScsaYoloError, ValueError):
    """A segmentation model evaluated (or about to be trained) on a split without masks."""

    usage = True
