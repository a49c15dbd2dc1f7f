"""Where prepared datasets live, and how a dataset name or path resolves to a data YAML.

Every prepared dataset, whatever its source, has the same on-disk shape::

    ROOT/NAME/data.yaml               Ultralytics data YAML (absolute ``path``)
    ROOT/NAME/images/{split}/...      images
    ROOT/NAME/labels/{split}/...      YOLO labels, one .txt per image
    ROOT/NAME/annotations/{split}.json  COCO-format ground truth (ignore regions as iscrowd=1)
    ROOT/NAME/manifest.json           what was converted, skipped, clipped or re-mapped

except a classification dataset, which is class folders (``ROOT/NAME/{split}/<class>/...``
and its manifest), the folder being what ``yolo classify train data=`` takes.

ROOT defaults to ``./datasets`` and is overridden by ``--root`` or ``SCSA_YOLO_DATA``.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

from scsa_yolo.errors import ScsaYoloError

DATA_ROOT_ENV = "SCSA_YOLO_DATA"
DATA_YAML_NAME = "data.yaml"
MANIFEST_NAME = "manifest.json"


class DatasetNotPrepared(ScsaYoloError, FileNotFoundError):
    """A dataset name or data YAML that is not on disk.

    ``known``: the name is one ``scsa-yolo data prepare`` accepts (so preparing it is the
    fix); False for a data YAML path or a name that is no dataset (a typo).
    """

    usage = True

    def __init__(self, message: str, known: bool = False) -> None:
        super().__init__(message)
        self.known = known


def default_data_root() -> Path:
    """The data root: ``$SCSA_YOLO_DATA`` if set, else ``./datasets``."""
    return Path(os.environ.get(DATA_ROOT_ENV) or Path.cwd() / "datasets").expanduser()


def dataset_dir(name: str, root: str | Path | None = None) -> Path:
    """Folder of the dataset ``name`` under ``root`` (default root when None)."""
    return Path(root).expanduser() / name if root is not None else default_data_root() / name


def data_yaml_path(name: str, root: str | Path | None = None) -> Path:
    """Path of the Ultralytics data YAML of a prepared dataset."""
    return dataset_dir(name, root) / DATA_YAML_NAME


def ground_truth_path(dataset_folder: str | Path, split: str) -> Path:
    """COCO-format ground-truth JSON of ``split`` inside a prepared dataset folder."""
    return Path(dataset_folder) / "annotations" / f"{split}.json"


def manifest_path(dataset_folder: str | Path) -> Path:
    """Manifest JSON of a prepared dataset folder."""
    return Path(dataset_folder) / MANIFEST_NAME


def is_class_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is a classification dataset: a ``train/`` folder holding class folders."""
    train = Path(folder) / "train"
    return train.is_dir() and any(child.is_dir() for child in train.iterdir())


def resolve_data(name_or_path: str | Path, root: str | Path | None = None) -> Path:
    """Turn ``--data`` into what Ultralytics' ``data=`` takes: a data YAML, or the folder of
    a classification dataset.

    ``name_or_path`` is a path to an existing data YAML (any Ultralytics dataset), the name
    of a dataset prepared under ``root``, or the path of a folder of class folders.

    Raises:
        DatasetNotPrepared: the name is not prepared; the message gives the command that
            prepares it.
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in {".yaml", ".yml"}:
        if candidate.is_file():
            return candidate.resolve()
        raise DatasetNotPrepared(f"data YAML not found: {candidate}")
    prepared = data_yaml_path(str(name_or_path), root)
    if prepared.is_file():
        return prepared.resolve()
    folder = dataset_dir(str(name_or_path), root)
    if manifest_path(folder).is_file() and is_class_folder(folder):
        return folder.resolve()
    if is_class_folder(candidate):
        return candidate.resolve()
    raise not_prepared(str(name_or_path), prepared, root)


def not_prepared(name: str, prepared: Path, root: str | Path | None) -> DatasetNotPrepared:
    """The error for a dataset name with no data YAML at ``prepared``: the command that
    prepares it, or, for a name that is no dataset, the closest dataset names."""
    from scsa_yolo.data.convert.recipes import dataset_names, get_recipe, recipe_names

    names = dataset_names()
    if name.lower() in names:
        root_flag = f" --root {root}" if root is not None else ""
        missing = prepared.parent / MANIFEST_NAME if get_recipe(name).task == "classify" else prepared
        return DatasetNotPrepared(
            f"dataset '{name}' is not prepared under {prepared.parent.parent} "
            f"(no {missing}). Prepare it with: scsa-yolo data prepare {name}{root_flag}", known=True)
    close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
    hint = f"Did you mean {close[0]}? " if close else ""
    return DatasetNotPrepared(
        f"unknown dataset '{name}': not a data YAML and not prepared under {prepared.parent.parent}. {hint}"
        f"Known datasets: {', '.join(recipe_names('detect'))} (prepare one with `scsa-yolo data prepare NAME`), "
        f"for classification {', '.join(recipe_names('classify'))}; "
        "or pass the path of an Ultralytics data YAML or of a folder of class folders.")
