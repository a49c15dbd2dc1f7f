"""The synthetic sets' polygons: one prepared set serves detection and segmentation.

Ultralytics derives each box from its polygon (the box must stay the class box), the
polygons match the drawn pixels, the COCO ground truth carries them, and both a detection
and a segmentation model train on the same folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_data_common import prepare_synthetic

from scsa_yolo.data.convert.masks import signed_area
from scsa_yolo.data.convert.recipes import synthetic
from scsa_yolo.data.convert.recipes.synthetic import DATASET_NAMES, Shape, render_image, shape_polygon
from scsa_yolo.data.layout.manifest import check_dataset

SIZES = {"num_train": 6, "num_val": 4}


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("masks")
    return {name: prepare_synthetic(root, name, seed=2, **SIZES).parent for name in DATASET_NAMES}


def _ultralytics_labels(image: Path, label: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """What Ultralytics' dataset check reads from one label file: (N, 5) boxes and polygons."""
    from ultralytics.data.utils import verify_image_label

    _, boxes, _, segments, _, missing, found, empty, corrupt, message = verify_image_label(
        (str(image), str(label), "", False, len(synthetic.CLASSES), 0, 0, False)
    )
    assert (missing, found, corrupt) == (0, 1, 0), message
    return boxes, segments


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_ultralytics_derives_the_class_boxes_from_the_polygons(sets, name):
    params = json.loads((sets[name] / "manifest.json").read_text())["generator"]
    scenario = synthetic.scenario_of_dataset(name)
    size = params["imgsz"]
    checked = 0
    for split, count in (("train", SIZES["num_train"]), ("val", SIZES["num_val"])):
        for index in range(count):
            stem = f"{split}_{index:05d}"
            boxes, segments = _ultralytics_labels(
                sets[name] / "images" / split / f"{stem}.jpg", sets[name] / "labels" / split / f"{stem}.txt"
            )
            _, expected = render_image(2, split, index, {k: params[k] for k in synthetic.DEFAULTS}, scenario)
            assert len(segments) == len(boxes) == len(expected) > 0
            want = np.array([[b.class_index, (b.x + b.w / 2) / size, (b.y + b.h / 2) / size, b.w / size, b.h / size]
                             for b in expected])
            # well within a pixel: the polygons' extents are the boxes (6-decimal labels)
            assert np.allclose(boxes, want, atol=2e-6), (name, stem, boxes - want)
            checked += len(boxes)
    assert checked > 0


def _drawn_and_polygon_masks(shape: Shape, size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    from pycocotools import mask as mask_utils

    class NoJitter:
        def integers(self, low, high):
            return 0

    image = Image.new("RGB", (size, size))
    synthetic._draw_shape(ImageDraw.Draw(image), shape, NoJitter())
    drawn = np.asarray(image)[..., 0] > 0
    rle = mask_utils.frPyObjects([list(shape_polygon(shape))], size, size)
    return drawn, mask_utils.decode(mask_utils.merge(rle)).astype(bool)


@pytest.mark.parametrize("kind", [kind for _, kind, _ in synthetic.CLASSES])
def test_each_polygon_covers_the_pixels_its_shape_draws(kind):
    for side in (8, 12, 20, 40, 80, 130):
        height = round(side * 0.8)
        shape = Shape(kind, (200, 200, 200), 10, 12, 10 + side, 12 + height, 0)
        drawn, polygon = _drawn_and_polygon_masks(shape)
        iou = (drawn & polygon).sum() / (drawn | polygon).sum()
        exact = kind in ("square", "cross")  # axis-aligned: the same pixels
        floor = 0.80 if height < 20 else 0.92 if height < 40 else 0.96  # the docstring of shape_polygon
        assert iou == 1.0 if exact else iou >= floor, (kind, side, iou)
        xs = shape_polygon(shape)[0::2]
        assert (min(xs), max(xs)) == (shape.x0, shape.x1)
    ring = Shape("ring", (200, 200, 200), 0, 0, 60, 60, 0)
    drawn, polygon = _drawn_and_polygon_masks(ring)
    assert not polygon[30, 30] and not drawn[30, 30]  # the hole stays a hole


def test_ground_truth_has_a_polygon_and_its_area_for_every_object(sets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    for name, folder in sets.items():
        manifest = json.loads((folder / "manifest.json").read_text())
        assert check_dataset(folder).ok, check_dataset(folder).problems
        for split in ("train", "val"):
            assert manifest["splits"][split]["masks"] == manifest["splits"][split]["boxes"] > 0
            gt = json.loads((folder / "annotations" / f"{split}.json").read_text())
            bands = {"small": 0, "medium": 0, "large": 0}
            for ann in gt["annotations"]:
                (polygon,) = ann["segmentation"]
                assert ann["area"] == pytest.approx(abs(signed_area(polygon)), abs=0.01)
                assert 0 < ann["area"] <= ann["bbox"][2] * ann["bbox"][3] + 0.01
                bands["small" if ann["area"] < 32**2 else "medium" if ann["area"] < 96**2 else "large"] += 1
            assert manifest["splits"][split]["boxes_per_size"] == bands  # the bands the evaluation uses
        gt = COCO(str(folder / "annotations" / "val.json"))
        perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": gt.annToRLE(a),
                    "score": 1.0} for a in gt.dataset["annotations"]]  # results carry RLE masks
        evaluator = COCOeval(gt, gt.loadRes(perfect), "segm")
        evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
        assert evaluator.stats[0] == pytest.approx(1.0), name


@pytest.mark.slow
def test_one_folder_trains_detection_and_segmentation(tmp_path):
    """`yolo detect train` and `yolo segment train` (task=segment) on the same prepared set."""
    from ultralytics import YOLO

    data = str(prepare_synthetic(tmp_path / "datasets", num_train=8, num_val=4, imgsz=64))
    common = {"data": data, "epochs": 1, "imgsz": 64, "batch": 4, "workers": 0, "plots": False, "device": "cpu",
              "verbose": False, "project": str(tmp_path / "runs"), "exist_ok": True}
    segment = YOLO("yolov8n-seg.yaml", task="segment")
    segment.train(name="seg", **common)
    labels = segment.trainer.train_loader.dataset.labels  # what the trainer read: a polygon per object
    assert sum(len(lb["segments"]) for lb in labels) == sum(len(lb["cls"]) for lb in labels) > 0
    metrics = segment.val(data=data, imgsz=64, batch=4, workers=0, plots=False, device="cpu", verbose=False,
                          project=str(tmp_path / "runs"), name="seg-val")
    assert hasattr(metrics, "seg") and metrics.seg.map50 >= 0  # the validator measured masks
    detect = YOLO("yolov8n.yaml")
    detect.train(name="det", **common)
    assert (tmp_path / "runs" / "seg" / "weights" / "last.pt").is_file()
    assert (tmp_path / "runs" / "det" / "weights" / "last.pt").is_file()


def test_check_reports_label_files_that_mix_boxes_and_polygons(tmp_path):
    folder = prepare_synthetic(tmp_path, num_train=4, num_val=2, imgsz=64).parent
    label = next(p for p in sorted((folder / "labels" / "train").glob("*.txt")) if p.read_text().strip())
    first, *rest = label.read_text().splitlines()
    label.write_text("\n".join([f"{first.split()[0]} 0.5 0.5 0.1 0.1", *rest]) + "\n")  # a box among polygons
    problems = "\n".join(check_dataset(folder).problems)
    assert "has 2 boxes in the labels" not in problems  # same objects per class
    assert f"{label}: mixes box lines and polygon lines" in problems
    assert "labels are polygons, manifest says every one" in problems


def test_box_labels_keep_the_images_and_boxes_without_the_polygons(sets, tmp_path):
    """``labels: boxes``: the same images and the boxes Ultralytics derives from the polygons,
    written as box rows (no segments for the augmentations to transform), no ``segmentation``
    in the ground truth, and a segmentation model refused."""
    from scsa_yolo.data.tasks import DatasetTaskError, check_data_for_task

    name = "synthetic-tiny"
    boxed = prepare_synthetic(tmp_path, name, seed=2, labels="boxes", **SIZES).parent
    manifest = json.loads((boxed / "manifest.json").read_text())
    assert manifest["generator"]["labels"] == "boxes"
    for split, count in (("train", SIZES["num_train"]), ("val", SIZES["num_val"])):
        assert manifest["splits"][split]["masks"] == 0 < manifest["splits"][split]["boxes"]
        for index in range(count):
            stem = f"{split}_{index:05d}"
            image = f"images/{split}/{stem}.jpg"
            assert (boxed / image).read_bytes() == (sets[name] / image).read_bytes()
            rows = (boxed / "labels" / split / f"{stem}.txt").read_text().split("\n")
            assert {len(row.split()) for row in rows if row} == {5}
            boxes, segments = _ultralytics_labels(boxed / image, boxed / "labels" / split / f"{stem}.txt")
            from_polygons, _ = _ultralytics_labels(sets[name] / image, sets[name] / "labels" / split / f"{stem}.txt")
            assert segments == [] and np.allclose(boxes, from_polygons, atol=2e-6)
        gt = json.loads((boxed / "annotations" / f"{split}.json").read_text())
        assert gt["annotations"] and all("segmentation" not in a for a in gt["annotations"])
    with pytest.raises(DatasetTaskError, match="polygon"):
        check_data_for_task(boxed / "data.yaml", "segment")
    with pytest.raises(synthetic.SyntheticOptionError, match="labels='box' must be one of polygons, boxes"):
        prepare_synthetic(tmp_path, name, labels="box")
