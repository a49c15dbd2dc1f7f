"""A bad model file, as every command that takes one meets it (issue 26, items 1 and 6).

An unknown module in a model YAML and a damaged or empty ``.pt`` are each one message
naming the file (and the row), the same in ``train``, ``val``, ``profile``, ``explain`` and
``models transfer``: never a traceback. Every command is run through the ``scsa-yolo``
entry point as a user types it; nothing here trains or evaluates, each refusal comes
before any work on the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from test_data_common import prepare_synthetic

from scsa_yolo.cli.main import main
from scsa_yolo.integration.checkpoints import CheckpointError, load_checkpoint, load_yolo


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny dataset, one image, a YAML with an unknown module, damaged and empty .pt files."""
    import ultralytics

    work = tmp_path_factory.mktemp("bad-model-files")
    data = prepare_synthetic(work / "datasets", num_train=2, num_val=2, imgsz=64)
    images = sorted((data.parent / "images" / "val").iterdir())[:1]
    stock = Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml"
    model = yaml.safe_load(stock.read_text())
    model["backbone"].append([-1, 1, "SCSB", []])  # a typo of SCSA after SPPF: row 10
    bad_yaml = work / "yolov8n-typo.yaml"
    bad_yaml.write_text(yaml.safe_dump(model))
    corrupt = work / "corrupt.pt"
    corrupt.write_bytes(os.urandom(200_000))
    empty = work / "empty.pt"
    empty.write_bytes(b"")
    state = work / "state.pt"  # a readable source for `models transfer`, so the target YAML is what fails
    torch.save({"model.0.conv.weight": torch.zeros(16, 3, 3, 3)}, state)
    return {"work": work, "data": data, "image": images[0], "yaml": bad_yaml, "corrupt": corrupt, "empty": empty,
            "state": state}


def _invoke(args: list[str]):
    """``scsa-yolo ARGS``; an exception that escapes the command fails the test as it is."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _commands(inputs, model: Path) -> dict[str, list]:
    """Each command that takes a model file, given ``model``, with cheap settings."""
    work = inputs["work"]
    return {
        "train": ["train", "--model", model, "--data", inputs["data"], "--epochs", "1", "--imgsz", "64",
                  "--device", "cpu", "--project", work / "runs"],
        "val": ["val", "--model", model, "--data", inputs["data"], "--device", "cpu"],
        "profile": ["profile", "--model", model, "--imgsz", "64", "--reps", "0", "--device", "cpu"],
        "explain": ["explain", "--model", model, "--images", inputs["image"], "--out", work / "explain",
                    "--imgsz", "64", "--device", "cpu"],
        "transfer": ["models", "transfer", "--weights", model, "--model", "yolov8n", "--attn", "se",
                     "--out", work / "out.pt"],
    }


@pytest.mark.parametrize("command", ["train", "profile", "explain", "transfer"])
def test_an_unknown_module_is_one_message_with_file_row_and_closest_names(inputs, command):
    args = _commands(inputs, inputs["yaml"])[command]
    if command == "transfer":  # the YAML is the target there
        args = ["models", "transfer", "--weights", inputs["state"], "--model", inputs["yaml"],
                "--out", inputs["work"] / "out.pt"]
    result = _invoke(args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "KeyError" not in result.output
    assert f"Error: {inputs['yaml']}: model YAML row 10 [-1, 1, SCSB, []]: unknown module 'SCSB'" in result.output
    assert "the closest known names: SCSA" in result.output


def test_the_row_check_names_a_malformed_row_and_a_torch_layer_that_does_not_exist(inputs, tmp_path):
    from scsa_yolo.integration.ultralytics import YamlRowError

    model = yaml.safe_load(inputs["yaml"].read_text())
    model["backbone"][-1] = [-1, 1, "nn.Upsampel", [None, 2, "nearest"]]
    path = tmp_path / "torch-typo.yaml"
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(YamlRowError, match=r"torch-typo.yaml: model YAML row 10 .*unknown module 'nn.Upsampel' "
                                           r"\(the closest known names: nn.Upsample"):
        load_yolo(path)
    model["backbone"][-1] = [-1, 1, "SCSA"]
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(YamlRowError, match=r"row 10 \[-1, 1, 'SCSA'\]: a row is \[from, repeats, module, args\]"):
        load_yolo(path)


@pytest.mark.parametrize("kind", ["corrupt", "empty"])
@pytest.mark.parametrize("command", ["train", "val", "profile", "explain", "transfer"])
def test_a_damaged_or_empty_checkpoint_is_one_message_naming_the_file(inputs, command, kind):
    result = _invoke(_commands(inputs, inputs[kind])[command])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    error = next(line for line in result.output.splitlines() if line.startswith("Error: "))
    assert f"checkpoint {Path(inputs[kind]).resolve()}" in error or f"checkpoint {inputs[kind]}" in error
    assert ("is an empty file" if kind == "empty" else "damaged, truncated or not a PyTorch checkpoint") in error
    assert "re-download or re-export it" in error


def test_a_checkpoint_without_a_model_says_how_to_use_it(inputs):
    result = _invoke(_commands(inputs, inputs["state"])["val"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"checkpoint {inputs['state']} holds no model (a bare state dict)" in result.output
    assert "scsa-yolo models transfer --weights" in result.output
    # transfer reads a bare state dict through the same loader
    assert set(load_checkpoint(inputs["state"], need_model=False)) == {"model.0.conv.weight"}
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(inputs["work"] / "missing.pt")
