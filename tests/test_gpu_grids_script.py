"""benchmarks/gpu_grids.sh PHASE=tasks and PHASE=evidence, rehearsed on CPU: device time is
scarce (one call of at most 10 minutes, often none at all), so the script that spends it must not
first meet its bugs on the GPU machine. One seed, one or two attentions, 32-px images: the
script's own logic (the grid copies, the slots, the benches, the tarball, resuming from what an
earlier call brought back) is what is checked."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
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


def _evidence_call(tmp_path, out, attns, **extra):
    """One device call of PHASE=evidence on a fresh machine (an empty WORK), going on from
    what earlier calls left in tmp_path/committed (as results/evidence is, with the checkpoint)."""
    work = tmp_path / "work"
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PHASE": "evidence", "DEVICE": "cpu", "SLOTS": "1", "OUT": str(out), "WORK": str(work),
           "CARRIED": str(tmp_path / "committed"), "LIMIT": "500", "YOLO_OFFLINE": "1",
           "GRID_SET": "{imgsz: 32, datasets: [synthetic-lowlight], seeds: [0], synthetic: {num_train: 8, num_val: 4}, "
                       "pretrain: {epochs: 1, imgsz: 32}}",
           "PLATEAU_SET": "{epochs: 2}", "PLATEAU_ARGS": "--window 1 --tolerance 100 --multiple 1",
           "EVIDENCE_SET": f"{{attns: [{attns}], placement: [block-res]}}", **extra}
    env.pop("SCSA_YOLO_DATA", None)
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_grids.sh")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return (out / "wall_times.txt").read_text()


def _commit(out, committed):
    """What the lead does between calls: unpack the tarball where results/evidence is, keep the checkpoint."""
    committed.mkdir(exist_ok=True)
    subprocess.run(["tar", "xzf", str(out / "evidence.tgz"), "-C", str(committed)], check=True)
    shutil.copy(out / "pretrain-plain.pt", committed / "pretrain-plain.pt")


def test_the_evidence_phase_goes_on_from_the_records_and_checkpoint_an_earlier_call_brought_back(tmp_path):
    committed = tmp_path / "committed"
    # call 1: pretraining, the plateau grid, its check, and the evidence grid's plain run only
    first = _evidence_call(tmp_path, tmp_path / "out1", "none")
    assert "pretrain rc=0" in first and "plateau rc=0" in first and "plateau check: epochs 1 " in first, first
    assert "evidence rc=0" in first, first
    _commit(tmp_path / "out1", committed)
    plateau = (committed / "plateau" / "plateau.txt").read_text()
    assert plateau.endswith("epochs: 1\n") and "synthetic-lowlight/yolov8n-none-ft-s0" in plateau
    assert yaml.safe_load((committed / "table4-evidence.yaml").read_text())["epochs"] == 1
    plain = committed / "records" / "synthetic-lowlight" / "yolov8n-none-ft-s0" / "record.json"
    plain_before = plain.read_text()

    # call 2, on a fresh machine, with SE joining the grid: only the SE run trains
    second = _evidence_call(tmp_path, tmp_path / "out2", "none, se")
    assert "pretrain rc" not in second and "plateau rc" not in second, second
    assert "seeded 1 finished run(s) from" in second and "plateau check: epochs 1 " in second, second
    assert "evidence rc=0" in second, second
    evidence_log = next((tmp_path / "work" / "evidence" / "logs").glob("*/evidence.log")).read_text()
    assert "1 run(s) completed, 1 already done" in evidence_log, evidence_log[-2000:]
    _commit(tmp_path / "out2", committed)
    assert plain.read_text() == plain_before
    sha = hashlib.sha256((tmp_path / "out1" / "pretrain-plain.pt").read_bytes()).hexdigest()
    assert hashlib.sha256((tmp_path / "out2" / "pretrain-plain.pt").read_bytes()).hexdigest() == sha
    records = [*committed.glob("plateau/records/*/*/record.json"), *committed.glob("records/*/*/record.json")]
    assert sorted(r.parent.name for r in records) == ["yolov8n-none-ft-s0", "yolov8n-none-ft-s0",
                                                      "yolov8n-se-block-res-ft-s0"]
    assert {json.loads(r.read_text())["spec"]["pretrained"]["sha256"] for r in records} == {sha}

    # call 3 with another checkpoint: refused before anything trains
    other = tmp_path / "other.pt"
    other.write_bytes(b"not the start of these records")
    third = _evidence_call(tmp_path, tmp_path / "out3", "none, se", PRETRAINED=str(other))
    assert "record(s) started from checkpoint sha256 " + sha in third and "rc=" not in third.replace(
        "stopped with rc=1", ""), third

    # call 4: the plateau runs again at a longer schedule (PLATEAU_LONG); the check then compares
    # the two lengths' final AP instead of looking for a plateau within a run
    fourth = _evidence_call(tmp_path, tmp_path / "out4", "none, se", PLATEAU_LONG="3",
                            SCHEDULE_ARGS="--gain-tolerance 100")
    assert "plateau_long rc=0" in fourth and "plateau check: epochs 2 " in fourth, fourth
    _commit(tmp_path / "out4", committed)
    across = (committed / "plateau" / "plateau.txt").read_text()
    assert across.startswith("final val AP") and across.endswith("epochs: 2\n"), across
    assert (committed / "plateau-long" / "records" / "synthetic-lowlight" / "yolov8n-none-ft-s0" / "record.json").is_file()


def test_the_per_kernel_comparison_ranks_kernels_by_the_time_scsa_adds():
    """benchmarks/yolo_e2e.py --kernels (the profile that sizes compiled YOLO11n's loss): the
    profiler's times per kernel name, then the kernels ranked by |SCSA - plain| with totals."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("yolo_e2e", ROOT / "benchmarks" / "yolo_e2e.py")
    e2e = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(e2e)
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.rand(1, 3, 16, 16)
    times = e2e.kernel_times(lambda: torch.softmax(conv(x), 1), torch.device("cpu"))
    assert times.get("aten::convolution", 0) > 0 and times.get("aten::_softmax", 0) > 0, times
    plain = {"conv": 100.0, "copy": 5.0, "gone": 7.0}
    scsa = {"conv": 101.0, "copy": 45.0, "scsa_fwd": 20.0}
    table = e2e.kernel_diff_markdown([("yolo11n", "infer (fast)", plain, scsa)], 3, "GPU us")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == ["copy", "scsa_fwd", "gone"]  # +40, +20, -7; conv (+1) is 4th
    assert "| `gone` | 7.0 | 0.0 | -7.0 |" in rows
    assert "| all 3 / 3 kernels | 112.0 | 166.0 | +54.0 |" in table


def test_the_host_profile_ranks_operators_and_python_functions_by_the_host_time_scsa_adds():
    """benchmarks/yolo_e2e.py --host (what a busy compiled graph turns into GPU idle time): the
    issue time per step, then operators and Python functions ranked by |SCSA - plain|."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("yolo_e2e", ROOT / "benchmarks" / "yolo_e2e.py")
    e2e = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(e2e)
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.rand(1, 3, 16, 16)

    def step():
        return torch.softmax(conv(x), 1)

    host = e2e.host_times(step, torch.device("cpu"), steps=4)
    assert len(host["issue_ms"]) == 4 and min(host["issue_ms"]) > 0
    assert host["ops"].get("aten::_softmax", 0) > 0, host["ops"]
    assert any(k.endswith("(step)") for k in host["py"]), sorted(host["py"])[:10]
    plain = {"issue_ms": [1.0, 2.0, 3.0], "ops": {"a": 10.0, "b": 5.0}, "py": {"f": 1e-5}}
    scsa = {"issue_ms": [2.0, 2.5, 4.0], "ops": {"a": 11.0, "b": 45.0, "op": 20.0}, "py": {"f": 3e-5, "g": 1e-6}}
    table = e2e.host_diff_markdown([("yolo11n", "infer (fast)", plain, scsa)], 2)
    assert "plain 2.000 / 1.000 ms, SCSA 2.500 / 2.000 ms, SCSA - plain +0.500 ms" in table
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == ["b", "op", "f", "g"]  # +40, +20 (a: +1, 3rd); +20 us, +1 us
    assert "| all 2 / 3 | 15.0 | 76.0 | +61.0 |" in table and "| all 1 / 2 | 10.0 | 31.0 | +21.0 |" in table


def test_the_unfolded_impl_times_the_residual_outside_the_kernel():
    """benchmarks/yolo_e2e.py --unfolded: the A/B of the residual folded into SCSA's output pass
    times the same fast layers with the fold switched off, in the same process."""
    import importlib.util

    from ultralytics import YOLO

    from scsa_yolo.nn.scsa import SCSA

    spec = importlib.util.spec_from_file_location("yolo_e2e", ROOT / "benchmarks" / "yolo_e2e.py")
    e2e = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(e2e)
    model = YOLO("yolov8n-scsa.yaml", task="detect").model
    assert e2e.set_impl(model, "fast-unfolded") == 3
    layers = [m for m in model.modules() if isinstance(m, SCSA)]
    assert all(m.impl == "fast" and not m.fold_residual for m in layers)
    e2e.set_impl(model, "fast")
    assert all(m.fold_residual for m in layers)
    # the training step's layout: Ultralytics' trainer runs channels-last on a GPU, contiguous here
    import torch

    assert e2e.train_channels_last("trainer", torch.device("cpu")) is False
    assert e2e.train_channels_last("channels-last", torch.device("cpu")) is True
    assert e2e.train_channels_last("contiguous", torch.device("cuda")) is False


def test_the_evidence_phase_reads_the_shipped_grids_when_run_from_a_checkout_over_a_target_install(tmp_path):
    """As on the GPU machine: scsa-yolo installed with ``pip --target`` (a PYTHONPATH entry, so its
    autoload .pth never runs and nothing imports scsa_yolo at start-up) and the script started from
    the checkout's root, whose scsa_yolo/ has no shipped grids. The script's Python snippets
    imported that folder (the current folder comes first on sys.path) and the evidence phase
    went on with an empty grid name, which trained the default grid."""
    import sysconfig

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-compile",
                    "--target", str(site), str(ROOT)], check=True, timeout=300)
    bare = tmp_path / "bare"  # a Python whose only packages are this one's, as a plain path entry (no .pth runs)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    bare_python = bare / "bin" / "python3"
    bare_site = subprocess.run([str(bare_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    Path(bare_site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{bare / 'bin'}{os.pathsep}{site / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(site), "PHASE": "evidence", "DEVICE": "cpu", "OUT": str(out), "WORK": str(tmp_path / "work"),
           "CARRIED": str(tmp_path / "committed"), "LIMIT": "5", "MIN_STAGE_S": "100", "YOLO_OFFLINE": "1"}
    for name in ("SCSA_YOLO_DATA", "PYTHONSAFEPATH", "VIRTUAL_ENV"):
        env.pop(name, None)
    done = subprocess.run(["bash", "benchmarks/gpu_grids.sh"], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    times = (out / "wall_times.txt").read_text()
    # the grid copy was written (from the installed package's shipped grid), then the stage
    # stopped for want of time, before anything trained
    assert "pretrain: not started," in times, times + done.stderr[-3000:]
    assert "No module named" not in done.stderr, done.stderr[-3000:]
    assert (tmp_path / "work" / "evidence" / "pretrain" / "table4-evidence-pretrain.yaml").is_file()
