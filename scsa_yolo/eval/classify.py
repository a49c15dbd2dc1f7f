"""Classification accuracy: top-1, top-5 and accuracy per class, the columns of the paper's Table 2.

``classification_metrics`` scores ranked predictions (each image's classes, most likely
first) against the true classes; ``classification_folder`` finds the folder a
classification dataset lives in (``train/<class>/``, ``val/<class>/``), which is what
Ultralytics' classification trainer and validator take instead of a data YAML.

Top-5 is undefined (None) for a model of five classes or fewer: every class is then among
the top five and the figure is 100% whatever the model does.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from scsa_yolo.data.convert.images import IMAGE_SUFFIXES

TOP_K = 5


@dataclass
class ClassificationMetrics:
    """Accuracy of one evaluation, fractions in [0, 1].

    Attributes:
        top1: share of images whose most likely class is the true one.
        top5: share whose true class is among the five most likely; None with five classes
            or fewer.
        per_class: top-1 accuracy per class name over that class's images (None for a class
            without images in the split).
        per_class_images: images of each class in the split.
        n_images: images scored.
        n_classes: classes of the model.
    """

    top1: float
    top5: float | None
    per_class: dict[str, float | None] = field(default_factory=dict)
    per_class_images: dict[str, int] = field(default_factory=dict)
    n_images: int = 0
    n_classes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classification_metrics(targets: Sequence[int] | np.ndarray, ranked: Sequence[Sequence[int]] | np.ndarray,
                           names: Mapping[int, str] | Sequence[str]) -> ClassificationMetrics:
    """Top-1, top-5 and per-class accuracy.

    Args:
        targets: (N,) true class index of each image.
        ranked: (N, K) class indices of each image, most likely first (K >= 1; top-5 reads
            the first five).
        names: class index -> name (a mapping or a list), the model's classes.

    Raises:
        ValueError: no images, or ``targets`` and ``ranked`` of different lengths.
    """
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim == 1:
        ranked = ranked[:, None]
    if len(targets) == 0:
        raise ValueError("no images to score")
    if len(ranked) != len(targets):
        raise ValueError(f"{len(targets)} targets but {len(ranked)} ranked predictions")
    names = dict(enumerate(names)) if not isinstance(names, Mapping) else dict(names)
    hit_top1 = ranked[:, 0] == targets
    top5 = None
    if len(names) > TOP_K:
        top5 = float((ranked[:, :TOP_K] == targets[:, None]).any(axis=1).mean())
    per_class, per_class_images = {}, {}
    for index in sorted(names):
        mine = targets == index
        per_class_images[str(names[index])] = int(mine.sum())
        per_class[str(names[index])] = float(hit_top1[mine].mean()) if mine.any() else None
    return ClassificationMetrics(float(hit_top1.mean()), top5, per_class, per_class_images, len(targets), len(names))


def classification_folder(data: str | Path) -> Path:
    """The folder of a classification dataset (the one holding ``train/`` and ``val/``).

    ``data`` is that folder, or a data YAML inside or beside it (a prepared dataset's
    ``data.yaml``): its ``path`` key when it has one, else the YAML's own folder.

    Raises:
        FileNotFoundError: neither a folder nor a YAML, or no ``train``/``val`` folder there.
    """
    import yaml

    given = Path(data).expanduser()
    folder = given
    if given.is_file() and given.suffix in (".yaml", ".yml"):
        content = yaml.safe_load(given.read_text()) or {}
        root = content.get("path") if isinstance(content, dict) else None
        folder = (given.parent / root) if root else given.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"classification data {data} is neither a folder nor a data YAML")
    if not any((folder / split).is_dir() for split in ("train", "val")):
        raise FileNotFoundError(f"classification data {folder} has no train/ or val/ folder; a classification "
                                "dataset holds train/<class>/ and val/<class>/ image folders")
    return folder.resolve()


def split_images(folder: Path, split: str) -> list[Path]:
    """Image files of ``folder/split/<class>/`` (what Ultralytics' classification dataset reads).

    Raises:
        FileNotFoundError: no such split folder.
    """
    split_dir = folder / split
    if not split_dir.is_dir():
        available = sorted(p.name for p in folder.iterdir() if p.is_dir())
        raise FileNotFoundError(f"split '{split}' is not a folder of {folder} (folders: {available})")
    return sorted(p.resolve() for p in split_dir.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
