"""``scsa-yolo explain``: layer names, gates read by hooks, ERFs, CAM panels and the command.

Everything runs on CPU with YOLOv8n built from the suite's names (random weights) or saved
as checkpoints, on tiny generated images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from test_data_common import prepare_synthetic

from scsa_yolo.cli.explain import explain as explain_command
from scsa_yolo.explain.erf import area_ratio, effective_receptive_fields
from scsa_yolo.explain.gates import capture_gates
from scsa_yolo.explain.inputs import load_images
from scsa_yolo.explain.layers import (
    AttentionLayer,
    LayerSelectionError,
    find_attention_layers,
    select_layers,
)
from scsa_yolo.integration.specs import resolve_model
from scsa_yolo.integration.transfer import save_checkpoint
from scsa_yolo.nn import SCSA, create_attention


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")


def _build(name: str):
    from ultralytics import YOLO

    return YOLO(resolve_model(name).argument, verbose=False).model.eval()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Two synthetic 64 px validation images plus one 96x128 image (not square)."""
    root = tmp_path_factory.mktemp("explain-data")
    data = prepare_synthetic(root, num_train=4, num_val=2, imgsz=64)
    folder = data.parent / "images" / "val"
    rng = np.random.default_rng(0)
    picture = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    picture[30:60, 40:90] = (220, 40, 40)
    Image.fromarray(picture).save(folder / "wide.png")
    assert len(list(folder.iterdir())) == 3
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Plain, SCSA backbone-res and SCSA block YOLOv8n saved as Ultralytics checkpoints."""
    folder = tmp_path_factory.mktemp("explain-ckpt")
    out = {}
    for name in ("yolov8n", "yolov8n-scsa-backbone-res", "yolov8n-scsa-block"):
        argument = resolve_model(name).argument
        model = _build(name)
        if name.endswith("-res"):  # move the residual gates off 0, as training does
            for module in model.modules():
                if hasattr(module, "gate") and isinstance(module.gate, torch.nn.Parameter):
                    torch.nn.init.uniform_(module.gate, 0.1, 0.3)
        out[name] = save_checkpoint(model, folder / f"{name}.pt", argument)
    return out


# ---------------------------------------------------------------------------- layer names
@pytest.mark.parametrize("placement, expected", [
    ("backbone", [("5", "row 5 (SCSA)"), ("8", "row 8 (SCSA)"), ("12", "row 12 (SCSA)")]),
    ("neck", [("16", "row 16 (SCSA)"), ("20", "row 20 (SCSA)"), ("24", "row 24 (SCSA)")]),
    ("backbone-res", [("5/attn", "row 5 / attn (SCSA, residual)"), ("8/attn", "row 8 / attn (SCSA, residual)"),
                      ("12/attn", "row 12 / attn (SCSA, residual)")]),
    ("neck-res", [("16/attn", "row 16 / attn (SCSA, residual)"), ("20/attn", "row 20 / attn (SCSA, residual)"),
                  ("24/attn", "row 24 / attn (SCSA, residual)")]),
    ("block", [("2/m.0.attn", "row 2 / m.0.attn (SCSA, in bottleneck)"),
               ("4/m.0.attn", "row 4 / m.0.attn (SCSA, in bottleneck)"),
               ("4/m.1.attn", "row 4 / m.1.attn (SCSA, in bottleneck)"),
               ("6/m.0.attn", "row 6 / m.0.attn (SCSA, in bottleneck)"),
               ("6/m.1.attn", "row 6 / m.1.attn (SCSA, in bottleneck)"),
               ("8/m.0.attn", "row 8 / m.0.attn (SCSA, in bottleneck)")]),
])
def test_attention_layers_are_named_by_row_and_path(placement, expected):
    model = _build(f"yolov8n-scsa-{placement}")
    layers = find_attention_layers(model)
    assert [(layer.key, layer.label) for layer in layers] == expected
    modules = dict(model.named_modules())
    for layer in layers:
        assert modules[layer.module_name] is layer.module
        assert model.model[layer.row] is modules[f"model.{layer.row}"]
        assert isinstance(layer.module, SCSA) and layer.kind == "SCSA"
        if layer.form == "residual":
            assert layer.residual_gate.shape == (layer.module.channels,)
        else:
            assert layer.residual_gate is None
    assert find_attention_layers(_build("yolov8n")) == []


def test_layer_selection_by_key_module_name_or_label_and_clear_refusal():
    block = find_attention_layers(_build("yolov8n-scsa-block"))
    res = find_attention_layers(_build("yolov8n-se-backbone-res"))
    per_model = [("yolov8n", []), ("block", block), ("res", res)]
    chosen = select_layers(per_model, ["4/m.1.attn,model.6.m.0.attn", "row 5 / attn (SE, residual)"])
    assert [[layer.key for layer in layers] for layers in chosen] == [[], ["4/m.1.attn", "6/m.0.attn"], ["5/attn"]]
    assert [len(x) for x in select_layers(per_model, [])] == [0, 6, 3]
    with pytest.raises(LayerSelectionError) as error:
        select_layers(per_model, ["4/m.9.attn", "4/m.0.attn"])
    message = str(error.value)
    assert "'4/m.9.attn'" in message and "'4/m.0.attn'" not in message.split("Valid")[0]
    assert "yolov8n: (no attention layers)" in message
    assert "4/m.1.attn = row 4 / m.1.attn (SCSA, in bottleneck)" in message
    assert "8/attn = row 8 / attn (SE, residual)" in message


# ---------------------------------------------------------------------------- gates
def _randomise(layer: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Spread the parameters so that the gates differ across positions and channels."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.8 + (0.3 if p.ndim == 1 else 0.0))
    return layer.eval()


def _alone(layer: torch.nn.Module) -> AttentionLayer:
    return AttentionLayer(0, "", "model.0", type(layer).__name__, "series", layer)


@pytest.mark.parametrize("kwargs", [
    {}, {"order": "pcsa_first"}, {"norm_position": "before"}, {"shared": False}, {"kernel_sizes": (3, 7)},
    {"num_heads": 4, "channel_shuffle": True},
])
def test_scsa_gates_equal_the_layers_own_computation(kwargs):
    torch.manual_seed(0)
    layer = _randomise(SCSA(32, **kwargs))
    x = torch.randn(2, 32, 12, 10) * 2
    (gates,) = capture_gates(layer, [_alone(layer)], [x])
    k = layer.groups
    assert gates.spatial.shape == (2, k, 12, 10) and gates.channel.shape == (2, 32)
    for values in (gates.spatial, gates.channel):
        assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1
    with torch.no_grad():
        first = layer._pcsa(x) if layer.order == "pcsa_first" else x  # what SMSA sees
        convs_w = layer.dwconvs if layer.shared else layer.dwconvs_w
        a_h = layer._spatial_attention(first.mean(dim=3), layer.dwconvs, layer.norm_h)
        a_w = layer._spatial_attention(first.mean(dim=2), convs_w, layer.norm_w)
        per_channel = a_h.unsqueeze(3) * a_w.unsqueeze(2)
        spatial = per_channel.reshape(2, k, 32 // k, 12, 10).mean(dim=2)
        smsa_in = layer._smsa(x) if layer.order == "smsa_first" else x
        pcsa_out = layer._pcsa(smsa_in)
        ratio = pcsa_out / smsa_in  # the channel gate, where the input is far from 0
        where = smsa_in.abs().flatten(2).argmax(dim=2)
        channel = ratio.flatten(2).gather(2, where.unsqueeze(2)).squeeze(2)
        # the whole layer is x times the two gates
        assert torch.allclose(layer(x), x * per_channel * torch.from_numpy(gates.channel)[..., None, None],
                              atol=1e-5)
    np.testing.assert_allclose(gates.spatial, spatial.numpy(), atol=1e-6)
    np.testing.assert_allclose(gates.channel, channel.numpy(), atol=1e-4)
    assert gates.spatial.std() > 1e-3 and gates.channel.std() > 1e-3  # the test sees real variation


@pytest.mark.parametrize("name, spatial_groups, channels", [
    ("se", None, 32), ("eca", None, 32), ("fca", None, 32), ("ca", 1, None), ("ela", 1, None),
    ("cbam", 1, 32), ("sa", 16, 16), ("ema", 32, None), ("cpca", 1, 32),
])
def test_rival_gates_have_the_documented_shapes_and_ranges(name, spatial_groups, channels):
    torch.manual_seed(0)
    layer = _randomise(create_attention(name, 32))
    x = torch.randn(2, 32, 9, 11) * 2
    (gates,) = capture_gates(layer, [_alone(layer)], [x])
    if spatial_groups is None:
        assert gates.spatial is None
    else:
        assert gates.spatial.shape == (2, spatial_groups, 9, 11)
        if gates.spatial_range is not None:
            assert gates.spatial.min() >= 0 and gates.spatial.max() <= 1
    if channels is None:
        assert gates.channel is None
    else:
        low, high = gates.channel_range
        assert gates.channel.shape == (2, channels) and low <= gates.channel.min() and gates.channel.max() <= high
    with torch.no_grad():
        y = layer(x)
    g_c = None if gates.channel is None else torch.from_numpy(gates.channel)[..., None, None]
    if name in ("se", "eca", "fca"):  # y = x * channel gate
        assert torch.allclose(y, x * g_c, atol=1e-5)
    if name == "cbam":  # y = x * g_c * g_s
        assert torch.allclose(y, x * g_c * torch.from_numpy(gates.spatial), atol=1e-5)
    if name == "ema":  # every group's channels share one spatial gate
        g_s = torch.from_numpy(gates.spatial).repeat_interleave(32 // layer.groups, dim=1)
        assert torch.allclose(y, x * g_s, atol=1e-5)
    if name == "cpca":
        assert gates.spatial_range is None and gates.channel_range == (0.0, 2.0)


def test_block_model_gates_cover_every_layer_with_map_sizes_of_their_rows():
    model = _build("yolov8n-scsa-block")
    layers = find_attention_layers(model)
    gates = capture_gates(model, layers, [torch.rand(1, 3, 64, 64)])
    sizes = {g.layer.key: g.spatial.shape for g in gates}
    assert sizes == {"2/m.0.attn": (1, 4, 16, 16), "4/m.0.attn": (1, 4, 8, 8), "4/m.1.attn": (1, 4, 8, 8),
                     "6/m.0.attn": (1, 4, 4, 4), "6/m.1.attn": (1, 4, 4, 4), "8/m.0.attn": (1, 4, 2, 2)}
    assert [g.channel.shape[1] for g in gates] == [16, 32, 32, 64, 64, 128]


# ---------------------------------------------------------------------------- ERF
def test_area_ratio_by_hand():
    delta = np.zeros((9, 9))
    delta[4, 4] = 1.0
    assert area_ratio(delta, 0.5) == pytest.approx(1 / 81)
    flat = np.ones((10, 10))
    assert area_ratio(flat, 0.09) == pytest.approx(9 / 100)  # the 3x3 square around (5, 5) holds 9%
    assert area_ratio(flat, 0.49) == pytest.approx(49 / 100)  # 7x7
    assert area_ratio(flat, 0.5) == pytest.approx(81 / 100)  # 7x7 holds 49% < 50%; 9x9 (clipped at the edge)
    assert np.isnan(area_ratio(np.zeros((4, 4)), 0.5))


def test_erf_is_the_normalised_input_gradient_of_each_head_input_centre():
    model = _build("yolov8n-scsa-backbone-res")
    torch.manual_seed(0)
    batches = [torch.rand(2, 3, 64, 64), torch.rand(1, 3, 64, 64)]
    stages = effective_receptive_fields(model, batches)
    assert [(s.stage, s.stride, s.erf.shape, s.images) for s in stages] == [
        ("P3", 8, (64, 64), 3), ("P4", 16, (64, 64), 3), ("P5", 32, (64, 64), 3)]
    assert [s.feature_shape for s in stages] == [(64, 8, 8), (128, 4, 4), (256, 2, 2)]
    for s in stages:
        assert s.erf.max() == pytest.approx(1.0) and s.erf.min() >= 0
        assert s.area[0.2] <= s.area[0.5] <= s.area[0.9]
    assert stages[0].area[0.5] < stages[2].area[0.5]  # deeper maps see further
    # independently: a forward hook on the row that feeds P3 to the head, plain autograd
    head = model.model[-1]
    feature = {}
    handle = model.model[head.f[0]].register_forward_hook(lambda m, i, o: feature.update(p3=o))
    total = torch.zeros(64, 64)
    try:
        for batch in batches:
            x = batch.clone().requires_grad_(True)
            model(x)
            centre = feature["p3"][:, :, 4, 4].sum()
            (grad,) = torch.autograd.grad(centre, x)
            total += grad.abs().sum(dim=1).sum(dim=0)
    finally:
        handle.remove()
    np.testing.assert_allclose(stages[0].erf, (total / total.max()).numpy(), atol=1e-5)


# ---------------------------------------------------------------------------- the command
def _run(args):
    return CliRunner().invoke(explain_command, [str(a) for a in args], catch_exceptions=False)


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as picture:
        picture.verify()
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        return picture.size


def test_explain_writes_cam_gate_and_erf_pictures_and_an_index(images, checkpoints, tmp_path):
    out = tmp_path / "explain"
    models = [checkpoints[n] for n in ("yolov8n", "yolov8n-scsa-backbone-res", "yolov8n-scsa-block")]
    args = ["--images", images, "--out", out, "--imgsz", 64, "--device", "cpu"]
    result = _run([x for m in models for x in ("--model", m)] + args)
    assert result.exit_code == 0, result.output
    assert "[cam 3/3]" in result.output and "[erf 3/3] yolov8n-scsa-block" in result.output

    cams = sorted((out / "cam").glob("*.png"))
    assert [p.name for p in cams] == ["001-val_00000.png", "002-val_00001.png", "003-wide.png"]
    width, height = _png_size(cams[0])
    assert width > 3 * height  # the image and three models in one row
    wide_w, wide_h = _png_size(cams[2])
    assert wide_w / wide_h > width / height  # a 4:3 image gives a wider row than a square one

    gates = {p.relative_to(out).as_posix() for p in (out / "gates").rglob("*.png")}
    assert gates == {
        "gates/yolov8n-scsa-backbone-res/row05-attn.png", "gates/yolov8n-scsa-backbone-res/row08-attn.png",
        "gates/yolov8n-scsa-backbone-res/row12-attn.png",
        *(f"gates/yolov8n-scsa-block/{s}.png" for s in
          ("row02-m.0.attn", "row04-m.0.attn", "row04-m.1.attn", "row06-m.0.attn", "row06-m.1.attn", "row08-m.0.attn")),
    }
    for rel in gates:
        w, h = _png_size(out / rel)
        assert w >= 400 and h >= 300
    assert _png_size(out / "erf" / "erf.png")[1] > 400  # three rows of models

    summary = json.loads((out / "explain.json").read_text())
    assert [m["label"] for m in summary["models"]] == ["yolov8n", "yolov8n-scsa-backbone-res", "yolov8n-scsa-block"]
    assert all(m["trained"] for m in summary["models"])
    assert [layer["label"] for layer in summary["models"][1]["layers"]] == [
        "row 5 / attn (SCSA, residual)", "row 8 / attn (SCSA, residual)", "row 12 / attn (SCSA, residual)"]
    for entry in summary["gates"]:
        assert (out / entry["file"]).is_file()
        assert 0 <= entry["stats"]["spatial"]["min"] <= entry["stats"]["spatial"]["max"] <= 1
        assert 0 <= entry["stats"]["channel"]["min"] <= entry["stats"]["channel"]["max"] <= 1
    residual_notes = [e["stats"]["notes"] for e in summary["gates"] if e["key"].endswith("/attn")]
    assert len(residual_notes) == 3
    for notes in residual_notes:  # g was drawn from U(0.1, 0.3)
        mean = float(re.search(r"learned g has mean ([-+0-9.]+)", notes[0]).group(1))
        assert 0.1 < mean < 0.3
    assert {s["stage"] for s in summary["erf"]["models"]["yolov8n"]} == {"P3", "P4", "P5"}

    index = (out / "index.md").read_text()
    for text in ("## 1. Class activation maps", "## 2. Gates", "## 3. Effective receptive fields",
                 "cam/003-wide.png", "gates/yolov8n-scsa-block/row04-m.1.attn.png",
                 "row 4 / m.1.attn (SCSA, in bottleneck)", "erf/erf.png", "| yolov8n-scsa-backbone-res |"):
        assert text in index, text


def test_explain_with_names_layers_and_skip(images, tmp_path):
    out = tmp_path / "some"
    result = _run(["--model", "yolov8n", "--model", "yolov8n-cbam-neck", "--images", images / "wide.png",
                   "--out", out, "--imgsz", 64, "--device", "cpu", "--layers", "20", "--skip", "erf",
                   "--cam-images", 1])
    assert result.exit_code == 0, result.output
    assert "(random weights)" in result.output
    assert [p.relative_to(out).as_posix() for p in sorted(out.rglob("*.png"))] == [
        "cam/001-wide.png", "gates/yolov8n-cbam-neck/row20.png"]
    index = (out / "index.md").read_text()
    assert "**random**" in index and "Effective receptive fields" not in index


def test_cam_overlay_is_drawn_on_the_original_image_size(images):
    from scsa_yolo.explain.cam import cam_with_detections
    from scsa_yolo.explain.models import load_models

    (model,) = load_models(["yolov8n-scsa-block"], torch.device("cpu"))
    (image,) = load_images([images / "wide.png"], 64)
    assert image.letterboxed.shape == (64, 64, 3)
    cam = cam_with_detections(model, image, 64, 0.25, "cpu")
    assert cam.overlay.shape == (96, 128, 3) and cam.overlay.dtype == np.uint8
    assert cam.detections == len(cam.classes)
    assert not np.array_equal(cam.overlay, image.rgb)  # the heat map is blended in


# ---------------------------------------------------------------------------- bad input
def test_no_images_unreadable_image_and_missing_path_are_clear_errors(images, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    result = _run(["--model", "yolov8n", "--images", empty, "--out", tmp_path / "o"])
    assert result.exit_code == 2
    assert "no images found" in result.output and "jpg" in result.output and "png" in result.output

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"this is not a jpeg")
    result = _run(["--model", "yolov8n", "--images", broken, "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "cannot read 1 image(s)" in result.output and "a.jpg" in result.output

    result = _run(["--model", "yolov8n", "--images", tmp_path / "nowhere", "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "does not exist" in result.output

    result = _run(["--model", "yolov8n", "--images", empty / "notes.txt", "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "is not an image file" in result.output
    assert not (tmp_path / "o").exists()


def test_unknown_layer_and_model_are_clear_errors(images, tmp_path):
    result = _run(["--model", "yolov8n", "--model", "yolov8n-scsa-block", "--images", images, "--out",
                   tmp_path / "o", "--imgsz", 64, "--device", "cpu", "--layers", "4/m.7.attn"])
    assert result.exit_code == 2
    assert "'4/m.7.attn'" in result.output and "Valid choices" in result.output
    assert "yolov8n: (no attention layers)" in result.output
    assert "8/m.0.attn = row 8 / m.0.attn (SCSA, in bottleneck)" in result.output

    result = _run(["--model", "resnet50", "--images", images, "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "--model" in result.output and "does not start with a stock model" in result.output
    result = _run(["--model", tmp_path / "missing.pt", "--images", images, "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "not found" in result.output
