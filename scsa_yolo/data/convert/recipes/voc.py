"""Pascal VOC 07+12: train on VOC2007 trainval + VOC2012 trainval, validate on VOC2007 test.

Source: ``VOCdevkit/VOC{2007,2012}/{Annotations/*.xml, JPEGImages/*.jpg,
ImageSets/Main/{trainval,test}.txt}`` from the three archives ultralytics' ``VOC.yaml``
downloads (or the official ``.tar`` files).

Coordinates: ``<bndbox>`` holds 1-based inclusive pixel indices, integers or floats
("273.0"). A box covering pixels ``xmin..xmax`` spans ``[xmin - 1, xmax]`` in the
continuous 0-based coordinates YOLO and COCO use, so ``x = xmin - 1`` and
``w = xmax - xmin + 1`` (the devkit's own width rule). ``difficult`` objects (tag missing
means 0) are ignore regions of their class in the ground truth, and training labels only
with ``--train-difficult``. A missing or zero ``<size>`` is read from the image; a size
that disagrees with the image is logged and the image's size used. Extra tags written by
annotation tools (``<path>``, ``<source>``, ``<pose>``, ...) are ignored.
"""
from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from scsa_yolo.data.fetch.download import RemoteFile
from scsa_yolo.data.fetch.sources import SourceTree
from ..boxes import GtBox, fit_box_to_image
from ..events import (
    ACTION_DROPPED,
    ACTION_IGNORE,
    ACTION_KEPT,
    ACTION_SKIPPED,
    DIFFICULT,
    MALFORMED,
    NO_ANNOTATION,
    RENAMED_CLASS,
    UNKNOWN_CLASS,
    ConversionLog,
)
from ..images import IMAGE_SUFFIXES
from .base import Conversion, ConvertedImage, Recipe, RecipeOption, measure_image

ULTRALYTICS_ASSETS = "https://github.com/ultralytics/assets/releases/download/v0.0.0"  # cfg/datasets/VOC.yaml

CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

# (year, image set) lists that make up each split
SPLIT_SETS = {"train": (("2007", "trainval"), ("2012", "trainval")), "val": (("2007", "test"),)}


# --- a tiny XML tree with line numbers (ElementTree does not keep them) -----------------
@dataclass
class XmlNode:
    tag: str
    line: int
    text: str = ""
    children: list["XmlNode"] = field(default_factory=list)

    def find(self, tag: str) -> "XmlNode | None":
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list["XmlNode"]:
        return [c for c in self.children if c.tag == tag]

    def child_text(self, tag: str) -> str | None:
        node = self.find(tag)
        return node.text.strip() if node is not None else None


def parse_xml(path: Path) -> XmlNode:
    """Parse an XML file into :class:`XmlNode`s that remember their line numbers.

    Raises:
        ValueError: not well-formed XML, with the file and line.
    """
    parser = xml.parsers.expat.ParserCreate()
    stack: list[XmlNode] = []
    root: list[XmlNode] = []

    def start(tag: str, _attrs: dict) -> None:
        node = XmlNode(tag, parser.CurrentLineNumber)
        (stack[-1].children if stack else root).append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    try:
        parser.Parse(path.read_bytes(), True)
    except xml.parsers.expat.ExpatError as error:
        raise ValueError(f"{path}:{error.lineno}: not well-formed XML ({xml.parsers.expat.ErrorString(error.code)})") from None
    if not root:
        raise ValueError(f"{path}: empty XML document")
    return root[0]


def _number(text: str | None) -> float:
    if text is None or not text.strip():
        raise ValueError("missing")
    return float(text)


class VocRecipe(Recipe):
    name = "voc"
    title = "Pascal VOC 2007+2012"
    homepage = "http://host.robots.ox.ac.uk/pascal/VOC/"
    classes = CLASSES
    splits = ("train", "val")
    eval_splits = ("val",)
    remote_files = (
        RemoteFile(
            "VOCtrainval_06-Nov-2007.zip", f"{ULTRALYTICS_ASSETS}/VOCtrainval_06-Nov-2007.zip", splits=("train",),
            note="446 MB, 5,011 images", aliases=("VOCtrainval_06-Nov-2007.tar",),
        ),
        RemoteFile(
            "VOCtest_06-Nov-2007.zip", f"{ULTRALYTICS_ASSETS}/VOCtest_06-Nov-2007.zip", splits=("val",),
            note="438 MB, 4,952 images", aliases=("VOCtest_06-Nov-2007.tar",),
        ),
        RemoteFile(
            "VOCtrainval_11-May-2012.zip", f"{ULTRALYTICS_ASSETS}/VOCtrainval_11-May-2012.zip", splits=("train",),
            note="1.95 GB, 11,540 images", aliases=("VOCtrainval_11-May-2012.tar",),
        ),
    )
    options = (
        RecipeOption(
            "train_difficult",
            False,
            "VOC: also train on 'difficult' objects (they stay ignore regions in the ground truth).",
        ),
    )
    manual_help = (
        "Pascal VOC: put VOCtrainval_06-Nov-2007, VOCtest_06-Nov-2007 and VOCtrainval_11-May-2012 "
        f"(.zip from {ULTRALYTICS_ASSETS}/ or the official .tar files), or the extracted VOCdevkit/, "
        "in one folder and pass it with --source."
    )

    def convert(self, tree: SourceTree, splits: list[str], options: dict, log: ConversionLog) -> Conversion:
        plan: dict[str, list[tuple[Path, str, list[str]]]] = {}
        totals = {}
        for split in splits:
            plan[split] = []
            for year, image_set in SPLIT_SETS[split]:
                voc = self._find_year(tree, year, image_set, split, splits)
                list_file = voc / "ImageSets" / "Main" / f"{image_set}.txt"
                ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
                plan[split].append((voc, f"VOC{year}/{image_set}", ids))
            totals[split] = sum(len(ids) for _, _, ids in plan[split])
        return Conversion(list(CLASSES), self._images(plan, options["train_difficult"], log), totals)

    def _find_year(self, tree: SourceTree, year: str, image_set: str, split: str, splits: list[str]) -> Path:
        needed = f"ImageSets/Main/{image_set}.txt"
        found = tree.find_dirs(lambda d: d.name == f"VOC{year}" and (d / needed).is_file() and (d / "Annotations").is_dir())
        if not found:
            raise self.split_missing(split, splits, f"VOC{year}/ with {needed} and Annotations/", tree.roots)
        return found[0]

    def _images(self, plan: dict, train_difficult: bool, log: ConversionLog) -> Iterator[tuple[str, ConvertedImage]]:
        for split, parts in plan.items():
            for voc, _label, ids in parts:
                for image_id in ids:
                    converted = self._one(voc, image_id, split, train_difficult, log)
                    if converted is not None:
                        yield split, converted

    def _one(self, voc: Path, image_id: str, split: str, train_difficult: bool, log: ConversionLog) -> ConvertedImage | None:
        xml_path = voc / "Annotations" / f"{image_id}.xml"
        image_path = voc / "JPEGImages" / f"{image_id}.jpg"
        if not image_path.is_file():
            image_path = next(
                (p for p in (voc / "JPEGImages").glob(f"{image_id}.*") if p.suffix.lower() in IMAGE_SUFFIXES), image_path
            )
        if not xml_path.is_file():
            log.record(
                NO_ANNOTATION, ACTION_SKIPPED, str(voc / "ImageSets" / "Main"), split=split, image=image_id,
                detail=f"listed image has no {xml_path.name}: skipped (its objects would become background)",
            )
            return None
        try:
            root = parse_xml(xml_path)
        except ValueError as error:
            log.record(MALFORMED, ACTION_SKIPPED, str(xml_path), split=split, image=image_id, detail=str(error))
            return None
        declared = None
        size_node = root.find("size")
        try:
            declared = (int(_number(size_node.child_text("width"))), int(_number(size_node.child_text("height"))))
        except (AttributeError, ValueError):
            declared = (0, 0)  # missing <size>: measure_image logs it and reads the image
        size = measure_image(image_path, log, split=split, annotation_file=str(xml_path), declared=declared)
        if size is None:
            return None
        width, height = size
        converted = ConvertedImage(image_path, image_path.name, width, height)
        for obj in root.findall("object"):
            self._object(obj, xml_path, converted, split, train_difficult, log)
        return converted

    def _object(
        self, obj: XmlNode, xml_path: Path, image: ConvertedImage, split: str, train_difficult: bool, log: ConversionLog
    ) -> None:
        where = {"file": str(xml_path), "split": split, "image": image.name}
        name_node = obj.find("name")
        raw_name = name_node.text.strip() if name_node is not None else ""
        line = name_node.line if name_node is not None else obj.line
        class_index = _class_index(raw_name)
        if class_index is None:
            log.record(UNKNOWN_CLASS, ACTION_DROPPED, line=line, detail=f"class name {raw_name!r} is not a VOC class", **where)
            return
        if CLASSES[class_index] != raw_name:
            log.record(RENAMED_CLASS, ACTION_KEPT, line=line, detail=f"{raw_name!r} read as {CLASSES[class_index]!r}", **where)
        box_node = obj.find("bndbox")
        try:
            xmin, ymin, xmax, ymax = (_number(box_node.child_text(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
            difficult = bool(int(_number(obj.child_text("difficult") or "0")))
        except (AttributeError, ValueError):
            log.record(
                MALFORMED, ACTION_DROPPED, line=(box_node.line if box_node is not None else obj.line),
                detail="<bndbox> needs numeric xmin, ymin, xmax, ymax", **where,
            )
            return
        box_line = box_node.line
        pixel_box = GtBox(class_index, xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1, difficult)
        box = fit_box_to_image(pixel_box, image.width, image.height, log, line=box_line, **where)
        if box is None:
            return
        image.boxes.append(box)
        if difficult:
            action = "ignore region in the GT and a training label" if train_difficult else "ignore region in the GT, no training label"
            log.record(DIFFICULT, ACTION_IGNORE, line=box_line, detail=f"difficult {CLASSES[class_index]}: {action}", **where)
            if train_difficult:
                image.extra_labels.append(GtBox(class_index, box.x, box.y, box.w, box.h))


_LOOKUP = {name: i for i, name in enumerate(CLASSES)}


def _class_index(raw: str) -> int | None:
    """Exact VOC name, else after lower-casing and removing spaces ('Potted Plant')."""
    if raw in _LOOKUP:
        return _LOOKUP[raw]
    return _LOOKUP.get(raw.lower().replace(" ", "").replace("_", ""))
