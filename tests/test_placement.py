"""Placements as built models, and pretrained checkpoints transferred into them.

Every attention of the committed set in every placement builds and runs; the residual
placements start as the plain model (a transferred plain checkpoint reproduces its outputs);
``block`` puts the attention between the two convolutions of every shortcut bottleneck and
keeps the plain names; bad rows get one message naming the row, the attention and the width.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from click.testing import CliRunner

import scsa_yolo.integration as integration
from scsa_yolo.identity import PLACEMENTS
from scsa_yolo.integration.specs import resolve_model
from scsa_yolo.integration.transfer import TransferError, build_target, save_checkpoint, transfer_checkpoint
from scsa_yolo.models.catalog import COMMITTED_ATTENTIONS
from scsa_yolo.nn.placement import AttendedBottleneck, ResidualAttention

integration.register()
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

from scsa_yolo.integration.ultralytics import YamlRowError  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SCSA_YOLO_", "ULTRALYTICS_SAFE"))}
ENV["YOLO_OFFLINE"] = "1"


def _plain_checkpoint(path, model="yolov8n", nc=3, seed=0):
    """A plain model with non-trivial BatchNorm statistics, saved in Ultralytics' format."""
    torch.manual_seed(seed)
    plain = build_target(f"{model}.yaml", nc)
    for module in plain.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    save_checkpoint(plain, path, f"{model}.yaml")
    return plain


def _output(model, x):
    with torch.no_grad():
        out = model.eval()(x)
    return out[0] if isinstance(out, (list, tuple)) else out


@pytest.fixture(scope="module")
def plain_v8(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "yolov8n-plain.pt"
    return path, _plain_checkpoint(path)


@pytest.mark.parametrize("attn", COMMITTED_ATTENTIONS)
@pytest.mark.parametrize("placement", ["backbone-res", "neck-res"])
def test_residual_placements_reproduce_the_plain_model_after_transfer(plain_v8, tmp_path, attn, placement):
    path, plain = plain_v8
    argument = resolve_model("yolov8n", attn, placement).argument
    report = transfer_checkpoint(path, argument, tmp_path / "out.pt")
    assert report.skipped == 0 and report.new > 0
    assert report.transferred == len(plain.state_dict())
    target = torch.load(tmp_path / "out.pt", map_location="cpu", weights_only=False)["model"]
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    assert (_output(target, x) - _output(plain, x)).abs().max() <= 1e-5
    assert report.output_difference["max_abs"] <= 1e-5


def test_block_placement_keeps_the_plain_names_and_adds_only_attention(plain_v8, tmp_path):
    path, plain = plain_v8
    argument = resolve_model("yolov8n", "scsa", "block").argument
    report = transfer_checkpoint(path, argument, tmp_path / "out.pt")
    target = torch.load(tmp_path / "out.pt", map_location="cpu", weights_only=False)["model"]
    plain_keys, target_keys = set(plain.state_dict()), set(target.state_dict())
    assert plain_keys <= target_keys
    extra = target_keys - plain_keys
    assert extra and all(".attn." in key for key in extra)
    assert report.new == len(extra) and report.skipped == 0
    attended = [m for m in target.modules() if isinstance(m, AttendedBottleneck)]
    assert len(attended) == 6  # YOLOv8n: 1 + 2 + 2 + 1 shortcut bottlenecks in rows 2, 4, 6, 8
    # the attention really sits between cv1 and cv2: its input is cv1's output
    seen = []
    hook = attended[0].attn.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape))
    _output(target, torch.rand(1, 3, 64, 64))
    hook.remove()
    assert seen and seen[0][1] == attended[0].cv1.conv.out_channels
    assert 0 < report.output_difference["relative"]  # not an identity start, and the report says how far


def test_transfer_refuses_another_base_and_reports_new_class_outputs(plain_v8, tmp_path):
    path, _ = plain_v8
    with pytest.raises(TransferError, match="not the target's base") as refused:
        transfer_checkpoint(path, resolve_model("yolo11n", "scsa", "block").argument, tmp_path / "x.pt")
    assert str(refused.value).startswith(f"{path} -> ")  # names the checkpoint: a grid may transfer several
    with pytest.raises(TransferError, match="scale 'n' and the target model scale 's'"):
        transfer_checkpoint(path, resolve_model("yolov8s", "se", "backbone").argument, tmp_path / "x.pt")
    report = transfer_checkpoint(path, resolve_model("yolov8n", "se", "backbone-res").argument, tmp_path / "y.pt", nc=5)
    detect = report.layers[-1]
    assert detect.module == "Detect" and detect.new == 6 and "class outputs" in " ".join(detect.reasons)
    assert "class outputs" in report.table()


def test_a_bare_state_dict_transfers_too(plain_v8, tmp_path):
    _, plain = plain_v8
    torch.save(plain.state_dict(), tmp_path / "state.pt")
    report = transfer_checkpoint(tmp_path / "state.pt", resolve_model("yolov8n", "eca", "neck-res").argument,
                                 tmp_path / "out.pt")
    assert report.transferred == len(plain.state_dict()) and report.skipped == 0
    target = torch.load(tmp_path / "out.pt", map_location="cpu", weights_only=False)["model"]
    x = torch.rand(1, 3, 64, 64)
    assert (_output(target, x) - _output(plain, x)).abs().max() <= 1e-5


def test_transfer_cli_prints_the_table_and_refuses_clearly(plain_v8, tmp_path):
    from scsa_yolo.cli.models import models

    path, _ = plain_v8
    runner = CliRunner()
    result = runner.invoke(models, ["transfer", "--weights", str(path), "--model", "yolov8n", "--attn", "scsa",
                                    "--placement", "backbone-res", "--out", str(tmp_path / "o.pt")])
    assert result.exit_code == 0, result.output
    assert "total: 355 tensors transferred, 54 new, 0 skipped" in result.output
    assert "max |diff| 0" in result.output
    assert "yolo train model=yolov8n-scsa-backbone-res.yaml pretrained=" in result.output
    result = runner.invoke(models, ["transfer", "--weights", str(path), "--model", "yolo11n-scsa-block",
                                    "--out", str(tmp_path / "o.pt")])
    assert result.exit_code == 1 and "Traceback" not in result.output and "not the target's base" in result.output


@pytest.fixture(scope="module")
def named_fp16_v8(tmp_path_factory):
    """A two-class YOLOv8n checkpoint as Ultralytics finishes a run: the EMA model with its
    class names and training arguments, stripped to fp16 by Ultralytics' own strip_optimizer."""
    import copy

    from ultralytics.utils.torch_utils import strip_optimizer

    path = tmp_path_factory.mktemp("named") / "fall-best.pt"
    torch.manual_seed(3)
    plain = build_target("yolov8n.yaml", 2)
    for module in plain.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    plain.names = {0: "Normal", 1: "Fall"}
    plain.args = {"task": "detect", "data": "fall.yaml", "imgsz": 96, "epochs": 3, "single_cls": False}
    torch.save({"epoch": 2, "model": None, "ema": copy.deepcopy(plain), "updates": 1, "optimizer": None,
                "train_args": dict(plain.args)}, path)
    strip_optimizer(path)
    return path, plain.half().float()


def test_transfer_keeps_class_names_training_arguments_and_precision(named_fp16_v8, plain_v8, tmp_path):
    """Issue 26, items 2 and 12: the written checkpoint labels classes as the source does,
    remembers what Ultralytics remembers of a checkpoint (image size, data, task), and is
    stored in the source's precision (fp16 from Ultralytics, fp32 from an fp32 file)."""
    from ultralytics import YOLO

    from scsa_yolo.cli.models import models

    path, plain = named_fp16_v8
    out = tmp_path / "fall-scsa.pt"
    result = CliRunner().invoke(models, ["transfer", "--weights", str(path), "--model", "yolov8n", "--attn", "scsa",
                                         "--placement", "backbone-res", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "class names: kept from the checkpoint (0: Normal, 1: Fall)" in result.output
    written = torch.load(out, map_location="cpu", weights_only=False)
    assert {p.dtype for p in written["model"].parameters()} == {torch.float16}
    assert out.stat().st_size < 1.2 * path.stat().st_size  # fp32 would be about twice the source
    assert written["train_args"] == {"task": "detect", "data": "fall.yaml", "imgsz": 96, "single_cls": False,
                                     "model": "yolov8n-scsa-backbone-res.yaml"}
    loaded = YOLO(str(out))
    assert loaded.names == {0: "Normal", 1: "Fall"}
    assert loaded.overrides["imgsz"] == 96 and loaded.overrides["data"] == "fall.yaml" and loaded.task == "detect"
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    assert (_output(loaded.model.float(), x) - _output(plain, x)).abs().max() <= 1e-4  # the plain model's predictions

    report = transfer_checkpoint(path, "yolov8n-se-neck-res.yaml", tmp_path / "three.pt", nc=3, compare=False)
    assert "class names: the checkpoint's 2 names do not fit 3 classes" in report.table()
    assert YOLO(str(tmp_path / "three.pt")).names == {0: "0", 1: "1", 2: "2"}

    fp32_source, _ = plain_v8
    transfer_checkpoint(fp32_source, "yolov8n-se-neck.yaml", tmp_path / "fp32.pt", compare=False)
    written = torch.load(tmp_path / "fp32.pt", map_location="cpu", weights_only=False)
    assert {p.dtype for p in written["model"].parameters()} == {torch.float32}


@pytest.mark.parametrize("attn", COMMITTED_ATTENTIONS)
@pytest.mark.parametrize("placement", list(PLACEMENTS))
@pytest.mark.parametrize("model", ["yolov8n", "yolo11n"])
def test_every_attention_builds_in_every_placement(model, attn, placement):
    built = DetectionModel(resolve_model(model, attn, placement).argument, nc=2, verbose=False).eval()
    out = _output(built, torch.rand(1, 3, 64, 64))
    assert torch.isfinite(out).all()
    form = PLACEMENTS[placement].form
    wrappers = [m for m in built.modules() if isinstance(m, (ResidualAttention, AttendedBottleneck))]
    assert len(wrappers) == {"series": 0, "residual": 3, "block": 6}[form]


def test_a_width_an_attention_cannot_take_names_row_attention_and_width(tmp_path):
    model = yaml.safe_load(open(resolve_model("yolov8n", "scsa", "backbone-res").argument
                                if os.path.isabs(resolve_model("yolov8n", "scsa", "backbone-res").argument) else
                                integration.ultralytics.resolve_model_yaml("yolov8-scsa-backbone-res.yaml")))
    model["backbone"][5] = [-1, 1, "ResAttn", ["SCSA", {"kernel_sizes": [3, 5, 7]}]]
    path = tmp_path / "yolov8n-bad.yaml"
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(YamlRowError, match=r"model YAML row 5 .*SCSA at width 64"):
        DetectionModel(str(path), verbose=False)
    model["backbone"][5] = [-1, 1, "ResAttn", ["NotAnAttention"]]
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(YamlRowError, match="row 5.*ResAttn needs an attention first"):
        DetectionModel(str(path), verbose=False)
    model["backbone"][5] = [-1, 1, "ResAttn", ["SE"]]
    model["backbone"][2] = [-1, 3, "BlockAttn", ["C2f", [128], "SE"]]  # C2f without shortcut
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(YamlRowError, match="row 2 .*no shortcut bottleneck to put SE in"):
        DetectionModel(str(path), verbose=False)


RELOAD = textwrap.dedent("""
    import torch
    from ultralytics import YOLO
    model = YOLO({path!r})
    x = torch.load({x!r})
    with torch.no_grad():
        out = model.model.float().eval()(x)
    out = out[0] if isinstance(out, (list, tuple)) else out
    print("max", float((out - torch.load({y!r})).abs().max()))
""")


@pytest.mark.slow
@pytest.mark.parametrize("placement", ["block", "neck-res"])
def test_checkpoints_reload_in_a_fresh_process_with_safe_load_and_export(plain_v8, tmp_path, placement):
    path, _ = plain_v8
    out = tmp_path / "model.pt"
    transfer_checkpoint(path, resolve_model("yolov8n", "scsa", placement).argument, out, compare=False)
    model = torch.load(out, map_location="cpu", weights_only=False)["model"]
    x = torch.rand(1, 3, 64, 64)
    torch.save(x, tmp_path / "x.pt")
    torch.save(_output(model, x), tmp_path / "y.pt")
    script = RELOAD.format(path=str(out), x=str(tmp_path / "x.pt"), y=str(tmp_path / "y.pt"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**ENV, "ULTRALYTICS_SAFE_LOAD": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.split("max")[-1]) <= 1e-4  # the same model; only float summation order may differ
    from ultralytics import YOLO

    onnx_path = YOLO(str(out)).export(format="onnx", imgsz=64, simplify=False, dynamic=False)
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})[:1]
    np.testing.assert_allclose(onnx_out, _output(model, x).numpy(), rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------- block-res (issue 30 item 2)
def _gated(model):
    return [m for m in model.modules() if isinstance(m, AttendedBottleneck)]


@pytest.mark.parametrize("attn", COMMITTED_ATTENTIONS)
def test_block_res_reproduces_the_plain_model_bit_for_bit_after_transfer(plain_v8, tmp_path, attn):
    path, plain = plain_v8
    report = transfer_checkpoint(path, resolve_model("yolov8n", attn, "block-res").argument, tmp_path / "out.pt")
    target = torch.load(tmp_path / "out.pt", map_location="cpu", weights_only=False)["model"]
    extra = set(target.state_dict()) - set(plain.state_dict())
    assert report.transferred == len(plain.state_dict()) and report.skipped == 0 and report.new == len(extra)
    assert all(".attn." in key or key.endswith(".gate") for key in extra)
    bottlenecks = _gated(target)
    assert len(bottlenecks) == 6  # the same slots as block: every shortcut bottleneck of rows 2, 4, 6, 8
    for bottleneck in bottlenecks:  # one gate per channel between the two convs, all 0
        gate = bottleneck.learned_gate
        assert gate is not None and gate.shape == (bottleneck.cv1.conv.out_channels,) and not gate.any()
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    assert torch.equal(_output(target, x), _output(plain, x))
    assert report.output_difference["max_abs"] == 0


@pytest.mark.parametrize("model", ["yolo11n", "yolo26n"])
def test_block_res_starts_as_the_plain_model_on_the_other_bases(tmp_path, model):
    plain = _plain_checkpoint(tmp_path / "plain.pt", model)
    transfer_checkpoint(tmp_path / "plain.pt", resolve_model(model, "scsa", "block-res").argument, tmp_path / "out.pt")
    target = torch.load(tmp_path / "out.pt", map_location="cpu", weights_only=False)["model"]
    assert _gated(target) and all(b.learned_gate is not None for b in _gated(target))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert torch.equal(_output(target, x), _output(plain, x))


def test_block_res_with_the_gate_at_one_is_the_block_placement(plain_v8, tmp_path):
    """h + g*(attn(h) - h) with g = 1 is attn(h): the block model with the same weights."""
    path, _ = plain_v8
    transfer_checkpoint(path, resolve_model("yolov8n", "se", "block-res").argument, tmp_path / "res.pt", compare=False)
    transfer_checkpoint(path, resolve_model("yolov8n", "se", "block").argument, tmp_path / "block.pt", compare=False)
    gated = torch.load(tmp_path / "res.pt", map_location="cpu", weights_only=False)["model"]
    block = torch.load(tmp_path / "block.pt", map_location="cpu", weights_only=False)["model"]
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in gated.named_parameters():  # an attention that does something
            if ".attn." in name:
                p.copy_(torch.randn_like(p) * 0.5)
        for bottleneck in _gated(gated):
            bottleneck.learned_gate.fill_(1.0)
    weights = {k: v for k, v in gated.state_dict().items() if not k.endswith(".gate")}
    block.load_state_dict(weights)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(_output(gated, x), _output(plain_v8[1], x))  # g = 1 really changes the model
    torch.testing.assert_close(_output(gated, x), _output(block, x), rtol=1e-4, atol=1e-4)


def test_a_block_checkpoint_pickled_before_gates_existed_still_runs_ungated():
    model = DetectionModel(resolve_model("yolov8n", "se", "block").argument, nc=2, verbose=False).eval()
    x = torch.rand(1, 3, 64, 64)
    before = _output(model, x)
    for bottleneck in _gated(model):
        del bottleneck._parameters["gate"]  # what an unpickled older AttendedBottleneck holds
        assert bottleneck.learned_gate is None
    assert torch.equal(_output(model, x), before)


def test_a_bad_block_res_row_names_the_row(tmp_path):
    model = yaml.safe_load(open(integration.ultralytics.resolve_model_yaml("yolov8-scsa-backbone-res.yaml")))
    model["backbone"][5] = [-1, 1, "ResAttn", ["SE"]]
    model["backbone"][2] = [-1, 3, "BlockResAttn", ["C2f", [128], "SE"]]  # C2f without shortcut
    path = tmp_path / "yolov8n-bad.yaml"
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(YamlRowError, match="row 2 .*no shortcut bottleneck to put SE in"):
        DetectionModel(str(path), verbose=False)
    model["backbone"][2] = [-1, 3, "BlockResAttn", ["C2f", [128, True], "NotAnAttention"]]
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(YamlRowError, match=r"row 2 .*BlockResAttn takes \[BLOCK, \[block args\], ATTENTION"):
        DetectionModel(str(path), verbose=False)
