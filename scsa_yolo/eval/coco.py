"""COCO box and mask metrics with pycocotools: the numbers every table of this project reports.

``coco_metrics`` runs the unmodified pycocotools ``COCOeval`` (``iouType="bbox"`` for
boxes, ``"segm"`` for instance masks) and returns its twelve summary statistics under
readable names, plus AP per category. It adds nothing to the evaluation itself: ``AP`` is
exactly ``COCOeval.stats[0]``, ``AP50`` ``stats[1]`` and so on, so figures are comparable
with any paper that uses pycocotools.

Masks: a detection carries ``segmentation`` (a compressed RLE at the image's resolution)
beside its ``bbox``, as Ultralytics' and mmdetection's result files do, so one list serves
both evaluations. The ground truth's ``segmentation`` (polygons or RLE) is required for
every annotation that is not an ignore region; an ignore region (``iscrowd: 1``) without
one ignores its box, as it does for boxes.

Undefined values (pycocotools' ``-1``: e.g. no ground-truth box in the small-area range)
become ``None`` so that a report shows a dash instead of a negative number.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from scsa_yolo.records import METRIC_NAMES

# Names of COCOeval.stats[0..11] (the same for iouType "bbox" and "segm"), in pycocotools' order.
STAT_NAMES = (*METRIC_NAMES, "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
#: pycocotools' IoU types: boxes and instance masks.
IOU_TYPES = ("bbox", "segm")


@dataclass
class CocoMetrics:
    """pycocotools box (or mask) metrics, fractions in [0, 1] (``None`` where undefined)."""

    AP: float | None
    AP50: float | None
    AP75: float | None
    APs: float | None
    APm: float | None
    APl: float | None
    AR1: float | None
    AR10: float | None
    AR100: float | None
    ARs: float | None
    ARm: float | None
    ARl: float | None
    per_class: dict[str, float | None] = field(default_factory=dict)
    n_images: int = 0
    n_detections: int = 0
    n_ground_truth: int = 0
    n_ignore_regions: int = 0
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _undefined_to_none(value: float) -> float | None:
    value = float(value)
    return None if value < 0 else value


def _load_gt(ground_truth: str | Path | dict):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(ground_truth, dict):
            coco = COCO()
            # COCO.createIndex mutates nothing, but keep the caller's dict untouched anyway.
            coco.dataset = copy.deepcopy(ground_truth)
            coco.createIndex()
            return coco
        return COCO(str(ground_truth))


def _load_detections(detections: str | Path | Sequence[dict]) -> list[dict]:
    if isinstance(detections, (str, Path)):
        data = json.loads(Path(detections).read_text())
        if not isinstance(data, list):
            raise ValueError(f"{detections}: expected a JSON list of detections, got {type(data).__name__}")
        return data
    return list(detections)


def missing_masks(ground_truth: dict) -> list[int]:
    """Ids of the annotations that are not ignore regions and have no ``segmentation``."""
    return [a["id"] for a in ground_truth.get("annotations", [])
            if not a.get("iscrowd", 0) and not a.get("segmentation")]


def with_crowd_masks(ground_truth: dict) -> dict:
    """A copy of ``ground_truth`` whose ignore regions without a mask get their box as one
    (a rectangle polygon), so that the mask evaluation ignores what the box evaluation does."""
    data = copy.deepcopy(ground_truth)
    for annotation in data.get("annotations", []):
        if annotation.get("iscrowd", 0) and not annotation.get("segmentation"):
            x, y, w, h = annotation["bbox"]
            annotation["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    return data


def coco_metrics(
    ground_truth: str | Path | dict,
    detections: str | Path | Sequence[dict],
    image_ids: Sequence[int] | None = None,
    iou_type: str = "bbox",
) -> CocoMetrics:
    """Evaluate COCO-format detections (boxes, or instance masks) against a COCO ground truth.

    Args:
        ground_truth: a COCO ground-truth JSON path or dict (``iscrowd: 1`` annotations are
            ignore regions: detections on them are neither rewarded nor penalised).
        detections: a list (or JSON file) of ``{"image_id", "category_id", "bbox": [x, y, w, h],
            "score"}`` in pixels of the original image; for ``segm`` each also carries
            ``segmentation``, a COCO RLE of the image's size.
        image_ids: evaluate only these images (default: every image of the ground truth).
        iou_type: ``bbox`` (box IoU) or ``segm`` (mask IoU).

    Returns:
        The twelve ``COCOeval.stats`` under their names, AP per category name (mean of the
        precision table over IoU thresholds and recall points, as pycocotools averages
        ``stats[0]``), counts, and pycocotools' printed summary.

    Raises:
        ValueError: unknown ``iou_type``; detections of images or categories the ground
            truth lacks; for ``segm``, ground-truth annotations or detections without a mask.
    """
    from pycocotools.cocoeval import COCOeval

    if iou_type not in IOU_TYPES:
        raise ValueError(f"unknown iou_type {iou_type!r}; choose one of: {', '.join(IOU_TYPES)}")
    if iou_type == "segm":
        gt_data = ground_truth if isinstance(ground_truth, dict) else json.loads(Path(ground_truth).read_text())
        unmasked = missing_masks(gt_data)
        if unmasked:
            raise ValueError(f"{len(unmasked)} ground-truth annotation(s) have no 'segmentation' (no mask to score "
                             f"masks against), e.g. ids {unmasked[:5]}")
        ground_truth = with_crowd_masks(gt_data)
    coco_gt = _load_gt(ground_truth)
    dets = _load_detections(detections)
    if iou_type == "segm" and any(not d.get("segmentation") for d in dets):
        raise ValueError("a detection without 'segmentation' cannot be scored as a mask; give each an RLE")
    unknown_images = {d["image_id"] for d in dets} - set(coco_gt.getImgIds())
    if unknown_images:
        raise ValueError(
            f"{len(unknown_images)} detection image id(s) are not in the ground truth, e.g. {sorted(unknown_images)[:5]}"
        )
    unknown_cats = {d["category_id"] for d in dets} - set(coco_gt.getCatIds())
    if unknown_cats:
        raise ValueError(f"detection category id(s) {sorted(unknown_cats)} are not in the ground truth")

    annotations = coco_gt.dataset.get("annotations", [])
    n_ignore = sum(1 for a in annotations if a.get("iscrowd", 0))
    result_kwargs = dict(
        n_images=len(image_ids) if image_ids is not None else len(coco_gt.getImgIds()),
        n_detections=len(dets),
        n_ground_truth=len(annotations) - n_ignore,
        n_ignore_regions=n_ignore,
    )
    categories = sorted(coco_gt.loadCats(coco_gt.getCatIds()), key=lambda c: c["id"])

    if not dets:
        # pycocotools cannot load an empty result list; no detection means AP = 0 wherever
        # ground truth exists (and undefined where none exists).
        stats = _stats_without_detections(coco_gt, image_ids)
        per_class = {c["name"]: (0.0 if coco_gt.getAnnIds(catIds=[c["id"]], iscrowd=False) else None) for c in categories}
        return CocoMetrics(**dict(zip(STAT_NAMES, stats)), per_class=per_class, summary="no detections", **result_kwargs)

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        coco_dt = coco_gt.loadRes([dict(d) for d in dets])  # loadRes adds keys to the dicts it gets
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [_undefined_to_none(v) for v in evaluator.stats]
    per_class = _per_class_ap(evaluator, categories)
    summary = "\n".join(line for line in out.getvalue().splitlines() if line.startswith(" Average"))
    return CocoMetrics(**dict(zip(STAT_NAMES, stats)), per_class=per_class, summary=summary, **result_kwargs)


def _per_class_ap(evaluator, categories: list[dict]) -> dict[str, float | None]:
    """AP@[.5:.95] of each category, averaged like ``stats[0]`` (area all, maxDets 100).

    ``precision`` has shape (T iou thresholds, R recall points, K categories, A areas,
    M max-dets); entries of -1 mark recall levels never reached with no ground truth.
    """
    precision = evaluator.eval["precision"]
    cat_ids = list(evaluator.params.catIds)
    area_index = list(evaluator.params.areaRngLbl).index("all")
    maxdet_index = list(evaluator.params.maxDets).index(100)
    result = {}
    for category in categories:
        k = cat_ids.index(category["id"])
        values = precision[:, :, k, area_index, maxdet_index]
        values = values[values > -1]
        result[category["name"]] = float(np.mean(values)) if values.size else None
    return result


def _stats_without_detections(coco_gt, image_ids: Sequence[int] | None) -> list[float | None]:
    """The stats pycocotools would report for an empty detection list.

    Each statistic is 0 when its area range holds at least one non-ignored ground-truth box
    (nothing was found), undefined otherwise. Areas follow pycocotools' default ranges.
    """
    wanted = set(image_ids) if image_ids is not None else None
    areas = [
        a["area"]
        for a in coco_gt.dataset.get("annotations", [])
        if not a.get("iscrowd", 0) and (wanted is None or a["image_id"] in wanted)
    ]
    ranges = {"all": (0, 1e10), "small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 1e10)}

    def zero_if_any(rng: str) -> float | None:
        lo, hi = ranges[rng]
        return 0.0 if any(lo <= a <= hi for a in areas) else None

    per_range = [zero_if_any(r) for r in ("all", "small", "medium", "large")]
    return [per_range[0]] * 3 + per_range[1:] + [per_range[0]] * 3 + per_range[1:]
