"""Reading a prepared dataset's manifest, and checking the files against it.

The manifest (``ROOT/NAME/manifest.json``) is written last by the writer, so its presence
with ``complete: true`` marks a finished dataset. :func:`check_dataset` re-counts what is
on disk (images, label files, boxes per class, ground-truth JSON) and compares. A
generated dataset's manifest also lists its files and their content hash
(:func:`content_sha256`); :func:`content_unchanged` tells whether they are still as written.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.text import format_table
from scsa_yolo.data.convert.images import IMAGE_SUFFIXES
from .ground_truth import parse_label_line
from .paths import DATA_YAML_NAME, manifest_path


class ManifestError(ScsaYoloError, ValueError):
    """A manifest that cannot be read or is not ours."""


def load_manifest(folder: str | Path) -> dict | None:
    """The manifest of a prepared dataset folder; None when there is none.

    Raises:
        ManifestError: the file exists but is not valid JSON or not a scsa-yolo manifest.
    """
    path = manifest_path(folder)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path}: unreadable manifest ({error}); rebuild with --force") from None
    if not isinstance(manifest, dict) or "splits" not in manifest:
        raise ManifestError(f"{path}: not a scsa-yolo dataset manifest; rebuild with --force")
    return manifest


def is_complete(manifest: dict | None) -> bool:
    return bool(manifest and manifest.get("complete"))


def content_sha256(folder: str | Path, files: list[str]) -> str | None:
    """sha256 over the listed files (relative path and bytes, in order); None when one is missing."""
    digest = hashlib.sha256()
    for relative in files:
        path = Path(folder) / relative
        if not path.is_file():
            return None
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def content_unchanged(folder: str | Path, manifest: dict) -> bool:
    """Whether the files a manifest lists still hash to its ``content_sha256``."""
    files = manifest.get("files") or []
    return bool(files) and content_sha256(folder, files) == manifest.get("content_sha256")


@dataclass
class CheckReport:
    """Outcome of :func:`check_dataset`: problems (empty: all good) and the class table."""

    folder: Path
    problems: list[str] = field(default_factory=list)
    table: str = ""
    checked: dict[str, dict] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _images_in(folder: Path) -> dict[str, Path]:
    """Label-name key (relative path without suffix) -> image path."""
    if not folder.is_dir():
        return {}
    return {
        p.relative_to(folder).with_suffix("").as_posix(): p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_file())
    }


def _count_labels(folder: Path, nc: int, problems: list[str]) -> tuple[dict[str, Path], Counter[int], int]:
    """Label files by key, boxes per class, and how many of them are polygons (segment lines)."""
    labels = {p.relative_to(folder).with_suffix("").as_posix(): p for p in folder.rglob("*.txt")} if folder.is_dir() else {}
    per_class: Counter[int] = Counter()
    polygons = 0
    for path in labels.values():
        kinds = set()
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                cls, values = parse_label_line(line)
            except ValueError:
                problems.append(f"{path}:{line_no}: not a YOLO label line: {line.strip()!r}")
                continue
            shape_ok = len(values) == 4 or (len(values) >= 6 and len(values) % 2 == 0)
            if not shape_ok or not 0 <= cls < nc or any(not 0.0 <= v <= 1.0 for v in values):
                problems.append(
                    f"{path}:{line_no}: bad label {line.strip()!r} "
                    f"(class 0..{nc - 1}, then 4 values or at least 3 x y points, all in 0..1)"
                )
                continue
            kinds.add("box" if len(values) == 4 else "polygon")
            polygons += len(values) != 4
            per_class[cls] += 1
        if len(kinds) == 2:  # Ultralytics refuses such a file ("labels mix segment and detection rows")
            problems.append(f"{path}: mixes box lines and polygon lines; Ultralytics reads only one kind per file")
    return labels, per_class, polygons


def check_dataset(folder: str | Path) -> CheckReport:
    """Compare a prepared dataset folder with its manifest.

    Checks: the manifest is complete; the data YAML exists, points at this folder and names
    the manifest's classes; per split, the number of images and label files, every label
    file has its image, boxes per class in the labels, and the ground-truth JSON's image,
    box and ignore-region counts.
    """
    import yaml

    folder = Path(folder)
    report = CheckReport(folder)
    problems = report.problems
    manifest = load_manifest(folder)
    if manifest is None:
        problems.append(f"{folder}: no manifest.json (not prepared, or interrupted); run `scsa-yolo data prepare`")
        return report
    if not manifest.get("complete"):
        problems.append(f"{folder}: manifest says the dataset is incomplete; rebuild with --force")
    if manifest.get("task") == "classify":
        return _check_class_folders(folder, manifest, report)
    classes = list(manifest.get("classes", []))
    nc = len(classes)

    yaml_path = folder / DATA_YAML_NAME
    if not yaml_path.is_file():
        problems.append(f"{yaml_path}: missing")
    else:
        data = yaml.safe_load(yaml_path.read_text()) or {}
        if Path(str(data.get("path", ""))).resolve() != folder.resolve():
            problems.append(
                f"{yaml_path}: 'path' is {data.get('path')!r} but the dataset is at {folder.resolve()} "
                f"(moved?); rebuild with --force or edit 'path'"
            )
        names = data.get("names") or {}
        names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
        if names != classes:
            problems.append(f"{yaml_path}: names {names} differ from the manifest's classes {classes}")

    for split, expected in manifest["splits"].items():
        images = _images_in(folder / "images" / split)
        labels, per_class, polygons = _count_labels(folder / "labels" / split, nc, problems)
        found = {
            "images": len(images),
            "label_files": len(labels),
            "boxes": sum(per_class.values()),
            "boxes_per_class": {classes[i]: per_class.get(i, 0) for i in range(nc)},
            "polygons": polygons,
        }
        if expected.get("masks") and polygons != expected["boxes"]:
            problems.append(
                f"{split}: {polygons} of {sum(per_class.values())} labels are polygons, "
                f"manifest says every one of its {expected['boxes']} objects has one"
            )
        if len(images) != expected["images"]:
            problems.append(f"{split}: {len(images)} images on disk, manifest says {expected['images']}")
        if len(labels) != expected["images"]:
            problems.append(f"{split}: {len(labels)} label files on disk, manifest says {expected['images']} images")
        orphans = sorted(set(labels) - set(images))
        if orphans:
            problems.append(f"{split}: {len(orphans)} label files without an image, e.g. {orphans[0]}.txt")
        for name, count in expected["boxes_per_class"].items():
            if found["boxes_per_class"].get(name, 0) != count:
                problems.append(
                    f"{split}: class '{name}' has {found['boxes_per_class'].get(name, 0)} boxes in the labels, "
                    f"manifest says {count}"
                )
        if expected.get("annotations"):
            found.update(_check_gt(folder / expected["annotations"], expected, split, problems))
        report.checked[split] = found
    report.table = class_table(manifest)
    return report


def _check_class_folders(folder: Path, manifest: dict, report: CheckReport) -> CheckReport:
    """A classification dataset: the class folders of each split and their images, against the manifest."""
    classes = list(manifest.get("classes", []))
    for split, expected in manifest["splits"].items():
        split_dir = folder / split
        on_disk = sorted(p.name for p in split_dir.iterdir() if p.is_dir()) if split_dir.is_dir() else []
        if on_disk != sorted(classes):
            report.problems.append(
                f"{split_dir}: class folders {on_disk} differ from the manifest's classes {sorted(classes)}"
            )
        per_class = {name: len(_images_in(split_dir / name)) for name in classes}
        for name, count in expected["images_per_class"].items():
            if per_class.get(name, 0) != count:
                report.problems.append(
                    f"{split}: class '{name}' has {per_class.get(name, 0)} images on disk, manifest says {count}"
                )
        stray = [p for p in split_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES] \
            if split_dir.is_dir() else []
        if stray:
            report.problems.append(f"{split}: {len(stray)} images outside every class folder, e.g. {stray[0]}")
        report.checked[split] = {"images": sum(per_class.values()), "images_per_class": per_class}
    rows = [[name] + [str(manifest["splits"][s]["images_per_class"].get(name, 0)) for s in manifest["splits"]]
            for name in classes]
    report.table = format_table(["class"] + [f"{s} images" for s in manifest["splits"]], rows,
                                right=range(1, len(manifest["splits"]) + 1))
    return report


def _check_gt(path: Path, expected: dict, split: str, problems: list[str]) -> dict:
    if not path.is_file():
        problems.append(f"{split}: ground truth {path} missing")
        return {}
    try:
        gt = json.loads(path.read_text())
    except ValueError as error:
        problems.append(f"{path}: not valid JSON ({error})")
        return {}
    crowd = sum(1 for a in gt.get("annotations", []) if a.get("iscrowd"))
    boxes = len(gt.get("annotations", [])) - crowd
    if len(gt.get("images", [])) != expected["images"]:
        problems.append(f"{path}: {len(gt.get('images', []))} images, manifest says {expected['images']}")
    # training labels may outnumber GT boxes (VOC --train-difficult), hence a separate count
    expected_boxes = expected.get("gt_boxes", expected["boxes"])
    if boxes != expected_boxes:
        problems.append(f"{path}: {boxes} boxes, manifest says {expected_boxes}")
    if crowd != expected["ignore_regions"]:
        problems.append(f"{path}: {crowd} ignore regions, manifest says {expected['ignore_regions']}")
    unmasked = sum(1 for a in gt.get("annotations", []) if not a.get("segmentation"))
    if expected.get("masks") and unmasked:
        problems.append(f"{path}: {unmasked} annotations without 'segmentation' in a split with masks")
    return {"gt_images": len(gt.get("images", [])), "gt_boxes": boxes, "gt_ignore_regions": crowd}


def class_table(manifest: dict) -> str:
    """Plain-text table: one row per class, boxes (and ignore regions) per split."""
    classes = manifest.get("classes", [])
    splits = list(manifest.get("splits", {}))
    header = ["class"] + [f"{s} boxes" for s in splits] + [f"{s} ignore" for s in splits]
    rows = []
    for name in classes:
        row = [name]
        row += [str(manifest["splits"][s]["boxes_per_class"].get(name, 0)) for s in splits]
        row += [str(manifest["splits"][s]["ignore_per_class"].get(name, 0)) for s in splits]
        rows.append(row)
    for label, key in (("(images)", "images"), ("(images, no boxes)", "background_images")):
        rows.append([label] + [str(manifest["splits"][s].get(key, "")) for s in splits] + ["" for _ in splits])
    return format_table(header, rows, right=range(1, len(header)))
