"""The built-in synthetic detection dataset: the offline default for training and tests.

Every image is drawn from a seed (``numpy.random.Generator`` per image, so image *k* of a
split is the same whatever the split size), in the prepared layout of
:mod:`scsa_yolo.data.paths` under ``ROOT/synthetic/``.

What an image holds (a task where *where* and *which channels* both matter, i.e. where
spatial and channel attention have something to do):

* **Classes**: six shape/colour conjunctions (``red_circle``, ``green_square``,
  ``blue_triangle``, ``yellow_diamond``, ``magenta_cross``, ``cyan_ring``), colours jittered.
* **Sizes** in COCO's bands (areas < 32^2, 32^2..96^2, > 96^2 pixels at the stored image
  size, 160 px by default), so APs, APm and APl are all measured: mostly small and medium
  objects, about one large object every three images.
* **Distractors** that are not a class: a class shape in another class's colour (a blue
  circle), and grey shapes -- a detector must use shape *and* colour.
* **Clutter**: a smooth random colour field, random lines and outlined boxes, pixel noise.

Regeneration is skipped when ``manifest.json`` records the same parameters and the files on
disk still hash to the recorded content hash; the dataset is written to a hidden sibling
folder and renamed into place.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .coco_gt import GtBox, GtImage, write_coco_gt, write_json_atomic
from .paths import DATA_YAML_NAME, MANIFEST_NAME, dataset_dir, default_data_root, ground_truth_path

NAME = "synthetic"
GENERATOR_VERSION = 1
MANIFEST_FORMAT = "scsa-yolo-dataset-manifest"

CLASSES: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("red_circle", "circle", (220, 40, 40)),
    ("green_square", "square", (40, 190, 60)),
    ("blue_triangle", "triangle", (50, 80, 230)),
    ("yellow_diamond", "diamond", (235, 210, 40)),
    ("magenta_cross", "cross", (210, 50, 200)),
    ("cyan_ring", "ring", (40, 200, 210)),
)
CLASS_NAMES = tuple(name for name, _, _ in CLASSES)

#: side-length ranges (fraction of the image side) per COCO size band at 160 px:
#: small < 32 px, medium 32..96 px, large > 96 px (areas use the box, so sides are chosen
#: with margin inside each band).
_SIZE_BANDS = {"small": (0.07, 0.17), "medium": (0.24, 0.52), "large": (0.66, 0.85)}

DEFAULTS: dict[str, Any] = {
    "num_train": 320,
    "num_val": 80,
    "imgsz": 160,
    "max_objects": 5,
    "distractors": 1.5,  # mean distractors per image (Poisson)
    "large_fraction": 0.33,  # probability that an image gets one large object
    "jpeg_quality": 90,
}


class SyntheticOptionError(ValueError):
    """An unknown or invalid generation option (the message names it)."""


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: tuple[int, int, int]
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive
    class_index: int | None  # None: a distractor


def _check_options(num_train: int, num_val: int, imgsz: int, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise SyntheticOptionError(
            f"unknown synthetic dataset option(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}"
        )
    params = {**DEFAULTS, **options, "num_train": num_train, "num_val": num_val, "imgsz": imgsz}
    for key in ("num_train", "num_val", "imgsz", "max_objects", "jpeg_quality"):
        value = params[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "num_train" else 1):
            raise SyntheticOptionError(f"synthetic option {key}={value!r} must be a positive integer")
    if params["num_train"] < 1:
        raise SyntheticOptionError("synthetic option num_train must be at least 1")
    if params["imgsz"] < 32:
        raise SyntheticOptionError(f"synthetic option imgsz={params['imgsz']} must be at least 32 pixels")
    if not 1 <= params["jpeg_quality"] <= 100:
        raise SyntheticOptionError(f"synthetic option jpeg_quality={params['jpeg_quality']} must be 1..100")
    for key in ("distractors", "large_fraction"):
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise SyntheticOptionError(f"synthetic option {key}={value!r} must be a number >= 0")
    if params["large_fraction"] > 1:
        raise SyntheticOptionError(f"synthetic option large_fraction={params['large_fraction']} must be <= 1")
    return params


# ------------------------------------------------------------------------------ drawing
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8: a smooth random colour field plus noise."""
    from PIL import Image

    coarse = rng.integers(60, 196, size=(4, 4, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float32)
    field = 0.55 * field + 0.45 * 128  # muted: object colours stay the saturated ones
    field += rng.normal(0.0, 6.0, size=field.shape)
    return np.clip(field, 0, 255).astype(np.uint8)


def _draw_clutter(draw, rng: np.random.Generator, size: int) -> None:
    for _ in range(int(rng.integers(3, 9))):
        tone = tuple(int(v) for v in rng.integers(70, 170, size=3))
        points = [tuple(int(v) for v in rng.integers(0, size, size=2)) for _ in range(2)]
        if rng.random() < 0.6:
            draw.line(points, fill=tone, width=int(rng.integers(1, 3)))
        else:
            (x0, y0), (x1, y1) = points
            draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=tone, width=1)


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in colour)


def _draw_shape(draw, shape: Shape, rng: np.random.Generator) -> None:
    x0, y0, x1, y1 = shape.x0, shape.y0, shape.x1 - 1, shape.y1 - 1
    w, h = x1 - x0, y1 - y0
    fill = _jitter(rng, shape.colour)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if shape.kind == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape.kind == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif shape.kind == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape.kind == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    elif shape.kind == "cross":
        bar_w, bar_h = max(1, round(w / 3)), max(1, round(h / 3))
        draw.rectangle([cx - bar_w / 2, y0, cx + bar_w / 2, y1], fill=fill)
        draw.rectangle([x0, cy - bar_h / 2, x1, cy + bar_h / 2], fill=fill)
    elif shape.kind == "ring":
        draw.ellipse([x0, y0, x1, y1], outline=fill, width=max(2, round(min(w, h) / 6)))
    else:  # pragma: no cover - kinds come from CLASSES
        raise ValueError(shape.kind)


def _place(rng: np.random.Generator, size: int, band: str, taken: list[tuple[int, int, int, int]]):
    """A free box (x0, y0, x1, y1) in ``band``, or None after a few tries."""
    low, high = _SIZE_BANDS[band]
    for _ in range(20):
        side = rng.uniform(low, high) * size
        aspect = rng.uniform(0.75, 1.33)
        w = int(np.clip(round(side * np.sqrt(aspect)), 4, size - 2))
        h = int(np.clip(round(side / np.sqrt(aspect)), 4, size - 2))
        x0 = int(rng.integers(0, size - w + 1))
        y0 = int(rng.integers(0, size - h + 1))
        box = (x0, y0, x0 + w, y0 + h)
        if all(_overlap(box, other) < 0.15 for other in taken):
            return box
    return None


def _overlap(a, b) -> float:
    """Intersection over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def _plan_image(rng: np.random.Generator, params: dict[str, Any]) -> list[Shape]:
    """Objects and distractors of one image, largest first (so small ones stay visible)."""
    size = params["imgsz"]
    bands = ["large"] if rng.random() < params["large_fraction"] else []
    bands += ["small" if rng.random() < 0.5 else "medium" for _ in range(int(rng.integers(1, params["max_objects"] + 1)) - len(bands))]
    bands = bands or ["medium"]
    shapes: list[Shape] = []
    taken: list[tuple[int, int, int, int]] = []
    for band in bands:
        box = _place(rng, size, band, taken)
        if box is None:
            continue
        taken.append(box)
        index = int(rng.integers(len(CLASSES)))
        _, kind, colour = CLASSES[index]
        shapes.append(Shape(kind, colour, *box, class_index=index))
    for _ in range(int(rng.poisson(params["distractors"]))):
        box = _place(rng, size, "small" if rng.random() < 0.5 else "medium", taken)
        if box is None:
            continue
        taken.append(box)
        shape_of = int(rng.integers(len(CLASSES)))
        if rng.random() < 0.75:  # a class shape in another class's colour
            colour_of = (shape_of + int(rng.integers(1, len(CLASSES)))) % len(CLASSES)
            colour = CLASSES[colour_of][2]
        else:  # a grey shape
            grey = int(rng.integers(90, 200))
            colour = (grey, grey, grey)
        shapes.append(Shape(CLASSES[shape_of][1], colour, *box, class_index=None))
    shapes.sort(key=lambda s: -(s.x1 - s.x0) * (s.y1 - s.y0))
    return shapes


def render_image(seed: int, split: str, index: int, params: dict[str, Any]) -> tuple[bytes, list[GtBox]]:
    """JPEG bytes and the class boxes (pixels) of image ``index`` of ``split``."""
    from PIL import Image, ImageDraw

    split_id = {"train": 0, "val": 1}[split]
    rng = np.random.default_rng([int(seed), split_id, int(index), GENERATOR_VERSION])
    size = params["imgsz"]
    image = Image.fromarray(_background(rng, size))
    draw = ImageDraw.Draw(image)
    _draw_clutter(draw, rng, size)
    boxes = []
    for shape in _plan_image(rng, params):
        _draw_shape(draw, shape, rng)
        if shape.class_index is not None:
            boxes.append(GtBox(shape.class_index, shape.x0, shape.y0, shape.x1 - shape.x0, shape.y1 - shape.y0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=params["jpeg_quality"])
    return buffer.getvalue(), boxes


# ------------------------------------------------------------------------------ writing
def _label_text(boxes: list[GtBox], size: int) -> str:
    return "".join(
        f"{b.class_index} {(b.x + b.w / 2) / size:.6f} {(b.y + b.h / 2) / size:.6f} {b.w / size:.6f} {b.h / size:.6f}\n"
        for b in boxes
    )


def _content_hash(folder: Path, files: list[str]) -> str | None:
    """sha256 over the listed files (path and bytes); None when one is missing."""
    digest = hashlib.sha256()
    for relative in files:
        path = folder / relative
        if not path.is_file():
            return None
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _request(seed: int, params: dict[str, Any]) -> dict:
    return {"generator_version": GENERATOR_VERSION, "seed": int(seed), **dict(sorted(params.items()))}


def _up_to_date(folder: Path, request: dict) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    if not manifest.get("complete") or manifest.get("generator") != request:
        return False
    yaml_path = folder / DATA_YAML_NAME
    if not yaml_path.is_file() or yaml_path.read_text() != _data_yaml(folder):
        return False  # moved: the absolute path inside data.yaml would be wrong
    files = manifest.get("files") or []
    return bool(files) and _content_hash(folder, files) == manifest.get("content_sha256")


def prepare_synthetic(
    root: str | Path | None = None,
    *,
    seed: int = 0,
    force: bool = False,
    num_train: int = DEFAULTS["num_train"],
    num_val: int = DEFAULTS["num_val"],
    imgsz: int = DEFAULTS["imgsz"],
    **options: Any,
) -> Path:
    """Generate (or reuse) ``ROOT/synthetic`` and return its data YAML path.

    Args:
        root: data root (default: ``$SCSA_YOLO_DATA`` or ``./datasets``).
        seed: everything drawn follows from it.
        force: regenerate even when the files on disk match.
        num_train, num_val: images per split.
        imgsz: side of the square images in pixels (COCO size bands assume ~160).
        **options: ``max_objects``, ``distractors``, ``large_fraction``, ``jpeg_quality``
            (see :data:`DEFAULTS`).

    Raises:
        SyntheticOptionError: an unknown option or a bad value.
    """
    params = _check_options(num_train, num_val, imgsz, options)
    root_path = Path(root).expanduser() if root is not None else default_data_root()
    folder = dataset_dir(NAME, root_path).absolute()
    request = _request(seed, params)
    if not force and _up_to_date(folder, request):
        return folder / DATA_YAML_NAME

    staging = folder.with_name(f".{NAME}.partial.{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    try:
        manifest = _write(staging, folder, seed, params, request)
        write_json_atomic(manifest, staging / MANIFEST_NAME)
        _swap(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder / DATA_YAML_NAME


def _write(staging: Path, final: Path, seed: int, params: dict[str, Any], request: dict) -> dict:
    files: list[str] = []
    splits: dict[str, dict] = {}
    for split, count in (("train", params["num_train"]), ("val", params["num_val"])):
        (staging / "images" / split).mkdir(parents=True)
        (staging / "labels" / split).mkdir(parents=True)
        gt_images, per_class, background, image_bytes = [], Counter(), 0, 0
        for index in range(count):
            stem = f"{split}_{index:05d}"
            data, boxes = render_image(seed, split, index, params)
            (staging / "images" / split / f"{stem}.jpg").write_bytes(data)
            (staging / "labels" / split / f"{stem}.txt").write_text(_label_text(boxes, params["imgsz"]))
            files += [f"images/{split}/{stem}.jpg", f"labels/{split}/{stem}.txt"]
            gt_images.append(GtImage(f"{stem}.jpg", params["imgsz"], params["imgsz"], boxes))
            per_class.update(b.class_index for b in boxes)
            background += not boxes
            image_bytes += len(data)
        write_coco_gt(gt_images, CLASS_NAMES, ground_truth_path(staging, split))
        files.append(f"annotations/{split}.json")
        boxes_total = sum(per_class.values())
        splits[split] = {
            "images": count,
            "background_images": background,
            "boxes": boxes_total,
            "gt_boxes": boxes_total,
            "ignore_regions": 0,
            "boxes_per_class": {name: per_class.get(i, 0) for i, name in enumerate(CLASS_NAMES)},
            "ignore_per_class": {name: 0 for name in CLASS_NAMES},
            "annotations": f"annotations/{split}.json",
            "image_bytes": image_bytes,
            "boxes_per_size": _size_counts(gt_images),
        }
    (staging / DATA_YAML_NAME).write_text(_data_yaml(final))
    files.append(DATA_YAML_NAME)
    from .. import __version__

    return {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "complete": True,
        "dataset": NAME,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "scsa_yolo_version": __version__,
        "request": {"splits": ["train", "val"], "options": request},
        "generator": request,
        "classes": list(CLASS_NAMES),
        "data_yaml": DATA_YAML_NAME,
        "notes": [
            "generated by scsa_yolo.data.synthetic (no source files); distractors are not labelled",
        ],
        "splits": splits,
        "files": files,
        "content_sha256": _content_hash(staging, files),
    }


def _size_counts(images: list[GtImage]) -> dict[str, int]:
    """Boxes per COCO area band (small < 32^2 <= medium < 96^2 <= large)."""
    counts = Counter()
    for image in images:
        for box in image.boxes:
            area = box.w * box.h
            counts["small" if area < 32**2 else "medium" if area < 96**2 else "large"] += 1
    return {band: counts.get(band, 0) for band in ("small", "medium", "large")}


def _data_yaml(final: Path) -> str:
    import yaml

    data = {
        "path": str(final.resolve()),
        "train": "images/train",
        "val": "images/val",
        "nc": len(CLASS_NAMES),
        "names": dict(enumerate(CLASS_NAMES)),
    }
    return (
        "# synthetic: generated by scsa-yolo (scsa-yolo data prepare synthetic); see manifest.json\n"
        "# COCO ground truth per split: annotations/<split>.json\n"
        + yaml.safe_dump(data, sort_keys=False)
    )


def _swap(staging: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".{NAME}.old.{os.getpid()}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
