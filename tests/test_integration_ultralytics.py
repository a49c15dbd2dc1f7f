"""One test (at least) per Ultralytics touch point of scsa_yolo.integration.ultralytics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import scsa_yolo.integration as integration
from scsa_yolo.integration import ultralytics as integ
from scsa_yolo.nn import CBAM, SCSA, SE

integration.register()
from ultralytics.nn import tasks  # noqa: E402  (after register: the autoload may be disabled)
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

ENV = {**os.environ, "YOLO_OFFLINE": "1"}


def _model(rows_head_extra, scale="n", backbone_extra=None):
    """A small detection YAML dict: 4 backbone convs + optional rows, a P4/P5 Detect."""
    backbone = [
        [-1, 1, "Conv", [64, 3, 2]],
        [-1, 1, "Conv", [128, 3, 2]],
        [-1, 1, "Conv", [256, 3, 2]],
        [-1, 1, "Conv", [512, 3, 2]],
    ] + list(backbone_extra or [])
    head = list(rows_head_extra) + [[-1, 1, "Conv", [256, 3, 2]], [[-2, -1], 1, "Detect", ["nc"]]]
    return {"nc": 3, "scales": {"n": [0.33, 0.25, 1024], "s": [0.33, 0.5, 1024]}, "scale": scale,
            "backbone": backbone, "head": head}


def _layers(model, cls):
    return [m for m in model.modules() if isinstance(m, cls)]


# -- touch point 1: names in tasks' namespace -----------------------------------------------
def test_builders_are_installed_for_every_registry_module():
    for name, cls in integ.layer_classes().items():
        builder = vars(tasks)[name]
        assert isinstance(builder, type) and issubclass(builder, torch.nn.Module)
        assert builder.scsa_yolo_layer is cls
    assert set(integ.layer_classes()) >= {"SCSA", "SE", "ECA", "CA", "FCA", "CBAM"}


def test_a_name_ultralytics_defines_is_never_overwritten():
    import types

    fake_tasks = types.ModuleType("fake_tasks")
    fake_tasks.SE = object()
    with pytest.raises(RuntimeError, match="already defines SE"):
        integ.install_builders(fake_tasks, {"SE": SE})
    assert isinstance(fake_tasks.SE, object) and not isinstance(fake_tasks.SE, type)


def test_builder_outside_parse_model_says_how_to_build_directly():
    with pytest.raises(TypeError, match=r"scsa_yolo\.nn\.scsa\.SCSA\(channels"):
        tasks.SCSA(64)


# -- touch point 2: channel inference from the parse_model frame ----------------------------
@pytest.mark.parametrize("scale, expected", [("n", 128), ("s", 256)])
def test_channels_are_inferred_at_every_scale(scale, expected):
    model = DetectionModel(_model([[-1, 1, "SCSA", []]], scale=scale), verbose=False)
    (layer,) = _layers(model, SCSA)
    assert layer.channels == expected  # 512 * width, the block before it
    assert type(model.model[4]) is SCSA and model.model[4].i == 4
    assert model.eval()(torch.zeros(1, 3, 64, 64))[0].shape[1] == 4 + 3


def test_positional_and_keyword_args_reach_the_layer():
    rows = [[-1, 1, "SCSA", [[3, 7], 5, {"use_pcsa": False}]], [-1, 6, "CBAM", [8, {"spatial_kernel": 3}]]]
    model = DetectionModel(_model(rows), verbose=False)
    (scsa,) = _layers(model, SCSA)
    assert scsa.kernel_sizes == (3, 7) and scsa.window == 5 and scsa.use_pcsa is False
    cbams = _layers(model, CBAM)
    assert len(cbams) == 2  # repeats 6 x depth 0.33 -> nn.Sequential of two layers
    assert all(c.spatial.kernel_size == (3, 3) and c.fc1.out_channels == 128 // 8 for c in cbams)
    assert isinstance(model.model[5], torch.nn.Sequential)


def test_wrong_argument_names_the_yaml_row():
    with pytest.raises(integ.YamlRowError, match=r"model YAML row 4 \[-1, 1, SCSA, \[\{'bogus': 1\}\]\]: .*bogus"):
        DetectionModel(_model([[-1, 1, "SCSA", [{"bogus": 1}]]]), verbose=False)
    with pytest.raises(integ.YamlRowError, match=r"model YAML row 4 .*kernel size must be a positive odd int"):
        DetectionModel(_model([[-1, 1, "SCSA", [[4]]]]), verbose=False)
    # Ultralytics would index ch[[-1, -2]] before calling us: the parse_model wrapper checks first
    with pytest.raises(integ.YamlRowError, match=r"row 4 \[\[-1, -2\], 1, SE, \[\]\]: SE takes one input"):
        DetectionModel(_model([[[-1, -2], 1, "SE", []]]), verbose=False)
    import ultralytics.nn as unn

    assert unn.parse_model is tasks.parse_model


# -- touch point 3: model YAML names ---------------------------------------------------------
def test_our_yaml_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tasks.yaml_model_load("yolov8n-scsa.yaml")
    assert d["scale"] == "n" and d["yaml_file"] == "yolov8n-scsa.yaml"
    # no placement in the name: the default one (backbone-res)
    assert [row[3] for row in d["backbone"] if row[2] == "ResAttn"] == [["SCSA"]] * 3
    d = tasks.yaml_model_load("yolov8s-scsa-block.yaml")
    assert d["scale"] == "s" and sum(row[2] == "BlockAttn" for row in d["backbone"]) == 4
    d = tasks.yaml_model_load("yolo11x-cbam-neck.yaml")
    assert d["scale"] == "x" and sum(row[2] == "CBAM" for row in d["head"]) == 3
    # the modules that imported yaml_model_load see the wrapper too
    import ultralytics.engine.model as engine_model
    import ultralytics.nn as unn

    assert engine_model.yaml_model_load is tasks.yaml_model_load is unn.yaml_model_load


def test_a_local_file_wins_and_unknown_names_fail_as_before(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "yolov8n-scsa.yaml"
    local.write_text(textwrap.dedent("""\
        nc: 2
        backbone: [[-1, 1, Conv, [16, 3, 2]]]
        head: [[[0], 1, Detect, [nc]]]
    """))
    assert tasks.yaml_model_load("yolov8n-scsa.yaml")["nc"] == 2
    assert integ.resolve_model_yaml("yolov8n-scsa.yaml") is None
    with pytest.raises(FileNotFoundError):
        tasks.yaml_model_load("yolov8n-nosuchattention.yaml")
    assert tasks.yaml_model_load("yolov8s.yaml")["scale"] == "s"  # stock names untouched


# -- touch point 4: restricted loading --------------------------------------------------------
def test_layer_classes_are_allowed_for_weights_only_loading():
    allowed = set(torch.serialization.get_safe_globals())
    for cls in integ.layer_classes().values():
        assert cls in allowed


# -- version range ---------------------------------------------------------------------------
def test_version_check():
    assert integ.parse_version("8.4.190") == (8, 4, 190)
    assert integ.parse_version("8.5.0rc1") == (8, 5, 0)
    integ.check_version("8.4.0")
    integ.check_version("8.4.190")
    for bad in ("8.3.99", "8.5.0", "9.0"):
        with pytest.raises(integ.UnsupportedUltralyticsError, match=r"supports ultralytics>=8.4,<8.5.*pip install"):
            integ.check_version(bad)


def test_unsupported_ultralytics_gives_a_clear_error_only_when_our_names_are_used(tmp_path):
    code = textwrap.dedent("""
        import ultralytics
        ultralytics.__version__ = "8.5.0"
        from ultralytics import YOLO
        YOLO("yolov8n.yaml")  # stock models keep working
        for name in ("yolov8n-scsa.yaml",):
            try:
                YOLO(name)
            except Exception as error:
                print(type(error).__name__, error)
        from ultralytics.nn import tasks
        for row in ([-1, 1, "SE", []], [-1, 1, "BlockAttn", ["C2f", [8, True], "SE"]]):
            try:
                tasks.parse_model({"nc": 1, "backbone": [[-1, 1, "Conv", [8, 3, 2]], row],
                                   "head": [[[1], 1, "Detect", ["nc"]]]}, 3, verbose=False)
            except Exception as error:
                print(type(error).__name__, error)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [l for l in out.stdout.splitlines() if l.startswith("UnsupportedUltralyticsError")]
    assert len(lines) == 3, out.stdout  # the YAML name, an attention row, a block row
    assert all("ultralytics 8.5.0 is installed" in l and "pip install 'ultralytics>=8.4,<8.5'" in l for l in lines)


# -- model_spec -------------------------------------------------------------------------------
def test_model_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("SCSA_YOLO_CACHE", str(tmp_path / "cache"))
    assert integration.model_spec("yolov8n", "none") == "yolov8n.yaml"
    assert integration.model_spec("yolov8n") == "yolov8n-scsa-backbone-res.yaml"
    assert integration.model_spec("yolo11s.yaml", "CBAM", "neck") == "yolo11s-cbam-neck.yaml"
    ablation = integration.model_spec("yolo11m", "scsa-no-pcsa", "backbone")
    assert ablation == str(tmp_path / "cache" / "models" / "yolo11m-scsa-no-pcsa-backbone.yaml")
    d = tasks.yaml_model_load(ablation)
    assert d["scale"] == "m"
    assert [r[3] for r in d["backbone"] if r[2] == "SCSA"] == [[{"use_pcsa": False}]] * 3
    # a YAML that already holds attention rows is never given a second set
    with pytest.raises(ValueError, match="already holds attention rows"):
        integration.model_spec(ablation, "se", "neck")
    plain = tmp_path / "mine.yaml"
    plain.write_text(Path(tasks.__file__).parent.parent.joinpath("cfg/models/11/yolo11.yaml").read_text())
    assert integration.model_spec(str(plain), "se", "neck").endswith("mine-se-neck.yaml")
    with pytest.raises(ValueError, match="unknown attention"):
        integration.model_spec("yolov8n", "nope")
    with pytest.raises(ValueError, match="does not start with a stock model"):
        integration.model_spec("resnet50", "scsa")
    with pytest.raises(ValueError, match="unknown placement"):
        integration.model_spec("yolov8n", "scsa", "head")


def test_touch_point_5_pil_image_open_is_pillows_own_not_the_ultralytics_wrapper():
    import PIL.Image
    import ultralytics.utils.patches as patches

    from scsa_yolo.integration.ultralytics import pil_image_open

    assert PIL.Image.open is not patches._image_open, "ultralytics no longer wraps PIL.Image.open"
    assert pil_image_open() is patches._image_open
    assert pil_image_open().__module__ == "PIL.Image"
