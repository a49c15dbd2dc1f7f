"""The built-in synthetic dataset: layout, determinism, reuse, COCO ground truth, options."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from test_data_common import prepare_synthetic

from scsa_yolo.data.convert.recipes import synthetic
from scsa_yolo.data.convert.recipes.synthetic import CLASS_NAMES, SyntheticOptionError
from scsa_yolo.data.layout.ground_truth import read_yolo_split
from scsa_yolo.data.layout.paths import resolve_data

SMALL = {"num_train": 24, "num_val": 12}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in ("manifest.json", "data.yaml")
    }


def test_layout_and_data_yaml(tmp_path):
    data_yaml = prepare_synthetic(tmp_path, **SMALL)
    folder = tmp_path / "synthetic"
    assert data_yaml == folder / "data.yaml"
    assert resolve_data("synthetic", tmp_path) == data_yaml.resolve()
    data = yaml.safe_load(data_yaml.read_text())
    assert Path(data["path"]) == folder.resolve()
    assert data["train"] == "images/train" and data["val"] == "images/val"
    assert [data["names"][i] for i in range(data["nc"])] == list(CLASS_NAMES)
    assert len(list((folder / "images" / "train").glob("*.jpg"))) == 24
    assert len(list((folder / "labels" / "val").glob("*.txt"))) == 12
    assert not list(tmp_path.glob(".synthetic*")), "staging folders must not be left behind"


def test_coco_ground_truth_matches_the_yolo_labels(tmp_path):
    from pycocotools.coco import COCO

    prepare_synthetic(tmp_path, **SMALL)
    folder = tmp_path / "synthetic"
    gt = json.loads((folder / "annotations" / "val.json").read_text())
    assert [c["name"] for c in gt["categories"]] == list(CLASS_NAMES)
    from_labels = read_yolo_split(folder / "images" / "val")
    assert [i["file_name"] for i in gt["images"]] == [r.file_name for r in from_labels]
    boxes = {}
    for ann in gt["annotations"]:
        boxes.setdefault(ann["image_id"], []).append((ann["category_id"] - 1, *ann["bbox"]))
    for image_id, record in enumerate(from_labels, start=1):
        expected = [(b.class_index, b.x, b.y, b.w, b.h) for b in record.boxes]
        got = boxes.get(image_id, [])
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g[0] == e[0] and np.allclose(g[1:], e[1:], atol=0.01)
    coco = COCO(str(folder / "annotations" / "val.json"))
    assert len(coco.getAnnIds()) == len(gt["annotations"]) > 0


def test_all_coco_size_bands_and_classes_occur(tmp_path):
    prepare_synthetic(tmp_path, num_train=8, num_val=60)
    manifest = json.loads((tmp_path / "synthetic" / "manifest.json").read_text())
    val = manifest["splits"]["val"]
    assert all(val["boxes_per_size"][band] > 0 for band in ("small", "medium", "large")), val["boxes_per_size"]
    assert all(count > 0 for count in val["boxes_per_class"].values())
    gt = json.loads((tmp_path / "synthetic" / "annotations" / "val.json").read_text())
    areas = [a["area"] for a in gt["annotations"]]
    assert min(areas) < 32**2 and max(areas) > 96**2
    assert sum(val["boxes_per_size"].values()) == val["boxes"] == len(gt["annotations"])


def test_distractors_are_unlabelled_near_misses():
    params = {**synthetic.DEFAULTS, "distractors": 4.0}
    seen = 0
    colours = {kind: colour for _, kind, colour in synthetic.CLASSES}
    for index in range(20):
        rng = np.random.default_rng([0, 0, index])
        for shape in synthetic._plan_image(rng, params):
            if shape.class_index is None:
                seen += 1
                assert shape.colour != colours[shape.kind]  # a class shape never in its class colour
    assert seen > 20


def test_deterministic_from_the_seed(tmp_path):
    prepare_synthetic(tmp_path / "a", seed=3, **SMALL)
    prepare_synthetic(tmp_path / "b", seed=3, **SMALL)
    prepare_synthetic(tmp_path / "c", seed=4, **SMALL)
    a, b, c = (_files(tmp_path / x / "synthetic") for x in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c
    # image k does not depend on the split size
    prepare_synthetic(tmp_path / "d", seed=3, num_train=30, num_val=12)
    d = _files(tmp_path / "d" / "synthetic")
    assert d["images/train/train_00005.jpg"] == a["images/train/train_00005.jpg"]


def test_regeneration_is_skipped_only_when_files_match(tmp_path):
    path = prepare_synthetic(tmp_path, **SMALL)
    manifest = path.parent / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    label = path.parent / "labels" / "train" / "train_00000.txt"
    original = label.read_text()

    assert prepare_synthetic(tmp_path, **SMALL) == path
    assert manifest.stat().st_mtime_ns == stamp  # nothing rewritten

    label.write_text("0 0.5 0.5 0.1 0.1\n")  # a damaged file triggers regeneration
    prepare_synthetic(tmp_path, **SMALL)
    assert label.read_text() == original and manifest.stat().st_mtime_ns != stamp

    stamp = manifest.stat().st_mtime_ns
    prepare_synthetic(tmp_path, num_train=25, num_val=12)  # other parameters: regenerated
    assert len(list((path.parent / "images" / "train").glob("*.jpg"))) == 25
    stamp = manifest.stat().st_mtime_ns
    prepare_synthetic(tmp_path, num_train=25, num_val=12, force=True)
    assert manifest.stat().st_mtime_ns != stamp


def test_manifest_passes_the_dataset_checker(tmp_path):
    check = pytest.importorskip("scsa_yolo.data.layout.manifest").check_dataset
    path = prepare_synthetic(tmp_path, **SMALL)
    report = check(path.parent)
    assert report.ok, report.problems


def test_option_errors_name_the_option(tmp_path):
    with pytest.raises(SyntheticOptionError, match="unknown synthetic dataset option.*colour"):
        prepare_synthetic(tmp_path, colour="red")
    with pytest.raises(SyntheticOptionError, match="imgsz=16 must be at least 32"):
        prepare_synthetic(tmp_path, imgsz=16)
    with pytest.raises(SyntheticOptionError, match="num_val"):
        prepare_synthetic(tmp_path, num_val=0)
    with pytest.raises(SyntheticOptionError, match="distractors"):
        prepare_synthetic(tmp_path, distractors=-1)
    assert not os.listdir(tmp_path)
