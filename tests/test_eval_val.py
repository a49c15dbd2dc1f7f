"""evaluate() and `scsa-yolo val` on a real (tiny) Ultralytics training, CPU only."""
import contextlib
import io
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from scsa_yolo.data.layout.ground_truth import read_yolo_split, write_coco_gt
from scsa_yolo.eval import STAT_NAMES, EvalError, evaluate

os.environ.setdefault("YOLO_OFFLINE", "1")
IMGSZ = 64


def _write_tiny_dataset(root, n_train=8, stems=("7", "12", "3", "40")):
    """Noise images with solid rectangles; numeric stems so Ultralytics' stem ids differ from ours."""
    rng = np.random.default_rng(0)
    for split, names in (("train", [f"t{i}" for i in range(n_train)]), ("val", list(stems))):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for name in names:
            img = rng.integers(0, 60, (IMGSZ, IMGSZ, 3), dtype=np.uint8)
            lines = []
            for _ in range(2):
                cls = int(rng.integers(0, 2))
                w, h = (int(v) for v in rng.integers(10, 30, 2))
                x, y = int(rng.integers(0, IMGSZ - w)), int(rng.integers(0, IMGSZ - h))
                img[y:y + h, x:x + w] = (230, 40, 40) if cls == 0 else (40, 230, 40)
                lines.append(f"{cls} {(x + w / 2) / IMGSZ} {(y + h / 2) / IMGSZ} {w / IMGSZ} {h / IMGSZ}")
            Image.fromarray(img).save(root / "images" / split / f"{name}.png")
            (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: red\n  1: green\n")
    return root / "data.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch of stock YOLOv8n on the tiny set (a few seconds on 2 cores)."""
    from ultralytics import YOLO

    root = tmp_path_factory.mktemp("eval")
    data = _write_tiny_dataset(root / "tiny")
    YOLO("yolov8n.yaml").train(
        data=str(data), epochs=1, imgsz=IMGSZ, batch=4, workers=0, device="cpu", plots=False, val=False,
        project=str(root / "runs"), name="run", exist_ok=True, seed=0, deterministic=True, verbose=False,
    )
    return root / "runs" / "run", data


def _pycocotools_stats(gt_path, det_path):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        evaluator = COCOeval(coco, coco.loadRes(str(det_path)), "bbox")
        evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    return evaluator.stats


def test_evaluate_matches_pycocotools_on_the_files_it_wrote(trained, tmp_path):
    run, data = trained
    result = evaluate(run, data, out_dir=tmp_path / "eval", workers=0, device="cpu")
    assert result.ground_truth_built  # the tiny set ships no annotations/val.json
    assert result.metrics.n_images == 4 and result.metrics.n_ground_truth == 8
    assert result.metrics.n_detections > 0
    stats = _pycocotools_stats(result.ground_truth, result.detections_path)
    for name, value in zip(STAT_NAMES, stats):
        assert getattr(result.metrics, name) == (None if value < 0 else value), name
    assert set(result.ultralytics) == {"mAP50-95", "mAP50", "mAP75"}
    assert all(0.0 <= v <= 1.0 for v in result.ultralytics.values())
    assert result.imgsz == IMGSZ  # taken from the checkpoint's training arguments


def test_detections_land_on_the_right_ground_truth_image(trained, tmp_path):
    """Each image's detections equal what Ultralytics predicts for that very file."""
    from ultralytics import YOLO

    run, data = trained
    result = evaluate(run / "weights" / "best.pt", data, out_dir=tmp_path / "eval", workers=0, device="cpu")
    gt = json.loads(open(result.ground_truth).read())
    detections = json.loads(open(result.detections_path).read())
    model = YOLO(str(run / "weights" / "best.pt"))
    checked = 0
    for image in gt["images"]:
        ours = sorted((d for d in detections if d["image_id"] == image["id"]), key=lambda d: -d["score"])
        if not ours:
            continue
        path = data.parent / "images" / "val" / image["file_name"]
        boxes = model.predict(str(path), imgsz=IMGSZ, conf=0.001, iou=0.7, device="cpu", verbose=False)[0].boxes
        top = int(boxes.conf.argmax())
        x1, y1, x2, y2 = boxes.xyxy[top].tolist()
        assert ours[0]["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-2)
        assert ours[0]["category_id"] == int(boxes.cls[top]) + 1
        checked += 1
    assert checked >= 2


def test_shipped_ground_truth_with_ignore_regions_is_used(trained, tmp_path):
    run, data = trained
    images = read_yolo_split(data.parent / "images" / "val")
    images[0].boxes.append(type(images[0].boxes[0])(0, 0, 0, 8, 8, ignore=True))
    write_coco_gt(images, ["red", "green"], data.parent / "annotations" / "val.json")
    try:
        result = evaluate(run, data, out_dir=tmp_path / "eval", workers=0, device="cpu")
    finally:
        (data.parent / "annotations" / "val.json").unlink()
    assert not result.ground_truth_built
    assert result.ground_truth == str((data.parent / "annotations" / "val.json").resolve())
    assert result.metrics.n_ignore_regions == 1


def test_val_cli_writes_a_result_json(trained, tmp_path):
    from scsa_yolo.cli.main import main

    run, data = trained
    out = tmp_path / "val.json"
    outcome = CliRunner().invoke(main, ["val", "--model", str(run), "--data", str(data), "--device", "cpu",
                                        "--workers", "0", "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    assert "ultralytics mAP50-95" in outcome.output
    saved = json.loads(out.read_text())
    assert saved["metrics"]["n_images"] == 4 and saved["split"] == "val"
    assert set(saved["metrics"]["per_class"]) == {"red", "green"}


def test_bad_inputs_give_clear_errors(trained, tmp_path):
    from scsa_yolo.cli.main import main

    run, data = trained
    with pytest.raises(EvalError, match="neither|not found"):
        evaluate(tmp_path / "nothing_here", data)
    with pytest.raises(EvalError, match="split 'test' is not defined"):
        evaluate(run, data, split="test", out_dir=tmp_path / "e")
    outcome = CliRunner().invoke(main, ["val", "--model", str(run), "--data", "no_such_dataset"])
    assert outcome.exit_code != 0
    # issue 26 item 5: a name that is no dataset gets the known names, not a prepare command that fails too
    assert "unknown dataset 'no_such_dataset'" in outcome.output and "scsa-yolo data prepare NAME" in outcome.output
    assert "Traceback" not in outcome.output


@pytest.fixture
def ultralytics_log():
    """Every message Ultralytics' logger emits during the test (a real logging handler)."""
    import logging

    from ultralytics.utils import LOGGER

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect(level=logging.DEBUG)
    LOGGER.addHandler(handler)
    yield messages
    LOGGER.removeHandler(handler)


def test_val_cli_names_only_folders_that_outlive_the_command(trained, tmp_path, ultralytics_log):
    """Issue 20: `scsa-yolo val` printed "Results saved to" a temporary folder it then deleted."""
    from scsa_yolo.cli.main import main

    run, data = trained
    args = ["val", "--model", str(run), "--data", str(data), "--device", "cpu", "--workers", "0"]
    plain = CliRunner().invoke(main, args)
    assert plain.exit_code == 0, plain.output
    assert any("Speed:" in m for m in ultralytics_log)  # the handler does see Ultralytics' lines
    shown = plain.output + "\n".join(ultralytics_log)
    assert "Results saved to" not in shown and "scsa-yolo-val-" not in shown
    assert "nothing saved; pass --out FILE.json" in plain.output

    ultralytics_log.clear()
    out = tmp_path / "res" / "val.json"
    kept = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert kept.exit_code == 0, kept.output
    assert "Results saved to" not in kept.output + "\n".join(ultralytics_log)
    detections = out.parent / "val_files" / "detections_val.json"
    assert f"result written to {out}" in kept.output and f"detections written to {detections}" in kept.output
    assert json.loads(detections.read_text()) and json.loads(out.read_text())["detections_path"] == str(detections)
    assert not (out.parent / "val_files" / "ultralytics_val").exists()  # Ultralytics' empty save_dir is removed


def test_val_cli_prints_ap_in_one_unit(trained, capfd):
    """Issue 26: `scsa-yolo val` printed AP in % and then a JSON line of fractions; both are
    in % now, and say so. Piped, its output holds no progress redraw codes."""
    from scsa_yolo.cli.main import main

    run, data = trained
    outcome = CliRunner().invoke(main, ["val", "--model", str(run), "--data", str(data), "--device", "cpu",
                                        "--workers", "0"])
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("pycocotools bbox AP in % (val, 4 images"))
    shown = dict(zip(*[iter(lines[header + 1].split())] * 2))
    figures = json.loads(next(line for line in lines if line.startswith("{")))
    assert figures["unit"] == "%" and set(shown) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    for name, text in shown.items():
        assert text == "-" if figures[name] is None else float(text) == pytest.approx(figures[name], abs=0.05), name
    # Ultralytics' validation bars too: one plain line each, no redraw codes (its colours stay)
    printed = outcome.output + capfd.readouterr().out
    assert "\x1b[K" not in printed and "\r" not in printed
    assert "Class     Images  Instances" in printed


def test_summary_and_json_line_give_the_same_percentages():
    """The figures of a real pycocotools scoring (one of two boxes found: AP about 50%) in
    the summary's % and in :meth:`EvalResult.percent`; the result itself keeps fractions."""
    from scsa_yolo.eval.coco import coco_metrics
    from scsa_yolo.eval.evaluate import EvalResult

    boxes = [[4, 4, 20, 20], [30, 30, 24, 24]]
    gt = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}],
          "categories": [{"id": 1, "name": "red"}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                          for i, b in enumerate(boxes)]}
    metrics = coco_metrics(gt, [{"image_id": 1, "category_id": 1, "bbox": boxes[0], "score": 0.9}])
    assert 0.3 < metrics.AP < 0.7
    result = EvalResult(metrics, {}, "w.pt", "d.yaml", "val", 64, 1, 0.001, 0.7, 300, "cpu", "gt.json", False)
    figures = result.percent()
    assert figures["unit"] == "%" and figures["AP"] == pytest.approx(100 * metrics.AP)
    line = result.summary().splitlines()[1].split()
    assert line[line.index("AP") + 1] == f"{100 * metrics.AP:.1f}"
    assert result.to_dict()["metrics"]["AP"] == metrics.AP  # the saved result stays in fractions
