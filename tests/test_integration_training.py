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
