"""The task dimension through the bench (issue 29 item 7): a grid's ``task:`` turns its stock
models into that task's models at the grid's edge; one tiny segmentation run and one tiny
classification run go through `scsa-yolo bench` end to end (worker subprocess, training,
evaluation, profile, record, report)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from _task_data import CLS_COLOURS, write_cls_dataset, write_seg_dataset
from scsa_yolo.bench.grid import Grid, GridError, load_grid
from scsa_yolo.records import load_record

GRID = """\
datasets: [{data}]
models: [yolov8n]
task: {task}
attns: [{attn}]
placement: {placement}
seeds: [0]
epochs: 1
imgsz: {imgsz}
batch: 4
train_args: {{workers: 0, val: false}}
report: {report}
"""


def _bench(root, grid_text):
    grid = root / "grid.yaml"
    grid.write_text(grid_text)
    env = {**os.environ, "SCSA_YOLO_DATA": str(root / "data"), "YOLO_OFFLINE": "1",
           "SCSA_YOLO_CACHE": str(root / "cache")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "scsa_yolo.cli.main", "bench", "--grid", str(grid), "--out",
                             str(root / "runs")], env=env, capture_output=True, text=True, timeout=600)
    print(f"bench wall time: {time.perf_counter() - started:.1f} s")  # the CI cost of this test (-s shows it)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_task_rewrites_the_grid_s_stock_models_once():
    grid = Grid(datasets=["synthetic"], models=["yolov8n", "yolo11s"], attns=["none", "scsa"], task="segment",
                placement=["block", "neck-res"])
    grid.validate()
    assert [r.run_id for r in grid.runs()][:3] == ["synthetic/yolov8n-seg-none-s0",
                                                   "synthetic/yolov8n-seg-scsa-block-s0",
                                                   "synthetic/yolov8n-seg-scsa-neck-res-s0"]
    assert {r.model_id.task for r in grid.runs()} == {"segment"} and grid.tasks == ["segment"]
    assert [r.to_json()["model"] for r in grid.runs()][::3] == ["yolov8n-seg", "yolo11s-seg"]  # spec.json's form
    # a model that names its task needs no key; the default task is detect
    assert Grid(datasets=["d"], models=["yolov8n-cls"], attns=["se"], placement="block").runs()[0].run_name == \
           "yolov8n-cls-se-block-s0"
    assert Grid(datasets=["d"], models=["yolov8n"], attns=["none"]).runs()[0].model_id.task == "detect"


@pytest.mark.parametrize("changes, message", [
    (dict(task="classify", placement=["backbone-res", "neck"]),
     "--placement neck: a classify model \\(yolov8n-cls\\) has no neck; choose among backbone, backbone-res, block"),
    (dict(task="pose"), "'task' is 'pose'; the bench runs \\(and evaluates\\) detect, segment, classify"),
    (dict(task="segment", models=["yolov8n-cls"]), "yolov8n-cls is a classify model but the grid's task is segment"),
    (dict(task="segment", models=["my.yaml"]), "the model YAML my.yaml keeps the task of its head"),
    (dict(models=["yolov8n-obb"]), "--models yolov8n-obb: a obb model; the bench runs"),
])
def test_a_task_the_grid_cannot_run_is_refused_with_one_message(changes, message):
    base = dict(datasets=["synthetic"], models=["yolov8n"], attns=["none", "scsa"])
    with pytest.raises(GridError, match=message):
        Grid(**{**base, **changes}).validate()


def test_the_shipped_task_grids_expand_to_their_tasks():
    table6 = load_grid("table6-synthetic")
    runs = table6.runs()
    assert table6.task == "segment" and table6.report == "table6" and len(runs) == 8 * 3
    assert runs[0].run_id == "synthetic/yolov8n-seg-none-s0" and {r.seed for r in runs} == {0, 1, 2}
    table2 = load_grid("table2-synthetic-cls")
    runs = table2.runs()
    assert table2.task == "classify" and table2.report == "table2" and len(runs) == 11 * 3
    assert runs[-1].run_id == "synthetic-cls-tiny-shape/yolov8n-cls-scsa-backbone-res-s2"


def test_a_seg_grid_on_a_dataset_without_masks_stops_before_training(tmp_path):
    from scsa_yolo.bench.datasets import resolve_datasets

    data = write_seg_dataset(tmp_path / "boxes", n_train=0, ground_truth=False)
    for label in (data.parent / "labels" / "val").iterdir():
        label.write_text("0 0.5 0.5 0.2 0.2\n")
    grid = Grid(datasets=[str(data)], models=["yolov8n"], attns=["none"], task="segment")
    with pytest.raises(GridError, match=f"dataset {data} cannot train a segmentation model: split 'val' has no masks"):
        resolve_datasets(grid, echo=lambda _: None)
    detect = Grid(datasets=[str(data)], models=["yolov8n"], attns=["none"])
    assert resolve_datasets(detect, echo=lambda _: None)[str(data)].ready  # boxes are all detection needs


def test_a_classifier_s_evaluation_is_shown_as_top_k_not_pycocotools(tmp_path):
    from scsa_yolo.bench.runner import progress_update
    from scsa_yolo.bench.worker import report_progress

    report_progress(tmp_path, "eval", epoch=1, epochs=1, scorer="top-1/top-5")  # what the worker writes
    assert progress_update(tmp_path, ("train", 1))[1] == "evaluating (top-1/top-5)"


def test_a_generated_classification_set_resolves_to_its_folder_for_the_worker(tmp_path, monkeypatch):
    """The shipped table2-synthetic-cls grid names a generated classification set
    (`synthetic-cls-tiny-shape`), whose dataset is a folder, not a YAML: the worker must accept
    what the bench resolved (the first GPU rehearsal failed every run on it)."""
    from scsa_yolo.bench.datasets import data_yaml_of, resolve_datasets

    monkeypatch.setenv("SCSA_YOLO_DATA", str(tmp_path / "data"))
    name = load_grid("table2-synthetic-cls").datasets[0]
    grid = Grid(datasets=[name], models=["yolov8n"], attns=["none"], task="classify",
                synthetic={"num_train": 12, "num_val": 6, "imgsz": 16})
    status = resolve_datasets(grid, echo=lambda _: None)[name]
    folder = data_yaml_of(status.to_json(), tmp_path / "spec.json")
    assert folder == tmp_path.resolve() / "data" / name and (folder / "train").is_dir()


@pytest.mark.slow
def test_a_tiny_seg_run_through_the_bench_records_box_and_mask_ap(tmp_path):
    data = write_seg_dataset(tmp_path / "tiny-seg", n_train=4, n_val=2)
    output = _bench(tmp_path, GRID.format(data=data, task="segment", attn="scsa", placement="backbone-res",
                                          imgsz=64, report="table6"))
    run = tmp_path / "runs" / "tiny-seg" / "yolov8n-seg-scsa-backbone-res-s0"
    record = load_record(run / "record.json")
    spec, metrics = record["spec"], record["metrics"]
    assert (spec["task"], spec["model"], spec["attn"], spec["placement"]) == ("segment", "yolov8n-seg", "scsa",
                                                                               "backbone-res")
    assert record["run_id"] == "tiny-seg/yolov8n-seg-scsa-backbone-res-s0"
    assert metrics["mask"]["n_ground_truth"] == 4 and set(metrics["mask"]) >= {"AP", "AP50", "AP75", "APs"}
    assert "mask_mAP50-95" in metrics["ultralytics"] and record["profile"]["params"] > 3_000_000
    assert (run / "eval" / "detections_val.json").is_file()
    assert "tiny-seg/yolov8n-seg-scsa-backbone-res-s0: done (AP " in output and ", mask AP " in output
    assert "Instance segmentation: box and mask AP (Table 6 style)" in output


@pytest.mark.slow
def test_a_tiny_cls_run_through_the_bench_records_top1_and_top5(tmp_path):
    folder = write_cls_dataset(tmp_path / "tiny-cls", n_train=2, n_val=1, size=32)
    (folder / "data.yaml").write_text(f"path: {folder}\n")  # a grid names a dataset by a YAML or a prepared name
    output = _bench(tmp_path, GRID.format(data=folder / "data.yaml", task="classify", attn="se", placement="block",
                                          imgsz=32, report="table2"))
    run = tmp_path / "runs" / "tiny-cls" / "yolov8n-cls-se-block-s0"
    record = load_record(run / "record.json")
    spec, metrics = record["spec"], record["metrics"]
    assert (spec["task"], spec["model"], spec["placement"]) == ("classify", "yolov8n-cls", "block")
    assert metrics["n_images"] == len(CLS_COLOURS) and set(metrics["per_class"]) == set(CLS_COLOURS)
    assert 0.0 <= metrics["top1"] <= metrics["top5"] <= 1.0 and "AP" not in metrics
    assert record["profile"]["params"] > 1_000_000 and record["profile"]["imgsz"] == 32
    assert "tiny-cls/yolov8n-cls-se-block-s0: done (top1 " in output
    assert "Top-1" in output and "Top-5" in output  # the table2 report printed at the end
