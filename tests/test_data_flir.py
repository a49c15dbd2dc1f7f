"""FLIR ADAS v2: thermal/RGB selection, classes from the annotations, sparse ids, zero-area boxes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_data_common import assert_boxes_close, coco_eval, pixel_boxes, write_image

from scsa_yolo.data.convert.events import UNKNOWN_CLASS, ZERO_AREA
from scsa_yolo.data.layout.manifest import check_dataset
from scsa_yolo.data.prepare import prepare_dataset

# a long category list with sparse ids; only 1, 3 and 79 carry boxes in the thermal fixture
CATEGORIES = [{"id": i, "name": n} for i, n in ((1, "person"), (2, "bike"), (3, "car"), (4, "motor"), (17, "dog"), (79, "sign"))]


def _split(root: Path, folder: str, size: tuple, annotations: list[tuple]) -> None:
    images = []
    for index in range(2):
        name = f"video-{folder}-frame-{index:06d}.jpg"
        write_image(root / "FLIR_ADAS_v2" / folder / "data" / name, *size)
        images.append({"id": index, "file_name": f"data/{name}", "width": size[0], "height": size[1]})
    anns = [
        {"id": n, "image_id": image, "category_id": category, "bbox": list(bbox), "iscrowd": 0, "area": bbox[2] * bbox[3]}
        for n, (image, category, bbox) in enumerate(annotations)
    ]
    (root / "FLIR_ADAS_v2" / folder / "coco.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES, "info": {}, "licenses": []})
    )
    (root / "FLIR_ADAS_v2" / folder / "index.json").write_text("{}")  # the other schema, ignored


def make_flir(root: Path) -> Path:
    _split(root, "images_thermal_train", (64, 51), [(0, 1, (4, 4, 10, 20)), (0, 3, (20, 10, 30, 20)), (1, 79, (1, 1, 5, 5))])
    _split(root, "images_thermal_val", (64, 51), [
        (0, 3, (2, 2, 20, 10)),
        (0, 1, (30, 30, 0, 12)),  # zero width: dropped and counted
        (1, 1, (10, 10, 8, 16)),
        (1, 55, (1, 1, 4, 4)),  # category id not in the list
    ])
    _split(root, "video_thermal_test", (64, 51), [(0, 1, (5, 6, 7, 8))])
    # the RGB camera: other size, and a 'dog' box that thermal does not have
    _split(root, "images_rgb_train", (80, 64), [(0, 17, (10, 10, 20, 20))])
    _split(root, "images_rgb_val", (80, 64), [(0, 3, (1, 2, 30, 20))])
    _split(root, "video_rgb_test", (80, 64), [(1, 17, (3, 3, 9, 9))])
    return root


def test_thermal_classes_come_from_the_annotations_with_the_id_mapping_in_the_yaml(tmp_path):
    source = make_flir(tmp_path / "src")
    result = prepare_dataset("flir", root=tmp_path / "root", source=source, progress=False, echo=lambda m: None)
    assert result.manifest["classes"] == ["person", "car", "sign"]
    data = yaml.safe_load((result.folder / "data.yaml").read_text())
    assert data["flir_category_ids"] == {0: 1, 1: 3, 2: 79} and data["flir_modality"] == "thermal"
    assert data["names"] == {0: "person", 1: "car", 2: "sign"}
    train = pixel_boxes(result.folder, "train")
    assert_boxes_close(train["video-images_thermal_train-frame-000000.jpg"], [(0, 4, 4, 10, 20), (1, 20, 10, 30, 20)])
    assert_boxes_close(train["video-images_thermal_train-frame-000001.jpg"], [(2, 1, 1, 5, 5)])
    counts = result.manifest["counts"]
    assert counts == {ZERO_AREA: 1, UNKNOWN_CLASS: 1}
    zero = next(e for e in result.manifest["events"] if e["reason"] == ZERO_AREA)
    assert "annotation id 1" in zero["detail"] and zero["split"] == "val"
    assert check_dataset(result.folder).ok
    assert coco_eval(result.folder / "annotations" / "val.json")[0] == pytest.approx(1.0)


def test_rgb_modality_converts_the_visible_camera(tmp_path):
    source = make_flir(tmp_path / "src")
    result = prepare_dataset("flir", root=tmp_path / "root", source=source, options={"modality": "rgb"},
                             progress=False, echo=lambda m: None)
    assert result.manifest["classes"] == ["car", "dog"]
    data = yaml.safe_load((result.folder / "data.yaml").read_text())
    assert data["flir_category_ids"] == {0: 3, 1: 17} and data["flir_modality"] == "rgb"
    assert_boxes_close(pixel_boxes(result.folder, "test")["video-video_rgb_test-frame-000001.jpg"], [(1, 3, 3, 9, 9)])
