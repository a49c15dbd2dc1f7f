"""Pascal VOC 07+12: splits, 1-based float coordinates, difficult objects, missing sizes."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from test_data_common import assert_boxes_close, coco_eval, image_id, pixel_boxes, write_image

from scsa_yolo.data.convert.events import (
    CLIPPED,
    DIFFICULT,
    MALFORMED,
    NO_ANNOTATION,
    RENAMED_CLASS,
    SIZE_FROM_IMAGE,
    UNKNOWN_CLASS,
)
from scsa_yolo.data.layout.manifest import check_dataset
from scsa_yolo.data.prepare import prepare_dataset

PERSON, DOG, CAR, CAT = 14, 11, 6, 7


def _obj(name: str, box: tuple, difficult: str | None = "0", extra: str = "") -> str:
    tags = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    diff = f"<difficult>{difficult}</difficult>" if difficult is not None else ""
    return f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>{extra}{diff}<bndbox>{tags}</bndbox></object>"


def _xml(filename: str, size: tuple | None, objects: list[str]) -> str:
    size_xml = (
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size is not None else ""
    )
    body = "\n".join(objects)
    return (
        f"<annotation>\n<folder>VOC</folder>\n<filename>{filename}</filename>\n<path>/home/labelimg/{filename}</path>\n"
        f"<source><database>Unknown</database></source>\n{size_xml}\n<segmented>0</segmented>\n{body}\n</annotation>\n"
    )


def make_voc(root: Path) -> Path:
    """``VOCdevkit/VOC2007`` (trainval + test) and ``VOCdevkit/VOC2012`` (trainval) with traps."""
    def add(year: str, image_id: str, size: tuple, declared, objects: list[str], image_sets: list[str]):
        voc = root / "VOCdevkit" / f"VOC{year}"
        write_image(voc / "JPEGImages" / f"{image_id}.jpg", *size)
        (voc / "Annotations").mkdir(parents=True, exist_ok=True)
        (voc / "Annotations" / f"{image_id}.xml").write_text(_xml(f"{image_id}.jpg", declared, objects))
        main = voc / "ImageSets" / "Main"
        main.mkdir(parents=True, exist_ok=True)
        for image_set in image_sets:
            with open(main / f"{image_set}.txt", "a") as handle:
                handle.write(f"{image_id}\n")

    add("2007", "000005", (100, 80), (100, 80), [
        _obj("person", (1, 1, 50, 40)),  # the top-left pixel: x = 0
        _obj("dog", ("20.0", "30.5", "70.0", "79.9"), difficult=None),  # floats, no <difficult>
        _obj("car", (60, 10, 120, 30)),  # past the right border: clipped
    ], ["trainval"])
    add("2012", "2008_000002", (64, 48), (0, 0), [  # zero size: read from the image
        _obj("Person", (10, 10, 20, 20)),  # capitalised name
        _obj("cat", (30, 5, 60, 40), difficult="1"),
        _obj("person2", (1, 1, 5, 5)),  # unknown class
    ], ["trainval"])
    add("2007", "000001", (50, 50), None, [  # no <size> at all
        _obj("dog", (5, 5, 45, 45)),
        _obj("person", (10, 10, 20, 20), difficult="1"),
        "<object><name>car</name><bndbox><xmin>3</xmin><ymin>x</ymin></bndbox></object>",  # malformed
    ], ["test"])
    with open(root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "test.txt", "a") as handle:
        handle.write("000099\n")  # listed, but no annotation (and no image)
    return root


def _prepare(tmp_path: Path, **kwargs):
    source = make_voc(tmp_path / "src")
    return prepare_dataset("voc", root=tmp_path / "root", source=source, progress=False, echo=lambda m: None, **kwargs)


def test_07_plus_12_trainval_train_and_07_test_val(tmp_path):
    result = _prepare(tmp_path)
    assert result.manifest["splits"]["train"]["images"] == 2 and result.manifest["splits"]["val"]["images"] == 1
    train = pixel_boxes(result.folder, "train")
    # 1-based inclusive pixels -> x = xmin - 1, w = xmax - xmin + 1
    assert_boxes_close(train["000005.jpg"], [(PERSON, 0, 0, 50, 40), (DOG, 19, 29.5, 51, 50.4), (CAR, 59, 9, 41, 21)])
    assert_boxes_close(train["2008_000002.jpg"], [(PERSON, 9, 9, 11, 11)])  # difficult cat not trained
    assert_boxes_close(pixel_boxes(result.folder, "val")["000001.jpg"], [(DOG, 4, 4, 41, 41)])
    counts = result.manifest["counts"]
    assert counts[CLIPPED] == 1 and counts[DIFFICULT] == 2 and counts[UNKNOWN_CLASS] == 1
    assert counts[RENAMED_CLASS] == 1 and counts[MALFORMED] == 1 and counts[NO_ANNOTATION] == 1
    assert counts[SIZE_FROM_IMAGE] == 2  # zero <size> and missing <size>
    unknown = next(e for e in result.manifest["events"] if e["reason"] == UNKNOWN_CLASS)
    assert unknown["file"].endswith("VOC2012/Annotations/2008_000002.xml") and unknown["line"] == 10
    assert check_dataset(result.folder).ok


def test_difficult_objects_are_ignore_regions_in_the_ground_truth(tmp_path):
    result = _prepare(tmp_path)
    gt_path = result.folder / "annotations" / "val.json"
    gt = json.loads(gt_path.read_text())
    assert [(a["category_id"], a["iscrowd"]) for a in gt["annotations"]] == [(DOG + 1, 0), (PERSON + 1, 1)]
    # a detection on the difficult person is neither a hit nor a false positive
    on_difficult = [{"image_id": image_id(gt_path, "000001.jpg"), "category_id": PERSON + 1, "bbox": [9, 9, 11, 11], "score": 0.95}]
    assert coco_eval(gt_path, on_difficult)[0] == pytest.approx(1.0)


def test_train_difficult_adds_them_to_the_training_labels_only(tmp_path):
    result = _prepare(tmp_path, options={"train_difficult": True})
    assert_boxes_close(pixel_boxes(result.folder, "train")["2008_000002.jpg"], [(PERSON, 9, 9, 11, 11), (CAT, 29, 4, 31, 36)])
    gt = json.loads((result.folder / "annotations" / "val.json").read_text())
    assert sum(a["iscrowd"] for a in gt["annotations"]) == 1
    assert result.manifest["splits"]["val"]["boxes"] == 2 and result.manifest["splits"]["val"]["gt_boxes"] == 1
    assert check_dataset(result.folder).ok


def test_archives_in_the_source_folder_are_extracted(tmp_path):
    tree = make_voc(tmp_path / "tree")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for archive, year, keep in (
        ("VOCtrainval_06-Nov-2007.zip", "2007", "trainval"),
        ("VOCtest_06-Nov-2007.zip", "2007", "test"),
        ("VOCtrainval_11-May-2012.zip", "2012", "trainval"),
    ):
        voc = tree / "VOCdevkit" / f"VOC{year}"
        ids = (voc / "ImageSets" / "Main" / f"{keep}.txt").read_text().split()
        with zipfile.ZipFile(downloads / archive, "w") as zf:
            zf.writestr(f"VOCdevkit/VOC{year}/ImageSets/Main/{keep}.txt", "\n".join(ids) + "\n")
            for i in ids:
                for sub, ext in (("Annotations", "xml"), ("JPEGImages", "jpg")):
                    path = voc / sub / f"{i}.{ext}"
                    if path.exists():
                        zf.write(path, f"VOCdevkit/VOC{year}/{sub}/{i}.{ext}")
    result = prepare_dataset("voc", root=tmp_path / "root", source=downloads, progress=False, echo=lambda m: None)
    assert {s: v["images"] for s, v in result.manifest["splits"].items()} == {"train": 2, "val": 1}
    assert len(result.manifest["source"]) == 3
    assert (tmp_path / "root" / ".sources" / "voc" / "extracted" / "VOCtest_06-Nov-2007" / ".extracted").is_file()


def test_a_source_without_voc_names_the_searched_folder_as_a_plain_path(tmp_path):
    from scsa_yolo.data.fetch.sources import SourceMissing

    empty = tmp_path / "not voc"
    (empty / "something").mkdir(parents=True)
    with pytest.raises(SourceMissing) as info:
        prepare_dataset("voc", root=tmp_path / "root", source=empty, progress=False, echo=lambda m: None)
    first_line = str(info.value).splitlines()[0]
    assert first_line == (
        f"voc: no VOC2007/ with ImageSets/Main/trainval.txt and Annotations/ under {empty.absolute()}."
    )
    assert "PosixPath" not in str(info.value) and "WindowsPath" not in str(info.value) and "[" not in first_line
