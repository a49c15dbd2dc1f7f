"""COCO 2017 detection and instance segmentation: 80 classes from the 91 category ids, crowd
boxes as ignore regions.

Source: ``annotations/instances_{train,val}2017.json`` plus ``{train,val}2017/*.jpg``
(``annotations_trainval2017.zip``, ``train2017.zip``, ``val2017.zip`` from
images.cocodataset.org, the locations ultralytics' ``coco.yaml`` uses for the images).
Category ids 1..90 map to YOLO 0..79 with ultralytics'
:func:`ultralytics.data.converter.coco91_to_coco80_class`. ``iscrowd`` boxes become
ignore regions of their class in the ground truth and are not training labels (as in
ultralytics' own converter). Boxes are ``[x, y, w, h]`` in pixels, used as they are.

Masks: every object's ``segmentation`` polygons (clipped to the image) become its segment
label ``class x1 y1 ...`` (parts joined into one outline) and stay in the ground truth as
COCO polygons with their area, so one prepared set trains and evaluates detection and
segmentation. A crowd region keeps its RLE mask in the ground truth and is never a label.
In a split whose file has masks, an object without a usable one gets its box as its mask
(``no_mask``, counted); a split whose file has none is written with box labels only.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from scsa_yolo.data.fetch.download import RemoteFile
from scsa_yolo.data.fetch.sources import SourceTree, load_json
from ..boxes import CLIP_TOLERANCE_PX, GtBox, fit_box_to_image
from ..events import (
    ACTION_CLIPPED,
    ACTION_DROPPED,
    ACTION_IGNORE,
    ACTION_KEPT,
    ACTION_SKIPPED,
    CROWD,
    MALFORMED,
    MASK_BOX_MISMATCH,
    MASK_CLIPPED,
    NO_MASK,
    UNKNOWN_CLASS,
    ConversionLog,
)
from ..masks import Mask, bounds, clip_polygon, is_polygon, outside_by, rectangle
from .base import Conversion, ConvertedImage, Recipe, measure_image

COCO_IMAGES = "http://images.cocodataset.org"

# ultralytics cfg/datasets/coco.yaml names, in YOLO index order
CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip


class CocoRecipe(Recipe):
    name = "coco"
    title = "COCO 2017"
    homepage = "https://cocodataset.org"
    classes = CLASSES
    splits = ("train", "val")
    eval_splits = ("val",)
    remote_files = (
        RemoteFile(
            "annotations_trainval2017.zip",
            f"{COCO_IMAGES}/annotations/annotations_trainval2017.zip",
            size=252907541,
            md5="f4bbac642086de4f52a3fdda2de5fa2c",
            splits=("train", "val"),
        ),
        RemoteFile(
            "val2017.zip", f"{COCO_IMAGES}/zips/val2017.zip", size=815585330,
            md5="442b8da7639aecaf257c1dceb8ba8c80", splits=("val",), note="5,000 images",
        ),
        RemoteFile(
            "train2017.zip", f"{COCO_IMAGES}/zips/train2017.zip", size=19336861798,
            md5="cced6f7f71b7629ddf16f17bbcfab6b2", splits=("train",), note="118,287 images",
        ),
    )
    manual_help = (
        "COCO 2017: put annotations_trainval2017.zip, train2017.zip and val2017.zip from "
        f"{COCO_IMAGES} (or the extracted annotations/, train2017/, val2017/ folders) in one "
        "folder and pass it with --source; --splits val needs only the annotations and val2017."
    )

    def convert(self, tree: SourceTree, splits: list[str], options: dict, log: ConversionLog) -> Conversion:
        from scsa_yolo.integration.datasets import coco91_to_coco80  # imports ultralytics: only when converting

        coco80 = coco91_to_coco80()
        located = {}
        for split in splits:
            json_name = f"instances_{split}2017.json"
            annotation = tree.find_file(json_name)
            images = _image_folder(tree, f"{split}2017")
            if annotation is None or images is None:
                missing = json_name if annotation is None else f"{split}2017/ (images)"
                raise self.split_missing(split, splits, missing, tree.roots)
            located[split] = (annotation, images)
        notes: list[str] = []
        return Conversion(list(CLASSES), self._images(located, coco80, log, notes), notes=notes)

    def _images(
        self, located: dict[str, tuple[Path, Path]], coco80: list[int | None], log: ConversionLog, notes: list[str]
    ) -> Iterator[tuple[str, ConvertedImage]]:
        for split, (annotation_file, images_dir) in located.items():
            data = load_json(annotation_file)
            for category in data.get("categories", []):
                cid = int(category["id"])
                index = coco80[cid - 1] if 1 <= cid <= len(coco80) else None
                if index is not None and category.get("name") != CLASSES[index]:
                    notes.append(
                        f"{annotation_file.name}: category {cid} is named {category.get('name')!r} there; "
                        f"it is class {index} {CLASSES[index]!r} here (ultralytics' 91->80 table)"
                    )
            yield from convert_coco_json(data, annotation_file, images_dir, split, coco80, CLASSES, log, masks=True)


def _image_folder(tree: SourceTree, name: str) -> Path | None:
    """The folder ``name`` that holds images (not, e.g., an ultralytics ``labels/train2017``)."""

    def holds_images(folder: Path) -> bool:
        return folder.name == name and next(folder.glob("*.jpg"), None) is not None

    found = tree.find_dirs(holds_images)
    return found[0] if found else None


def convert_coco_json(
    data: dict,
    annotation_file: Path,
    images_dir: Path,
    split: str,
    category_to_class: list[int | None] | dict[int, int],
    class_names: tuple[str, ...] | list[str],
    log: ConversionLog,
    *,
    zero_area_reason: str | None = None,
    masks: bool = False,
) -> Iterator[tuple[str, ConvertedImage]]:
    """COCO-format JSON -> converted images (shared with FLIR, whose files are COCO too).

    ``category_to_class`` maps a category id to a YOLO class index: a list indexed by
    ``id - 1`` (ultralytics' 91->80 table) or a dict. ``zero_area_reason``: log boxes with
    zero width or height under this reason instead of ``degenerate``. ``masks``: read the
    objects' ``segmentation`` when the file has any (see the module docstring).
    """
    from ..events import ZERO_AREA

    source = str(annotation_file)
    by_image: dict[int, list[dict]] = defaultdict(list)
    for ann in data.get("annotations", []):
        by_image[ann.get("image_id")].append(ann)
    with_masks = masks and any(
        isinstance(ann, dict) and not ann.get("iscrowd") and ann.get("segmentation")
        for ann in data.get("annotations", [])
    )
    usable = []
    for info in data.get("images", []):
        if isinstance(info, dict) and isinstance(info.get("id"), int) and isinstance(info.get("file_name"), str):
            usable.append(info)
        else:
            log.record(MALFORMED, ACTION_SKIPPED, source, split=split, detail=f"image entry without id/file_name: {str(info)[:80]}")
    for info in sorted(usable, key=lambda i: i["id"]):
        relative = Path(info["file_name"])
        image_path = images_dir / relative
        if not image_path.is_file() and (images_dir / relative.name).is_file():
            image_path = images_dir / relative.name  # file_name with a folder prefix the copy lacks
        size = measure_image(
            image_path, log, split=split, annotation_file=source, declared=(info.get("width"), info.get("height"))
        )
        if size is None:
            continue
        width, height = size
        boxes = []
        for ann in by_image.get(info["id"], []):
            ann_id = f"annotation id {ann.get('id')}"
            where = {"file": source, "split": split, "image": relative.name}
            try:
                x, y, w, h = (float(v) for v in ann["bbox"])
                category = int(ann["category_id"])
            except (KeyError, TypeError, ValueError):
                log.record(MALFORMED, ACTION_DROPPED, detail=f"{ann_id}: no usable bbox/category_id", **where)
                continue
            if isinstance(category_to_class, dict):
                class_index = category_to_class.get(category)
            else:
                class_index = category_to_class[category - 1] if 1 <= category <= len(category_to_class) else None
            if class_index is None:
                log.record(UNKNOWN_CLASS, ACTION_DROPPED, detail=f"{ann_id}: category_id {category} is not a class", **where)
                continue
            if zero_area_reason and (w == 0 or h == 0):
                log.record(ZERO_AREA, ACTION_DROPPED, detail=f"{ann_id}: bbox {ann['bbox']} has zero area", **where)
                continue
            crowd = bool(ann.get("iscrowd", 0))
            box = fit_box_to_image(GtBox(class_index, x, y, w, h, crowd), width, height, log, ref=ann_id, **where)
            if box is None:
                continue
            if crowd:
                log.record(CROWD, ACTION_IGNORE, detail=f"{ann_id}: iscrowd box -> ignore region of '{class_names[class_index]}'", **where)
            if with_masks:
                box = replace(box, mask=object_mask(ann.get("segmentation"), box, width, height, log, ref=ann_id, **where))
            boxes.append(box)
        yield split, ConvertedImage(image_path, relative.name, width, height, boxes)


def object_mask(
    segmentation: object, box: GtBox, width: int, height: int, log: ConversionLog, *, ref: str, **where: str
) -> Mask:
    """The mask of one object: its polygons clipped to the image (a crowd region may keep
    its RLE), or, with a ``no_mask`` event, its box's rectangle when it has no usable one.

    A polygon reaching past the image is clipped (``mask_clipped``); polygons whose extent
    differs from the box by more than a pixel are kept and logged (``mask_box_mismatch``):
    Ultralytics trains on the box it derives from the polygon.
    """
    def fallback(why: str) -> Mask:
        log.record(NO_MASK, ACTION_KEPT, detail=f"{ref}: {why}; its box is used as its mask", **where)
        return Mask((rectangle(box.x, box.y, box.w, box.h),))

    if isinstance(segmentation, dict):
        if not box.ignore:
            return fallback("an RLE mask on an object that is not a crowd region")
        size = list(segmentation.get("size", []))
        if "counts" not in segmentation or size != [height, width]:
            shown = f"{size[1]}x{size[0]}" if len(size) == 2 else str(size or "no size")
            return fallback(f"an RLE mask of {shown} px (width x height) on a {width}x{height} image")
        return Mask(rle=segmentation)
    if not isinstance(segmentation, list) or not segmentation:
        return fallback("no segmentation")
    parts = [tuple(float(v) for v in part) for part in segmentation if is_polygon(part)]
    if len(parts) < len(segmentation):
        log.record(MALFORMED, ACTION_DROPPED,
                   detail=f"{ref}: {len(segmentation) - len(parts)} polygon(s) not a list of >= 3 x y points", **where)
    outside = max((outside_by(part, width, height) for part in parts), default=0.0)
    parts = [clipped for part in parts if (clipped := clip_polygon(part, width, height))]
    if not parts:
        return fallback("no polygon with an area inside the image")
    if outside > CLIP_TOLERANCE_PX:
        log.record(MASK_CLIPPED, ACTION_CLIPPED, detail=f"{ref}: polygon reached {outside:g} px past the "
                   f"{width}x{height} image: clipped", **where)
    x0, y0, x1, y1 = bounds(parts)
    gap = max(abs(x0 - box.x), abs(y0 - box.y), abs(x1 - box.x - box.w), abs(y1 - box.y - box.h))
    if gap > 1.0:
        log.record(MASK_BOX_MISMATCH, ACTION_KEPT, detail=f"{ref}: polygon spans [{x0:g},{y0:g},{x1:g},{y1:g}], "
                   f"bbox [{box.x:g},{box.y:g},{box.x + box.w:g},{box.y + box.h:g}]", **where)
    return Mask(tuple(parts))
