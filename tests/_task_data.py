"""Tiny hand-made datasets for the segmentation, classification, pose and OBB tests (issue 29).

* :func:`write_seg_dataset`: noise images with filled polygons of two classes, Ultralytics'
  polygon label lines, and (``ground_truth=True``) a prepared dataset's COCO ground truth
  ``annotations/val.json`` whose annotations carry those polygons as ``segmentation``.
* :func:`write_cls_dataset`: ``train/<class>/`` and ``val/<class>/`` folders of images whose
  colour is the class (six classes, so that top-5 is defined).
* :func:`write_pose_dataset` and :func:`write_obb_dataset`: the synthetic generator's images
  (its shapes come with exact polygons) with labels derived from each shape's polygon:
  three keypoints (top, left and right vertex) for pose, the corners of the polygon's
  minimum-area rectangle for OBB. No pose or OBB recipe exists; these only feed the one-epoch
  training tests.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SEG_NAMES = ("red", "green")
SEG_COLOURS = ((230, 40, 40), (40, 230, 40))
CLS_COLOURS = {"red": (220, 30, 30), "green": (30, 220, 30), "blue": (30, 30, 220), "yellow": (220, 220, 30),
               "cyan": (30, 220, 220), "magenta": (220, 30, 220)}


def _polygon(rng: np.random.Generator, width: int, height: int) -> list[tuple[float, float]]:
    """A convex-ish polygon (a triangle or a quadrilateral) inside the image, in pixels."""
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    radius = rng.uniform(0.15, 0.28) * min(width, height)
    corners = int(rng.integers(3, 5))
    angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
    return [(float(cx + radius * np.cos(a)), float(cy + radius * np.sin(a))) for a in angles]


def write_seg_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: tuple[int, int] = (64, 64),
                      val_size: tuple[int, int] | None = None, ground_truth: bool = True) -> Path:
    """A segmentation dataset under ``root`` (``data.yaml``, ``images/``, ``labels/`` and
    maybe ``annotations/val.json``); returns the data YAML. ``size``/``val_size`` are
    (width, height); a val size unlike the training size exercises the letterbox."""
    rng = np.random.default_rng(0)
    gt = {"images": [], "annotations": [],
          "categories": [{"id": i + 1, "name": n, "yolo_index": i} for i, n in enumerate(SEG_NAMES)]}
    for split, count, (width, height) in (("train", n_train, size), ("val", n_val, val_size or size)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            name = f"{split}{index}.png"
            image = Image.fromarray(rng.integers(0, 60, (height, width, 3), dtype=np.uint8))
            draw = ImageDraw.Draw(image)
            lines = []
            if split == "val":
                gt["images"].append({"id": index + 1, "file_name": name, "width": width, "height": height})
            for cls in (index % 2, (index + 1) % 2):
                points = _polygon(rng, width, height)
                draw.polygon(points, fill=SEG_COLOURS[cls])
                lines.append(f"{cls} " + " ".join(f"{x / width:.6f} {y / height:.6f}" for x, y in points))
                if split == "val":
                    xs, ys = [p[0] for p in points], [p[1] for p in points]
                    box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
                    gt["annotations"].append({
                        "id": len(gt["annotations"]) + 1, "image_id": index + 1, "category_id": cls + 1,
                        "bbox": box, "area": box[2] * box[3], "iscrowd": 0,
                        "segmentation": [[c for point in points for c in point]],
                    })
            image.save(root / "images" / split / name)
            (root / "labels" / split / name.replace(".png", ".txt")).write_text("\n".join(lines) + "\n")
    if ground_truth:
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / "val.json").write_text(json.dumps(gt))
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(SEG_NAMES))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return root / "data.yaml"


def write_cls_dataset(root: Path, n_train: int = 4, n_val: int = 2, size: int = 32) -> Path:
    """A classification dataset folder (``train/<class>/``, ``val/<class>/``); returns ``root``."""
    rng = np.random.default_rng(1)
    for split, count in (("train", n_train), ("val", n_val)):
        for name, colour in CLS_COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = np.clip(np.array(colour) + rng.integers(-25, 25, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{name}{index}.png")
    return root


def _synthetic_images(root: Path, n_train: int, n_val: int, size: int):
    """Write the synthetic generator's first images of each split under ``root/images/<split>/``
    and yield ``(split, label path, class boxes with polygons)`` per image."""
    from scsa_yolo.data.convert.recipes.synthetic import DEFAULTS, render_image

    params = {**DEFAULTS, "imgsz": size}
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            jpeg, boxes = render_image(0, split, index, params)
            (root / "images" / split / f"{split}{index}.jpg").write_bytes(jpeg)
            yield split, root / "labels" / split / f"{split}{index}.txt", boxes


def _synthetic_data_yaml(root: Path, extra: str = "") -> Path:
    from scsa_yolo.data.convert.recipes.synthetic import CLASS_NAMES

    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASS_NAMES))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\n{extra}names:\n{names}")
    return root / "data.yaml"


def write_pose_dataset(root: Path, n_train: int = 4, n_val: int = 2, size: int = 64) -> Path:
    """A pose dataset (``kpt_shape: [3, 3]``): per shape its box and three visible keypoints,
    the polygon's top, leftmost and rightmost vertex (a horizontal flip swaps the last two:
    ``flip_idx: [0, 2, 1]``). Returns the data YAML."""
    for _split, label, boxes in _synthetic_images(root, n_train, n_val, size):
        lines = []
        for box in boxes:
            xy = np.asarray(box.mask.polygons[0], dtype=float).reshape(-1, 2)
            points = [xy[xy[:, 1].argmin()], xy[xy[:, 0].argmin()], xy[xy[:, 0].argmax()]]
            keypoints = " ".join(f"{x / size:.6f} {y / size:.6f} 2" for x, y in points)
            lines.append(f"{box.class_index} {(box.x + box.w / 2) / size:.6f} {(box.y + box.h / 2) / size:.6f} "
                         f"{box.w / size:.6f} {box.h / size:.6f} {keypoints}")
        label.write_text("".join(f"{line}\n" for line in lines))
    return _synthetic_data_yaml(root, "kpt_shape: [3, 3]\nflip_idx: [0, 2, 1]\n")


def write_obb_dataset(root: Path, n_train: int = 4, n_val: int = 2, size: int = 64) -> Path:
    """An OBB dataset: per shape the four corners of its polygon's minimum-area rectangle
    (``class x1 y1 x2 y2 x3 y3 x4 y4``, normalised). A rotated rectangle around a shape near the
    border can reach past it; its corners are clipped to the image (Ultralytics refuses
    coordinates outside 0..1 and fits the rectangle again from the corners). Returns the data YAML."""
    import cv2

    for _split, label, boxes in _synthetic_images(root, n_train, n_val, size):
        lines = []
        for box in boxes:
            xy = np.asarray(box.mask.polygons[0], dtype=np.float32).reshape(-1, 2)
            corners = np.clip(cv2.boxPoints(cv2.minAreaRect(xy)) / size, 0.0, 1.0)
            lines.append(f"{box.class_index} " + " ".join(f"{v:.6f}" for v in corners.reshape(-1)))
        label.write_text("".join(f"{line}\n" for line in lines))
    return _synthetic_data_yaml(root)
