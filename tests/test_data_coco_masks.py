"""COCO instance masks: polygon labels beside the boxes, crowd RLE kept in the ground truth,
every change counted; a split without masks is refused for segmentation, naming it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_data_common import pixel_boxes, write_image

from scsa_yolo.data.convert.events import CLIPPED, CROWD, MALFORMED, MASK_BOX_MISMATCH, MASK_CLIPPED, NO_MASK
from scsa_yolo.data.layout.manifest import check_dataset
from scsa_yolo.data.prepare import prepare_dataset
from scsa_yolo.data.tasks import DatasetTaskError, check_data_for_task

TRIANGLE = [10.0, 5.0, 30.0, 35.0, 10.0, 35.0]  # bbox [10, 5, 20, 30]
TWO_PARTS = [[40.0, 10.0, 50.0, 10.0, 50.0, 20.0, 40.0, 20.0], [54.0, 10.0, 60.0, 10.0, 60.0, 20.0]]


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (column-major runs, starting with zeros), as crowd regions have."""
    flat = mask.flatten(order="F").astype(np.uint8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    return {"size": list(mask.shape), "counts": counts}


def make_coco_with_masks(root: Path) -> Path:
    """val2017 with masks and their traps; train2017 with boxes only (as many COCO-format sets)."""
    write_image(root / "val2017" / "000000000001.jpg", 80, 60)
    write_image(root / "val2017" / "000000000002.jpg", 40, 40)
    write_image(root / "train2017" / "000000000003.jpg", 40, 40)
    crowd = np.zeros((60, 80), bool)
    crowd[40:55, 5:25] = True
    val_annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 5, 20, 30], "iscrowd": 0, "segmentation": [TRIANGLE]},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [40, 10, 20, 10], "iscrowd": 0, "segmentation": TWO_PARTS},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [5, 40, 20, 15], "iscrowd": 1,
         "segmentation": _uncompressed_rle(crowd)},
        # reaches 10 px past the right border: box and polygon clipped
        {"id": 4, "image_id": 1, "category_id": 13, "bbox": [70, 40, 20, 10], "iscrowd": 0,
         "segmentation": [[70, 40, 90, 40, 90, 50, 70, 50]]},
        {"id": 5, "image_id": 2, "category_id": 3, "bbox": [2, 2, 10, 10], "iscrowd": 0},  # no segmentation
        {"id": 6, "image_id": 2, "category_id": 3, "bbox": [20, 20, 10, 10], "iscrowd": 0,
         "segmentation": [[20, 20, 25, 20, 25, 25, 20, 25], [1, 2, 3]]},  # a malformed part; polygon half the box
    ]
    train_annotations = [{"id": 7, "image_id": 3, "category_id": 1, "bbox": [5, 5, 10, 10], "iscrowd": 0}]
    categories = [{"id": i, "name": f"cat{i}"} for i in (1, 3, 13)]
    (root / "annotations").mkdir(parents=True)
    for split, images, annotations in (
        ("val", [{"id": 1, "file_name": "000000000001.jpg", "width": 80, "height": 60},
                 {"id": 2, "file_name": "000000000002.jpg", "width": 40, "height": 40}], val_annotations),
        ("train", [{"id": 3, "file_name": "000000000003.jpg", "width": 40, "height": 40}], train_annotations),
    ):
        gt = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(gt))
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coco-masks")
    source = make_coco_with_masks(tmp / "src")
    return prepare_dataset("coco", root=tmp / "root", source=source, progress=False, echo=lambda m: None)


def test_labels_are_polygons_whose_boxes_are_the_coco_boxes(prepared):
    from ultralytics.data.utils import verify_image_label

    folder = prepared.folder
    label = folder / "labels" / "val" / "000000000001.txt"
    lines = label.read_text().splitlines()
    assert len(lines) == 3 and all(len(line.split()) > 6 for line in lines)  # the crowd region is no label
    assert lines[0] == "0 0.125000 0.083333 0.375000 0.583333 0.125000 0.583333"  # the triangle, normalised
    _, boxes, _, segments, *_ = verify_image_label(
        (str(folder / "images" / "val" / "000000000001.jpg"), str(label), "", False, 80, 0, 0, False))
    assert len(segments) == 3
    derived = {(int(c), round(x * 80 - w * 40, 3), round(y * 60 - h * 30, 3), round(w * 80, 3), round(h * 60, 3))
               for c, x, y, w, h in boxes}
    assert derived == {(0, 10, 5, 20, 30), (2, 40, 10, 20, 10), (11, 70, 40, 10, 10)}
    # the two parts are one outline: both parts' corners, joined by a zero-width bridge
    assert len(segments[1]) == 4 + 3 + 2
    assert pixel_boxes(folder, "val")["000000000002.jpg"] == [(2, 2.0, 2.0, 10.0, 10.0), (2, 20.0, 20.0, 5.0, 5.0)]


def test_every_change_is_counted_and_named(prepared):
    counts = prepared.manifest["counts"]
    assert counts == {CROWD: 1, CLIPPED: 1, MASK_CLIPPED: 1, NO_MASK: 1, MALFORMED: 1, MASK_BOX_MISMATCH: 1}
    events = {e["reason"]: e for e in prepared.manifest["events"]}
    assert "annotation id 5: no segmentation; its box is used as its mask" in events[NO_MASK]["detail"]
    assert "annotation id 4: polygon reached 10 px past" in events[MASK_CLIPPED]["detail"]
    assert "annotation id 6" in events[MASK_BOX_MISMATCH]["detail"]
    assert prepared.manifest["splits"]["val"]["masks"] == 5  # all five, one its box's rectangle (no_mask above)
    assert prepared.manifest["splits"]["train"]["masks"] == 0
    assert check_dataset(prepared.folder).ok, check_dataset(prepared.folder).problems


def test_ground_truth_keeps_polygons_areas_and_the_crowd_rle(prepared):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_path = prepared.folder / "annotations" / "val.json"
    gt = json.loads(gt_path.read_text())
    by_bbox = {tuple(a["bbox"]): a for a in gt["annotations"]}
    assert by_bbox[(10.0, 5.0, 20.0, 30.0)]["segmentation"] == [TRIANGLE]
    assert by_bbox[(10.0, 5.0, 20.0, 30.0)]["area"] == 300.0  # the triangle, not its box (600)
    assert by_bbox[(40.0, 10.0, 20.0, 10.0)]["segmentation"] == TWO_PARTS  # parts stay parts here
    assert by_bbox[(40.0, 10.0, 20.0, 10.0)]["area"] == 100.0 + 30.0
    assert by_bbox[(70.0, 40.0, 10.0, 10.0)]["segmentation"] == [[70.0, 40.0, 80.0, 40.0, 80.0, 50.0, 70.0, 50.0]]
    crowd = by_bbox[(5.0, 40.0, 20.0, 15.0)]
    assert crowd["iscrowd"] == 1 and crowd["segmentation"]["size"] == [60, 80] and crowd["area"] == 300.0
    coco = COCO(str(gt_path))
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": coco.annToRLE(a),
                "score": 1.0} for a in gt["annotations"] if not a["iscrowd"]]
    on_crowd = np.zeros((60, 80), np.uint8)
    on_crowd[42:52, 8:20] = 1  # a person predicted inside the crowd region: ignored, not a false positive
    from pycocotools import mask as mask_utils

    perfect.append({"image_id": crowd["image_id"], "category_id": 1, "score": 0.9,
                    "segmentation": mask_utils.encode(np.asfortranarray(on_crowd))})
    evaluator = COCOeval(coco, coco.loadRes(perfect), "segm")
    evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_a_segmentation_run_on_a_split_without_masks_names_the_split(prepared):
    data_yaml = prepared.data_yaml
    with pytest.raises(DatasetTaskError, match=r"split 'train' of 'coco' has masks for none of its 1 objects.*"
                                               r"scsa-yolo data prepare synthetic"):
        check_data_for_task(data_yaml, "segment")
    check_data_for_task(data_yaml, "segment", splits=("val",))  # val has them
    check_data_for_task(data_yaml, "detect")


def test_rle_masks_stay_only_on_crowd_regions_of_the_image_size():
    from pycocotools import mask as mask_utils

    from scsa_yolo.data.convert.boxes import GtBox
    from scsa_yolo.data.convert.events import ConversionLog
    from scsa_yolo.data.convert.recipes.coco import object_mask

    pixels = np.zeros((30, 40), np.uint8)
    pixels[5:15, 10:30] = 1
    compressed = mask_utils.encode(np.asfortranarray(pixels))
    compressed["counts"] = compressed["counts"].decode()  # as COCO's JSON holds it
    crowd, person = GtBox(0, 10, 5, 20, 10, ignore=True), GtBox(0, 10, 5, 20, 10)
    log = ConversionLog()
    kept = object_mask(compressed, crowd, 40, 30, log, ref="annotation id 1", file="x.json")
    assert kept.rle == compressed and kept.area == 200.0 and not log.events
    wrong_size = object_mask(compressed, crowd, 30, 40, log, ref="annotation id 2", file="x.json")
    on_object = object_mask(compressed, person, 40, 30, log, ref="annotation id 3", file="x.json")
    assert wrong_size.polygons == on_object.polygons == ((10, 5, 30, 5, 30, 15, 10, 15),)  # the box's rectangle
    assert [(e.reason, e.detail.split(":")[0]) for e in log.events] == [
        (NO_MASK, "annotation id 2"), (NO_MASK, "annotation id 3")]
    assert "an RLE mask of 40x30 px (width x height) on a 30x40 image" in log.events[0].detail
