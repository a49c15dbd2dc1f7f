"""VisDrone2019-DET: a generated copy in the native layout, with its traps, converted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_data_common import assert_boxes_close, coco_eval, image_id, pixel_boxes, write_image

from scsa_yolo.data.convert.events import (
    CLIPPED,
    CORRUPT_IMAGE,
    DEGENERATE,
    IGNORED_REGION,
    MALFORMED,
    MISSING_IMAGE,
    NO_ANNOTATION,
    OTHERS,
    UNKNOWN_CLASS,
)
from scsa_yolo.data.layout.manifest import check_dataset
from scsa_yolo.data.prepare import PrepareError, prepare_dataset

IMG = "0000001_00000_d_0000001"
# one image 64x48 with every trap of the format
TRAP_LINES = [
    "10,5,20,10,1,4,0,0",  # 1 car
    "30,20,10,10,1,1,0,0,",  # 2 pedestrian, trailing comma
    "0,0,15,15,0,0,0,0",  # 3 ignored region (category 0, score 0)
    "20,30,6,6,0,2,0,0",  # 4 score 0 with a class: ignore region too
    "40,30,30,30,1,11,0,0",  # 5 others, reaches past the border
    "50,40,20,20,1,9,0,0",  # 6 bus past the corner: clipped to 14x8
    "5,5,0,10,1,4,0,0",  # 7 zero width: dropped
    "1,2,3",  # 8 malformed
    "1,1,5,5,1,12,0,0",  # 9 category 12: unknown
    "70,50,5,5,1,3,0,0",  # 10 entirely outside: dropped
    "",  # blank line: nothing
]
CAR, PEDESTRIAN, BUS = 3, 0, 8


def make_visdrone(root: Path) -> Path:
    """``root/VisDrone2019-DET-{train,val,test-dev}/{images,annotations}`` with the traps in val."""
    val = root / "VisDrone2019-DET-val"
    write_image(val / "images" / f"{IMG}.jpg", 64, 48)
    (val / "annotations").mkdir(parents=True)
    (val / "annotations" / f"{IMG}.txt").write_text("\n".join(TRAP_LINES) + "\n")
    write_image(val / "images" / "0000002_no_annotation.jpg", 32, 32)  # kept as background
    (val / "annotations" / "0000003_no_image.txt").write_text("1,1,5,5,1,4,0,0\n")  # image missing
    (val / "images" / "0000004_corrupt.jpg").write_bytes(b"\xff\xd8 truncated garbage")
    (val / "annotations" / "0000004_corrupt.txt").write_text("1,1,5,5,1,4,0,0\n")
    for folder, name in (("VisDrone2019-DET-train", "0000010_train"), ("VisDrone2019-DET-test-dev", "0000020_test")):
        write_image(root / folder / "images" / f"{name}.jpg", 40, 30)
        (root / folder / "annotations").mkdir(parents=True)
        (root / folder / "annotations" / f"{name}.txt").write_text("2,3,10,12,1,10,0,1\n4,4,8,8,1,5,1,0,\n")
    return root


@pytest.fixture()
def prepared(tmp_path):
    source = make_visdrone(tmp_path / "download")
    result = prepare_dataset("visdrone", root=tmp_path / "root", source=source, progress=False, echo=lambda m: None)
    return result


def test_every_trap_is_converted_and_counted(prepared):
    manifest = prepared.manifest
    counts = manifest["counts"]
    assert counts[IGNORED_REGION] == 2 and counts[OTHERS] == 1  # lines 3, 4; line 5
    assert counts[CLIPPED] == 2  # others (line 5) and bus (line 6)
    assert counts[DEGENERATE] == 2 and counts[MALFORMED] == 1 and counts[UNKNOWN_CLASS] == 1
    assert counts[MISSING_IMAGE] == 1 and counts[CORRUPT_IMAGE] == 1 and counts[NO_ANNOTATION] == 1
    events = {(e["reason"], e.get("line")) for e in manifest["events"] if e.get("image") == IMG}
    assert {(MALFORMED, 8), (UNKNOWN_CLASS, 9), (DEGENERATE, 7), (DEGENERATE, 10), (OTHERS, 5)} <= events
    assert manifest["splits"]["val"]["images"] == 2  # trap image + background image
    assert manifest["splits"]["val"]["boxes_per_class"]["car"] == 1
    # 3 regions (two ignored, one 'others') x 10 classes
    assert manifest["splits"]["val"]["ignore_regions"] == 30
    assert set(manifest["splits"]) == {"train", "val", "test"}


def test_labels_round_trip_to_the_source_boxes(prepared):
    boxes = pixel_boxes(prepared.folder, "val")
    expected = [(CAR, 10, 5, 20, 10), (PEDESTRIAN, 30, 20, 10, 10), (BUS, 50, 40, 14, 8)]
    assert_boxes_close(boxes[f"{IMG}.jpg"], expected)
    assert boxes["0000002_no_annotation.jpg"] == []
    train = pixel_boxes(prepared.folder, "train")["0000010_train.jpg"]
    assert_boxes_close(train, [(9, 2, 3, 10, 12), (4, 4, 4, 8, 8)])


def test_ground_truth_scores_one_for_perfect_predictions_and_ignores_regions(prepared):
    gt_path = prepared.folder / "annotations" / "val.json"
    image = image_id(gt_path, f"{IMG}.jpg")
    # confident detections of two different classes inside the category-0 region: not false positives
    on_ignore = [
        {"image_id": image, "category_id": 1, "bbox": [1, 1, 12, 12], "score": 0.99},
        {"image_id": image, "category_id": 4, "bbox": [2, 2, 10, 10], "score": 0.98},
    ]
    stats = coco_eval(gt_path, on_ignore)
    assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0)
    # the same detection away from any region is a false positive
    elsewhere = [{"image_id": image, "category_id": 4, "bbox": [40, 2, 10, 10], "score": 0.99}]
    assert coco_eval(gt_path, elsewhere)[0] < 1.0


def test_second_run_does_nothing_force_rebuilds_and_other_options_are_refused(prepared, tmp_path):
    messages = []
    again = prepare_dataset(
        "visdrone", root=tmp_path / "root", source=tmp_path / "download", progress=False, echo=messages.append
    )
    assert again.status == "already prepared" and "already prepared" in messages[0]
    stamp = json.loads((prepared.folder / "manifest.json").read_text())["created"]
    with pytest.raises(PrepareError, match="--force"):
        prepare_dataset("visdrone", root=tmp_path / "root", source=tmp_path / "download", options={"others": "drop"},
                        progress=False, echo=lambda m: None)
    rebuilt = prepare_dataset("visdrone", root=tmp_path / "root", source=tmp_path / "download", force=True,
                              options={"others": "drop"}, progress=False, echo=lambda m: None)
    assert rebuilt.status == "prepared" and rebuilt.manifest["request"]["options"] == {"others": "drop"}
    assert rebuilt.manifest["splits"]["val"]["ignore_regions"] == 20  # 'others' no longer a region
    assert stamp and check_dataset(rebuilt.folder).ok


def test_others_as_a_class_adds_an_eleventh_class(tmp_path):
    source = make_visdrone(tmp_path / "download")
    result = prepare_dataset("visdrone", root=tmp_path / "root", source=source, splits=["val"],
                             options={"others": "class"}, progress=False, echo=lambda m: None)
    assert result.manifest["classes"][-1] == "others" and len(result.manifest["classes"]) == 11
    boxes = pixel_boxes(result.folder, "val")[f"{IMG}.jpg"]
    assert (10, 40.0, 30.0, 24.0, 18.0) in [tuple(round(v, 3) for v in b) for b in boxes]
    assert list(result.manifest["splits"]) == ["val"]
    assert "train: null" in (result.folder / "data.yaml").read_text()


def test_leftover_of_a_killed_run_is_replaced(tmp_path):
    source = make_visdrone(tmp_path / "download")
    leftover = tmp_path / "root" / ".visdrone.partial"
    (leftover / "images").mkdir(parents=True)
    (leftover / "junk.txt").write_text("half-written")
    from scsa_yolo.data.catalog import dataset_rows

    assert next(r for r in dataset_rows(tmp_path / "root") if r["dataset"] == "visdrone")["prepared"] == "interrupted"
    result = prepare_dataset("visdrone", root=tmp_path / "root", source=source, progress=False, echo=lambda m: None)
    assert not leftover.exists() and check_dataset(result.folder).ok
    assert next(r for r in dataset_rows(tmp_path / "root") if r["dataset"] == "visdrone")["prepared"] == "yes"


def test_ultralytics_loads_every_image_and_label(prepared):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(prepared.data_yaml), autodownload=False)
    dataset = YOLODataset(img_path=data["val"], data=data, task="detect", imgsz=64, augment=False)
    per_image = {Path(label["im_file"]).name: sorted(label["cls"].ravel().tolist()) for label in dataset.labels}
    assert per_image == {f"{IMG}.jpg": [PEDESTRIAN, CAR, BUS], "0000002_no_annotation.jpg": []}
