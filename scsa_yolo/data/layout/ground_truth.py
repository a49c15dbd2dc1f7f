"""COCO-format ground truth: the one writer every dataset recipe and the evaluator share.

Images (:class:`GtImage`) carry the recipes' boxes (:class:`scsa_yolo.data.convert.boxes.GtBox`).

Conventions (fixed here, relied on by :mod:`scsa_yolo.eval`):

* ``category_id = yolo_class_index + 1``; each category also carries ``yolo_index``.
* ``image_id`` runs 1..N in the order images are given; ``file_name`` is the image path
  relative to ``images/{split}/`` of the prepared dataset.
* Ignore regions (VisDrone category 0, VOC ``difficult``, COCO crowd) are annotations with
  ``iscrowd: 1``: pycocotools then neither rewards nor penalises detections on them.
* An object with a mask carries COCO's ``segmentation`` (polygons in pixels, or a crowd
  region's RLE) and ``area`` is the mask's area, as in COCO itself, so APs/APm/APl of boxes
  and of masks both use mask sizes; in a split where any object has a mask, one without
  gets its box's rectangle (pycocotools' ``segm`` evaluation needs a mask for every
  annotation). A split without masks has no ``segmentation`` and ``area`` is the box area
  ``w * h`` in pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from scsa_yolo.atomic import write_json_atomic
from scsa_yolo.data.convert.boxes import GtBox
from scsa_yolo.data.convert.images import IMAGE_SUFFIXES
from scsa_yolo.data.convert.masks import Mask, bounds, rectangle


def category_id_for_class(class_index: int) -> int:
    """COCO category id of a 0-based YOLO class index."""
    return int(class_index) + 1


@dataclass
class GtImage:
    """One image of a split and its boxes."""

    file_name: str
    width: int
    height: int
    boxes: list[GtBox] = field(default_factory=list)


def object_area(box: GtBox) -> float:
    """The ``area`` an annotation of ``box`` gets (pixels, 3 decimals): its mask's, else its box's."""
    if box.mask is not None:
        return round(box.mask.rounded().area, 3)
    return round(float(box.w) * float(box.h), 3)


def build_coco_gt(images: Iterable[GtImage], class_names: Sequence[str]) -> dict:
    """Build a COCO ground-truth dict (``images``, ``annotations``, ``categories``)."""
    images = list(images)
    with_masks = any(box.mask is not None for image in images for box in image.boxes)
    coco_images, annotations = [], []
    for image_id, image in enumerate(images, start=1):
        coco_images.append(
            {"id": image_id, "file_name": image.file_name, "width": int(image.width), "height": int(image.height)}
        )
        for box in image.boxes:
            if not 0 <= box.class_index < len(class_names):
                raise ValueError(
                    f"{image.file_name}: class index {box.class_index} outside 0..{len(class_names) - 1}"
                )
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": category_id_for_class(box.class_index),
                "bbox": [round(float(v), 3) for v in (box.x, box.y, box.w, box.h)],
                "area": round(float(box.w) * float(box.h), 3),
                "iscrowd": int(box.ignore),
            }
            if with_masks:
                mask = box.mask or Mask((rectangle(box.x, box.y, box.w, box.h),))
                annotation["segmentation"] = mask.rounded().to_coco()
                annotation["area"] = object_area(replace(box, mask=mask))
            annotations.append(annotation)
    categories = [
        {"id": category_id_for_class(i), "name": str(name), "yolo_index": i} for i, name in enumerate(class_names)
    ]
    return {"images": coco_images, "annotations": annotations, "categories": categories}


def write_coco_gt(images: Iterable[GtImage], class_names: Sequence[str], path: str | Path) -> Path:
    """Build and atomically write a COCO ground-truth JSON."""
    return write_json_atomic(build_coco_gt(images, class_names), path)


def parse_label_line(text: str) -> tuple[int, list[float]]:
    """``"2 0.35 0.35 0.5 0.5"`` -> ``(2, [0.35, 0.35, 0.5, 0.5])``: numbers split by white
    space, the first a whole class index (``2`` or ``2.0``, as Ultralytics reads it).

    Raises:
        ValueError: an empty line, a word that is not a number, or a fractional class.
    """
    parts = text.split()
    if not parts:
        raise ValueError("empty label line")
    cls = float(parts[0])
    if not cls.is_integer():
        raise ValueError(f"class {parts[0]!r} is not a whole number")
    return int(cls), [float(v) for v in parts[1:]]


def read_yolo_split(images_dir: str | Path, labels_dir: str | Path | None = None) -> list[GtImage]:
    """Read an Ultralytics split (images plus YOLO ``.txt`` labels) back into pixel boxes.

    Labels are ``class cx cy w h`` or segment lines ``class x1 y1 x2 y2 ...`` (at least
    three points), normalised to the image size. A segment line's box is its polygon's
    extent (Ultralytics' rule) and the polygon becomes the box's mask. An image without a
    label file has no boxes. Image sizes come from the file headers (PIL reads no pixels).

    Raises:
        ValueError: a label line that is neither, naming the file and line.
    """
    from PIL import Image  # local: keep this module importable without Pillow loaded

    images_dir = Path(images_dir)
    labels_dir = Path(labels_dir) if labels_dir is not None else _labels_dir_for(images_dir)
    records = []
    for image_path in sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        with Image.open(image_path) as img:
            width, height = img.size
        relative = image_path.relative_to(images_dir)
        label_path = (labels_dir / relative).with_suffix(".txt")
        boxes = []
        if label_path.is_file():
            for line_no, line in enumerate(label_path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    cls, values = parse_label_line(line)
                    if len(values) != 4 and (len(values) < 6 or len(values) % 2):
                        raise ValueError(line)
                except ValueError:
                    raise ValueError(
                        f"{label_path}:{line_no}: expected 'class cx cy w h' (5 numbers) or a segment "
                        f"'class x1 y1 x2 y2 x3 y3 ...' (at least 3 points), got {line.strip()!r}"
                    ) from None
                if len(values) == 4:
                    cx, cy, w, h = values
                    boxes.append(GtBox(cls, (cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height))
                    continue
                polygon = tuple(v * (width, height)[i % 2] for i, v in enumerate(values))
                x0, y0, x1, y1 = bounds([polygon])
                boxes.append(GtBox(cls, x0, y0, x1 - x0, y1 - y0, mask=Mask((polygon,))))
        records.append(GtImage(relative.as_posix(), width, height, boxes))
    return records


def _labels_dir_for(images_dir: Path) -> Path:
    """Ultralytics' rule: the last ``images`` path component becomes ``labels``."""
    parts = list(images_dir.parts)
    if "images" not in parts:
        raise ValueError(f"cannot find labels for {images_dir}: no 'images' folder in the path")
    index = len(parts) - 1 - parts[::-1].index("images")
    parts[index] = "labels"
    return Path(*parts)
