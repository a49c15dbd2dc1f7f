"""A device this machine lacks and a batch of 0 are refused while the command line is read
(issue 26, items 11 and 12): one message naming the option and what exists, before any
dataset is generated or model built, in every command that takes them.

The GPU id asked for is always one past the last GPU torch sees, so it is missing on any
machine, with or without GPUs.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from scsa_yolo.cli.main import main
from scsa_yolo.device import DeviceRequestError, check_device_request

MISSING = str(torch.cuda.device_count())


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCSA_YOLO_DATA", raising=False)  # the default data root is then ./datasets


def _invoke(args: list[str]):
    """``scsa-yolo ARGS``; an exception that escapes the command fails the test as it is."""
    return CliRunner().invoke(main, args, catch_exceptions=False)


def _what_exists() -> str:
    return "GPU(s): 0 (" if torch.cuda.device_count() else "no GPU that torch can use"


@pytest.mark.parametrize("args", [
    ["train", "--device", MISSING],
    ["train", "--device", f"cuda:{MISSING}"],
    ["val", "--model", "run", "--device", MISSING],
    ["profile", "--device", MISSING],
    ["explain", "--model", "yolov8n", "--images", "img", "--out", "x", "--device", MISSING],
    ["bench", "--devices", MISSING],
], ids=["train", "train-cuda", "val", "profile", "explain", "bench"])
def test_a_missing_gpu_is_refused_naming_the_option_and_the_devices_there_are(args, tmp_path):
    result = _invoke(args)
    assert result.exit_code == 2, result.output
    option = "--devices" if args[0] == "bench" else "--device"
    assert f"Invalid value for '{option}': " in result.output
    assert f"GPU {MISSING} does not exist here" in result.output and _what_exists() in result.output
    assert "Traceback" not in result.output
    assert not any(tmp_path.rglob("datasets"))  # refused before the synthetic set was generated


def test_device_requests_that_exist_or_do_not():
    assert check_device_request("cpu") == "cpu" and check_device_request(" CPU ") == " CPU "
    with pytest.raises(DeviceRequestError, match=r"'gpu' is not a device; use cpu, a GPU id \(0\), several"):
        check_device_request("gpu")
    with pytest.raises(DeviceRequestError, match=f"GPUs {MISSING}, {int(MISSING) + 1} do not exist here"):
        check_device_request(f"{MISSING},{int(MISSING) + 1}")
    with pytest.raises(DeviceRequestError, match="cpu,0: cpu cannot be combined with GPU ids"):
        check_device_request("cpu,0")
    with pytest.raises(DeviceRequestError, match=r"'cuda:0' is not a device; use cpu or GPU ids"):
        check_device_request("cuda:0", ids_only=True)  # bench hands ids to CUDA_VISIBLE_DEVICES
    if torch.cuda.device_count():
        assert check_device_request("0") == "0" and check_device_request("cuda:0") == "cuda:0"
        assert check_device_request("-1") == "-1"
    else:
        with pytest.raises(DeviceRequestError, match="no idle GPU can be chosen; this machine has no GPU"):
            check_device_request("-1")


@pytest.mark.parametrize("batch", ["0", "-2"])
def test_train_refuses_a_batch_of_zero_or_below_but_autobatch(batch, tmp_path):
    result = _invoke(["train", "--batch", batch, "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--batch': {batch}: give a positive number of images per batch, or -1 for " \
           "Ultralytics' AutoBatch" in result.output
    assert not any(tmp_path.rglob("datasets"))
