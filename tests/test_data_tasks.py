"""`scsa-yolo train` checks the data against the model's task before Ultralytics starts: a
segmentation model on box labels, a classification model on a data YAML, and a detection
model on class folders each get one message (Ultralytics would stop with a traceback)."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_data_common import write_image

from scsa_yolo.data.tasks import DatasetTaskError, check_data_for_task


def box_only_dataset(root: Path) -> Path:
    """Any Ultralytics detection dataset: box labels, no manifest."""
    for split in ("train", "val"):
        write_image(root / "images" / split / "a.jpg", 32, 32)
        (root / "labels" / split).mkdir(parents=True)
        (root / "labels" / split / "a.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {{0: thing}}\n")
    return root / "data.yaml"


def _train(*args):
    from scsa_yolo.cli.main import main

    return CliRunner().invoke(main, ["train", *map(str, args)])


def test_a_segmentation_model_on_box_labels_names_the_split_and_how_to_prepare_masks(tmp_path, monkeypatch):
    monkeypatch.setenv("SCSA_YOLO_CACHE", str(tmp_path / "cache"))
    data = box_only_dataset(tmp_path / "boxes")
    result = _train("--model", "yolov8n-seg", "--attn", "none", "--data", data, "--epochs", "1", "--device", "cpu",
                    "--project", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert "split 'train' has 1 object without masks" in result.output
    assert "labels/train/a.txt" in result.output and "scsa-yolo data prepare synthetic" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()
    (tmp_path / "boxes" / "labels" / "train" / "a.txt").write_text("0 0.4 0.4 0.6 0.4 0.5 0.6\n")
    with pytest.raises(DatasetTaskError, match="split 'val' has 1 object without masks"):
        check_data_for_task(data, "segment")  # train has its polygon now; val still has a box


def test_a_classification_model_on_a_data_yaml_is_told_to_use_class_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("SCSA_YOLO_CACHE", str(tmp_path / "cache"))
    data = box_only_dataset(tmp_path / "boxes")
    result = _train("--model", "yolov8n-cls", "--attn", "none", "--data", data, "--epochs", "1", "--device", "cpu",
                    "--project", tmp_path / "runs")
    assert result.exit_code == 2 and "a classification model trains on a folder of class folders" in result.output
    assert "scsa-yolo data prepare synthetic-cls" in result.output and "Traceback" not in result.output
