"""Classification data: the generated synthetic-cls sets and ImageNet-style class folders, in
the layout `yolo classify train data=FOLDER` reads; bad folders get one message each."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_data_common import write_image

from scsa_yolo.data.convert.events import CORRUPT_IMAGE, EMPTY_CLASS, NOT_AN_IMAGE, NOT_IN_CLASS
from scsa_yolo.data.convert.recipes.imagefolder import ClassFolderError
from scsa_yolo.data.convert.recipes.synthetic import CLASS_NAMES
from scsa_yolo.data.convert.recipes.synthetic_cls import (
    DATASET_NAMES,
    SORTED_CLASSES,
    SyntheticOptionError,
    crop_key,
    object_colour_class,
    parse_dataset,
)
from scsa_yolo.data.layout.manifest import check_dataset
from scsa_yolo.data.layout.paths import resolve_data
from scsa_yolo.data.prepare import prepare_dataset, resolve_or_prepare
from scsa_yolo.data.tasks import DatasetTaskError, check_data_for_task

TINY = {"num_train": 12, "num_val": 6, "imgsz": 32}


def _prepare(name: str, root: Path, **options):
    return prepare_dataset(name, root=root, options=options, progress=False, echo=lambda _: None)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.jpg"))}


@pytest.fixture(scope="module")
def cls_sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cls")
    return {name: _prepare(name, root, seed=1, **TINY).folder for name in DATASET_NAMES}


def test_synthetic_cls_sets_are_class_folders_ultralytics_reads(cls_sets):
    from ultralytics.data.utils import check_cls_dataset

    for name, folder in cls_sets.items():
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["task"] == "classify" and manifest["classes"] == sorted(CLASS_NAMES)
        data = check_cls_dataset(str(folder))
        assert data["nc"] == 6 and list(data["names"].values()) == manifest["classes"]  # Ultralytics' indices
        for split, count in (("train", 12), ("val", 6)):
            per_class = manifest["splits"][split]["images_per_class"]
            assert sum(per_class.values()) == count and min(per_class.values()) >= 1, (name, split, per_class)
        assert check_dataset(folder).ok, check_dataset(folder).problems
        assert resolve_data(name, folder.parent) == folder.resolve()
    from PIL import Image

    thermal = next((cls_sets["synthetic-cls-thermal"] / "train").rglob("*.jpg"))
    assert Image.open(thermal).mode == "L" and Image.open(thermal).size == (32, 32)


def test_synthetic_cls_is_deterministic_and_crops_do_not_depend_on_the_split_size(tmp_path, cls_sets):
    again = _prepare("synthetic-cls", tmp_path / "a", seed=1, **TINY).folder
    assert _files(again) == _files(cls_sets["synthetic-cls"])
    bigger = _prepare("synthetic-cls", tmp_path / "b", seed=1, num_train=20, num_val=6, imgsz=32).folder
    assert (bigger / "train/magenta_cross/train_00004.jpg").read_bytes() == \
           (again / "train/magenta_cross/train_00004.jpg").read_bytes()  # image 4 is class 4: magenta_cross
    other = _prepare("synthetic-cls", tmp_path / "c", seed=2, **TINY).folder
    assert _files(other).keys() == _files(again).keys() and _files(other) != _files(again)


def test_a_shape_only_twin_is_its_coloured_set_with_the_object_in_a_random_class_s_colour(cls_sets):
    """synthetic-cls[-SCENARIO]-shape: colour no longer gives the class away (the coloured set
    is solved by colour); every other pixel is the coloured crop's, so the crop is identical
    exactly where the random pick is the object's own class."""
    picks, same = set(), 0
    for name in ("synthetic-cls", "synthetic-cls-tiny", "synthetic-cls-thermal"):
        coloured, twin = _files(cls_sets[name]), _files(cls_sets[f"{name}-shape"])
        assert twin.keys() == coloured.keys()  # same file, same class folder: only the colour moved
        scenario, shape_only = parse_dataset(f"{name}-shape")
        assert shape_only and parse_dataset(name) == (scenario, False)
        for path, data in twin.items():
            split, class_name, file = path.split("/")
            class_index = CLASS_NAMES.index(class_name)
            index = int(Path(file).stem.split("_")[1])
            pick = object_colour_class(crop_key(1, split, index, scenario), class_index, True)
            picks.add(pick)
            same += pick == class_index
            assert (data == coloured[path]) == (pick == class_index), (name, path, pick)
    assert picks == set(range(6)) and 0 < same < 54 / 2  # 54 crops: about one in six keeps its colour


def test_only_a_shape_only_set_records_its_colour_so_prepared_coloured_sets_stay_valid(cls_sets):
    coloured = json.loads((cls_sets["synthetic-cls-tiny"] / "manifest.json").read_text())
    assert "colour" not in coloured["request"]["options"]  # the request of a set prepared before the twins
    twin = json.loads((cls_sets["synthetic-cls-tiny-shape"] / "manifest.json").read_text())
    assert twin["request"]["options"]["colour"] == "random" and twin["classes"] == list(SORTED_CLASSES)
    assert any("shape only" in note for note in twin["notes"])
    with pytest.raises(SyntheticOptionError, match="choices: .*synthetic-cls-tiny-shape"):
        parse_dataset("synthetic-cls-shape-tiny")
    with pytest.raises(SyntheticOptionError, match="unknown synthetic-cls option.*colour"):
        _prepare("synthetic-cls", cls_sets["synthetic-cls"].parent, colour="random")


def test_a_generated_classification_set_is_made_on_first_use_and_reused(tmp_path):
    folder = resolve_or_prepare("synthetic-cls-tiny", tmp_path)
    assert folder == (tmp_path / "synthetic-cls-tiny").resolve() and (folder / "val" / "cyan_ring").is_dir()
    assert resolve_or_prepare("synthetic-cls-tiny", tmp_path) == folder
    with pytest.raises(SyntheticOptionError, match="imgsz=8 must be at least 16"):
        _prepare("synthetic-cls", tmp_path, imgsz=8)


def test_the_task_check_wants_class_folders_for_classify_and_a_yaml_for_the_rest(cls_sets, tmp_path):
    folder = cls_sets["synthetic-cls"]
    check_data_for_task(folder, "classify")
    with pytest.raises(DatasetTaskError, match="a detect model trains on a data YAML"):
        check_data_for_task(folder, "detect")
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: {0: a}\n")
    with pytest.raises(DatasetTaskError, match="not a data YAML.*scsa-yolo data prepare synthetic-cls"):
        check_data_for_task(tmp_path / "data.yaml", "classify")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["yolov8n-cls.yaml", "yolov8n-cls-scsa.yaml"])
def test_yolo_classify_trains_one_epoch_on_synthetic_cls(cls_sets, tmp_path, monkeypatch, model):
    """`yolo classify train model=MODEL data=FOLDER epochs=1 imgsz=32` through the Python API."""
    from ultralytics import YOLO

    monkeypatch.setenv("SCSA_YOLO_CACHE", str(tmp_path / "cache"))  # our name's YAML is generated there
    trained = YOLO(model, task="classify")
    if model != "yolov8n-cls.yaml":
        assert any(type(m).__name__ == "SCSA" for m in trained.model.modules())
    trained.train(data=str(cls_sets["synthetic-cls"]), epochs=1, imgsz=32, batch=6, workers=0, plots=False,
                  device="cpu", verbose=False, project=str(tmp_path / "runs"), name="cls", exist_ok=True)
    assert (tmp_path / "runs" / "cls" / "weights" / "last.pt").is_file()
    assert trained.trainer.metrics["metrics/accuracy_top1"] >= 0


# --- ImageNet-style folders -------------------------------------------------------------------
def make_class_folders(root: Path) -> Path:
    """train/{cat,dog,empty}, val/{cat,dog}: good images, and every kind of bad file."""
    for split, counts in (("train", {"cat": 3, "dog": 2}), ("val", {"cat": 1, "dog": 1})):
        for name, count in counts.items():
            for i in range(count):
                write_image(root / split / name / f"{name}{i}.jpg", 24, 16)
    write_image(root / "train" / "dog" / "puppies" / "p0.png", 20, 20)  # nested: kept, path kept
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (root / "train" / "cat" / "empty.jpg").write_bytes(b"")
    write_image(root / "train" / "cat" / "speck.jpg", 6, 6)  # Ultralytics skips < 10 px
    (root / "train" / "dog" / "labels.txt").write_text("dog\n")
    (root / "train" / "dog" / ".DS_Store").write_bytes(b"\0")
    write_image(root / "train" / "stray.jpg", 24, 16)  # in no class folder
    (root / "train" / "empty").mkdir()
    (root / "train" / "empty" / "junk.jpg").write_bytes(b"junk")  # its only image is unreadable
    return root


@pytest.fixture(scope="module")
def imagefolder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("imagefolder")
    source = make_class_folders(tmp / "src" / "my-dataset")
    return prepare_dataset("imagefolder", root=tmp / "root", source=tmp / "src", progress=False, echo=lambda _: None)


def test_imagefolder_folders_are_counted_and_every_bad_file_named(imagefolder):
    from ultralytics.data.utils import check_cls_dataset

    manifest, folder = imagefolder.manifest, imagefolder.folder
    assert imagefolder.data_yaml == folder and manifest["classes"] == ["cat", "dog", "empty"]
    assert manifest["splits"]["train"]["images_per_class"] == {"cat": 3, "dog": 3, "empty": 0}
    assert manifest["splits"]["val"]["images_per_class"] == {"cat": 1, "dog": 1, "empty": 0}
    assert manifest["counts"] == {CORRUPT_IMAGE: 4, NOT_AN_IMAGE: 1, NOT_IN_CLASS: 1, EMPTY_CLASS: 2}
    named = {(e["reason"], Path(e["file"]).name) for e in manifest["events"]}
    assert {(CORRUPT_IMAGE, "broken.jpg"), (CORRUPT_IMAGE, "empty.jpg"), (CORRUPT_IMAGE, "speck.jpg"),
            (CORRUPT_IMAGE, "junk.jpg"), (NOT_AN_IMAGE, "labels.txt"), (NOT_IN_CLASS, "stray.jpg")} <= named
    empties = [e["detail"] for e in manifest["events"] if e["reason"] == EMPTY_CLASS]
    assert "class 'empty' has no image in split 'train': an empty folder" in empties
    assert (folder / "train" / "dog" / "puppies" / "p0.png").is_file() and (folder / "val" / "empty").is_dir()
    assert check_dataset(folder).ok, check_dataset(folder).problems
    data = check_cls_dataset(str(folder))
    assert data["names"] == {0: "cat", 1: "dog", 2: "empty"}


def _cli(*args):
    from scsa_yolo.cli.main import main

    return CliRunner().invoke(main, ["data", *map(str, args)])


def test_a_val_class_missing_from_train_is_refused_with_one_message(tmp_path):
    source = make_class_folders(tmp_path / "src")
    write_image(source / "val" / "bird" / "b0.jpg", 24, 16)
    with pytest.raises(ClassFolderError, match=r"val has class folder\(s\) that .*train lacks: bird"):
        prepare_dataset("imagefolder", root=tmp_path / "root", source=source, progress=False, echo=lambda _: None)
    result = _cli("prepare", "imagefolder", "--root", tmp_path / "root", "--source", source, "--no-progress")
    assert result.exit_code == 1 and "lacks: bird" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "root" / "imagefolder").exists()


def test_imagefolder_sources_that_are_not_class_folders_say_what_is_needed(tmp_path):
    result = _cli("prepare", "imagefolder", "--root", tmp_path / "root", "--no-progress")
    assert result.exit_code == 1 and "pass --source DIR where DIR holds train/<class>/" in result.output
    only_train = tmp_path / "only-train"
    write_image(only_train / "train" / "cat" / "c.jpg", 24, 16)
    result = _cli("prepare", "imagefolder", "--root", tmp_path / "root", "--source", only_train, "--no-progress")
    assert result.exit_code == 1 and "no val/ or validation/ or valid/ folder" in result.output
    assert "--splits train" in result.output
    assert _cli("prepare", "imagefolder", "--root", tmp_path / "root", "--source", only_train, "--splits", "train",
                "--no-progress").exit_code == 0


def test_thermal_crops_keep_the_long_tail_after_one_crop_of_each_class(tmp_path):
    manifest = _prepare("synthetic-cls-thermal", tmp_path, num_train=120, num_val=6, imgsz=16).manifest
    train = manifest["splits"]["train"]["images_per_class"]
    assert train["red_circle"] > 3 * train["cyan_ring"] >= 3  # class k drawn with weight 0.55**k
    assert min(manifest["splits"]["val"]["images_per_class"].values()) == 1  # the first six: one of each
