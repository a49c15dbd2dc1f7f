"""coco_metrics reports exactly what pycocotools computes, with names and per-class AP."""
import contextlib
import io
import random

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from scsa_yolo.data.convert.boxes import GtBox
from scsa_yolo.data.layout.ground_truth import GtImage, build_coco_gt
from scsa_yolo.eval import STAT_NAMES, coco_metrics


def _ground_truth(seed: int = 0, n_images: int = 12) -> dict:
    """Boxes of small (<32^2), medium and large (>96^2) area in three classes, plus ignore regions."""
    rng = random.Random(seed)
    images = []
    for i in range(n_images):
        boxes = []
        for _ in range(rng.randint(1, 6)):
            side = rng.choice([rng.uniform(8, 28), rng.uniform(40, 90), rng.uniform(110, 200)])
            x, y = rng.uniform(0, 400 - side), rng.uniform(0, 300 - min(side, 250))
            boxes.append(GtBox(rng.randrange(3), x, y, side, min(side * rng.uniform(0.6, 1.2), 250)))
        if i % 4 == 0:
            boxes.append(GtBox(rng.randrange(3), 5, 5, 30, 30, ignore=True))
        images.append(GtImage(f"img_{i:03d}.jpg", 400, 300, boxes))
    return build_coco_gt(images, ["car", "person", "dog"])


def _noisy_detections(gt: dict, seed: int = 1) -> list[dict]:
    """Jittered copies of the true boxes, some with the wrong class, plus false positives."""
    rng = random.Random(seed)
    dets = []
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        if rng.random() < 0.15:
            continue  # a miss
        jitter = [v + rng.gauss(0, 0.08 * max(w, h)) for v in (x, y)] + [w * rng.uniform(0.8, 1.2), h * rng.uniform(0.8, 1.2)]
        category = ann["category_id"] if rng.random() > 0.1 else rng.randint(1, 3)
        dets.append({"image_id": ann["image_id"], "category_id": category, "bbox": jitter, "score": rng.random()})
    for image in gt["images"]:
        for _ in range(rng.randint(0, 4)):
            w, h = rng.uniform(10, 120), rng.uniform(10, 120)
            dets.append({"image_id": image["id"], "category_id": rng.randint(1, 3),
                         "bbox": [rng.uniform(0, 250), rng.uniform(0, 150), w, h], "score": rng.random() * 0.5})
    return dets


def _pycocotools_stats(gt: dict, dets: list[dict], cat_ids=None) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(dets), "bbox")
        if cat_ids is not None:
            evaluator.params.catIds = cat_ids
        evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    return list(evaluator.stats)


def test_metrics_equal_pycocotools_stats_exactly():
    gt = _ground_truth()
    dets = _noisy_detections(gt)
    ours = coco_metrics(gt, dets)
    reference = _pycocotools_stats(_ground_truth(), _noisy_detections(_ground_truth()))
    for name, value in zip(STAT_NAMES, reference):
        assert getattr(ours, name) == (None if value < 0 else value), name
    assert 0.2 < ours.AP < 0.9  # a non-trivial operating point, not a degenerate 0 or 1
    assert ours.n_detections == len(dets)
    assert ours.n_ignore_regions == 3


def test_per_class_ap_equals_pycocotools_restricted_to_that_class():
    gt = _ground_truth(seed=3)
    dets = _noisy_detections(gt, seed=4)
    ours = coco_metrics(gt, dets)
    for category in gt["categories"]:
        alone = _pycocotools_stats(_ground_truth(seed=3), _noisy_detections(_ground_truth(seed=3), seed=4), [category["id"]])
        assert ours.per_class[category["name"]] == pytest.approx(alone[0], abs=1e-12)


def test_perfect_predictions_score_one_and_ignore_regions_cost_nothing():
    gt = _ground_truth(seed=5)
    dets = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt["annotations"] if not a["iscrowd"]
    ]
    # confident detections exactly on every ignore region: neither reward nor penalty
    dets += [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.99}
        for a in gt["annotations"] if a["iscrowd"]
    ]
    result = coco_metrics(gt, dets)
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
        assert getattr(result, name) == pytest.approx(1.0), name
    assert list(result.per_class.values()) == [pytest.approx(1.0)] * 3


def test_no_detections_give_zero_where_ground_truth_exists_and_none_elsewhere():
    gt = build_coco_gt([GtImage("a.jpg", 640, 480, [GtBox(0, 10, 10, 200, 200)])], ["big", "unused"])
    result = coco_metrics(gt, [])
    assert result.AP == 0.0 and result.APl == 0.0
    assert result.APs is None and result.APm is None
    assert result.per_class == {"big": 0.0, "unused": None}


def test_undefined_area_ranges_are_none_not_minus_one():
    gt = build_coco_gt([GtImage("a.jpg", 640, 480, [GtBox(0, 10, 10, 200, 200)])], ["big"])
    result = coco_metrics(gt, [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 200, 200], "score": 0.9}])
    assert result.AP == pytest.approx(1.0)
    assert result.APs is None and result.APm is None


def test_detections_for_unknown_images_or_categories_are_refused():
    gt = build_coco_gt([GtImage("a.jpg", 64, 64, [GtBox(0, 1, 1, 10, 10)])], ["a"])
    with pytest.raises(ValueError, match="image id"):
        coco_metrics(gt, [{"image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5}])
    with pytest.raises(ValueError, match="category"):
        coco_metrics(gt, [{"image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5], "score": 0.5}])
