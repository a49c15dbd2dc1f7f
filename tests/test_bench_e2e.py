"""End to end through the real CLI: `scsa-yolo bench` (worker subprocesses, real training) then
`scsa-yolo report`; re-run skipping; a killed grid resumed from last.pt."""
import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from scsa_yolo.records import load_record
from scsa_yolo.cli.main import main

pytestmark = pytest.mark.slow

TINY_GRID = """\
datasets: [synthetic]
models: [yolov8n]
attns: {attns}
seeds: [0]
epochs: {epochs}
imgsz: 64
batch: 4
train_args: {{workers: 0, val: false}}
synthetic: {{num_train: {num_train}, num_val: 4, imgsz: 64}}
report: table4
"""


def _bench(args, env, **kwargs):
    return subprocess.run([sys.executable, "-m", "scsa_yolo.cli.main", "bench", *args], env=env,
                          capture_output=True, text=True, timeout=600, **kwargs)


def _env(tmp_path):
    return {**os.environ, "SCSA_YOLO_DATA": str(tmp_path / "data"), "YOLO_OFFLINE": "1"}


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """`scsa-yolo bench` on a 2-run grid: plain YOLOv8n and +SCSA, 1 epoch at 64 px."""
    root = tmp_path_factory.mktemp("bench")
    grid = root / "tiny.yaml"
    grid.write_text(TINY_GRID.format(attns="[none, scsa]", epochs=1, num_train=8))
    args = ["--grid", str(grid), "--out", str(root / "runs")]
    started = time.perf_counter()
    result = _bench(args, _env(root))
    assert result.returncode == 0, result.stdout + result.stderr
    return root, args, result.stdout, time.perf_counter() - started


def test_bench_writes_a_valid_record_per_run_and_prints_the_report(bench_run):
    root, _, output, _ = bench_run
    runs = root / "runs" / "synthetic"
    assert sorted(p.name for p in runs.iterdir()) == ["yolov8n-none-s0", "yolov8n-scsa-backbone-res-s0"]
    for name, attn, label in (("yolov8n-none-s0", "none", "-"), ("yolov8n-scsa-backbone-res-s0", "scsa", "+SCSA")):
        record = load_record(runs / name / "record.json")
        spec = record["spec"]
        assert (spec["dataset"], spec["model"], spec["scale"], spec["attn"], spec["attn_label"]) == \
               ("synthetic", "yolov8n", "n", attn, label)
        assert (spec["seed"], spec["epochs"], spec["imgsz"], spec["batch"]) == (0, 1, 64, 4)
        assert spec["train_args"]["deterministic"] is True and spec["train_args"]["seed"] == 0
        assert record["metrics"]["n_images"] == 4 and record["metrics"]["split"] == "val"
        assert record["profile"]["reduced"] is True and record["profile"]["params"] > 3_000_000
        assert record["env"]["ultralytics"] and record["env"]["torch"]
        assert record["wall_time_s"]["train"] > 0
        assert record["run_dir"] == str(runs / name) and (runs / name / "weights" / "best.pt").is_file()
    scsa = load_record(runs / "yolov8n-scsa-backbone-res-s0" / "record.json")
    plain = load_record(runs / "yolov8n-none-s0" / "record.json")
    assert "SCSA" in scsa["spec"]["model_yaml"] or "scsa" in scsa["spec"]["model_yaml"]
    assert scsa["profile"]["params"] > plain["profile"]["params"]
    # progress, then the Table 4 report in the terminal
    assert "[1/2] synthetic/yolov8n-none-s0: epoch 1/1, loss " in output  # with s/epoch and time left
    assert "[2/2] synthetic/yolov8n-scsa-backbone-res-s0: done" in output
    assert "Detection accuracy per dataset (Table 4 style)" in output
    assert "| synthetic | -" in output and "| +SCSA" in output
    for ext in ("md", "tex", "html", "csv", "png"):
        assert (root / "runs" / f"report.{ext}").is_file()


def test_piped_bench_output_and_worker_logs_have_no_redraw_codes(bench_run):
    """Issue 26: progress bars wrote CR and ESC [K into pipes and logs; the bench's piped output
    and each run's worker.log (Ultralytics' epoch and validation bars included) are plain lines."""
    root, _, output, _ = bench_run
    assert "\x1b[K" not in output and "\r" not in output
    logs = sorted((root / "runs" / "synthetic").glob("*/worker.log"))
    assert len(logs) == 2
    for log in logs:
        text = log.read_text()
        assert "\x1b[K" not in text and "\r" not in text, log
        assert "Class     Images  Instances" in text  # the validation bar's line is there


def test_record_metrics_equal_pycocotools_on_the_run_files(bench_run):
    root, *_ = bench_run
    run = root / "runs" / "synthetic" / "yolov8n-scsa-backbone-res-s0"
    metrics = load_record(run / "record.json")["metrics"]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(metrics["ground_truth"])
        evaluator = COCOeval(gt, gt.loadRes(str(run / "eval" / "detections_val.json")), "bbox")
        evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    for name, value in zip(("AP", "AP50", "AP75", "APs", "APm", "APl"), evaluator.stats):
        assert metrics[name] == (None if value < 0 else value)


def test_rerun_skips_completed_runs(bench_run):
    root, args, _, _ = bench_run
    records = sorted((root / "runs").rglob("record.json"))
    before = [p.stat().st_mtime_ns for p in records]
    result = _bench([*args, "--no-report"], _env(root))
    assert result.returncode == 0, result.stderr
    assert "2 already done, 0 to run" in result.stdout
    assert [p.stat().st_mtime_ns for p in records] == before


def test_report_cli_reads_bench_records_and_plain_ultralytics_runs(bench_run, tmp_path):
    root, *_ = bench_run
    # a plain `yolo train` folder: args.yaml + results.csv, no record
    plain = tmp_path / "yolo_run"
    plain.mkdir()
    source = root / "runs" / "synthetic" / "yolov8n-scsa-backbone-res-s0"
    shutil.copy(source / "args.yaml", plain / "args.yaml")
    shutil.copy(source / "results.csv", plain / "results.csv")
    out = tmp_path / "results" / "table3"
    outcome = CliRunner().invoke(main, ["report", str(root / "runs"), str(plain), "--style", "table3",
                                        "--format", "all", "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    assert "+SCSA†" in outcome.output and "plain Ultralytics run" in outcome.output
    with open(plain / "results.csv") as handle:
        best = max(csv.DictReader(handle), key=lambda r: float(r["metrics/mAP50-95(B)"]))
    shown = f"{100 * float(best['metrics/mAP50-95(B)']):.1f}"
    assert shown in outcome.output.split("+SCSA†")[1].splitlines()[0]
    for ext in ("md", "tex", "html", "csv"):
        assert (tmp_path / "results" / f"table3.{ext}").stat().st_size > 0


def test_a_residual_run_records_its_learned_gates_and_the_report_shows_them(bench_run):
    import torch

    root, *_ = bench_run
    runs = root / "runs" / "synthetic"
    assert "learned_gates" not in load_record(runs / "yolov8n-none-s0" / "record.json")
    run = runs / "yolov8n-scsa-backbone-res-s0"
    gates = load_record(run / "record.json")["learned_gates"]
    assert gates["weights"] == "weights/last.pt"
    checkpoint = torch.load(run / "weights" / "last.pt", map_location="cpu", weights_only=False)
    state = (checkpoint.get("ema") or checkpoint["model"]).float().state_dict()
    assert [layer["key"] for layer in gates["layers"]] == ["5/attn", "8/attn", "12/attn"]
    for layer in gates["layers"]:
        g = state[f"model.{layer['key'].split('/')[0]}.gate"].double()
        assert layer["mean_abs"] == pytest.approx(float(g.abs().mean()), rel=1e-6)
        assert layer["max_abs"] == pytest.approx(float(g.abs().max()), rel=1e-6)
        assert layer["mean_abs"] > 0  # one epoch of training moved g off its start at 0
    outcome = CliRunner().invoke(main, ["report", str(root / "runs"), "--style", "gates"])
    assert outcome.exit_code == 0, outcome.output
    assert "| +SCSA (backbone-res) | row 5 / attn" in outcome.output
    assert "1 run(s) without learned gates" in outcome.output


def test_a_record_says_how_many_bench_runs_shared_the_device_it_was_profiled_on(bench_run, tmp_path):
    """Runs of a bench without --devices train one at a time: their profiles were timed alone (1).
    A worker started for a slot of `--devices 0,0` (here on this machine's CPU, its training
    finished, so it evaluates and profiles again) records that two runs shared its device."""
    from scsa_yolo.bench.runner import _slots, slots_per_device, worker_command

    root, *_ = bench_run
    runs = root / "runs" / "synthetic"
    for name in ("yolov8n-none-s0", "yolov8n-scsa-backbone-res-s0"):
        assert load_record(runs / name / "record.json")["profile"]["shared_device_slots"] == 1
    run = tmp_path / "yolov8n-none-s0"
    shutil.copytree(runs / "yolov8n-none-s0", run)
    (run / "record.json").unlink()
    shared = slots_per_device(_slots(["0", "0"], False))[0]
    result = subprocess.run(worker_command(run, "cpu", shared), env=_env(root), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    record = load_record(run / "record.json")
    assert record["train_mode"] == "already-trained" and record["profile"]["shared_device_slots"] == 2


def _start_bench_until_first_epoch(args, env, run, **popen):
    """`scsa-yolo bench` in its own session, returned once RUN has finished an epoch (or the
    bench ended, or 300 s passed): progress.json reports an epoch only after Ultralytics saved
    that epoch's last.pt."""
    process = subprocess.Popen([sys.executable, "-m", "scsa_yolo.cli.main", "bench", *args], env=env,
                               start_new_session=True, **popen)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        progress = json.loads((run / "progress.json").read_text()) if (run / "progress.json").is_file() else {}
        if progress.get("phase") == "train" and progress.get("epoch", 0) >= 1:
            break
        time.sleep(0.02)
    return process


def test_a_killed_grid_resumes_from_last_checkpoint(tmp_path):
    epochs = 6
    grid = tmp_path / "resume.yaml"
    grid.write_text(TINY_GRID.format(attns="[none]", epochs=epochs, num_train=16))
    args = ["--grid", str(grid), "--out", str(tmp_path / "runs"), "--no-report"]
    run = tmp_path / "runs" / "synthetic" / "yolov8n-none-s0"
    env = _env(tmp_path)
    process = _start_bench_until_first_epoch(args, env, run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the grid and its worker, like a lost session
    finally:
        process.wait(30)
    time.sleep(1.5)  # let an orphaned worker notice (it should already be dead)
    assert not (run / "record.json").exists(), "the run finished before it could be killed"
    assert (run / "weights" / "last.pt").is_file()

    result = _bench(args, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 already done, 1 to run" in result.stdout and "resuming" in result.stdout
    record = load_record(run / "record.json")
    assert record["train_mode"] == "resumed"
    with open(run / "results.csv") as handle:
        epochs_logged = [int(float(row["epoch"])) for row in csv.DictReader(handle)]
    assert epochs_logged == list(range(1, epochs + 1))  # each epoch once: continued, not restarted
    assert "Resuming training" in (run / "worker.log").read_text()
    assert json.loads((run / "timing.json").read_text())["resumed"] is True  # kept for a later session


def test_a_resumed_training_stays_resumed_when_a_later_session_only_evaluates(bench_run, tmp_path):
    """A run resumed, then stopped again during its evaluation, is finished on the next
    session without training: its record must still say train_mode resumed (the report marks
    such runs), not already-trained."""
    from scsa_yolo.bench.grid import RunSpec
    from scsa_yolo.bench.worker import SPEC_NAME, TIMING_NAME, train

    root, *_ = bench_run
    run = tmp_path / "yolov8n-none-s0"
    shutil.copytree(root / "runs" / "synthetic" / "yolov8n-none-s0", run)
    spec = RunSpec.from_json(json.loads((run / SPEC_NAME).read_text()))
    timing = json.loads((run / TIMING_NAME).read_text())
    assert timing["resumed"] is False  # trained in one go
    finished = (spec, "yolov8n.yaml", run, tmp_path / "unused.yaml", "cpu")  # model and data unused once trained
    assert train(*finished)["mode"] == "already-trained"
    (run / TIMING_NAME).write_text(json.dumps({**timing, "resumed": True}))  # as a resumed session leaves it
    assert train(*finished) == {"mode": "resumed", "train_s": timing["train_s"]}


def test_sigterm_stops_the_grid_gently_and_the_same_command_resumes(tmp_path):
    """A scheduler's time limit (Slurm), `timeout` or `kill` send SIGTERM to the bench only: it
    stops its workers as Ctrl-C does, says how to resume, and the next run continues."""
    grid = tmp_path / "term.yaml"
    grid.write_text(TINY_GRID.format(attns="[none]", epochs=6, num_train=16))
    args = ["--grid", str(grid), "--out", str(tmp_path / "runs"), "--no-report"]
    run = tmp_path / "runs" / "synthetic" / "yolov8n-none-s0"
    env = _env(tmp_path)
    log = tmp_path / "bench.log"  # a file, not a pipe nobody reads while the bench runs
    with open(log, "w") as console:
        process = _start_bench_until_first_epoch(args, env, run, stdout=console, stderr=subprocess.STDOUT)
        try:
            process.send_signal(signal.SIGTERM)  # the bench alone, not its workers
            process.wait(120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    output = log.read_text()
    assert "bench interrupted; run the same command again to resume" in output, output
    assert process.returncode != 0
    worker_pid = json.loads((run / "progress.json").read_text()).get("pid")
    if worker_pid:  # the worker was stopped, not orphaned
        with pytest.raises(ProcessLookupError):
            os.kill(worker_pid, 0)
    assert not (run / "record.json").exists(), "the run finished before it could be stopped"
    assert (run / "weights" / "last.pt").is_file()

    result = _bench(args, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming" in result.stdout
    assert load_record(run / "record.json")["train_mode"] == "resumed"
