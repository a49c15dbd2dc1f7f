"""COCO 2017: 91->80 ids, crowd boxes as ignore regions, the ultralytics class names."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_data_common import assert_boxes_close, coco_eval, image_id, pixel_boxes, write_image

from scsa_yolo.data.convert.events import CLIPPED, CROWD, DEGENERATE, MALFORMED, MISSING_IMAGE, SIZE_MISMATCH, UNKNOWN_CLASS
from scsa_yolo.data.convert.recipes.coco import CLASSES
from scsa_yolo.data.layout.manifest import check_dataset
from scsa_yolo.data.prepare import prepare_dataset


def make_coco(root: Path) -> Path:
    """``annotations/instances_val2017.json`` + ``val2017/`` with the format's traps."""
    write_image(root / "val2017" / "000000000139.jpg", 80, 60)
    write_image(root / "val2017" / "000000000285.jpg", 50, 40)
    write_image(root / "val2017" / "000000000632.jpg", 30, 30)
    images = [
        {"id": 139, "file_name": "000000000139.jpg", "width": 80, "height": 60},
        {"id": 285, "file_name": "000000000285.jpg", "width": 40, "height": 40},  # wrong width: file wins
        {"id": 632, "file_name": "000000000632.jpg", "width": 30, "height": 30},  # no annotations: background
        {"id": 724, "file_name": "000000000724.jpg", "width": 30, "height": 30},  # image file missing
    ]
    categories = [{"id": i, "name": f"cat{i}"} for i in (1, 3, 13, 90)]
    annotations = [
        {"id": 1, "image_id": 139, "category_id": 1, "bbox": [10.5, 5.25, 20.0, 30.0], "iscrowd": 0},  # person -> 0
        {"id": 2, "image_id": 139, "category_id": 13, "bbox": [40, 10, 10, 10], "iscrowd": 0},  # stop sign -> 11
        {"id": 3, "image_id": 139, "category_id": 90, "bbox": [60, 40, 30, 30], "iscrowd": 0},  # toothbrush -> 79, clipped
        {"id": 4, "image_id": 139, "category_id": 1, "bbox": [0, 30, 30, 25], "iscrowd": 1},  # crowd: ignore region
        {"id": 5, "image_id": 139, "category_id": 12, "bbox": [1, 1, 5, 5], "iscrowd": 0},  # id 12 is not a class
        {"id": 6, "image_id": 139, "category_id": 3, "bbox": [5, 5, 0, 9], "iscrowd": 0},  # zero width
        {"id": 7, "image_id": 285, "category_id": 3, "bbox": [2, 3, 40, 30], "iscrowd": 0},  # car -> 2
        {"id": 8, "image_id": 285, "category_id": 3, "bbox": [1, 2], "iscrowd": 0},  # malformed bbox
    ]
    gt = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(gt))
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coco")
    source = make_coco(tmp / "src")
    return prepare_dataset("coco", root=tmp / "root", source=source, splits=["val"], progress=False, echo=lambda m: None)


def test_class_names_are_ultralytics_coco_names():
    import ultralytics

    coco_yaml = Path(ultralytics.__file__).parent / "cfg" / "datasets" / "coco.yaml"
    names = yaml.safe_load(coco_yaml.read_text())["names"]
    assert list(CLASSES) == [names[i] for i in range(80)]


def test_ids_map_91_to_80_and_crowd_boxes_are_not_training_labels(prepared):
    boxes = pixel_boxes(prepared.folder, "val")
    assert_boxes_close(
        boxes["000000000139.jpg"], [(0, 10.5, 5.25, 20, 30), (11, 40, 10, 10, 10), (79, 60, 40, 20, 20)]
    )
    assert_boxes_close(boxes["000000000285.jpg"], [(2, 2, 3, 40, 30)])
    assert boxes["000000000632.jpg"] == []
    counts = prepared.manifest["counts"]
    assert counts == {
        CROWD: 1, UNKNOWN_CLASS: 1, DEGENERATE: 1, CLIPPED: 1, MALFORMED: 1, MISSING_IMAGE: 1, SIZE_MISMATCH: 1,
    }
    unknown = next(e for e in prepared.manifest["events"] if e["reason"] == UNKNOWN_CLASS)
    assert "annotation id 5" in unknown["detail"] and unknown["file"].endswith("instances_val2017.json")
    assert check_dataset(prepared.folder).ok
    assert any("category 13 is named 'cat13' there; it is class 11 'stop sign'" in n for n in prepared.manifest["notes"])


def test_ground_truth_keeps_crowd_as_ignore_and_scores_perfect_predictions_one(prepared):
    gt_path = prepared.folder / "annotations" / "val.json"
    gt = json.loads(gt_path.read_text())
    crowd = [a for a in gt["annotations"] if a["iscrowd"]]
    assert [(a["category_id"], a["bbox"]) for a in crowd] == [(1, [0.0, 30.0, 30.0, 25.0])]
    assert {i["file_name"]: i["width"] for i in gt["images"]}["000000000285.jpg"] == 50
    on_crowd = [{"image_id": image_id(gt_path, "000000000139.jpg"), "category_id": 1, "bbox": [2, 32, 25, 20], "score": 0.9}]
    stats = coco_eval(gt_path, on_crowd)
    assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0)


def test_a_broken_annotation_file_is_a_clear_error_and_leaves_no_dataset(tmp_path):
    from click.testing import CliRunner

    from scsa_yolo.cli.main import main

    source = make_coco(tmp_path / "src")
    path = source / "annotations" / "instances_val2017.json"
    path.write_text(path.read_text()[:-40])  # cut short, as a failed copy would
    result = CliRunner().invoke(main, ["data", "prepare", "coco", "--splits", "val", "--root", str(tmp_path / "root"),
                                       "--source", str(source), "--no-progress"])
    assert result.exit_code == 1 and "instances_val2017.json:1: not valid JSON" in result.output
    assert not (tmp_path / "root" / "coco").exists() and not (tmp_path / "root" / ".coco.partial").exists()
