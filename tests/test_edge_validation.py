"""User text is checked at the edge, once, before any work: dataset typos, missing model
files, unknown attentions, pretrained checkpoints that cannot start the grid's models."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from scsa_yolo.cli.main import main


def _invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def _plain_checkpoint(path: Path, model: str = "yolov8n") -> Path:
    from scsa_yolo.integration.transfer import build_target, save_checkpoint

    save_checkpoint(build_target(f"{model}.yaml", 3), path, f"{model}.yaml")
    return path


@pytest.mark.parametrize("command", ["train", "val"])
def test_a_dataset_typo_suggests_the_closest_name_not_a_prepare_command(tmp_path, command):
    model = ["--model", _plain_checkpoint(tmp_path / "plain.pt")] if command == "val" else []
    result = _invoke(command, *model, "--data", "synthtic", env={"SCSA_YOLO_DATA": str(tmp_path / "data")})
    assert result.exit_code == 2, result.output
    assert "unknown dataset 'synthtic'" in result.output and "Did you mean synthetic?" in result.output
    assert "data prepare synthtic" not in result.output
    assert "Traceback" not in result.output


def test_bench_refuses_a_dataset_typo_with_the_closest_name(tmp_path):
    result = _invoke("bench", "--dry-run", "--data", "visdron", "--out", tmp_path / "runs",
                     env={"SCSA_YOLO_DATA": str(tmp_path / "data")})
    assert result.exit_code == 2, result.output
    assert "Did you mean visdrone?" in result.output


def test_a_missing_model_yaml_is_named_as_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke("train", "--model", "nosuch.yaml", "--data", "synthetic")
    assert result.exit_code == 2, result.output
    assert "model YAML nosuch.yaml not found" in result.output


def test_an_unknown_attention_is_refused_before_the_dataset_is_generated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke("train", "--attn", "scssa", env={"SCSA_YOLO_DATA": str(tmp_path / "data")})
    assert result.exit_code == 2, result.output
    assert "unknown attention 'scssa'" in result.output
    assert not (tmp_path / "data").exists() and not (tmp_path / "datasets").exists()


def test_bench_refuses_a_pretrained_checkpoint_of_another_scale_once_before_any_run(tmp_path):
    checkpoint = _plain_checkpoint(tmp_path / "yolov8s-plain.pt", "yolov8s")
    out = tmp_path / "runs"
    result = _invoke("bench", "--models", "yolov8n", "--attns", "none,se", "--pretrained", checkpoint,
                     "--out", out, env={"SCSA_YOLO_DATA": str(tmp_path / "data")})
    assert result.exit_code == 2, result.output
    assert result.output.count("cannot start it") == 1
    assert "scale 's'" in result.output and "target model scale 'n'" in result.output
    assert not out.exists() and not (tmp_path / "data").exists()  # nothing generated, nothing trained
