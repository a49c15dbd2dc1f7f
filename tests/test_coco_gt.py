"""The shared COCO ground-truth writer: pycocotools reads it, and YOLO labels round-trip."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from scsa_yolo.data.convert.boxes import GtBox
from scsa_yolo.data.layout.ground_truth import GtImage, build_coco_gt, read_yolo_split, write_coco_gt


def _perfect_detections(gt: dict) -> list[dict]:
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt["annotations"]
        if not a["iscrowd"]
    ]


def test_perfect_predictions_score_one_and_ignore_regions_are_not_false_positives(tmp_path):
    images = [
        GtImage("a.jpg", 200, 100, [GtBox(0, 10, 10, 40, 30), GtBox(1, 120, 20, 50, 50), GtBox(0, 150, 70, 20, 20, ignore=True)]),
        GtImage("b.jpg", 200, 100, [GtBox(1, 5, 5, 90, 90)]),
    ]
    path = write_coco_gt(images, ["cat", "dog"], tmp_path / "gt.json")
    gt = json.loads(path.read_text())
    assert [c["id"] for c in gt["categories"]] == [1, 2]
    assert sum(a["iscrowd"] for a in gt["annotations"]) == 1

    coco = COCO(str(path))
    detections = _perfect_detections(gt)
    # a confident detection exactly on the ignore region must not cost precision
    detections.append({"image_id": 1, "category_id": 1, "bbox": [150, 70, 20, 20], "score": 0.99})
    evaluator = COCOeval(coco, coco.loadRes(detections), "bbox")
    evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)
    assert evaluator.stats[1] == pytest.approx(1.0)


def test_a_detection_off_every_box_lowers_ap(tmp_path):
    images = [GtImage("a.jpg", 200, 100, [GtBox(0, 10, 10, 40, 30)])]
    path = write_coco_gt(images, ["cat"], tmp_path / "gt.json")
    coco = COCO(str(path))
    detections = [
        {"image_id": 1, "category_id": 1, "bbox": [100, 50, 40, 30], "score": 0.99},  # false positive first
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 30], "score": 0.5},
    ]
    evaluator = COCOeval(coco, coco.loadRes(detections), "bbox")
    evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    assert 0.0 < evaluator.stats[0] < 1.0


def test_class_index_out_of_range_names_the_image():
    with pytest.raises(ValueError, match="b.jpg: class index 3"):
        build_coco_gt([GtImage("b.jpg", 10, 10, [GtBox(3, 0, 0, 5, 5)])], ["cat", "dog"])


def test_yolo_labels_round_trip_to_pixel_boxes(tmp_path):
    images_dir = tmp_path / "ds" / "images" / "val"
    labels_dir = tmp_path / "ds" / "labels" / "val"
    images_dir.mkdir(parents=True), labels_dir.mkdir(parents=True)
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(images_dir / "img1.png")
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(images_dir / "img2.png")  # no label file: no boxes
    # box (x=8, y=6, w=40, h=30) in an 80x60 image
    (labels_dir / "img1.txt").write_text("2 0.35 0.35 0.5 0.5\n\n")
    records = read_yolo_split(images_dir)
    assert [r.file_name for r in records] == ["img1.png", "img2.png"]
    (box,) = records[0].boxes
    assert (box.class_index, records[0].width, records[0].height) == (2, 80, 60)
    assert box.x == pytest.approx(8) and box.y == pytest.approx(6)
    assert box.w == pytest.approx(40) and box.h == pytest.approx(30)
    assert records[1].boxes == []


def test_malformed_label_line_names_file_and_line(tmp_path):
    images_dir = tmp_path / "images" / "train"
    labels_dir = tmp_path / "labels" / "train"
    images_dir.mkdir(parents=True), labels_dir.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images_dir / "x.jpg")
    (labels_dir / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5\n")
    with pytest.raises(ValueError, match=r"x\.txt:2: expected 'class cx cy w h'"):
        read_yolo_split(images_dir)
