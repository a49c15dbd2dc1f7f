"""Run-record schema: validation, atomic writes, environment capture."""
import copy
import json
from pathlib import Path

import pytest

from scsa_yolo.records import (
    SCHEMA_VERSION,
    RecordError,
    collect_env,
    load_record,
    validate_record,
    write_record,
)
from scsa_yolo.report.load import load_rows as load_records


def _valid() -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "train",
        "run_id": "synthetic/yolov8n-scsa-s0",
        "created_at": "2025-01-01T00:00:00+00:00",
        "spec": {
            "dataset": "synthetic", "model": "yolov8n", "family": "yolov8", "scale": "n", "attn": "scsa",
            "attn_label": "+SCSA", "attn_kwargs": {}, "placement": "backbone", "model_yaml": "yolov8n-scsa.yaml",
            "seed": 0, "epochs": 3, "imgsz": 160, "batch": 16, "train_args": {"lr0": 0.01},
        },
        "env": {"python": "3.11", "platform": "linux", "scsa_yolo": "0.1.0", "ultralytics": "8.4.190",
                "torch": "2.4", "cuda": None, "device_name": "cpu", "git_commit": None},
        "metrics": {"split": "val", "AP": 0.2, "AP50": 0.35, "AP75": 0.18, "APs": None, "APm": 0.1, "APl": 0.3,
                    "per_class": {"a": 0.2}, "ultralytics": {"mAP50-95": 0.19}, "n_images": 80},
        "profile": {"params": 3_000_000, "gflops": 0.5, "imgsz": 160, "throughput": 30.0, "latency_ms": 20.0,
                    "batch": 2, "half": False, "device_name": "cpu", "reduced": True},
        "wall_time_s": {"train": 10.0},
        "run_dir": "/tmp/run",
    }


def test_a_complete_record_is_valid_and_round_trips(tmp_path):
    record = _valid()
    assert validate_record(record) == []
    path = write_record(record, tmp_path / "run" / "record.json")
    assert load_record(path) == record
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]  # no temp file left behind


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda r: r.pop("schema_version"), "schema_version must be 1"),
        (lambda r: r.update(schema_version=99), "newer than this scsa-yolo"),
        (lambda r: r.update(kind="eval"), "'kind' must be one of"),
        (lambda r: r["spec"].pop("attn"), "missing 'spec.attn'"),
        (lambda r: r["spec"].update(imgsz="640"), "'spec.imgsz' must be int, got str"),
        (lambda r: r["spec"].update(seed=True), "'spec.seed' must be int or null, got bool"),
        (lambda r: r["metrics"].update(AP=42.0), "'metrics.AP' must be a fraction in [0, 1]"),
        (lambda r: r["metrics"].pop("AP75"), "missing 'metrics.AP75'"),
        (lambda r: r.update(metrics=None), "a 'train' record needs 'metrics'"),
        (lambda r: r["profile"].update(params=1.5), "'profile.params' must be int"),
        (lambda r: r["profile"].update(shared_device_slots=0), "'profile.shared_device_slots' must be a number of runs"),
        (lambda r: r["profile"].update(shared_device_slots="6"), "'profile.shared_device_slots' must be a number of runs"),
        (lambda r: r["env"].pop("git_commit"), "missing 'env.git_commit'"),
    ],
)
def test_invalid_records_name_the_problem(mutate, problem):
    record = copy.deepcopy(_valid())
    mutate(record)
    problems = validate_record(record)
    assert any(problem in p for p in problems), problems


def test_write_refuses_an_invalid_record_and_leaves_nothing(tmp_path):
    record = _valid()
    record["metrics"]["AP"] = -0.5
    with pytest.raises(RecordError, match="metrics.AP"):
        write_record(record, tmp_path / "record.json")
    assert list(tmp_path.iterdir()) == []


def test_load_records_skips_bad_files_with_their_paths(tmp_path):
    write_record(_valid(), tmp_path / "good" / "record.json")
    (tmp_path / "truncated").mkdir()
    (tmp_path / "truncated" / "record.json").write_text(json.dumps(_valid())[:50])
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "record.json").write_text("[]")
    records, problems = load_records([tmp_path])
    assert [r["run_id"] for r in records] == ["synthetic/yolov8n-scsa-s0"]
    reasons = {p.path.parent.name: p.reason for p in problems}
    assert "not valid JSON" in reasons["truncated"]
    assert "expected a JSON object" in reasons["list"]


def test_overwrite_is_atomic(tmp_path, monkeypatch):
    path = write_record(_valid(), tmp_path / "record.json")
    before = path.read_text()
    broken = _valid()
    broken["wall_time_s"] = {"train": object()}  # not JSON-serialisable: fails mid-write
    with pytest.raises(TypeError):
        write_record(broken, path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_collect_env_names_versions_device_and_commit():
    env = collect_env("cpu")
    assert env["ultralytics"] and env["torch"] and env["python"]
    assert env["device_name"] and "unknown" not in env["device_name"]
    from importlib.metadata import version

    assert env["packages"]["numpy"] == version("numpy") and env["packages"]["pycocotools"] == version("pycocotools")
    assert set(env["packages"]) == {"torchvision", "numpy", "opencv-python", "pillow", "pycocotools"}
    if (Path(__file__).parents[1] / ".git").exists():  # a checkout (not an installed copy)
        assert len(env["git_commit"].split("+")[0]) == 40
