"""``scsa-yolo train``: argument checking, data resolution, and a real one-epoch run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from test_data_common import prepare_synthetic

from scsa_yolo.cli.train import _OWN_KEYS, _default_name, resolve_training_data, train
from scsa_yolo.cliutil import training_arguments


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")


def _run(args, **kwargs):
    return CliRunner().invoke(train, args, catch_exceptions=False, **kwargs)


def test_unprepared_dataset_names_the_prepare_command(tmp_path):
    result = _run(["--data", "visdrone", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert f"scsa-yolo data prepare visdrone --root {tmp_path}" in result.output


def test_missing_data_yaml_is_a_usage_error(tmp_path):
    result = _run(["--data", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "data YAML not found" in result.output


def test_overrides_are_checked_against_ultralytics_arguments():
    assert training_arguments(("lr0=0.005", "amp=False", "optimizer=AdamW", "classes=none"), reserved=_OWN_KEYS) == {
        "lr0": 0.005, "amp": False, "optimizer": "AdamW", "classes": None,
    }
    for bad, message in [
        (("lr=0.1",), "'lr' is not a valid YOLO argument. Similar arguments are i.e. ['lrf=0.01', 'lr0=0.01']"),
        (("lr0=fast",), "'lr0=fast' is of invalid type str"),
        (("fraction=none",), "'fraction' must not be None"),
        (("epochs=3",), "use the --epochs option"),
        (("model=x.yaml",), "use the --model/--attn/--placement option"),
        (("lr0",), "is not KEY=VALUE"),
    ]:
        result = _run(list(bad))
        assert result.exit_code == 2 and message in result.output, result.output
    result = _run(["--epoch", "3"])
    assert result.exit_code == 2 and "--epoch" in result.output


def test_bad_model_or_attention_is_a_clear_error(tmp_path):
    data = prepare_synthetic(tmp_path, num_train=4, num_val=2)
    result = _run(["--data", str(data), "--attn", "nope"])
    assert result.exit_code == 2 and "unknown attention 'nope'" in result.output
    result = _run(["--data", str(data), "--model", "resnet50"])
    assert result.exit_code == 2 and "does not start with a stock model" in result.output
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    result = _run(["--data", str(data), "--model", str(weights), "--attn", "scsa"])
    assert result.exit_code == 2 and "cannot be applied to weights" in result.output


def test_synthetic_is_generated_when_missing_but_never_overwritten(tmp_path):
    messages = []
    path = resolve_training_data("synthetic", tmp_path, echo=messages.append)
    assert path == tmp_path / "synthetic" / "data.yaml" and path.is_file()
    assert any("generating" in m for m in messages)
    # a synthetic set prepared with other options is used as it is
    prepare_synthetic(tmp_path, num_train=5, num_val=3, force=True)
    messages.clear()
    assert resolve_training_data("synthetic", tmp_path, echo=messages.append) == path.resolve()
    assert not messages
    assert len(list((tmp_path / "synthetic" / "images" / "train").iterdir())) == 5


def test_default_run_names():
    from scsa_yolo.cli.train import resolve_model

    assert _default_name(resolve_model("yolov8n", None, None), "yolov8n", "synthetic") == \
        "yolov8n-scsa-backbone-res-synthetic"
    assert _default_name(resolve_model("yolo11s", "cbam", "neck"), "yolo11s", "/d/visdrone/data.yaml") == \
        "yolo11s-cbam-neck-visdrone"
    assert _default_name(resolve_model("yolov8n-se-block.yaml", None, None, pretrained=True), "x", "voc") == \
        "yolov8n-se-block-ft-voc"


def test_a_yaml_with_attention_rows_is_trained_as_it_is(tmp_path):
    """Issue 20, item 1: --attn defaults to scsa only for stock names, never for a user's YAML."""
    from scsa_yolo.cli.train import resolve_model

    mine = tmp_path / "mine.yaml"
    mine.write_text((Path(__file__).resolve().parents[1] / "cfg" / "models" / "yolov8-scsa-backbone.yaml").read_text())
    resolved = resolve_model(str(mine), None, None)
    assert resolved.argument == str(mine) and resolved.kind == "yaml"
    data = prepare_synthetic(tmp_path, num_train=4, num_val=2)
    result = _run(["--data", str(data), "--model", str(mine), "--attn", "scsa"])
    assert result.exit_code == 2
    assert f"{mine} already holds attention rows (rows 5, 8, 12)" in result.output and "leave out --attn" in result.output
    # a plain YAML given with --attn is the base the attention goes into
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(yaml.safe_load(mine.read_text()) | {
        "backbone": [r for r in yaml.safe_load(mine.read_text())["backbone"] if r[2] != "SCSA"]}))
    assert resolve_model(str(plain), "se", "block").argument.endswith("plain-se-block.yaml")


def test_shipped_yamls_resolve_by_name_in_train():
    """Issue 20, item 3: the names `yolo train` takes mean the same in `scsa-yolo train`."""
    from scsa_yolo.cli.train import resolve_model

    assert resolve_model("yolov8n-scsa.yaml", None, None).argument == "yolov8n-scsa-backbone-res.yaml"
    assert resolve_model("yolov8n-scsa-block.yaml", None, None).argument == "yolov8n-scsa-block.yaml"
    assert resolve_model("yolo11s-cbam-neck", None, None).argument == "yolo11s-cbam-neck.yaml"
    with pytest.raises(Exception, match="already names the attention scsa"):
        resolve_model("yolov8n-scsa.yaml", "se", None)


def test_a_bad_yaml_row_is_one_message_with_the_row_of_the_users_file(tmp_path):
    """Issue 20, item 2: no traceback; the row number counts in the user's own file."""
    mine = tmp_path / "bad.yaml"
    model = yaml.safe_load((Path(__file__).resolve().parents[1] / "cfg" / "models" / "yolov8-se-backbone.yaml").read_text())
    model["backbone"][5] = [-1, 1, "SE", [{"reduction": 0}]]
    mine.write_text(yaml.safe_dump(model))
    data = prepare_synthetic(tmp_path, num_train=4, num_val=2)
    result = CliRunner().invoke(train, ["--data", str(data), "--model", str(mine), "--epochs", "1", "--imgsz", "64",
                                        "--device", "cpu", "--project", str(tmp_path / "runs")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"Error: {mine}: model YAML row 5 [-1, 1, SE, [{{'reduction': 0}}]]" in result.output
    assert "SE at width 256" in result.output


@pytest.mark.slow
def test_one_epoch_run_with_extra_arguments(tmp_path):
    prepare_synthetic(tmp_path / "datasets", num_train=12, num_val=6, imgsz=64)
    result = _run([
        "--root", str(tmp_path / "datasets"), "--epochs", "1", "--imgsz", "64", "--batch", "4", "--device", "cpu",
        "--project", str(tmp_path / "runs"), "--attn", "eca", "--placement", "neck", "workers=0", "plots=False",
        "lr0=0.002",
    ])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "yolov8n-eca-neck-synthetic"
    assert (run / "weights" / "best.pt").is_file()
    assert f"best weights: {run / 'weights' / 'best.pt'}" in result.output
    args = yaml.safe_load((run / "args.yaml").read_text())
    assert args["model"] == "yolov8n-eca-neck.yaml" and args["lr0"] == 0.002 and args["workers"] == 0
    assert Path(args["data"]) == (tmp_path / "datasets" / "synthetic" / "data.yaml").resolve()
    assert "scsa-yolo val --model" in result.output
    # issue 26: piped, Ultralytics' epoch and validation bars are plain lines, no redraw codes
    assert "\x1b[K" not in result.output and "\r" not in result.output
    assert "1/1" in result.output  # the epoch's line is there


def test_the_evaluation_hint_names_the_task_s_scorer(tmp_path):
    """A classifier is scored by top-1/top-5, not pycocotools; pose is not scored by us."""
    from scsa_yolo.cli.train import _evaluation_hint

    best, data = tmp_path / "best.pt", tmp_path / "data"
    assert _evaluation_hint("classify", best, data) == f"evaluate (top-1/top-5): scsa-yolo val --model {best} --data {data}"
    assert _evaluation_hint("segment", best, data).startswith("evaluate (pycocotools): scsa-yolo val --model ")
    assert _evaluation_hint("pose", best, data).startswith("evaluation skipped: ")
