"""Shared dataset machinery (box clean-up, image probing, writer, manifest check) and the
helpers the per-dataset tests import: tiny image writer, perfect-prediction AP, YOLO
labels read back to pixels."""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scsa_yolo.data.convert.boxes import GtBox, fit_box_to_image
from scsa_yolo.data.convert.events import CLIPPED, DEGENERATE, ConversionLog
from scsa_yolo.data.convert.images import ImageProblem, place_image, probe_image
from scsa_yolo.data.convert.recipes.base import Conversion, ConvertedImage
from scsa_yolo.data.layout.ground_truth import read_yolo_split
from scsa_yolo.data.layout.manifest import check_dataset
from scsa_yolo.data.layout.writer import DatasetWriter, staging_dir


# --- helpers used by the other test_data_* modules ----------------------------------------
def write_image(path: Path, width: int, height: int, *, exif_orientation: int | None = None) -> Path:
    """A small noise image; the format follows the suffix (.jpg/.jpeg/.png, any case)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    img = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(path, fmt, exif=exif.tobytes())
    else:
        img.save(path, fmt)
    return path


def pixel_boxes(dataset: Path, split: str) -> dict[str, list[tuple[int, float, float, float, float]]]:
    """YOLO labels of a prepared split read back into pixel boxes ``(class, x, y, w, h)``."""
    records = read_yolo_split(dataset / "images" / split)
    return {r.file_name: sorted((b.class_index, b.x, b.y, b.w, b.h) for b in r.boxes) for r in records}


def assert_boxes_close(actual, expected, tol: float = 1.0) -> None:
    """Same classes, every coordinate within ``tol`` pixels."""
    actual, expected = sorted(actual), sorted(expected)
    assert len(actual) == len(expected), (actual, expected)
    for a, e in zip(actual, expected):
        assert a[0] == e[0], (a, e)
        assert np.allclose(a[1:], e[1:], atol=tol), (a, e)


def coco_eval(gt_path: Path, extra_detections: list[dict] = ()) -> list[float]:
    """pycocotools bbox stats for perfect detections (every non-crowd GT box) plus extras."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(gt_path))
    detections = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt.dataset["annotations"]
        if not a["iscrowd"]
    ] + list(extra_detections)
    evaluator = COCOeval(gt, gt.loadRes(detections), "bbox")
    evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    return list(evaluator.stats)


def prepare_synthetic(root: Path, name: str = "synthetic", *, force: bool = False, **options) -> Path:
    """``scsa-yolo data prepare NAME`` of a generated set (``synthetic``, ``synthetic-tiny``, ...)
    with generator ``options``, quietly; returns its data YAML."""
    from scsa_yolo.data.prepare import prepare_dataset

    return prepare_dataset(name, root=root, force=force, options=options, progress=False, echo=lambda _: None).data_yaml


def image_id(gt_path: Path, file_name: str) -> int:
    return next(i["id"] for i in json.loads(gt_path.read_text())["images"] if i["file_name"] == file_name)


# --- box clean-up ----------------------------------------------------------------------------
def test_boxes_are_clipped_to_the_image_and_each_clip_is_logged():
    log = ConversionLog()
    box = fit_box_to_image(GtBox(2, -5, 10, 30, 100), 100, 50, log, file="a.txt", line=7)
    assert (box.x, box.y, box.w, box.h) == (0, 10, 25, 40)
    (event,) = log.events
    assert (event.reason, event.file, event.line) == (CLIPPED, "a.txt", 7)


def test_float_noise_at_the_border_is_clipped_without_an_event():
    log = ConversionLog()
    box = fit_box_to_image(GtBox(0, 0, 0, 100.0000000001, 50), 100, 50, log, file="a.txt")
    assert box.w == 100 and log.events == []


@pytest.mark.parametrize("box", [GtBox(0, 5, 5, 0, 10), GtBox(0, 5, 5, 10, -1), GtBox(0, 120, 5, 10, 10)])
def test_degenerate_and_outside_boxes_are_dropped_and_counted(box):
    log = ConversionLog()
    assert fit_box_to_image(box, 100, 50, log, file="a.txt", line=3) is None
    assert log.count(DEGENERATE) == 1 and log.events[0].line == 3


# --- images ----------------------------------------------------------------------------------
def test_probe_reads_size_and_exif_orientation_and_rejects_broken_files(tmp_path):
    # ultralytics wraps PIL.Image.open to pip-install a HEIF plugin on unidentified files;
    # a corrupt image must still be a plain ImageProblem (no install, no ModuleNotFoundError)
    import ultralytics.utils.patches  # noqa: F401

    assert probe_image(write_image(tmp_path / "a.JPG", 40, 30)) == (40, 30, 1)
    assert probe_image(write_image(tmp_path / "b.jpg", 40, 30, exif_orientation=6))[2] == 6
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    for name, message in (("empty.jpg", "empty"), ("junk.png", "not a readable image"), ("none.jpg", "not found")):
        with pytest.raises(ImageProblem, match=message):
            probe_image(tmp_path / name)


def test_place_image_links_or_copies_without_reencoding(tmp_path):
    source = write_image(tmp_path / "src.jpg", 20, 10)
    for mode in ("auto", "hardlink", "symlink", "copy"):
        target = tmp_path / mode / "x.jpg"
        used = place_image(source, target, mode)
        assert target.read_bytes() == source.read_bytes()
        assert used == {"auto": "hardlink"}.get(mode, mode)
    assert (tmp_path / "hardlink" / "x.jpg").stat().st_ino == source.stat().st_ino
    assert (tmp_path / "symlink" / "x.jpg").is_symlink()
    with pytest.raises(ValueError, match="link mode"):
        place_image(source, tmp_path / "y.jpg", "move")


# --- writer and manifest check ---------------------------------------------------------------
def _conversion(tmp_path: Path, fail_after: int | None = None) -> Conversion:
    sources = [write_image(tmp_path / "src" / f"im{i}.jpg", 64, 32) for i in range(3)]

    def images():
        for i, source in enumerate(sources):
            if fail_after is not None and i == fail_after:
                raise KeyboardInterrupt  # what Ctrl-C does half-way
            boxes = [GtBox(i % 2, 4, 4, 20, 10), GtBox(1, 30, 2, 10, 10, ignore=True)]
            yield ("train" if i < 2 else "val"), ConvertedImage(source, source.name, 64, 32, boxes)

    return Conversion(["a", "b"], images())


def _fields(splits=("train", "val")):
    return {"dataset": "toy", "request": {"splits": list(splits), "options": {}}, "source": []}


def test_writer_output_passes_check_and_ultralytics_reads_the_yaml(tmp_path):
    from ultralytics.data.utils import check_det_dataset

    final = tmp_path / "root" / "toy"
    log = ConversionLog()
    manifest = DatasetWriter(final, eval_splits=("val",), progress=False).write(
        _conversion(tmp_path), log, manifest_fields=_fields()
    )
    assert manifest["splits"]["train"]["boxes_per_class"] == {"a": 1, "b": 1}
    assert manifest["splits"]["val"]["ignore_regions"] == 1
    assert not (final / "annotations" / "train.json").exists()  # GT only for evaluation splits
    report = check_dataset(final)
    assert report.ok, report.problems
    data = check_det_dataset(str(final / "data.yaml"), autodownload=False)
    assert data["names"] == {0: "a", 1: "b"} and Path(data["val"]) == final / "images" / "val"
    assert pixel_boxes(final, "val") == {"im2.jpg": [(0, 4.0, 4.0, 20.0, 10.0)]}


def test_interrupted_write_leaves_no_dataset_that_looks_complete(tmp_path):
    final = tmp_path / "root" / "toy"
    with pytest.raises(KeyboardInterrupt):
        DatasetWriter(final, eval_splits=("val",), progress=False).write(
            _conversion(tmp_path, fail_after=2), ConversionLog(), manifest_fields=_fields()
        )
    assert not final.exists() and not staging_dir(final).exists()


def test_check_reports_tampered_labels_and_missing_images(tmp_path):
    final = tmp_path / "root" / "toy"
    DatasetWriter(final, eval_splits=("val",), progress=False).write(
        _conversion(tmp_path), ConversionLog(), manifest_fields=_fields()
    )
    (final / "labels" / "train" / "im0.txt").write_text("0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n")
    (final / "images" / "val" / "im2.jpg").unlink()
    (final / "labels" / "train" / "im1.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    problems = "\n".join(check_dataset(final).problems)
    assert "class 'a' has 2 boxes in the labels, manifest says 1" in problems
    assert "val: 0 images on disk, manifest says 1" in problems
    assert "im1.txt:1: bad label" in problems
