"""Touch points of scsa_yolo.integration.training against the installed Ultralytics."""
from __future__ import annotations

import logging

import pytest

from scsa_yolo.integration import training


def test_arguments_are_converted_renamed_and_type_checked_by_ultralytics():
    values = {key: training.argument_value(text) for key, text in (("lr0", "1e-3"), ("hide_conf", "true"), ("classes", "none"))}
    assert training.check_train_args(values) == {"lr0": 0.001, "show_conf": False, "classes": None}
    with pytest.raises(training.TrainArgumentError) as unknown:
        training.check_train_args({"lr": 0.1})
    assert unknown.value.key == "lr" and "lr0" in str(unknown.value)
    with pytest.raises(training.TrainArgumentError) as wrong:
        training.check_train_args({"lr0": 0.01, "batch": "big"})
    assert wrong.value.key == "batch" and "'batch=big'" in str(wrong.value)


def test_quiet_restores_the_log_level():
    from ultralytics.utils import LOGGER

    before = LOGGER.level
    with training.quiet(logging.WARNING):
        assert LOGGER.level == logging.WARNING
    assert LOGGER.level == before


def test_checkpoint_state_follows_ultralytics_finished_marker(tmp_path):
    import torch

    finished, partial, corrupt = tmp_path / "finished.pt", tmp_path / "partial.pt", tmp_path / "corrupt.pt"
    torch.save({"epoch": -1, "model": None}, finished)
    torch.save({"epoch": 3, "model": None, "optimizer": {}}, partial)
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    assert training.checkpoint_state(finished) == "finished"
    assert training.checkpoint_state(partial) == "partial"
    assert training.checkpoint_state(corrupt) == "corrupt"


def test_strip_optimizer_marks_a_checkpoint_finished(tmp_path):
    """The marker we read is the one Ultralytics' final save writes."""
    import torch
    from ultralytics.utils.torch_utils import strip_optimizer

    path = tmp_path / "last.pt"
    torch.save({"epoch": 4, "model": torch.nn.Linear(1, 1), "optimizer": {}, "train_args": {}}, path)
    assert training.checkpoint_state(path) == "partial"
    strip_optimizer(path)
    assert training.checkpoint_state(path) == "finished"


def test_finished_epochs_counts_rows_under_the_header(tmp_path):
    csv = tmp_path / "results.csv"
    assert training.finished_epochs(csv) == 0
    csv.write_text("epoch,time,train/box_loss\n1,2.5,1.2\n2,5.1,1.1\n")
    assert training.finished_epochs(csv) == 2


def test_use_all_cpu_cores_undoes_ultralytics_thread_cut(monkeypatch):
    import types

    import torch

    from scsa_yolo.device import cpu_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        training.use_all_cpu_cores(types.SimpleNamespace(device=torch.device("cuda", 0)))  # GPU training: untouched
        assert torch.get_num_threads() == 1
        training.use_all_cpu_cores(types.SimpleNamespace(device=torch.device("cpu")))
        assert torch.get_num_threads() == cpu_threads()
    finally:
        torch.set_num_threads(before)


def test_collecting_validator_records_boxes_with_full_paths(tmp_path):
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator

    from scsa_yolo.integration.validation import collecting_validator

    for hook in ("pred_to_json", "eval_json", "finalize_metrics"):
        assert callable(getattr(DetectionValidator, hook))
    store, loaded = [], []
    validator_class = collecting_validator(store, loaded)
    validator = validator_class.__new__(validator_class)  # the hooks need no set-up
    predn = {"bboxes": torch.tensor([[10.0, 20.0, 30.0, 60.0]]), "conf": torch.tensor([0.9]), "cls": torch.tensor([2.0])}
    validator.pred_to_json(predn, {"im_file": str(tmp_path / "a.jpg")})
    assert store == [(str((tmp_path / "a.jpg").resolve()), 2, [10.0, 20.0, 20.0, 40.0], pytest.approx(0.9))]
    assert validator.eval_json({"x": 1}) == {"x": 1}
