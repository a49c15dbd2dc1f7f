"""``scsa-yolo data list|prepare|check`` through click's CliRunner."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_data_visdrone import make_visdrone

from scsa_yolo.cli.main import main


@pytest.fixture()
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, ["data", *map(str, args)], catch_exceptions=False)

    return invoke


def _row(output: str, name: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(name + " "))


def test_prepare_list_check_round_trip(run, tmp_path):
    root, source = tmp_path / "root", make_visdrone(tmp_path / "src")
    listed = run("list", "--root", root)
    assert listed.exit_code == 0 and _row(listed.output, "visdrone")[-1] == "no"
    assert _row(listed.output, "exdark")[-3] == "manual"

    first = run("prepare", "visdrone", "--root", root, "--source", source, "--no-progress")
    assert first.exit_code == 0, first.output
    assert "prepared in" in first.output and "unknown_class" in first.output and "malformed" in first.output
    second = run("prepare", "VisDrone", "--root", root, "--source", source)
    assert second.exit_code == 0 and "already prepared" in second.output

    row = _row(run("list", "--root", root).output, "visdrone")
    assert row[-1] == "yes" and row[2] == "10"

    checked = run("check", "visdrone", "--root", root)
    assert checked.exit_code == 0, checked.output
    assert "pedestrian" in checked.output and "OK (train 1 images, val 2 images, test 1 images)" in checked.output

    (root / "visdrone" / "labels" / "val" / "0000001_00000_d_0000001.txt").write_text("")
    broken = run("check", "visdrone", "--root", root)
    assert broken.exit_code == 1
    assert "problem: val: class 'car' has 0 boxes in the labels, manifest says 1" in broken.output
    assert "--force" in broken.output


def test_sources_that_need_a_browser_say_what_to_fetch(run, tmp_path):
    result = run("prepare", "exdark", "--root", tmp_path)
    assert result.exit_code == 1
    for text in ("ExDark.zip", "ExDark_Annno.zip", "drive.google.com", "--source"):
        assert text in result.output
    flir = run("prepare", "flir", "--root", tmp_path)
    assert flir.exit_code == 1 and "adas-dataset-form" in flir.output
    (tmp_path / "notes.txt").write_text("x")
    not_archive = run("prepare", "exdark", "--root", tmp_path, "--source", tmp_path / "notes.txt")
    assert not_archive.exit_code == 1 and "not a zip/tar archive" in not_archive.output


def test_a_split_without_any_usable_image_writes_nothing(run, tmp_path):
    source = make_visdrone(tmp_path / "src")
    for image in (source / "VisDrone2019-DET-test-dev" / "images").iterdir():
        image.unlink()
    result = run("prepare", "visdrone", "--root", tmp_path / "root", "--source", source, "--no-progress")
    assert result.exit_code == 1
    assert "split(s) test got no image" in result.output and "missing_image 2" in result.output
    assert not (tmp_path / "root" / "visdrone").exists()


def test_a_missing_split_points_to_splits_and_splits_prepares_the_rest(run, tmp_path):
    import shutil

    source = make_visdrone(tmp_path / "src")
    shutil.rmtree(source / "VisDrone2019-DET-test-dev")  # only the train/val archives
    refused = run("prepare", "visdrone", "--root", tmp_path / "root", "--source", source, "--no-progress")
    assert refused.exit_code == 1
    assert "VisDrone2019-DET-test-dev/" in refused.output and "Split 'test' needs it" in refused.output
    assert "--splits train,val" in refused.output
    subset = run("prepare", "visdrone", "--root", tmp_path / "root", "--source", source, "--splits", "train,val", "--no-progress")
    assert subset.exit_code == 0, subset.output


def test_bad_arguments_are_usage_errors(run, tmp_path):
    wrong_option = run("prepare", "voc", "--root", tmp_path, "--others", "drop")
    assert wrong_option.exit_code == 2 and "dataset 'voc' has no option 'others'" in wrong_option.output
    wrong_split = run("prepare", "visdrone", "--root", tmp_path, "--splits", "train,nope")
    assert wrong_split.exit_code == 2 and "has no split 'nope'" in wrong_split.output
    unknown = run("prepare", "imagenet")
    assert unknown.exit_code == 2 and "imagenet" in unknown.output
    bad_set = run("prepare", "visdrone", "--set", "novalue")
    assert bad_set.exit_code == 2 and "KEY=VALUE" in bad_set.output
    missing = run("check", "coco", "--root", tmp_path)
    assert missing.exit_code == 1 and "scsa-yolo data prepare coco" in missing.output


def test_synthetic_is_generated_through_the_same_command(run, tmp_path):
    sizes = ("--set", "num_train=3", "--set", "num_val=2", "--set", "imgsz=64")
    first = run("prepare", "synthetic", "--root", tmp_path, "--seed", "3", *sizes)
    assert first.exit_code == 0, first.output
    assert (tmp_path / "synthetic" / "data.yaml").is_file()
    again = run("prepare", "synthetic", "--root", tmp_path, "--seed", "3", *sizes)
    assert "already prepared" in again.output
    assert run("check", "synthetic", "--root", tmp_path).exit_code == 0
    assert _row(run("list", "--root", tmp_path).output, "synthetic")[-1] == "yes"
    bogus = run("prepare", "synthetic", "--root", tmp_path, "--set", "bogus=1")
    assert bogus.exit_code == 2 and "bogus" in bogus.output
    no_source = run("prepare", "synthetic", "--root", tmp_path, "--source", tmp_path)
    assert no_source.exit_code == 2


def test_piped_progress_has_no_terminal_codes(run, tmp_path):
    """Issue 26: `scsa-yolo data prepare ... | tee log` (and the bench, which generates the
    synthetic set) wrote the bars' redraw codes (CR, ESC [K) into the log; without a terminal
    each bar is one plain line."""
    outcome = run("prepare", "synthetic", "--root", tmp_path, "--set", "num_train=3", "--set", "num_val=2",
                  "--set", "imgsz=64")
    assert outcome.exit_code == 0, outcome.output
    assert "\x1b" not in outcome.output and "\r" not in outcome.output
    assert "converting train: 3/3 images (100%) in " in outcome.output
    assert "converting val: 2/2 images (100%) in " in outcome.output
