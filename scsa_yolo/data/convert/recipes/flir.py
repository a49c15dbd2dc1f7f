"""Teledyne FLIR ADAS v2: thermal (default) or RGB camera, classes from the annotations.

Source: ``FLIR_ADAS_v2/{images_thermal_train, images_thermal_val, video_thermal_test}/``
(``images_rgb_train``, ``images_rgb_val``, ``video_rgb_test`` for ``--modality rgb``),
each with ``data/`` (images) and ``coco.json`` (COCO format). The download needs the
vendor's form, so ``--source`` is required.

Classes: the category list in ``coco.json`` is long and its ids are sparse; only some
categories carry boxes. The classes are the categories with at least one box in the
prepared splits, ordered by category id. The data YAML records the YOLO index -> FLIR
category id mapping as ``flir_category_ids`` (and the camera as ``flir_modality``).
Boxes with zero width or height are dropped and counted (``zero_area``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from scsa_yolo.data.fetch.download import RemoteFile
from scsa_yolo.data.fetch.sources import SourceTree, load_json
from ..events import ConversionLog, ZERO_AREA
from .base import Conversion, ConvertedImage, Recipe, RecipeOption
from .coco import convert_coco_json

FORM_URL = "https://www.flir.com/oem/adas/adas-dataset-form/"
SPLIT_FOLDERS = {
    "thermal": {"train": "images_thermal_train", "val": "images_thermal_val", "test": "video_thermal_test"},
    "rgb": {"train": "images_rgb_train", "val": "images_rgb_val", "test": "video_rgb_test"},
}


def derive_classes(splits: dict[str, dict]) -> tuple[list[str], dict[int, int]]:
    """Class names and ``{category_id: yolo_index}`` from COCO dicts: categories with boxes.

    A category counts when at least one of its boxes has positive width and height.
    """
    names: dict[int, str] = {}
    used: set[int] = set()
    for data in splits.values():
        for category in data.get("categories", []):
            names.setdefault(int(category["id"]), str(category.get("name", category["id"])))
        for ann in data.get("annotations", []):
            try:
                w, h = float(ann["bbox"][2]), float(ann["bbox"][3])
                if w > 0 and h > 0:
                    used.add(int(ann["category_id"]))
            except (KeyError, TypeError, ValueError, IndexError):
                continue
    ordered = sorted(cid for cid in used if cid in names)
    return [names[cid] for cid in ordered], {cid: i for i, cid in enumerate(ordered)}


class FlirRecipe(Recipe):
    name = "flir"
    title = "Teledyne FLIR ADAS v2"
    homepage = "https://www.flir.com/oem/adas/adas-dataset-form/"
    classes = None  # derived from the annotations
    splits = ("train", "val", "test")
    eval_splits = ("val", "test")
    remote_files = (
        RemoteFile("FLIR_ADAS_v2.zip", None, manual=f"FLIR_ADAS_v2.zip: request it with the form at {FORM_URL}"),
    )
    options = (
        RecipeOption("modality", "thermal", "FLIR: which camera's images to convert.", ("thermal", "rgb")),
    )
    manual_help = (
        "FLIR ADAS v2 is distributed only after filling in a form. Request it at\n"
        f"  {FORM_URL}\n"
        "download FLIR_ADAS_v2.zip (or extract it to FLIR_ADAS_v2/), put it in a folder, e.g.\n"
        "~/Downloads/flir/, and run\n"
        "  scsa-yolo data prepare flir --source ~/Downloads/flir   [--modality rgb]"
    )

    def convert(self, tree: SourceTree, splits: list[str], options: dict, log: ConversionLog) -> Conversion:
        modality = options["modality"]
        located: dict[str, Path] = {}
        for split in splits:
            folder_name = SPLIT_FOLDERS[modality][split]
            folder = tree.find_dir(folder_name, contains=("coco.json",))
            if folder is None:
                raise self.split_missing(split, splits, f"{folder_name}/ with coco.json (modality {modality})", tree.roots)
            located[split] = folder
        data = {split: load_json(folder / "coco.json") for split, folder in located.items()}
        classes, id_to_class = derive_classes(data)
        totals = {split: len(d.get("images", [])) for split, d in data.items()}
        extra = {
            "flir_modality": modality,
            "flir_category_ids": {index: category_id for category_id, index in id_to_class.items()},
        }
        notes = [f"{len(classes)} classes with boxes out of {len(_categories(data))} categories in coco.json"]
        return Conversion(classes, self._images(located, data, id_to_class, classes, log), totals, extra, notes)

    def _images(
        self, located: dict[str, Path], data: dict[str, dict], id_to_class: dict[int, int], classes: list[str],
        log: ConversionLog,
    ) -> Iterator[tuple[str, ConvertedImage]]:
        for split, folder in located.items():
            yield from convert_coco_json(
                data[split], folder / "coco.json", folder, split, id_to_class, classes, log, zero_area_reason=ZERO_AREA
            )


def _categories(data: dict[str, dict]) -> set[int]:
    return {int(c["id"]) for d in data.values() for c in d.get("categories", [])}
