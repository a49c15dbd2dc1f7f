"""ExDark (Exclusively Dark): 7,363 low-light images, 12 classes, the official split.

Source: the images (``ExDark.zip``: ``ExDark/<Class>/<image>``, mixed extensions jpg, JPG,
jpeg, JPEG, png) and the ground truth (``ExDark_Annno.zip``: ``ExDark_Annno/<Class>/
<image name>.txt``). Neither has to be in a particular folder: images and annotations are
matched by name, case-insensitively, because the annotation's name often differs in case
from the image's (``2015_00024.JPG`` vs ``2015_00024.jpg.txt``). An annotation named
after the image stem only (``2015_00024.txt``) is accepted too.

Annotation files start with a ``% bbGt version=3`` header, then one object per line:
``ClassName l t w h`` followed by seven more fields that do not matter here. ``l t w h``
are pixel coordinates, used as they are.

The split is the official one from ``imageclasslist.txt`` (shipped inside the package:
``scsa_yolo/resources/exdark-imageclasslist.txt``): column 5 is 1 train (3,000 images),
2 val (1,800), 3 test (2,563). ``--split-file`` uses another file of the same format.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Iterator

from scsa_yolo.data.fetch.download import RemoteFile
from scsa_yolo.data.fetch.sources import SourceMissing, SourceTree
from ..boxes import GtBox, fit_box_to_image
from ..events import (
    ACTION_DROPPED,
    ACTION_KEPT,
    ACTION_SKIPPED,
    MALFORMED,
    NO_ANNOTATION,
    NOT_IN_SPLIT,
    RENAMED_CLASS,
    UNKNOWN_CLASS,
    ConversionLog,
)
from ..images import IMAGE_SUFFIXES
from .base import Conversion, ConvertedImage, Recipe, RecipeOption, measure_image

CLASSES = ("Bicycle", "Boat", "Bottle", "Bus", "Car", "Cat", "Chair", "Cup", "Dog", "Motorbike", "People", "Table")
SPLIT_CODES = {"1": "train", "2": "val", "3": "test"}
PACKAGED_SPLIT_FILE = "exdark-imageclasslist.txt"

IMAGES_URL = "https://drive.google.com/file/d/1BHmPgu8EsHoFDDkMGLVoXIlCth2dW6Yx/view?usp=sharing"
ANNOTATIONS_URL = "http://www.cs-chan.com/source/CVIU/ExDark_Annno.zip"
REPOSITORY = "https://github.com/cs-chan/Exclusively-Dark-Image-Dataset"


def read_split_file(path: Path | None = None) -> dict[str, list[str]]:
    """Image names per split from an ``imageclasslist.txt`` (packaged copy when None).

    Raises:
        ValueError: a line that is not ``name class light inout split``, with file and line.
    """
    if path is None:
        text = resources.files("scsa_yolo").joinpath("resources", PACKAGED_SPLIT_FILE).read_text()
        label = f"scsa_yolo/resources/{PACKAGED_SPLIT_FILE}"
    else:
        text, label = Path(path).read_text(), str(path)
    splits: dict[str, list[str]] = {name: [] for name in SPLIT_CODES.values()}
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if line_no == 1 and not (len(fields) == 5 and fields[4] in SPLIT_CODES):
            continue  # header: "Name | Class | Light | In/Out | Train/Val/Test"
        if len(fields) != 5 or fields[4] not in SPLIT_CODES:
            raise ValueError(f"{label}:{line_no}: expected 'name class light inout split(1|2|3)', got {line.strip()!r}")
        splits[SPLIT_CODES[fields[4]]].append(fields[0])
    return splits


class ExDarkRecipe(Recipe):
    name = "exdark"
    title = "ExDark"
    homepage = REPOSITORY
    classes = CLASSES
    splits = ("train", "val", "test")
    eval_splits = ("val", "test")
    remote_files = (
        RemoteFile(
            "ExDark.zip", None, note="1.5 GB, 7,363 images",
            manual=f"images: ExDark.zip from Google Drive, {IMAGES_URL} (linked from {REPOSITORY}, Dataset/)",
        ),
        RemoteFile(
            "ExDark_Annno.zip", None, note="4.2 MB",
            manual=f"ground truth: ExDark_Annno.zip from {ANNOTATIONS_URL} (linked from {REPOSITORY}, Groundtruth/)",
        ),
    )
    options = (
        RecipeOption("split_file", "", "ExDark: split file in imageclasslist.txt format (default: the official one, packaged)."),
    )
    manual_help = (
        "ExDark has no direct download for its images (Google Drive needs a browser). Fetch\n"
        f"  1. ExDark.zip (images, 1.5 GB) from {IMAGES_URL}\n"
        f"  2. ExDark_Annno.zip (ground truth, 4.2 MB) from {ANNOTATIONS_URL}\n"
        f"(both linked from {REPOSITORY}), put them in one folder, e.g. ~/Downloads/exdark/, and run\n"
        "  scsa-yolo data prepare exdark --source ~/Downloads/exdark\n"
        "Extracted folders instead of the zips work too."
    )

    def convert(self, tree: SourceTree, splits: list[str], options: dict, log: ConversionLog) -> Conversion:
        split_file = Path(options["split_file"]).expanduser() if options["split_file"] else None
        listed = read_split_file(split_file)
        images, annotations = _index_files(tree)
        if not images:
            raise SourceMissing(f"exdark: no images found under {tree.roots}.\n{self.manual_help}")
        if not annotations:
            raise SourceMissing(f"exdark: no annotation files (*.txt) found under {tree.roots}.\n{self.manual_help}")
        notes = []
        case_only = sum(
            1
            for key, path in images.items()
            if (match := annotations.get(key)) is not None and match.name[:-4] != path.name
        )
        if case_only:
            notes.append(f"{case_only} annotation files match their image only when case is ignored")
        listed_keys = {name.lower() for names in listed.values() for name in names}
        for key in sorted(set(images) - listed_keys):
            log.record(
                NOT_IN_SPLIT, ACTION_SKIPPED, str(images[key]), image=images[key].name,
                detail="image not listed in the split file",
            )
        totals = {split: len(listed[split]) for split in splits}
        return Conversion(list(CLASSES), self._images(listed, splits, images, annotations, log), totals, notes=notes)

    def _images(
        self, listed: dict[str, list[str]], splits: list[str], images: dict[str, Path], annotations: dict[str, Path],
        log: ConversionLog,
    ) -> Iterator[tuple[str, ConvertedImage]]:
        by_stem = {}
        for key, path in images.items():
            by_stem.setdefault(os.path.splitext(key)[0], path)
        for split in splits:
            for name in listed[split]:
                key = name.lower()
                image_path = images.get(key) or by_stem.get(os.path.splitext(key)[0]) or Path(name)
                annotation = annotations.get(key) or annotations.get(image_path.name.lower()) or annotations.get(
                    os.path.splitext(key)[0]
                )
                if annotation is None and image_path.is_file():
                    log.record(
                        NO_ANNOTATION, ACTION_SKIPPED, str(image_path), split=split, image=image_path.name,
                        detail=f"no {image_path.name}.txt annotation: skipped (its objects would become background)",
                    )
                    continue
                size = measure_image(
                    image_path, log, split=split, annotation_file=str(annotation) if annotation else "split file"
                )
                if size is None:
                    continue
                boxes = list(parse_annotation(annotation, size, split, image_path.name, log))
                yield split, ConvertedImage(image_path, image_path.name, size[0], size[1], boxes)


def _index_files(tree: SourceTree) -> tuple[dict[str, Path], dict[str, Path]]:
    """Images by lower-case name, annotations by lower-case name without ``.txt``."""
    images: dict[str, Path] = {}
    annotations: dict[str, Path] = {}
    for folder in tree.walk_dirs():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_file():
                continue
            lower = entry.name.lower()
            if lower.endswith(".txt"):
                if lower != "imageclasslist.txt":
                    annotations.setdefault(lower[:-4], Path(entry.path))
            elif os.path.splitext(lower)[1] in IMAGE_SUFFIXES:
                images.setdefault(lower, Path(entry.path))
    return images, annotations


_LOOKUP = {name.lower(): i for i, name in enumerate(CLASSES)}


def parse_annotation(path: Path, size: tuple[int, int], split: str, image: str, log: ConversionLog) -> Iterator[GtBox]:
    """Boxes of one bbGt annotation file (pixels, clipped)."""
    width, height = size
    where = {"file": str(path), "split": split, "image": image}
    for line_no, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue  # "% bbGt version=3" header
        fields = line.split()
        try:
            if len(fields) < 5:
                raise ValueError
            left, top, w, h = (float(v) for v in fields[1:5])
        except ValueError:
            log.record(MALFORMED, ACTION_DROPPED, line=line_no, detail=f"expected 'Class l t w h ...', got {line!r}", **where)
            continue
        class_index = _LOOKUP.get(fields[0].lower())
        if class_index is None:
            log.record(UNKNOWN_CLASS, ACTION_DROPPED, line=line_no, detail=f"class {fields[0]!r} is not an ExDark class", **where)
            continue
        if CLASSES[class_index] != fields[0]:
            log.record(RENAMED_CLASS, ACTION_KEPT, line=line_no, detail=f"{fields[0]!r} read as {CLASSES[class_index]!r}", **where)
        box = fit_box_to_image(GtBox(class_index, left, top, w, h), width, height, log, line=line_no, **where)
        if box is not None:
            yield box
