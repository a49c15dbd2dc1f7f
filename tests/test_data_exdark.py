"""ExDark: the official split, mixed extensions, case-mismatched annotation names, bbGt files."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_data_common import assert_boxes_close, coco_eval, pixel_boxes, write_image

from scsa_yolo.data.convert.events import (
    CLIPPED,
    MALFORMED,
    MISSING_IMAGE,
    NO_ANNOTATION,
    NOT_IN_SPLIT,
    RENAMED_CLASS,
    UNKNOWN_CLASS,
)
from scsa_yolo.data.convert.recipes.exdark import read_split_file
from scsa_yolo.data.layout.manifest import check_dataset
from scsa_yolo.data.prepare import prepare_dataset

BICYCLE, CAR, PEOPLE, TABLE = 0, 4, 10, 11
HEADER = "% bbGt version=3\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_exdark(root: Path) -> Path:
    """``ExDark/<Class>/<image>`` + ``ExDark_Annno/<Class>/<image>.txt``; names from the official split."""
    images, annotations = root / "ExDark", root / "ExDark_Annno"
    write_image(images / "Bicycle" / "2015_00001.png", 80, 60)  # train
    _write(annotations / "Bicycle" / "2015_00001.png.txt", HEADER
           + "Bicycle 10 12 30 20 0 0 0 0 0 0 0\n"
           + "People 60 30 40 40 0 0 0 0 0 0 0\n"  # reaches past the border
           + "Bike 1 1 5 5 0 0 0 0 0 0 0\n"  # line 4: not an ExDark class
           + "Bicycle 1 2\n")  # line 5: malformed
    write_image(images / "Bicycle" / "2015_00024.JPG", 40, 30)  # train; its annotation is lower-case
    _write(annotations / "Bicycle" / "2015_00024.jpg.txt", HEADER + "Bicycle 2 3 20 10 0 0 0 0 0 0 0\n")
    write_image(images / "Car" / "2015_02436.jpeg", 50, 40)  # train, .jpeg
    _write(annotations / "Car" / "2015_02436.jpeg.txt", HEADER + "Car 5 5 20 20 0 0 0 0 0 0 0\nTable 30 20 10 10 0 0 0 0 0 0 0\n")
    write_image(images / "Bicycle" / "2015_00251.jpg", 40, 40)  # val; class written in lower case
    _write(annotations / "Bicycle" / "2015_00251.jpg.txt", HEADER + "people 4 4 10 20 0 0 0 0 0 0 0\n")
    write_image(images / "People" / "2015_06646.JPEG", 60, 40)  # test, .JPEG
    _write(annotations / "People" / "2015_06646.JPEG.txt", HEADER + "People 1 1 20 30 0 0 0 0 0 0 0\n")
    write_image(images / "Bicycle" / "2015_00465.jpeg", 30, 30)  # test, but no annotation: skipped
    write_image(images / "People" / "extra_0001.jpg", 30, 30)  # not in the split file
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exdark")
    source = make_exdark(tmp / "src")
    return prepare_dataset("exdark", root=tmp / "root", source=source, progress=False, echo=lambda m: None)


def test_packaged_split_file_is_the_official_split():
    splits = read_split_file()
    assert {k: len(v) for k, v in splits.items()} == {"train": 3000, "val": 1800, "test": 2563}
    assert splits["train"][0] == "2015_00001.png" and "2015_06646.JPEG" in splits["test"]


def test_a_bad_split_file_names_its_line(tmp_path):
    bad = tmp_path / "split.txt"
    bad.write_text("Name | Class | Light | In/Out | Train/Val/Test\n2015_00001.png 1 2 1 1\n2015_00002.png 1 2 1 4\n")
    with pytest.raises(ValueError, match=r"split.txt:3: expected"):
        read_split_file(bad)


def test_images_land_in_their_official_split_with_every_trap_handled(prepared):
    manifest = prepared.manifest
    assert {s: v["images"] for s, v in manifest["splits"].items()} == {"train": 3, "val": 1, "test": 1}
    train = pixel_boxes(prepared.folder, "train")
    assert_boxes_close(train["2015_00001.png"], [(BICYCLE, 10, 12, 30, 20), (PEOPLE, 60, 30, 20, 30)])
    assert_boxes_close(train["2015_00024.JPG"], [(BICYCLE, 2, 3, 20, 10)])
    assert_boxes_close(train["2015_02436.jpeg"], [(CAR, 5, 5, 20, 20), (TABLE, 30, 20, 10, 10)])
    assert_boxes_close(pixel_boxes(prepared.folder, "val")["2015_00251.jpg"], [(PEOPLE, 4, 4, 10, 20)])
    assert_boxes_close(pixel_boxes(prepared.folder, "test")["2015_06646.JPEG"], [(PEOPLE, 1, 1, 20, 30)])
    counts = manifest["counts"]
    assert counts[UNKNOWN_CLASS] == 1 and counts[MALFORMED] == 1 and counts[CLIPPED] == 1
    assert counts[RENAMED_CLASS] == 1 and counts[NO_ANNOTATION] == 1 and counts[NOT_IN_SPLIT] == 1
    assert counts[MISSING_IMAGE] == 7363 - 6  # the rest of the official list is not in this fixture
    lines = {(e["reason"], e.get("line")) for e in manifest["events"] if e.get("image") == "2015_00001.png"}
    assert {(UNKNOWN_CLASS, 4), (MALFORMED, 5), (CLIPPED, 3)} <= lines
    assert any("match their image only when case is ignored" in n for n in manifest["notes"])
    assert check_dataset(prepared.folder).ok


def test_ground_truth_of_val_and_test_scores_one(prepared):
    for split in ("val", "test"):
        stats = coco_eval(prepared.folder / "annotations" / f"{split}.json")
        assert stats[0] == pytest.approx(1.0)
