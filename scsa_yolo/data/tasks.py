"""Whether a dataset can train a model of a given task, said before Ultralytics starts.

* ``segment`` needs polygon labels for every object of the train and val splits (Ultralytics
  stops with a traceback otherwise, after building the model);
* ``classify`` needs a folder of class folders (``DIR/train/<class>/``), not a data YAML;
* the other tasks need a data YAML, not a classification folder.

A prepared dataset answers from its manifest (objects and masks per split); any other data
YAML from its label files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from scsa_yolo.errors import ScsaYoloError

from .layout.paths import MANIFEST_NAME, is_class_folder

#: how to get data each task can train on, for the messages
_PREPARE_MASKS = (
    "Prepare a dataset with masks: `scsa-yolo data prepare synthetic` (a polygon for every object; also "
    "synthetic-lowlight, -tiny, -thermal) or `scsa-yolo data prepare coco` (COCO's instance polygons), "
    "or train a detection model on this one."
)
_PREPARE_FOLDERS = (
    "Prepare one with `scsa-yolo data prepare synthetic-cls` (generated) or "
    "`scsa-yolo data prepare imagefolder --source DIR` (DIR/train/<class>/ and DIR/val/<class>/)."
)


class DatasetTaskError(ScsaYoloError, ValueError):
    """A dataset a model of the requested task cannot train on; the message says how to get one."""

    usage = True


def check_data_for_task(data: str | Path, task: str, splits: tuple[str, ...] = ("train", "val")) -> None:
    """Raise :class:`DatasetTaskError` unless ``data`` (a data YAML or a folder) can train
    ``task`` (an Ultralytics task name) on ``splits``.

    Raises:
        DatasetTaskError: a classification folder for a box task or the reverse, or a split
            of a segmentation dataset whose objects have no polygons (named, with how to
            prepare one).
    """
    path = Path(data)
    folder_given = path.is_dir()
    if task == "classify":
        if not folder_given:
            raise DatasetTaskError(
                f"{data}: a classification model trains on a folder of class folders (DIR/train/<class>/*.jpg), "
                f"not a data YAML. {_PREPARE_FOLDERS}"
            )
        if not is_class_folder(path):
            raise DatasetTaskError(f"{data}: no train/<class>/ folders in it. {_PREPARE_FOLDERS}")
        return
    if folder_given:
        raise DatasetTaskError(
            f"{data}: a folder; a {task} model trains on a data YAML (images/ and labels/), while class folders "
            f"train a classification model (yolov8n-cls). Pass the dataset's data.yaml."
        )
    if task == "segment":
        for split in splits:
            _require_masks(path, split)


def _require_masks(data_yaml: Path, split: str) -> None:
    manifest = _manifest_beside(data_yaml)
    if manifest is not None and split in manifest.get("splits", {}):
        counts = manifest["splits"][split]
        name = manifest.get("dataset", data_yaml.parent.name)
        if "masks" not in counts:
            raise DatasetTaskError(
                f"{data_yaml}: split '{split}' of '{name}' was prepared before scsa-yolo wrote masks (box labels "
                f"only). Prepare it again: `scsa-yolo data prepare {name} --force`"
            )
        if counts["boxes"] and counts["masks"] < counts["boxes"]:
            what = "none" if not counts["masks"] else f"only {counts['masks']}"
            raise DatasetTaskError(
                f"{data_yaml}: split '{split}' of '{name}' has masks for {what} of its {counts['boxes']} objects "
                f"(its source has boxes only), and a segmentation model needs a polygon for each. {_PREPARE_MASKS}"
            )
        return
    boxes, polygons, example = _count_label_kinds(data_yaml, split)
    if boxes:
        raise DatasetTaskError(
            f"{data_yaml}: split '{split}' has {boxes} object{'s' if boxes != 1 else ''} without masks (box labels "
            f"'class cx cy w h', e.g. "
            f"{example}); a segmentation model needs a polygon label 'class x1 y1 x2 y2 ...' for each object. "
            f"{_PREPARE_MASKS}"
        )


def _manifest_beside(data_yaml: Path) -> dict | None:
    """The manifest of a prepared dataset whose data YAML this is (None for other YAMLs)."""
    path = data_yaml.parent / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("data_yaml") == data_yaml.name else None


def _count_label_kinds(data_yaml: Path, split: str) -> tuple[int, int, Path | None]:
    """Box lines and polygon lines in the labels of ``split`` (Ultralytics' images -> labels
    rule), and the first label file holding a box line."""
    from scsa_yolo.eval.ground_truth import split_image_files
    from scsa_yolo.integration.datasets import read_data_yaml

    try:
        data = read_data_yaml(data_yaml)
        files, _ = split_image_files(data, split)
    except (FileNotFoundError, ValueError, SyntaxError, TypeError) as error:
        raise DatasetTaskError(f"{data_yaml}: split '{split}' cannot be read ({error})") from None
    boxes = polygons = 0
    example = None
    for image in files:
        label = _label_path(image)
        if not label.is_file():
            continue
        for line in label.read_text(encoding="utf-8-sig").splitlines():
            values = len(line.split())
            if values == 5:
                boxes += 1
                example = example or label
            elif values > 6:
                polygons += 1
    return boxes, polygons, example


def _label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``/images/`` of the path becomes ``/labels/``, suffix ``.txt``."""
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(labels.join(str(image).rsplit(images, 1)).rsplit(".", 1)[0] + ".txt")
