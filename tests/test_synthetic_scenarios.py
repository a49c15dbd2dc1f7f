"""The synthetic scenarios (Table 4 domain shifts): what each draws, names, determinism, refusals.

The statistics checked here are the ones the module docstring of
:mod:`scsa_yolo.data.convert.recipes.synthetic` claims, against the default set made with the
same seed and sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image, ImageFilter
from test_data_common import prepare_synthetic

from scsa_yolo.data.convert.recipes.synthetic import (
    CLASS_NAMES,
    DATASET_NAMES,
    SyntheticOptionError,
    get_scenario,
    scenario_of_dataset,
)
from scsa_yolo.data.layout.paths import DatasetNotPrepared, resolve_data
from scsa_yolo.data.prepare import prepare_dataset, resolve_or_prepare

SIZES = {"num_train": 40, "num_val": 8}
SCENARIO_DATASETS = ("synthetic-lowlight", "synthetic-tiny", "synthetic-thermal")


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """The default set and the three scenarios, same seed and sizes, under one root."""
    root = tmp_path_factory.mktemp("data")
    return {name: prepare_synthetic(root, name, seed=5, **SIZES).parent for name in DATASET_NAMES}


def _grey(folder: Path, split: str = "train") -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("L"), dtype=np.float32) for p in sorted((folder / "images" / split).glob("*.jpg"))]


def _noise_share(grey: np.ndarray) -> float:
    """Pixel-scale variation (image minus its 3x3 box blur) relative to the image's contrast."""
    blurred = np.asarray(Image.fromarray(grey.astype(np.uint8)).filter(ImageFilter.BoxBlur(1)), dtype=np.float32)
    return float(np.std(grey - blurred) / max(grey.std(), 1e-6))


def _boxes(folder: Path, split: str = "train") -> list[dict]:
    return json.loads((folder / "annotations" / f"{split}.json").read_text())["annotations"]


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_every_scenario_is_a_complete_dataset_with_the_default_classes(sets):
    from scsa_yolo.data.layout.manifest import check_dataset

    for name in SCENARIO_DATASETS:
        folder = sets[name]
        assert folder.name == name
        data = yaml.safe_load((folder / "data.yaml").read_text())
        assert Path(data["path"]) == folder.resolve()
        assert [data["names"][i] for i in range(data["nc"])] == list(CLASS_NAMES)  # same head as `synthetic`
        manifest = _manifest(folder)
        assert manifest["dataset"] == name and manifest["scenario"] == name.split("-", 1)[1]
        assert manifest["classes"] == list(CLASS_NAMES)
        gt = json.loads((folder / "annotations" / "val.json").read_text())
        assert [c["name"] for c in gt["categories"]] == list(CLASS_NAMES)
        report = check_dataset(folder)
        assert report.ok, (name, report.problems)
    assert "scenario" not in _manifest(sets["synthetic"])  # the default set's manifest is as before


def test_lowlight_is_darker_flatter_and_noisier(sets):
    plain, dark = _grey(sets["synthetic"]), _grey(sets["synthetic-lowlight"])
    plain_mean, dark_mean = np.mean([g.mean() for g in plain]), np.mean([g.mean() for g in dark])
    plain_contrast, dark_contrast = np.mean([g.std() for g in plain]), np.mean([g.std() for g in dark])
    assert dark_mean < 0.25 * plain_mean, (dark_mean, plain_mean)  # docstring: ~18 vs ~127
    assert dark_contrast < 0.4 * plain_contrast, (dark_contrast, plain_contrast)  # ~4.6 vs ~18
    # the noise is a larger part of what contrast is left
    assert np.median([_noise_share(g) for g in dark]) > 1.5 * np.median([_noise_share(g) for g in plain])
    # every image is darker than the default set's average: no bright image slips through
    assert max(g.mean() for g in dark) < plain_mean / 2
    # it stays a colour dataset: chroma noise and object colours differ between channels
    rgb = np.asarray(Image.open(sets["synthetic-lowlight"] / "images" / "train" / "train_00000.jpg"))
    assert rgb.ndim == 3 and np.abs(rgb[..., 0].astype(int) - rgb[..., 2]).max() > 5


def test_tiny_boxes_are_smaller_and_denser(sets):
    plain, tiny = sets["synthetic"], sets["synthetic-tiny"]
    per_image = {name: len(_boxes(folder)) / SIZES["num_train"] for name, folder in (("plain", plain), ("tiny", tiny))}
    assert per_image["tiny"] > 4 * per_image["plain"], per_image  # docstring: 18 vs 2.6
    sides = {name: np.sqrt([b["area"] for b in _boxes(folder)]) for name, folder in (("plain", plain), ("tiny", tiny))}
    assert np.median(sides["tiny"]) < 0.5 * np.median(sides["plain"]), {k: np.median(v) for k, v in sides.items()}
    assert sides["tiny"].max() < 0.09 * 160 + 1  # sides of 3..8 % of the image (aspect jitter aside)
    sizes = _manifest(tiny)["splits"]["train"]["boxes_per_size"]
    assert sizes["medium"] == sizes["large"] == 0 and sizes["small"] > 0
    counts = [len(Path(p).read_text().splitlines()) for p in sorted((tiny / "labels" / "train").glob("*.txt"))]
    assert min(counts) >= 8 and max(counts) <= 24  # 12..24 drawn; a few may not find free space


def test_tiny_follows_an_explicit_max_objects(tmp_path):
    folder = prepare_synthetic(tmp_path, "synthetic-tiny", num_train=10, num_val=2, max_objects=6).parent
    counts = [len(p.read_text().splitlines()) for p in (folder / "labels" / "train").glob("*.txt")]
    assert max(counts) <= 6 and min(counts) >= 1
    assert _manifest(folder)["generator"]["max_objects"] == 6


def test_thermal_is_single_channel_and_long_tailed(sets, tmp_path):
    import cv2
    from ultralytics.utils.patches import imread

    folder = sets["synthetic-thermal"]
    first = folder / "images" / "train" / "train_00000.jpg"
    assert Image.open(first).mode == "L"  # one channel on disk
    for path in sorted((folder / "images" / "train").glob("*.jpg"))[:10]:
        bgr = imread(str(path), flags=cv2.IMREAD_COLOR)  # how Ultralytics reads a 3-channel dataset
        assert bgr.shape[2] == 3
        assert np.array_equal(bgr[..., 0], bgr[..., 1]) and np.array_equal(bgr[..., 1], bgr[..., 2])

    # long tail: more images make the counts steady; class k is drawn with weight 0.55**k
    many = prepare_synthetic(tmp_path, "synthetic-thermal", num_train=200, num_val=2).parent
    counts = list(_manifest(many)["splits"]["train"]["boxes_per_class"].values())
    total = sum(counts)
    assert counts[0] / total > 0.35  # the head holds ~46 %
    assert counts[0] >= 8 * counts[-1] and counts[-1] > 0  # head/tail ~20, the tail still occurs
    assert counts[0] > counts[1] > counts[2] > counts[4]
    # the default set is balanced, so the tail comes from the scenario
    plain = list(_manifest(sets["synthetic"])["splits"]["train"]["boxes_per_class"].values())
    assert max(plain) < 3 * min(plain)


def test_deterministic_per_seed_and_new_scenes_per_scenario(sets, tmp_path):
    def files(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
                if p.is_file() and p.name not in ("manifest.json", "data.yaml")}

    for name in SCENARIO_DATASETS:
        again = prepare_synthetic(tmp_path / "again", name, seed=5, **SIZES).parent
        other = prepare_synthetic(tmp_path / "other", name, seed=6, **SIZES).parent
        assert files(again) == files(sets[name]), name
        assert files(other).keys() == files(again).keys() and files(other) != files(again), name
        # image k does not depend on the split size
        longer = prepare_synthetic(tmp_path / "longer", name, seed=5, num_train=41, num_val=8).parent
        assert (longer / "images/train/train_00007.jpg").read_bytes() == (again / "images/train/train_00007.jpg").read_bytes()
    # each scenario draws its own scenes: its labels are not the default set's
    plain_labels = (sets["synthetic"] / "labels" / "train" / "train_00000.txt").read_text()
    assert (sets["synthetic-lowlight"] / "labels" / "train" / "train_00000.txt").read_text() != plain_labels


def test_names_resolve_and_generate_on_first_use(tmp_path):
    for name in SCENARIO_DATASETS:
        with pytest.raises(DatasetNotPrepared, match=f"scsa-yolo data prepare {name}"):
            resolve_data(name, tmp_path)
    for name in ("synthetic-thermal",):  # one full-size default set is enough (a few seconds each)
        messages: list[str] = []
        path = resolve_or_prepare(name, tmp_path, echo=messages.append)
        assert path == tmp_path / name / "data.yaml" and path.is_file()
        assert resolve_data(name, tmp_path) == path.resolve()
        assert any("generating" in m for m in messages)
        assert not list(tmp_path.glob(f".{name}*")), "staging folders must not be left behind"
    # a prepared set is used as it is, never regenerated with defaults
    small = prepare_synthetic(tmp_path, "synthetic-tiny", num_train=3, num_val=2, force=True)
    stamp = (small.parent / "manifest.json").stat().st_mtime_ns
    assert resolve_or_prepare("synthetic-tiny", tmp_path) == small.resolve()
    assert (small.parent / "manifest.json").stat().st_mtime_ns == stamp
    assert len(list((small.parent / "images" / "train").iterdir())) == 3
    # any other name is left to resolve_data's message
    with pytest.raises(DatasetNotPrepared, match="scsa-yolo data prepare voc"):
        resolve_or_prepare("voc", tmp_path)


def test_bad_scenarios_are_refused_with_the_choices(tmp_path):
    from scsa_yolo.data.convert.recipes import RecipeOptionError

    choices = "synthetic, synthetic-lowlight, synthetic-tiny, synthetic-thermal"
    with pytest.raises(SyntheticOptionError, match=f"unknown synthetic dataset 'synthetic-dusk'; choices: {choices}"):
        scenario_of_dataset("synthetic-dusk")
    with pytest.raises(SyntheticOptionError, match="unknown synthetic scenario 'dusk'; choices: lowlight, tiny, thermal"):
        get_scenario("dusk")
    with pytest.raises(SyntheticOptionError, match=f"choices: {choices}"):
        resolve_or_prepare("synthetic-dusk", tmp_path)
    with pytest.raises(SyntheticOptionError, match="option scenario is given by the dataset name"):
        prepare_dataset("synthetic-tiny", root=tmp_path, options={"scenario": "thermal"}, echo=lambda _: None)
    with pytest.raises(RecipeOptionError, match=f"synthetic-dusk: unknown synthetic dataset.*{choices}"):
        prepare_dataset("synthetic-dusk", root=tmp_path, echo=lambda _: None)
    with pytest.raises(SyntheticOptionError, match="unknown synthetic dataset option.*brightness"):
        prepare_synthetic(tmp_path, "synthetic-lowlight", brightness=0.5)
    assert not list(tmp_path.iterdir()), "nothing is written for a refused request"


def test_data_commands_prepare_list_and_refuse(tmp_path):
    from scsa_yolo.cli.main import main

    def run(*args):
        return CliRunner().invoke(main, ["data", *map(str, args)], catch_exceptions=False)

    sizes = ("--set", "num_train=3", "--set", "num_val=2", "--set", "imgsz=64")
    first = run("prepare", "synthetic-lowlight", "--root", tmp_path, "--seed", "2", *sizes)
    assert first.exit_code == 0, first.output
    assert "synthetic-lowlight: prepared" in first.output
    again = run("prepare", "synthetic-lowlight", "--root", tmp_path, "--seed", "2", *sizes)
    assert "already prepared" in again.output
    assert _manifest(tmp_path / "synthetic-lowlight")["generator"]["seed"] == 2
    assert run("check", "synthetic-lowlight", "--root", tmp_path).exit_code == 0

    rows = {line.split()[0]: line.split() for line in run("list", "--root", tmp_path).output.splitlines()[2:]}
    assert list(rows)[-4:] == list(DATASET_NAMES)  # listed right after `synthetic`
    assert rows["synthetic-lowlight"][-1] == "yes" and rows["synthetic-thermal"][-1] == "no"

    bad = run("prepare", "synthetic-dusk", "--root", tmp_path)
    assert bad.exit_code == 2 and "synthetic-lowlight" in bad.output and "synthetic-thermal" in bad.output
    no_splits = run("prepare", "synthetic-tiny", "--root", tmp_path, "--splits", "val")
    assert no_splits.exit_code == 2 and "generated" in no_splits.output
    clash = run("prepare", "synthetic-tiny", "--root", tmp_path, "--set", "scenario=thermal")
    assert clash.exit_code == 2 and "given by the dataset name" in clash.output


def test_table4_synthetic_grid_loads_and_generates_its_datasets(tmp_path, monkeypatch):
    from dataclasses import replace

    from scsa_yolo.bench.grid import GridError, load_grid
    from scsa_yolo.bench.runner import prepare_datasets

    grid = load_grid("table4-synthetic")
    assert grid.datasets == list(SCENARIO_DATASETS)
    assert grid.models == ["yolov8n"] and grid.attns == ["none", "se", "eca", "ca", "fca", "cbam", "scsa"]
    assert grid.seeds == [0, 1, 2] and (grid.epochs, grid.imgsz, grid.batch) == (20, 160, 32)
    assert grid.train_args == {"val": False, "workers": 1, "cache": "ram"}

    monkeypatch.setenv("SCSA_YOLO_DATA", str(tmp_path))
    messages: list[str] = []
    planned = prepare_datasets(grid, messages.append, dry_run=True)
    assert planned == {name: "will be generated" for name in SCENARIO_DATASETS}
    assert not list(tmp_path.iterdir())
    small = replace(grid, synthetic={"num_train": 4, "num_val": 2, "imgsz": 64})
    resolved = prepare_datasets(small, messages.append)
    for name in SCENARIO_DATASETS:
        assert resolved[name] == tmp_path / name / "data.yaml"
        assert _manifest(tmp_path / name)["generator"]["num_train"] == 4
    with pytest.raises(GridError, match="unknown synthetic dataset 'synthetic-dusk'; choices: synthetic, synthetic-lowlight"):
        prepare_datasets(replace(grid, datasets=["synthetic-dusk"]), messages.append, dry_run=True)
    with pytest.raises(GridError, match="synthetic: unknown synthetic dataset option.*bogus"):
        prepare_datasets(replace(grid, datasets=["synthetic-thermal"], synthetic={"bogus": 1}), messages.append)


@pytest.mark.slow
def test_ultralytics_trains_one_epoch_on_the_thermal_set(tmp_path):
    """Ultralytics reads a scenario set (greyscale JPEGs, labels, val split) and trains on it."""
    from ultralytics import YOLO
    from ultralytics.data.utils import check_det_dataset

    for name in SCENARIO_DATASETS:  # every scenario passes Ultralytics' dataset check
        data = prepare_synthetic(tmp_path / "datasets", name, num_train=16, num_val=8, imgsz=64)
        assert check_det_dataset(str(data))["nc"] == len(CLASS_NAMES)

    data = tmp_path / "datasets" / "synthetic-thermal" / "data.yaml"
    model = YOLO("yolov8n.yaml")  # from YAML: no weights anywhere
    model.train(data=str(data), epochs=1, imgsz=64, batch=8, workers=0, device="cpu", plots=False,
                verbose=False, seed=0, warmup_epochs=0, project=str(tmp_path / "runs"), name="thermal")
    dataset = model.trainer.train_loader.dataset
    assert len(dataset) == 16
    manifest = _manifest(data.parent)
    assert sum(len(label["cls"]) for label in dataset.labels) == manifest["splits"]["train"]["boxes"]
    image = dataset.load_image(0)[0]  # as the trainer sees it: grey replicated to 3 channels
    assert image.shape[2] == 3 and np.array_equal(image[..., 0], image[..., 2])
    assert (tmp_path / "runs" / "thermal" / "weights" / "last.pt").is_file()
    assert model.trainer.metrics is not None and "metrics/mAP50(B)" in model.trainer.metrics
