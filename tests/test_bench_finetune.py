"""A fine-tuning grid fine-tunes (issue 33): it names its start, `--dry-run` shows every run's
start, and a grid with a pretraining step pretrains the plain model once, fine-tunes every run
from it and, run again, re-runs nothing."""
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from scsa_yolo.bench.grid import GridError, load_grid
from scsa_yolo.cli.main import main
from scsa_yolo.records import load_record

FINETUNE_GRID = """\
datasets: [synthetic]
models: [yolov8n]
attns: [none, se]
seeds: [0]
epochs: 1
imgsz: 64
batch: 4
train_args: {workers: 0, val: false}
synthetic: {num_train: 8, num_val: 4, imgsz: 64}
finetune: true
"""


def test_the_shipped_finetune_grid_shows_its_pretraining_step_and_fine_tuned_runs(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--grid", "finetune-synthetic", "--dry-run", "--out", str(tmp_path)],
                                env={"SCSA_YOLO_DATA": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    assert "pretraining step" in result.output
    assert "[1/1] synthetic/yolov8n-none-s0  new      20 epochs, imgsz 160, batch 32, from scratch" in result.output
    start = f"fine-tuned from the pretraining step's {tmp_path / 'pretrain/synthetic/yolov8n-none-s0/weights/last.pt'}"
    assert result.output.count(start) == 45
    assert "[1/45] synthetic-lowlight/yolov8n-none-ft-s0" in result.output
    scratch = CliRunner().invoke(main, ["bench", "--grid", "finetune-synthetic-scratch", "--dry-run", "--out",
                                        str(tmp_path)], env={"SCSA_YOLO_DATA": str(tmp_path / "data")})
    assert scratch.exit_code == 0 and scratch.output.count("from scratch") == 45 and "-ft-" not in scratch.output


def test_a_fine_tuning_grid_without_a_start_is_refused_with_both_ways_named(tmp_path):
    grid = tmp_path / "mine.yaml"
    grid.write_text(FINETUNE_GRID)
    with pytest.raises(GridError) as error:
        load_grid(grid).with_options()  # as `scsa-yolo bench --grid mine.yaml` does
    message = str(error.value)
    result = CliRunner().invoke(main, ["bench", "--grid", str(grid), "--dry-run", "--out", str(tmp_path / "runs")],
                                env={"SCSA_YOLO_DATA": str(tmp_path / "data")})
    assert result.exit_code == 2 and "names no start" in result.output and not (tmp_path / "data").exists()
    assert "grid mine" in message and "names no start" in message
    assert "--pretrained PATH" in message and "pretrain: {data: synthetic" in message
    grid.write_text(FINETUNE_GRID + "pretrained: a.pt\npretrain: {data: synthetic}\n")
    with pytest.raises(GridError, match="both 'pretrained' and 'pretrain'"):
        load_grid(grid)
    grid.write_text(FINETUNE_GRID + "pretrain: {data: synthetic, epoch: 3}\n")
    with pytest.raises(GridError, match=r"'pretrain'.*unknown key\(s\) \['epoch'\]"):
        load_grid(grid)


def test_a_checkpoint_in_the_dry_run_is_named_with_its_sha256(tmp_path):
    from scsa_yolo.identity import Pretrained
    from scsa_yolo.integration.transfer import build_target, save_checkpoint

    checkpoint = tmp_path / "plain.pt"
    save_checkpoint(build_target("yolov8n.yaml", 3), checkpoint, "yolov8n.yaml")
    grid = tmp_path / "mine.yaml"
    grid.write_text(FINETUNE_GRID)
    result = CliRunner().invoke(main, ["bench", "--grid", str(grid), "--pretrained", str(checkpoint), "--dry-run",
                                       "--out", str(tmp_path / "runs")], env={"SCSA_YOLO_DATA": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    digest = Pretrained.of(checkpoint).sha256[:12]
    assert result.output.count(f"fine-tuned from {checkpoint} (sha256 {digest})") == 2


@pytest.mark.slow
def test_a_pretraining_step_runs_once_and_every_run_fine_tunes_from_it(tmp_path):
    grid = tmp_path / "tiny-ft.yaml"
    grid.write_text(FINETUNE_GRID + "pretrain: {data: synthetic, epochs: 1}\n")
    out = tmp_path / "runs"
    env = {**os.environ, "SCSA_YOLO_DATA": str(tmp_path / "data"), "YOLO_OFFLINE": "1"}
    command = [sys.executable, "-m", "scsa_yolo.cli.main", "bench", "--grid", str(grid), "--out", str(out)]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    pretraining = out / "pretrain" / "synthetic" / "yolov8n-none-s0"
    start = pretraining / "weights" / "last.pt"
    assert load_record(pretraining / "record.json")["spec"]["pretrained"] is None  # it starts from scratch
    runs = sorted(p.name for p in (out / "synthetic").iterdir() if p.is_dir())
    assert runs == ["yolov8n-none-ft-s0", "yolov8n-se-backbone-res-ft-s0"]
    for name in runs:
        record = load_record(out / "synthetic" / name / "record.json")
        assert record["spec"]["pretrained"]["path"] == str(start.resolve())
        assert (out / "synthetic" / name / "pretrained.pt").is_file()
    assert "Every run is fine-tuned from the pretraining run synthetic/yolov8n-none-s0" in first.stdout
    assert "synthetic/yolov8n-none-s0" not in (out / "report.csv").read_text()  # in the notes, not the rows
    assert "pretraining run synthetic/yolov8n-none-s0" in (out / "report.notes.txt").read_text()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("already done, 0 to run") == 2  # the pretraining step and the grid
    assert ": starting" not in again.stdout and ": resuming" not in again.stdout
