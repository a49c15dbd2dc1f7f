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


def test_the_tasks_phase_runs_both_shortened_grids_and_packs_their_records(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PHASE": "tasks", "DEVICE": "cpu", "SLOTS": "2", "SEG_SLOTS": "1", "OUT": str(out), "WORK": str(work),
           "SEG_EPOCHS": "1", "SEG_TRAIN": "4", "SEG_VAL": "2", "CLS_EPOCHS": "1", "CLS_TRAIN": "12", "CLS_VAL": "6",
           "BENCH_ARGS": "--seeds 0 --attns none --imgsz 32", "LIMIT": "500", "YOLO_OFFLINE": "1"}
    env.pop("SCSA_YOLO_DATA", None)
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_grids.sh")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    times = (out / "wall_times.txt").read_text()
    assert "segment rc=0" in times and "classify rc=0" in times, times + (out / "classify.log").read_text()[-2000:]
    seg = yaml.safe_load((out / "table6-synthetic-short.yaml").read_text())
    assert (seg["task"], seg["epochs"], seg["synthetic"]["num_train"]) == ("segment", 1, 4)
    assert "(short: 1 epochs, 4/2 images)" in seg["description"]
    with tarfile.open(out / "tasks.tgz") as packed:
        names = set(packed.getnames())
    assert {"segment/synthetic/yolov8n-seg-none-s0/record.json", "segment/report.md",
            "classify/synthetic-cls/yolov8n-cls-none-s0/record.json", "classify/report.md"} <= names


def test_the_host_time_comparison_runs_both_trees_in_fresh_processes(tmp_path):
    """benchmarks/scsa_host_profile.py --compare (issue 28 item 5's GPU measurement), rehearsed
    with Triton's interpreter: each tree's process imports scsa_yolo from that tree, and the
    pooled table holds every form and the within-round ratio."""
    other = tmp_path / "tree"
    other.mkdir()
    (other / "scsa_yolo").symlink_to(ROOT / "scsa_yolo")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scsa_host_profile.py"), "--device", "cpu", "--shape", "1,8,4,4",
         "--rounds", "1", "--calls", "1", "--warm", "1", "--compare", str(ROOT), str(other), "--procs", "1",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "out" / "scsa_host_compare_1x8x4x4.md").read_text()
    for form in ("fwd", "fb-accum", "fb-none", "fb-conv", "empty5", "fb-noparams", "fb-none/fb-conv"):
        assert f"| {form} |" in table
    assert f"# new = {other}" in table
