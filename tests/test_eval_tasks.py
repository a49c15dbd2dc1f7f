"""Evaluation of segmentation and classification models (issue 29 item 5), on real tiny trainings.

Segmentation: pycocotools ``segm`` beside ``bbox`` from the model's own masks, RLE-encoded
at each image's resolution. Classification: top-1, top-5 and accuracy per class on the
val split's class folders.
"""
from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from _task_data import CLS_COLOURS, write_cls_dataset, write_seg_dataset
from scsa_yolo.eval import EvalError, coco_metrics, evaluate
from scsa_yolo.eval.classify import classification_metrics
from scsa_yolo.eval.coco import STAT_NAMES
from scsa_yolo.eval.ground_truth import MissingMasks
from scsa_yolo.records import validate_record

os.environ.setdefault("YOLO_OFFLINE", "1")
TRAIN = dict(epochs=1, batch=4, workers=0, device="cpu", plots=False, val=False, exist_ok=True, seed=0,
             deterministic=True, verbose=False)


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    """One epoch of stock YOLOv8n-seg on 8 images of 64 px; the val images are 80 x 48 (letterboxed)."""
    from ultralytics import YOLO

    root = tmp_path_factory.mktemp("seg")
    data = write_seg_dataset(root / "tiny-seg", val_size=(80, 48))
    YOLO("yolov8n-seg.yaml").train(data=str(data), imgsz=64, project=str(root / "runs"), name="run", **TRAIN)
    return root / "runs" / "run", data


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory):
    """One epoch of stock YOLOv8n-cls on six colour classes of 32 px images."""
    from ultralytics import YOLO

    root = tmp_path_factory.mktemp("cls")
    data = write_cls_dataset(root / "tiny-cls")
    YOLO("yolov8n-cls.yaml").train(data=str(data), imgsz=32, project=str(root / "runs"), name="run", **TRAIN)
    return root / "runs" / "run", data


def _pycocotools(gt_path, det_path, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        evaluator = COCOeval(coco, coco.loadRes(str(det_path)), iou_type)
        evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    return evaluator.stats


def test_seg_masks_and_boxes_equal_pycocotools_on_the_files_written(seg_run, tmp_path):
    run, data = seg_run
    result = evaluate(run, data, out_dir=tmp_path / "eval", workers=0, device="cpu")
    assert result.task == "segment" and not result.ground_truth_built  # the shipped annotations/val.json
    assert result.mask.n_ground_truth == result.metrics.n_ground_truth == 8 and result.mask.n_detections > 0
    for iou_type, metrics in (("bbox", result.metrics), ("segm", result.mask)):
        stats = _pycocotools(result.ground_truth, result.detections_path, iou_type)
        for name, value in zip(STAT_NAMES, stats):
            assert getattr(metrics, name) == (None if value < 0 else value), (iou_type, name)
    assert {"mask_mAP50-95", "mask_mAP50", "mask_mAP75", "mAP50-95"} <= set(result.ultralytics)
    assert "pycocotools segm AP in % (val, 4 images, 8 masks" in result.summary()


def test_seg_val_cli_reports_mask_ap_beside_box_ap(seg_run, tmp_path):
    from scsa_yolo.cli.main import main

    run, data = seg_run
    out = tmp_path / "val.json"
    outcome = CliRunner().invoke(main, ["val", "--model", str(run), "--data", str(data), "--device", "cpu",
                                        "--workers", "0", "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    assert "pycocotools bbox AP in % (val, 4 images, 8 boxes" in outcome.output
    assert "pycocotools segm AP in % (val, 4 images, 8 masks" in outcome.output
    saved = json.loads(out.read_text())
    assert saved["task"] == "segment" and set(saved["mask"]["per_class"]) == {"red", "green"}
    assert json.loads((out.parent / "val_files" / "detections_val.json").read_text())[0]["segmentation"]["counts"]


def test_seg_masks_are_encoded_at_each_image_s_resolution_where_the_model_puts_them(seg_run, tmp_path):
    """80 x 48 val images, letterboxed to 64: every RLE has the image's size, and the best
    detection's mask matches what Ultralytics' predictor draws on the original image."""
    from ultralytics import YOLO

    run, data = seg_run
    result = evaluate(run, data, out_dir=tmp_path / "eval", workers=0, device="cpu")
    detections = json.loads(open(result.detections_path).read())
    assert detections and all(d["segmentation"]["size"] == [48, 80] for d in detections)
    gt = json.loads(open(result.ground_truth).read())
    model = YOLO(str(run / "weights" / "best.pt"))
    compared = 0
    for image in gt["images"]:
        ours = max((d for d in detections if d["image_id"] == image["id"]), key=lambda d: d["score"], default=None)
        if ours is None:
            continue
        path = data.parent / "images" / "val" / image["file_name"]
        predicted = model.predict(str(path), imgsz=64, conf=0.001, retina_masks=True, device="cpu", verbose=False)[0]
        top = int(predicted.boxes.conf.argmax())
        theirs = predicted.masks.data[top].numpy().astype(bool)
        mine = mask_utils.decode(ours["segmentation"]).astype(bool)
        assert mine.shape == theirs.shape == (48, 80)
        union = (mine | theirs).sum()
        assert union == 0 or (mine & theirs).sum() / union > 0.9  # same place; edges differ by the resize path
        compared += 1
    assert compared >= 2


def test_a_seg_dataset_without_a_shipped_ground_truth_gets_one_from_its_polygons(seg_run, tmp_path):
    run, _ = seg_run
    data = write_seg_dataset(tmp_path / "no-gt", n_train=0, ground_truth=False)
    result = evaluate(run, data, out_dir=tmp_path / "eval", workers=0, device="cpu")
    assert result.ground_truth_built and result.mask.n_ground_truth == 8
    built = json.loads(open(result.ground_truth).read())
    assert all(len(a["segmentation"][0]) >= 6 for a in built["annotations"])


def test_a_seg_model_on_box_labels_is_refused_naming_the_split_and_the_fix(seg_run, tmp_path):
    from scsa_yolo.cli.main import main

    run, _ = seg_run
    data = write_seg_dataset(tmp_path / "boxes", n_train=0)
    gt_path = data.parent / "annotations" / "val.json"
    gt = json.loads(gt_path.read_text())
    for annotation in gt["annotations"]:
        del annotation["segmentation"]
    gt_path.write_text(json.dumps(gt))
    with pytest.raises(MissingMasks, match="split 'val' has no masks for a segmentation model: 8 of its 8 objects"):
        evaluate(run, data, out_dir=tmp_path / "eval", workers=0, device="cpu")
    outcome = CliRunner().invoke(main, ["val", "--model", str(run), "--data", str(data), "--device", "cpu",
                                        "--workers", "0"])
    assert outcome.exit_code == 2 and "Traceback" not in outcome.output
    assert "scsa-yolo data prepare" in outcome.output and "polygon" in outcome.output


def test_coco_segm_scores_perfect_masks_one_and_refuses_a_ground_truth_without_masks(tmp_path):
    data = write_seg_dataset(tmp_path / "gt", n_train=0)
    gt = json.loads((data.parent / "annotations" / "val.json").read_text())
    perfect = []
    for annotation in gt["annotations"]:
        image = gt["images"][annotation["image_id"] - 1]
        rle = mask_utils.merge(mask_utils.frPyObjects(annotation["segmentation"], image["height"], image["width"]))
        perfect.append({"image_id": annotation["image_id"], "category_id": annotation["category_id"],
                        "bbox": annotation["bbox"], "score": 0.9,
                        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    assert coco_metrics(gt, perfect, iou_type="segm").AP == pytest.approx(1.0)
    shifted = [{**d, "segmentation": mask_utils.encode(np.asfortranarray(
        np.roll(mask_utils.decode(d["segmentation"]), 12, axis=1)))} for d in perfect]
    for d in shifted:
        d["segmentation"]["counts"] = d["segmentation"]["counts"].decode()
    assert coco_metrics(gt, shifted, iou_type="segm").AP < 0.5  # the masks, not the boxes, are scored
    for annotation in gt["annotations"][:2]:
        del annotation["segmentation"]
    with pytest.raises(ValueError, match="2 ground-truth annotation\\(s\\) have no 'segmentation'"):
        coco_metrics(gt, perfect, iou_type="segm")


def test_seg_record_metrics_validate_with_a_mask_section(seg_run, tmp_path):
    run, data = seg_run
    result = evaluate(run, data, out_dir=tmp_path / "eval", workers=0, device="cpu")
    metrics = result.record_metrics()
    assert metrics["mask"]["AP"] == result.mask.AP and metrics["AP"] == result.metrics.AP
    assert not validate_record(_record(metrics, "yolov8n-seg"))
    broken = {**metrics, "mask": {**metrics["mask"], "AP50": 7.0}}
    assert "'metrics.mask.AP50' must be a fraction in [0, 1], got 7.0" in validate_record(_record(broken, "yolov8n-seg"))


def _record(metrics, model):
    from scsa_yolo.identity import ModelId
    from scsa_yolo.records import make_record

    env = {"python": "3", "platform": "x", "scsa_yolo": None, "ultralytics": None, "torch": None, "cuda": None,
           "device_name": "cpu", "git_commit": None}
    return make_record("train", f"tiny/{model}-none-s0", ModelId.create(model), model_yaml=f"{model}.yaml", imgsz=64,
                       env=env, dataset="tiny", metrics=metrics)


def test_classification_metrics_count_top1_top5_and_per_class():
    names = {i: f"c{i}" for i in range(7)}
    targets = [0, 0, 1, 2, 6]
    ranked = [[0, 1, 2, 3, 4], [1, 0, 2, 3, 4], [1, 2, 3, 4, 5], [6, 5, 4, 3, 1], [0, 1, 2, 3, 4]]
    m = classification_metrics(targets, ranked, names)
    assert (m.top1, m.top5, m.n_images, m.n_classes) == (0.4, 0.6, 5, 7)
    assert m.per_class == {"c0": 0.5, "c1": 1.0, "c2": 0.0, "c3": None, "c4": None, "c5": None, "c6": 0.0}
    assert m.per_class_images["c0"] == 2 and sum(m.per_class_images.values()) == 5
    assert classification_metrics([0, 1], [[0, 1], [0, 1]], ["a", "b"]).top5 is None  # 2 classes: all in the top 5


def test_cls_top1_and_top5_equal_ultralytics_on_the_same_pass(cls_run, tmp_path):
    run, data = cls_run
    result = evaluate(run, data, workers=0, device="cpu")
    c = result.classification
    assert result.task == "classify" and result.metrics is None
    assert c.n_images == 12 and c.n_classes == 6 and set(c.per_class) == set(CLS_COLOURS)
    assert c.top1 == pytest.approx(result.ultralytics["top1"], abs=1e-6)
    assert c.top5 == pytest.approx(result.ultralytics["top5"], abs=1e-6)
    assert all(n == 2 for n in c.per_class_images.values())
    assert c.top1 == pytest.approx(np.mean([v for v in c.per_class.values()]))  # equal class sizes
    metrics = result.record_metrics()
    assert (metrics["top1"], metrics["top5"], metrics["n_images"]) == (c.top1, c.top5, 12)
    assert not validate_record(_record(metrics, "yolov8n-cls"))
    assert "'metrics.top1' must be a fraction" in " ".join(validate_record(_record({**metrics, "top1": 1.5},
                                                                                   "yolov8n-cls")))


def test_cls_val_cli_prints_top1_top5_and_counts_unreadable_images(cls_run, tmp_path):
    import shutil

    from scsa_yolo.cli.main import main

    run, data = cls_run
    copy = tmp_path / "cls"
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("*.cache"))
    (copy / "val" / "red" / "broken.png").write_bytes(b"not an image")
    outcome = CliRunner().invoke(main, ["val", "--model", str(run), "--data", str(copy), "--device", "cpu",
                                        "--workers", "0"])
    assert outcome.exit_code == 0, outcome.output
    assert "classification accuracy in % (val, 12 images, 6 classes):" in outcome.output and "top1 " in outcome.output
    assert "1 ground-truth image(s) were not loaded" in outcome.output and "broken.png" in outcome.output
    figures = json.loads(outcome.output.strip().splitlines()[-2])
    assert set(figures) == {"unit", "top1", "top5"} and figures["unit"] == "%" and 0 <= figures["top1"] <= 100
    missing = CliRunner().invoke(main, ["val", "--model", str(run), "--data", str(tmp_path / "nothing")])
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    with pytest.raises(EvalError, match="split 'test' is not a folder"):
        evaluate(run, data, split="test", workers=0, device="cpu")


def test_check_masks_names_how_many_objects_lack_one(tmp_path):
    from scsa_yolo.eval.ground_truth import GroundTruth, check_masks

    data = write_seg_dataset(tmp_path / "partial", n_train=0)
    gt_path = data.parent / "annotations" / "val.json"
    check_masks(GroundTruth(gt_path, data.parent / "images" / "val", built=False), "val", data)  # all masked: fine
    gt = json.loads(gt_path.read_text())
    del gt["annotations"][3]["segmentation"]
    gt["annotations"].append({**gt["annotations"][0], "id": 99, "iscrowd": 1, "segmentation": []})  # ignore region
    gt_path.write_text(json.dumps(gt))
    with pytest.raises(MissingMasks, match=f"split 'val' lacks masks for a segmentation model: 1 of its 9 objects "
                                           f"have no mask \\(box labels, e.g. annotation 4\\) in the ground truth"):
        check_masks(GroundTruth(gt_path, data.parent / "images" / "val", built=False), "val", data)
