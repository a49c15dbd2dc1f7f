"""Grid files, options, planning and bad input (no training here)."""
import json

import pytest
from click.testing import CliRunner

import click

from scsa_yolo.bench.grid import GridError, RunSpec, load_grid, shipped_grids
from scsa_yolo.cliutil import split_list
from scsa_yolo.bench.runner import CONFLICT, DONE, NEW, RESUME, conflicts_message, plan_runs
from scsa_yolo.cli.main import main


def test_shipped_grids_load_and_expand():
    assert {"quick", "table4", "table3", "ablation"} <= set(shipped_grids())
    table4 = load_grid("table4")
    assert table4.datasets == ["voc", "visdrone", "exdark", "flir"]
    assert table4.models == ["yolov8n", "yolov8s"]
    assert table4.attns == ["none", "se", "eca", "ca", "fca", "scsa"]
    assert len(table4.runs()) == 48
    assert load_grid("table3").datasets == ["coco"]
    ablation = load_grid("ablation")
    assert len(ablation.datasets) == 1 and "scsa-no-pcsa" in ablation.attns and "scsa-g1-3" in ablation.attns
    quick = load_grid("quick")
    assert quick.datasets == ["synthetic"] and quick.models == ["yolov8n"]
    assert [r.attn for r in quick.runs()] == ["none", "se", "eca", "ca", "fca", "scsa"]


def test_options_replace_grid_values_and_names_are_canonical():
    grid = load_grid("quick").with_options(attns=["SCSA", "SE"], seeds=[0, 1], epochs=2, train_args={"lr0": 0.02})
    runs = grid.runs()
    assert [(r.attn, r.seed) for r in runs] == [("scsa", 0), ("se", 0), ("scsa", 1), ("se", 1)]
    assert runs[0].epochs == 2 and runs[0].train_args["lr0"] == 0.02
    assert runs[0].run_id == "synthetic/yolov8n-scsa-backbone-res-s0"


def test_run_folders_are_named_by_dataset_model_attention_placement_seed(tmp_path):
    spec = RunSpec.create("/data/voc/data.yaml", "yolov8s", "scsa", "neck", 2, 1, 64, 2)
    assert spec.run_dir(tmp_path) == tmp_path / "voc" / "yolov8s-scsa-neck-s2"
    assert RunSpec.create("mine.yaml", "yolov8n", "none", "backbone", 0, 1, 64, 2).run_id == "mine/yolov8n-none-s0"


def test_unknown_attention_lists_the_known_names():
    with pytest.raises(GridError) as error:
        load_grid("quick").with_options(attns=["scsa", "selfie"])
    message = str(error.value)
    assert "selfie" in message and "none, se, eca, ca, fca, cbam, scsa" in message


def test_bad_grid_files_name_the_file_and_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [voc]\nmodels: [yolov8n]\nattns: [none]\nepoch: 3\n")
    with pytest.raises(GridError, match=r"bad.yaml: unknown key\(s\) \['epoch'\]"):
        load_grid(bad)
    bad.write_text("datasets: [voc]\nmodels: [yolov8n]\nattns: [none]\ntrain_args: {epochs: 3}\n")
    with pytest.raises(GridError, match="may not set \\['epochs'\\]"):
        load_grid(bad)
    # a fine-tuned run carries its start in its name and record: the grid's own key, not train_args
    bad.write_text("datasets: [voc]\nmodels: [yolov8n]\nattns: [none]\ntrain_args: {pretrained: plain.pt}\n")
    with pytest.raises(GridError, match=r"bad.yaml may not set \['pretrained'\]"):
        load_grid(bad)
    bad.write_text("datasets: [voc]\nmodels: [yolov8n]\nattns: [none, gate]\n")
    with pytest.raises(GridError, match=r"unknown attention 'gate'.* in .*bad.yaml"):
        load_grid(bad)
    with pytest.raises(GridError, match="shipped grids: ablation, finetune-synthetic, finetune-synthetic-scratch, quick, synthetic-gpu, table2, table2-synthetic-cls, table3, table4, table4-evidence, table4-evidence-plateau, table4-synthetic, table6-synthetic"):
        load_grid("table99")
    with pytest.raises(click.BadParameter, match="expected comma-separated integers"):
        split_list("0,one", int)


def test_plan_detects_done_resumable_new_and_conflicting_runs(tmp_path):
    grid = load_grid("quick").with_options(attns=["none", "se", "eca", "scsa"], epochs=2)
    none, se, eca, scsa = grid.runs()
    # done: a valid record
    from test_bench_records import _valid

    from scsa_yolo.records import write_record

    write_record(_valid(), none.run_dir(tmp_path) / "record.json")
    (none.run_dir(tmp_path) / "spec.json").write_text(json.dumps(none.to_json()))
    # resumable: a last.pt, no record
    (se.run_dir(tmp_path) / "weights").mkdir(parents=True)
    (se.run_dir(tmp_path) / "weights" / "last.pt").write_bytes(b"x")
    # conflict: started with other settings
    eca.run_dir(tmp_path).mkdir(parents=True)
    (eca.run_dir(tmp_path) / "spec.json").write_text(json.dumps({**eca.to_json(), "epochs": 5}))
    states = [p.state for p in plan_runs(grid.runs(), tmp_path)]
    assert states == [DONE, RESUME, CONFLICT, NEW]
    message = conflicts_message(plan_runs(grid.runs(), tmp_path))
    assert "epochs: 5 -> 2" in message and "another --out" in message


def test_dry_run_prints_the_plan_without_training(tmp_path, monkeypatch):
    monkeypatch.setenv("SCSA_YOLO_DATA", str(tmp_path / "data"))
    outcome = CliRunner().invoke(main, ["bench", "--dry-run", "--out", str(tmp_path / "runs"), "--seeds", "0,1"])
    assert outcome.exit_code == 0, outcome.output
    assert "dataset synthetic: will be generated" in outcome.output
    assert "[12/12] synthetic/yolov8n-scsa-backbone-res-s1" in outcome.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--attns", "none,transformer"], "Invalid value for --attns: unknown attention 'transformer'; known names: none, se, eca"),
        (["--data", "imagenet"], "unknown dataset 'imagenet'"),
        (["--data", "visdrone"], "scsa-yolo data prepare visdrone"),
        (["--grid", "nope"], "shipped grids: ablation, finetune-synthetic, finetune-synthetic-scratch, quick, synthetic-gpu, table2, table2-synthetic-cls, table3, table4, table4-evidence, table4-evidence-plateau, table4-synthetic, table6-synthetic"),
        # an empty name (a failed shell substitution on the GPU machine) once ran the default grid
        (["--grid", ""], "the grid name is empty: give a grid file or a shipped grid (ablation,"),
        (["--seeds", "a,b"], "expected comma-separated integers"),
        (["--models", "yolov8q"], "--models yolov8q"),
        (["--devices", "0", "--ddp"], "--ddp needs at least two GPU ids"),
        (["lr0"], "is not KEY=VALUE"),
        (["seed=3"], "use the --seeds option instead of seed=..."),
        (["pretrained=plain.pt"], "use the --pretrained option instead of pretrained=..."),
        (["--placement", "middle"], "Invalid value for --placement: unknown placement 'middle'"),
    ],
)
def test_bad_bench_input_is_a_usage_error(tmp_path, monkeypatch, args, expected):
    monkeypatch.setenv("SCSA_YOLO_DATA", str(tmp_path / "data"))
    outcome = CliRunner().invoke(main, ["bench", "--dry-run", "--out", str(tmp_path), *args])
    assert outcome.exit_code in (1, 2), outcome.output  # usage error, or a plan that cannot run
    assert expected in outcome.output
    assert "Traceback" not in outcome.output
    if "imagenet" in args:
        assert "Known datasets: coco, voc, visdrone, exdark, flir, synthetic" in outcome.output


def test_device_slots_pin_one_gpu_per_worker_or_share_all_with_ddp():
    from scsa_yolo.bench.runner import _slots

    assert _slots(None, False) == [(None, {})]
    assert _slots(["cpu"], False) == [("cpu", {})]
    assert _slots(["0", "1"], False) == [("0", {"CUDA_VISIBLE_DEVICES": "0"}), ("0", {"CUDA_VISIBLE_DEVICES": "1"})]
    assert _slots(["0", "1"], True) == [("0,1", {})]
    with pytest.raises(GridError, match="cannot be combined"):
        _slots(["cpu", "0"], False)


def test_each_worker_is_told_how_many_bench_runs_share_its_device(tmp_path):
    """The count the record's profile carries (``shared_device_slots``): the local pool's slots
    on the run's device, Ray's runs per GPU; None where the backend cannot know (Ray on CPU)."""
    from scsa_yolo.bench.ray_backend import runs_per_gpu
    from scsa_yolo.bench.runner import _slots, slots_per_device, worker_command

    assert slots_per_device(_slots(["0"] * 6, False)) == [6] * 6
    assert slots_per_device(_slots(["0", "1", "0"], False)) == [2, 1, 2]
    assert slots_per_device(_slots(["0", "1"], False)) == [1, 1]
    assert slots_per_device(_slots(["0", "1"], True)) == [1]  # DDP: one run at a time on all of them
    assert slots_per_device(_slots(None, False)) == slots_per_device(_slots(["cpu"], False)) == [1]
    assert [runs_per_gpu(g) for g in (0.5, 0.25, 0.2, 0.1, 0.3, 1, 2)] == [2, 4, 5, 10, 3, 1, 1]
    assert runs_per_gpu(0) is None
    assert worker_command(tmp_path, "0", 6)[-4:] == ["--device", "0", "--shared-device-slots", "6"]
    assert "--shared-device-slots" not in worker_command(tmp_path, "cpu", None)


def test_progress_lines_show_loss_epoch_time_and_time_left(tmp_path):
    """Issue 20, item 9: the console says more than `epoch n/10`."""
    import json
    import time

    from scsa_yolo.bench.runner import GridOutcome, progress_update, runs_complete

    (tmp_path / "progress.json").write_text(json.dumps(
        {"phase": "train", "epoch": 3, "epochs": 10, "loss": 3.2104, "epoch_s": 4.25, "eta_s": 29.75, "pid": 7}))
    shown, label = progress_update(tmp_path, (None, None), pid=7)
    assert shown == ("train", 3)
    assert label == "epoch 3/10, loss 3.210, 4.2 s/epoch, 0:30 left"
    # training ended between two polls: the last epoch is shown before the evaluation
    (tmp_path / "progress.json").write_text(json.dumps({"phase": "eval", "epoch": 10, "epochs": 10, "pid": 7}))
    shown, label = progress_update(tmp_path, shown, pid=7)
    assert (shown, label) == (("train", 10), "epoch 10/10")
    assert progress_update(tmp_path, shown, pid=7) == (("eval", 10), "evaluating (pycocotools)")
    outcome = GridOutcome(planned=[], started=time.perf_counter() - 60.0)
    outcome.completed = [object(), object()]  # two runs in 60 s: 30 s a run
    text = runs_complete(outcome, 5)
    assert text.startswith("2/5 runs complete, about 0:01:3")  # 3 runs left: about 90 s


def test_a_driver_that_polls_only_after_the_run_still_shows_its_last_epoch(tmp_path):
    """A 1-epoch run on a fast machine can train, evaluate and profile between two polls
    (CI saw no epoch line at all): every later phase keeps the last epoch and its figures."""
    import os

    from scsa_yolo.bench.runner import progress_update
    from scsa_yolo.bench.worker import report_progress

    report_progress(tmp_path, "train", epoch=1, epochs=1, loss=2.5, epoch_s=3.0, eta_s=0.0)
    report_progress(tmp_path, "eval", epoch=1, epochs=1, scorer="pycocotools")
    report_progress(tmp_path, "profile")
    report_progress(tmp_path, "done")
    shown, label = progress_update(tmp_path, (), pid=os.getpid())  # the first poll comes now
    assert (shown, label) == (("train", 1), "epoch 1/1, loss 2.500, 3.0 s/epoch, 0:00 left")
    assert progress_update(tmp_path, shown, pid=os.getpid()) == (("done", 1), "writing record")
    # a new worker of the same run folder (a resume) does not inherit an earlier session's epoch
    (tmp_path / "progress.json").write_text('{"phase": "train", "epoch": 4, "epochs": 9, "pid": 1}')
    report_progress(tmp_path, "profile")
    assert progress_update(tmp_path, (), pid=os.getpid()) == (("profile", None), "profiling")


def test_one_poll_tells_every_step_a_ray_attempt_took_since_the_last(tmp_path, monkeypatch):
    """A Ray attempt that starts, trains and finishes between two polls: the driver still says
    where it started, its last epoch and the final phase, in that order."""
    import os
    from types import SimpleNamespace

    from scsa_yolo.bench.runner import show_progress
    from scsa_yolo.bench.worker import HOST_ENV, report_progress

    report_progress(tmp_path, "started", host="node-2", attempt=1)
    monkeypatch.setenv(HOST_ENV, "node-2")
    report_progress(tmp_path, "train", epoch=0, epochs=1)
    report_progress(tmp_path, "train", epoch=1, epochs=1, loss=1.0, epoch_s=2.0, eta_s=0.0)
    report_progress(tmp_path, "eval", epoch=1, epochs=1, scorer="pycocotools")
    report_progress(tmp_path, "done")
    lines = []
    run = SimpleNamespace(run_dir=tmp_path, spec=SimpleNamespace(run_id="synthetic/yolov8n-none-s0"))
    shown = show_progress(1, 2, run, (), lines.append, pid=os.getpid())
    assert lines == ["[1/2] synthetic/yolov8n-none-s0: started on node-2",
                     "[1/2] synthetic/yolov8n-none-s0: epoch 1/1, loss 1.000, 2.0 s/epoch, 0:00 left",
                     "[1/2] synthetic/yolov8n-none-s0: writing record"]
    assert show_progress(1, 2, run, shown, lines.append, pid=os.getpid()) == shown and len(lines) == 3

