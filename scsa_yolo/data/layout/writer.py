"""Writes a converted dataset in the Ultralytics layout, atomically.

Everything goes to a hidden sibling ``ROOT/.NAME.partial/`` first: images (linked, never
re-encoded; a generated image's bytes are written as they come), YOLO labels, one COCO
ground-truth JSON per evaluation split, the data YAML and, last, ``manifest.json``. Only
then is the folder renamed to ``ROOT/NAME``. An interrupted run therefore leaves either
nothing or a ``.partial`` folder that the next run removes, never a ``ROOT/NAME`` that
looks complete.

With ``record_content`` (generated datasets) the manifest also lists every file written and
their content hash (:func:`scsa_yolo.data.layout.manifest.content_sha256`), so a later run can tell
a set that is still as written from one that was changed.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Callable

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo import __version__
from scsa_yolo.atomic import write_json_atomic
from scsa_yolo.data.convert.events import ACTION_SKIPPED, DUPLICATE_IMAGE, ConversionLog
from scsa_yolo.data.convert.boxes import GtBox
from scsa_yolo.data.convert.images import place_image
from scsa_yolo.data.convert.masks import rectangle
from scsa_yolo.data.convert.recipes.base import Conversion, ConvertedImage
from .ground_truth import GtImage, object_area, write_coco_gt
from .manifest import content_sha256
from .paths import DATA_YAML_NAME, MANIFEST_NAME, ground_truth_path

MANIFEST_FORMAT = "scsa-yolo-dataset-manifest"
MANIFEST_VERSION = 1


def staging_dir(final: Path) -> Path:
    """The hidden sibling a dataset is written to before it is renamed into place."""
    return final.with_name(f".{final.name}.partial")


def format_label_line(class_index: int, x: float, y: float, w: float, h: float, width: int, height: int) -> str:
    """A YOLO label line ``class cx cy w h`` (normalised, 6 decimals: < 0.01 px at 10k px)."""
    return f"{class_index} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}"


def format_segment_line(class_index: int, polygon: tuple[float, ...], width: int, height: int) -> str:
    """A YOLO segment label line ``class x1 y1 x2 y2 ...`` (normalised, 6 decimals).

    Ultralytics reads a line of more than 6 values as a polygon and derives the object's
    box from its extent, for detection as for segmentation training.
    """
    scale = (width, height)
    return f"{class_index} " + " ".join(f"{v / scale[i % 2]:.6f}" for i, v in enumerate(polygon))


def size_band(area: float) -> str:
    """COCO's band of an object's area: small < 32^2 <= medium < 96^2 <= large (pixels)."""
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


class EmptySplitError(ScsaYoloError, ValueError):
    """A requested split ended up with no image at all (wrong source folder, all images unreadable)."""


class _SplitStats:
    def __init__(self) -> None:
        self.images = 0
        self.background = 0
        self.boxes: Counter[int] = Counter()  # training labels
        self.masks = 0  # training labels written as polygons from the object's own mask
        self.gt_boxes = 0  # ground-truth boxes that are not ignore regions
        self.ignore: Counter[int] = Counter()
        self.sizes: Counter[str] = Counter()  # ground-truth objects per COCO area band (the GT's area)
        self.bytes = 0


class DatasetWriter:
    """Writes one prepared dataset under ``final`` (``ROOT/NAME``) through a staging folder."""

    def __init__(
        self,
        final: Path,
        *,
        eval_splits: tuple[str, ...] | list[str],
        link_mode: str = "auto",
        progress: bool = True,
        record_content: bool = False,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.final = Path(final).absolute()
        self.staging = staging_dir(self.final)
        self.eval_splits = set(eval_splits)
        self.link_mode = link_mode
        self.progress = progress
        self.echo = echo
        self.link_counts: Counter[str] = Counter()
        self.files: list[str] | None = [] if record_content else None  # written, relative to the folder

    def write(self, conversion: Conversion, log: ConversionLog, *, manifest_fields: dict) -> dict:
        """Consume the conversion stream, write everything, rename into place; returns the manifest."""
        if self.staging.exists():
            self.echo(f"removing {self.staging} left by an interrupted run")
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        try:
            stats = self._write_images(conversion, log)
            empty = [s for s in manifest_fields["request"]["splits"] if not stats.get(s) or not stats[s].images]
            if empty:
                reasons = ", ".join(f"{k} {v}" for k, v in sorted(log.counts.items())) or "no events"
                raise EmptySplitError(
                    f"{manifest_fields['dataset']}: split(s) {', '.join(empty)} got no image ({reasons}); "
                    f"is --source the right folder? Nothing was written."
                )
            manifest = self._finish(conversion, log, stats, manifest_fields)
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        self._swap_into_place()
        return manifest

    # --- images and labels ---------------------------------------------------------------
    def _write_images(self, conversion: Conversion, log: ConversionLog) -> dict[str, _SplitStats]:
        from scsa_yolo.integration.progress import progress_bar  # imports torch: not at module level

        stats: dict[str, _SplitStats] = {}
        gt_images: dict[str, list[GtImage]] = {}
        taken: dict[str, set[str]] = {}
        bar = None
        current = None
        for split, image in conversion.images:
            if split != current:
                if bar is not None:
                    bar.close()
                current = split
                stats.setdefault(split, _SplitStats())
                (self.staging / "images" / split).mkdir(parents=True, exist_ok=True)
                (self.staging / "labels" / split).mkdir(parents=True, exist_ok=True)
                bar = progress_bar(f"converting {split}", conversion.totals.get(split), "images", enabled=self.progress)
            bar.update()
            name = PurePosixPath(image.name)
            label_key = name.with_suffix("").as_posix().lower()  # a.jpg and a.png would share a.txt
            seen = taken.setdefault(split, set())
            if label_key in seen:
                log.record(
                    DUPLICATE_IMAGE,
                    ACTION_SKIPPED,
                    str(image.source or image.name),
                    split=split,
                    image=image.name,
                    detail=f"another image of split '{split}' already has the label name {name.with_suffix('.txt')}",
                )
                continue
            seen.add(label_key)
            self._write_one(split, name, image, stats[split])
            if split in self.eval_splits:
                gt_images.setdefault(split, []).append(
                    GtImage(name.as_posix(), image.width, image.height, list(image.boxes))
                )
        if bar is not None:
            bar.close()
        for split in sorted(self.eval_splits & set(stats)):
            write_coco_gt(gt_images.get(split, []), conversion.classes, ground_truth_path(self.staging, split))
            self._wrote(ground_truth_path(self.staging, split))
        return stats

    def _wrote(self, path: Path) -> None:
        if self.files is not None:
            self.files.append(path.relative_to(self.staging).as_posix())

    def _write_one(self, split: str, name: PurePosixPath, image: ConvertedImage, stats: _SplitStats) -> None:
        target = self.staging / "images" / split / Path(*name.parts)
        if image.data is not None:  # generated: the encoded image itself
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(image.data)
            self.link_counts["written"] += 1
        else:
            self.link_counts[place_image(image.source, target, self.link_mode)] += 1
        stats.bytes += os.path.getsize(target)
        # Ultralytics refuses a label file that mixes box and polygon lines: when one object
        # has a polygon, every line is one (a recipe gives each object of a split with masks
        # a polygon, its box's rectangle when the source has none, and logs that)
        polygons = any(b.mask is not None and b.mask.polygons for b in image.boxes if not b.ignore)
        lines = []
        for box in image.boxes:
            if box.ignore:
                stats.ignore[box.class_index] += 1
                continue
            stats.gt_boxes += 1
            stats.boxes[box.class_index] += 1
            stats.sizes[size_band(object_area(box))] += 1  # the area the evaluation bands by
            lines.append(self._label_line(box, image, polygons, stats))
        for box in image.extra_labels:
            stats.boxes[box.class_index] += 1
            lines.append(self._label_line(box, image, polygons, stats))
        stats.images += 1
        stats.background += not lines
        label = self.staging / "labels" / split / Path(*name.with_suffix(".txt").parts)
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(line + "\n" for line in lines))
        self._wrote(target)
        self._wrote(label)

    @staticmethod
    def _label_line(box: GtBox, image: ConvertedImage, polygons: bool, stats: _SplitStats) -> str:
        if not polygons:
            return format_label_line(box.class_index, box.x, box.y, box.w, box.h, image.width, image.height)
        if box.mask is not None and box.mask.polygons:
            stats.masks += 1
            outline = box.mask.outline()
        else:
            outline = rectangle(box.x, box.y, box.w, box.h)
        return format_segment_line(box.class_index, outline, image.width, image.height)

    # --- YAML, manifest, rename -----------------------------------------------------------
    def _finish(self, conversion: Conversion, log: ConversionLog, stats: dict[str, _SplitStats], fields: dict) -> dict:
        classes = conversion.classes
        splits = [s for s in fields["request"]["splits"] if s in stats]
        self._write_yaml(classes, splits, conversion.yaml_extra, fields)
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "complete": True,
            "dataset": fields["dataset"],
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "scsa_yolo_version": __version__,
            "request": fields["request"],
            "source": fields.get("source", []),
            "classes": list(classes),
            "data_yaml": DATA_YAML_NAME,
            "yaml_extra": conversion.yaml_extra,
            "link_mode": dict(self.link_counts),
            "notes": conversion.notes,
            "splits": {
                split: {
                    "images": s.images,
                    "background_images": s.background,
                    "boxes": sum(s.boxes.values()),
                    "gt_boxes": s.gt_boxes,
                    "masks": s.masks,
                    "ignore_regions": sum(s.ignore.values()),
                    "boxes_per_class": {classes[i]: s.boxes.get(i, 0) for i in range(len(classes))},
                    "ignore_per_class": {classes[i]: s.ignore.get(i, 0) for i in range(len(classes))},
                    "annotations": f"annotations/{split}.json" if split in self.eval_splits else None,
                    "image_bytes": s.bytes,
                    "boxes_per_size": {band: s.sizes.get(band, 0) for band in ("small", "medium", "large")},
                }
                for split, s in stats.items()
            },
            **log.to_json(),
            **conversion.manifest_extra,
        }
        if self.files is not None:
            manifest["files"] = self.files
            manifest["content_sha256"] = content_sha256(self.staging, self.files)
        # the manifest is the completeness mark: it is written last
        write_json_atomic(manifest, self.staging / MANIFEST_NAME)
        return manifest

    def _write_yaml(self, classes: list[str], splits: list[str], extra: dict, fields: dict) -> None:
        import yaml

        data: dict = {"path": str(self.final)}
        for key in ("train", "val", "test"):
            if key in splits:
                data[key] = f"images/{key}"
            elif key in ("train", "val"):
                data[key] = None  # ultralytics requires the keys; this split was not prepared
        data["nc"] = len(classes)
        data["names"] = {i: name for i, name in enumerate(classes)}
        data.update(extra)
        header = (
            f"# {fields['dataset']}: written by scsa-yolo {__version__} "
            f"(scsa-yolo data prepare {fields['dataset']}); see manifest.json\n"
            f"# COCO ground truth per evaluation split: annotations/<split>.json\n"
        )
        text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        (self.staging / DATA_YAML_NAME).write_text(text)
        self._wrote(self.staging / DATA_YAML_NAME)

    def _swap_into_place(self) -> None:
        swap_into_place(self.staging, self.final)


def swap_into_place(staging: Path, final: Path) -> None:
    """Rename the finished ``staging`` folder to ``final``, replacing what was there."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
