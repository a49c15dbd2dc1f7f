"""Weight transfer for segmentation and classification checkpoints (issue 29 item 3).

A plain ``-seg`` / ``-cls`` checkpoint maps into its attention model row by row, the
Segment and Classify heads included; in a residual placement the start is the plain model
exactly: a segmentation model's boxes and masks, a classifier's logits.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from scsa_yolo.integration.specs import resolve_model
from scsa_yolo.integration.transfer import (
    TransferError,
    output_tensors,
    transfer_checkpoint,
)
import scsa_yolo.integration as integration


from test_placement import _plain_checkpoint  # noqa: E402  (a plain model of any task, BatchNorm statistics set)


@pytest.fixture(scope="module")
def plain_seg(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "yolov8n-seg-plain.pt"
    return path, _plain_checkpoint(path, "yolov8n-seg", nc=3)


@pytest.fixture(scope="module")
def plain_cls(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "yolov8n-cls-plain.pt"
    return path, _plain_checkpoint(path, "yolov8n-cls", nc=7)


def _outputs(model, x):
    with torch.no_grad():
        return output_tensors(model.eval()(x))


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_a_plain_seg_checkpoint_in_backbone_res_reproduces_boxes_and_masks_exactly(plain_seg, tmp_path):
    path, plain = plain_seg
    argument = resolve_model("yolov8n-seg", "scsa", "backbone-res").argument
    report = transfer_checkpoint(path, argument, tmp_path / "seg.pt")
    assert report.transferred == len(plain.state_dict()) and report.skipped == 0 and report.new > 0
    assert report.layers[-1].module == "Segment" and report.layers[-1].transferred > 0
    assert report.output_difference["max_abs"] == 0.0
    checkpoint = _load(tmp_path / "seg.pt")
    assert type(checkpoint["model"]).__name__ == "SegmentationModel"
    assert checkpoint["train_args"]["task"] == "segment"  # YOLO(path) picks the segmentation trainer
    # the raw outputs: boxes and scores, mask coefficients, prototypes, bit for bit
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    ours, theirs = _outputs(checkpoint["model"], x), _outputs(plain, x)
    assert len(ours) == len(theirs) > 2 and all(torch.equal(a, b) for a, b in zip(ours, theirs))
    # and what a user sees: the predicted boxes and masks of an image
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    integration.register()  # our layers known to the checkpoints' unpickling
    from ultralytics import YOLO

    predicted = [YOLO(str(p), verbose=False).predict(image, imgsz=64, conf=0.0, device="cpu", verbose=False)[0]
                 for p in (path, tmp_path / "seg.pt")]
    assert predicted[0].masks is not None and len(predicted[0].boxes) > 0
    assert torch.equal(predicted[0].boxes.data, predicted[1].boxes.data)
    assert torch.equal(predicted[0].masks.data, predicted[1].masks.data)


@pytest.mark.parametrize("placement", ["backbone-res", "block"])
def test_a_plain_cls_checkpoint_transfers_with_its_classify_head(plain_cls, tmp_path, placement):
    path, plain = plain_cls
    argument = resolve_model("yolov8n-cls", "scsa", placement).argument
    report = transfer_checkpoint(path, argument, tmp_path / "cls.pt")
    assert report.transferred == len(plain.state_dict()) and report.skipped == 0
    head = report.layers[-1]
    assert head.module == "Classify" and head.transferred == len([k for k in plain.state_dict()
                                                                  if k.startswith(f"model.{len(plain.model) - 1}.")])
    checkpoint = _load(tmp_path / "cls.pt")
    assert type(checkpoint["model"]).__name__ == "ClassificationModel"
    assert checkpoint["train_args"]["task"] == "classify"
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    (probs, logits), (plain_probs, plain_logits) = _outputs(checkpoint["model"], x), _outputs(plain, x)
    assert logits.shape == (2, 7)
    if placement == "backbone-res":  # identity start: the logits bit for bit
        assert torch.equal(logits, plain_logits) and torch.equal(probs, plain_probs)
        assert report.output_difference["max_abs"] == 0.0
    else:  # block is no identity start, and the report says how far it is
        assert not torch.equal(logits, plain_logits) and report.output_difference["relative"] > 0


def test_a_new_class_count_renews_only_the_class_outputs(plain_seg, plain_cls, tmp_path):
    path, plain = plain_cls
    report = transfer_checkpoint(path, resolve_model("yolov8n-cls", "se", "backbone").argument, tmp_path / "a.pt",
                                 nc=4)
    head = report.layers[-1]
    assert head.new == 2 and "class outputs" in " ".join(head.reasons)  # linear.weight and linear.bias
    seg_path, seg_plain = plain_seg
    report = transfer_checkpoint(seg_path, resolve_model("yolov8n-seg", "eca", "neck-res").argument,
                                 tmp_path / "b.pt", nc=5)
    head = report.layers[-1]
    assert head.module == "Segment" and head.new == 6 and "class outputs" in " ".join(head.reasons)
    # everything else of the head (boxes, the mask coefficients cv4, the prototypes) carries over
    assert head.transferred == sum(1 for k in seg_plain.state_dict()
                                   if k.startswith(f"model.{len(seg_plain.model) - 1}.")) - 6


def test_a_bare_cls_state_dict_gives_its_class_count(plain_cls, tmp_path):
    _, plain = plain_cls
    torch.save(plain.state_dict(), tmp_path / "state.pt")
    report = transfer_checkpoint(tmp_path / "state.pt", resolve_model("yolov8n-cls", "eca", "backbone-res").argument,
                                 tmp_path / "out.pt")
    assert report.transferred == len(plain.state_dict()) and report.skipped == 0
    assert _load(tmp_path / "out.pt")["model"].yaml["nc"] == 7


def test_a_checkpoint_of_another_task_is_refused_naming_both(plain_seg, plain_cls, tmp_path):
    seg_path, _ = plain_seg
    with pytest.raises(TransferError, match="checkpoint is a segment model .* and the target a detect model"):
        transfer_checkpoint(seg_path, resolve_model("yolov8n", "scsa", "backbone-res").argument, tmp_path / "x.pt")
    cls_path, _ = plain_cls
    with pytest.raises(TransferError, match="checkpoint is a classify model .* and the target a segment model"):
        transfer_checkpoint(cls_path, resolve_model("yolov8n-seg", "scsa", "block").argument, tmp_path / "x.pt")


def test_transfer_cli_maps_a_seg_checkpoint_and_prints_the_table(plain_seg, tmp_path):
    from scsa_yolo.cli.models import models

    path, plain = plain_seg
    result = CliRunner().invoke(models, ["transfer", "--weights", str(path), "--model", "yolov8n-seg", "--attn", "scsa",
                                         "--out", str(tmp_path / "o.pt")])
    assert result.exit_code == 0, result.output
    assert f"total: {len(plain.state_dict())} tensors transferred, 54 new, 0 skipped" in result.output
    assert "Segment" in result.output and "max |diff| 0," in result.output
    assert "yolo train model=yolov8n-seg-scsa-backbone-res.yaml pretrained=" in result.output
