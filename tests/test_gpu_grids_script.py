"""benchmarks/gpu_grids.sh PHASE=tasks, rehearsed on CPU: device time is scarce (one call of at
most 10 minutes, often none at all), so the script that spends it must not first meet its bugs
on the GPU machine. One seed, one attention, 32-px images: the script's own logic (the shortened
grid copies, the slots, both benches side by side, the tarball) is what is checked."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _tasks_phase(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    """benchmarks/gpu_grids.sh PHASE=tasks on CPU, tiny: OUT and WORK under ``tmp_path``."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PHASE": "tasks", "DEVICE": "cpu", "SLOTS": "2", "SEG_SLOTS": "1", "OUT": str(tmp_path / "out"),
           "WORK": str(tmp_path / "work"),
           "SEG_EPOCHS": "1", "SEG_TRAIN": "4", "SEG_VAL": "2", "CLS_EPOCHS": "1", "CLS_TRAIN": "12", "CLS_VAL": "6",
           "BENCH_ARGS": "--seeds 0 --attns none --imgsz 32", "LIMIT": "500", "YOLO_OFFLINE": "1", **settings}
    env.pop("SCSA_YOLO_DATA", None)
    return subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_grids.sh")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)


def test_the_tasks_phase_runs_both_shortened_grids_and_packs_their_records(tmp_path):
    out = tmp_path / "out"
    done = _tasks_phase(tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    times = (out / "wall_times.txt").read_text()
    assert "segment rc=0" in times and "classify rc=0" in times, times + (out / "classify.log").read_text()[-2000:]
    seg = yaml.safe_load((out / "table6-synthetic-short.yaml").read_text())
    assert (seg["task"], seg["epochs"], seg["synthetic"]["num_train"]) == ("segment", 1, 4)
    assert "(short: 1 epochs, 4/2 images)" in seg["description"]
    with tarfile.open(out / "tasks.tgz") as packed:
        names = set(packed.getnames())
    assert {"segment/synthetic/yolov8n-seg-none-s0/record.json", "segment/report.md",
            "classify/synthetic-cls-tiny-shape/yolov8n-cls-none-s0/record.json", "classify/report.md"} <= names


def test_the_tasks_phase_runs_the_classification_grid_alone_on_every_slot(tmp_path):
    """TASKS=classify: a second call for the classification grid alone (its short copy now
    trains longer than the first call's) leaves the segmentation grid and its slots alone."""
    out = tmp_path / "out"
    assert "TASKS entry 'segmnt'" in _tasks_phase(tmp_path, TASKS="segmnt classify").stderr
    done = _tasks_phase(tmp_path, TASKS="classify", SLOTS="1")  # SEG_SLOTS=1 would leave it none
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    times = (out / "wall_times.txt").read_text()
    assert "classify rc=0" in times and "--devices cpu " in times and "segment" not in times, times
    cls = yaml.safe_load((out / "table2-synthetic-cls-short.yaml").read_text())
    assert (cls["datasets"], cls["epochs"], cls["synthetic"]) == (["synthetic-cls-tiny-shape"], 1,
                                                                  {"num_train": 12, "num_val": 6})
    with tarfile.open(out / "tasks.tgz") as packed:
        names = set(packed.getnames())
    assert "classify/synthetic-cls-tiny-shape/yolov8n-cls-none-s0/record.json" in names
    assert not any(name.startswith("segment/") for name in names)
