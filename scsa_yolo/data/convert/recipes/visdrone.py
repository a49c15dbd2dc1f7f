"""VisDrone2019-DET: drone images, 10 classes, ignore regions.

Source layout: ``VisDrone2019-DET-{train,val,test-dev}/images/*.jpg`` and
``annotations/*.txt`` with one box per line::

    bbox_left,bbox_top,bbox_width,bbox_height,score,object_category,truncation,occlusion

(some lines end with a trailing comma). Categories 1..10 are the benchmark classes
(YOLO 0..9). Category 0 ("ignored region") and any box with score 0 are areas where
detections are not judged: they become ``iscrowd`` ignore regions in the ground truth,
one per class (pycocotools matches crowd regions per category, so a class-agnostic region
needs a copy for every class), and never training labels.

Category 11 ("others": objects outside the 10 classes) follows ``--others``:

* ``ignore`` (default): like category 0, an ignore region for every class, no training
  label. A detector that calls an "others" vehicle a car is then neither rewarded nor
  penalised, and nothing teaches it that the object is background.
* ``drop``: no label, no ground truth (the official toolkit's treatment: a detection there
  counts as a false positive).
* ``class``: an 11th class ``others``, trained and evaluated like the rest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from scsa_yolo.data.fetch.download import RemoteFile
from scsa_yolo.data.fetch.sources import SourceTree
from ..boxes import GtBox, fit_box_to_image
from ..events import (
    ACTION_DROPPED,
    ACTION_IGNORE,
    ACTION_KEPT,
    IGNORED_REGION,
    MALFORMED,
    NO_ANNOTATION,
    OTHERS,
    UNKNOWN_CLASS,
    ConversionLog,
)
from ..images import IMAGE_SUFFIXES
from .base import Conversion, ConvertedImage, Recipe, RecipeOption, measure_image

ULTRALYTICS_ASSETS = "https://github.com/ultralytics/assets/releases/download/v0.0.0"  # cfg/datasets/VisDrone.yaml

CLASSES = ("pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle", "awning-tricycle", "bus", "motor")
SPLIT_FOLDERS = {"train": "VisDrone2019-DET-train", "val": "VisDrone2019-DET-val", "test": "VisDrone2019-DET-test-dev"}
OTHERS_CATEGORY = 11


class VisDroneRecipe(Recipe):
    name = "visdrone"
    title = "VisDrone2019-DET"
    homepage = "https://github.com/VisDrone/VisDrone-Dataset"
    classes = CLASSES
    splits = ("train", "val", "test")
    eval_splits = ("val", "test")
    remote_files = tuple(
        RemoteFile(f"{folder}.zip", f"{ULTRALYTICS_ASSETS}/{folder}.zip", splits=(split,), note=count)
        for (split, folder), count in zip(SPLIT_FOLDERS.items(), ("6,471 images", "548 images", "1,610 images"))
    )
    options = (
        RecipeOption(
            "others",
            "ignore",
            "VisDrone category 11 ('others'): ignore = ignore region for every class in the ground "
            "truth, no training label; drop = neither; class = an 11th class 'others'.",
            ("ignore", "drop", "class"),
        ),
    )
    manual_help = (
        "VisDrone2019-DET: get VisDrone2019-DET-train.zip, VisDrone2019-DET-val.zip and "
        "VisDrone2019-DET-test-dev.zip (https://github.com/VisDrone/VisDrone-Dataset, or the "
        f"mirror {ULTRALYTICS_ASSETS}/), put them (or their extracted folders) in one folder "
        "and pass it with --source."
    )

    def convert(self, tree: SourceTree, splits: list[str], options: dict, log: ConversionLog) -> Conversion:
        classes = list(CLASSES) + (["others"] if options["others"] == "class" else [])
        folders = {}
        for split in splits:
            folder = tree.find_dir(SPLIT_FOLDERS[split], contains=("annotations",))
            if folder is None:
                raise self.split_missing(split, splits, f"folder {SPLIT_FOLDERS[split]}/ with annotations/", tree.roots)
            folders[split] = folder
        totals = {split: sum(1 for _ in (folders[split] / "annotations").glob("*.txt")) for split in splits}
        return Conversion(classes, self._images(folders, classes, options["others"], log), totals)

    def _images(
        self, folders: dict[str, Path], classes: list[str], others: str, log: ConversionLog
    ) -> Iterator[tuple[str, ConvertedImage]]:
        for split, folder in folders.items():
            images_dir = folder / "images"
            images = (
                {p.stem: p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
                if images_dir.is_dir()
                else {}
            )
            annotations = sorted((folder / "annotations").glob("*.txt"))
            annotated = {a.stem for a in annotations}
            for annotation in annotations:
                image_path = images.get(annotation.stem, images_dir / f"{annotation.stem}.jpg")
                size = measure_image(image_path, log, split=split, annotation_file=str(annotation))
                if size is None:
                    continue
                boxes = list(parse_annotation(annotation, size, len(classes), others, log, split))
                yield split, ConvertedImage(image_path, image_path.name, size[0], size[1], boxes)
            for stem in sorted(set(images) - annotated):
                image_path = images[stem]
                size = measure_image(image_path, log, split=split, annotation_file=str(image_path))
                if size is None:
                    continue
                log.record(
                    NO_ANNOTATION, ACTION_KEPT, str(image_path), split=split, image=image_path.name,
                    detail="no annotation file: kept as an image without objects",
                )
                yield split, ConvertedImage(image_path, image_path.name, size[0], size[1], [])


def parse_annotation(
    path: Path, size: tuple[int, int], num_classes: int, others: str, log: ConversionLog, split: str
) -> Iterator[GtBox]:
    """Boxes of one VisDrone annotation file (pixels, clipped; ignore regions flagged)."""
    width, height = size
    where = {"file": str(path), "split": split, "image": path.stem}
    for line_no, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]
        while fields and fields[-1] == "":
            fields.pop()  # trailing comma(s)
        try:
            if len(fields) < 6:
                raise ValueError
            x, y, w, h = (float(v) for v in fields[:4])
            score, category = int(float(fields[4])), int(float(fields[5]))
        except ValueError:
            log.record(MALFORMED, ACTION_DROPPED, line=line_no, detail=f"expected 8 comma-separated numbers, got {line!r}", **where)
            continue
        if category == 0 or score == 0 or (category == OTHERS_CATEGORY and others == "ignore"):
            reason = OTHERS if category == OTHERS_CATEGORY else IGNORED_REGION
            region = fit_box_to_image(GtBox(0, x, y, w, h, True), width, height, log, line=line_no, **where)
            if region is None:
                continue
            log.record(
                reason, ACTION_IGNORE, line=line_no,
                detail=f"category {category} score {score}: ignore region for every class", **where,
            )
            for class_index in range(num_classes):
                yield GtBox(class_index, region.x, region.y, region.w, region.h, True)
            continue
        if category == OTHERS_CATEGORY:
            if others == "drop":
                log.record(OTHERS, ACTION_DROPPED, line=line_no, detail="category 11 (others) dropped (--others drop)", **where)
                continue
            class_index = num_classes - 1  # --others class: the appended 'others' class
        elif 1 <= category <= 10:
            class_index = category - 1
        else:
            log.record(UNKNOWN_CLASS, ACTION_DROPPED, line=line_no, detail=f"category {category} is not 0..11", **where)
            continue
        box = fit_box_to_image(GtBox(class_index, x, y, w, h), width, height, log, line=line_no, **where)
        if box is not None:
            yield box
