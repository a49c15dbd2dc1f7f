"""``scsa-yolo warmup`` and the shapes it warms (scsa_yolo.nn.scsa_warmup).

The shape lists are checked against Ultralytics itself: the rectangular batches its
validation dataset forms, and the letterboxed shapes its predictor makes. The command runs
once, in Triton's CPU interpreter, on a tiny size (no kernel is compiled there, but the
fused path runs and the variants it would compile are counted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scsa_yolo.child_process import cli_command, python_command
from scsa_yolo.nn.scsa_warmup import letterbox_shapes, rect_val_shapes

ROOT = Path(__file__).resolve().parents[1]
#: (height, width) of images of assorted aspect ratios
IMAGE_SIZES = [(48, 64), (64, 48), (20, 64), (64, 30), (64, 64), (40, 64), (64, 17), (33, 64)]


def test_rect_val_shapes_cover_the_batches_ultralytics_forms(tmp_path):
    import cv2
    from ultralytics.data.dataset import YOLODataset

    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for i, (h, w) in enumerate(IMAGE_SIZES):
        cv2.imwrite(str(images / f"{i}.jpg"), np.full((h, w, 3), 100, np.uint8))
        (labels / f"{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    for batch in (1, 3):
        dataset = YOLODataset(img_path=str(images), imgsz=64, augment=False, rect=True, batch_size=batch,
                              stride=32, pad=0.5, data={"names": {0: "a"}, "channels": 3})
        formed = {tuple(int(v) for v in s) for s in dataset.batch_shapes}
        assert formed <= set(rect_val_shapes(64, 32)), (formed, rect_val_shapes(64, 32))
    assert len(formed) > 1  # the sizes above do make several shapes
    # at 640: the long side is 672, the short one every multiple of 32 up to it
    assert sorted(rect_val_shapes(640))[:2] == [(32, 672), (64, 672)] and (672, 672) in rect_val_shapes(640)
    assert len(rect_val_shapes(640)) == 41


def test_letterbox_shapes_cover_what_the_predictor_makes():
    from ultralytics.data.augment import LetterBox

    letterbox = LetterBox(new_shape=(64, 64), auto=True, stride=32)
    made = {letterbox(image=np.zeros((h, w, 3), np.uint8)).shape[:2] for h, w in IMAGE_SIZES + [(480, 640), (2, 90)]}
    assert made <= set(letterbox_shapes(64, 32)), made


def test_warmup_help_does_not_import_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom scsa_yolo.cli.main import main\n"
            "result = CliRunner().invoke(main, ['warmup', '--help'])\n"
            "assert result.exit_code == 0 and 'TRITON_CACHE_DIR' in result.output, result.output\n"
            "sys.exit(int('torch' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def _warmup(tmp_path: Path, *args: str, command: list[str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, SCSA_YOLO_TRITON_INTERPRET="1", TRITON_CACHE_DIR=str(tmp_path / "triton"),
               YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(tmp_path / "yolo"))
    env.pop("SCSA_YOLO_IMPL", None)
    command = command or [sys.executable, "-m", "scsa_yolo.cli.main", "warmup"]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)


@pytest.mark.slow
def test_warmup_runs_the_training_and_validation_shapes(tmp_path):
    proc = _warmup(tmp_path, "--model", "yolov8n-scsa.yaml", "--imgsz", "64", "--batch", "1", "--device", "cpu",
                   "--no-rect", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "3 SCSA layer(s), 3 on the fused path" in out, out
    assert "training step (forward + backward): 1 shape(s)" in out, out
    assert "validation: 1 shape(s)" in out, out
    # what the final validation runs besides its batches (an H100 run still compiled 58 kernels without them)
    assert "validator warm-up (one image): 1 shape(s)" in out, out
    assert "FLOPs count (model.info): 1 shape(s)" in out, out
    variants = int(out.split("kernel variants launched: ")[1].split()[0])
    assert variants >= 10  # the five forward and five backward kernels, at least once each


def test_warmup_of_a_model_without_scsa_says_so(tmp_path):
    proc = _warmup(tmp_path, "--model", "yolov8n.yaml", "--imgsz", "64", "--batch", "1", "--device", "cpu",
                   "--jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "yolov8n.yaml: no SCSA layers, nothing to warm" in proc.stdout


def test_warmup_shards_start_from_a_folder_holding_a_source_checkout(tmp_path):
    """Run from a checkout's root with a regular install (as on a GPU machine), the current
    folder's scsa_yolo/ has no cli package; the shard processes must import the installation
    the command itself imported, or every shard fails (session 12's first GPU warm-up did)."""
    (tmp_path / "scsa_yolo").mkdir()
    (tmp_path / "scsa_yolo" / "__init__.py").write_text("")
    proc = _warmup(tmp_path, "--model", "yolov8n.yaml", "--imgsz", "64", "--batch", "1", "--device", "cpu",
                   "--jobs", "1", command=cli_command("warmup"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "yolov8n.yaml: no SCSA layers, nothing to warm" in proc.stdout


def test_warmup_without_a_gpu_is_one_clear_error(tmp_path):
    env_free = {k: v for k, v in os.environ.items() if k not in ("SCSA_YOLO_TRITON_INTERPRET", "TRITON_INTERPRET")}
    proc = subprocess.run([sys.executable, "-m", "scsa_yolo.cli.main", "warmup", "--model", "yolov8n-scsa.yaml",
                           "--device", "cpu", "--jobs", "1"], capture_output=True, text=True,
                          env=dict(env_free, YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(tmp_path / "yolo")), cwd=tmp_path,
                          timeout=300)
    assert proc.returncode != 0
    assert "needs a CUDA device" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_child_processes_do_not_import_from_the_current_folder(tmp_path):
    """The boot line of warm-up shards and bench workers: a module in the current folder
    must not shadow an installed one (a checkout's scsa_yolo/ lacks cli and cfg)."""
    (tmp_path / "json.py").write_text("raise SystemExit('imported the current folder')\n")
    proc = subprocess.run(python_command("import json; print(json.dumps(sys.argv[1:]))", "a", "b"),
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '["a", "b"]'


def test_validation_passes_cover_both_weight_dtypes_ultralytics_validates_with_under_amp():
    """Ultralytics 8.4 validates during training with fp16 images under autocast and the EMA's
    float32 weights; the final validation (best.pt through AutoBackend) runs fp16 weights. The
    kernels are compiled per weight dtype, so a warm-up of one left the other to the job (an
    H100 run met 67 cold variants after the warm-up)."""
    import torch
    from ultralytics.engine import validator

    from scsa_yolo.nn.scsa_warmup import validation_passes

    amp = {(p.weights, p.images, p.autocast) for p in validation_passes(True)}
    assert amp == {(torch.float32, torch.float16, True), (torch.float16, torch.float16, False)}
    assert [(p.weights, p.images, p.autocast) for p in validation_passes(False)] == [
        (torch.float32, torch.float32, False)]
    # the installed Ultralytics still keeps float32 weights under autocast during training validation
    source = Path(validator.__file__).read_text()
    assert "model = model.float()" in source and "autocast(self.training" in source


def test_the_final_validation_still_runs_the_forwards_the_warm_up_adds_for_it():
    """Besides its batches, the final validation (best.pt through AutoBackend) runs a one-image
    warm-up at imgsz and Ultralytics' FLOPs count (model.info on fusing); ``scsa-yolo warmup``
    runs both. Checked here against the installed Ultralytics, and the FLOPs count through
    our hook runs real forwards of the model on small images."""
    import torch
    from ultralytics.engine import validator
    from ultralytics.nn.backends import pytorch as pytorch_backend
    from ultralytics.utils import torch_utils

    from scsa_yolo.integration.validation import count_flops

    source = Path(validator.__file__).read_text()
    assert "model.warmup(" in source and "imgsz=(1 if pt else" in source
    assert "model.fuse(verbose=self.verbose)" in Path(pytorch_backend.__file__).read_text()  # -> info -> FLOPs
    assert "flops = get_flops(model, imgsz)" in Path(torch_utils.__file__).read_text()
    seen = []
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.SiLU())
    net.stride = torch.tensor([32.0])
    net[0].register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    assert count_flops(net, 64) > 0 and seen and all(s[0] == 1 and s[2] <= 64 for s in seen), seen


def test_the_trainer_channels_last_rule_and_the_warm_up_runs_that_layout(tmp_path):
    """Ultralytics 8.4 trains in channels-last memory on a GPU unless told not to (and its EMA,
    so validation during training, too); the kernels are compiled per input layout, so a
    contiguous-only warm-up left 41 kernels to an H200 job. With channels_last the warm-up's
    training step and validation during training feed channels-last maps (the kernels' XU = 1:
    channels have unit stride) and the final validation contiguous ones (XU = 3)."""
    import torch
    from ultralytics.engine import trainer
    from ultralytics.utils import WINDOWS

    from scsa_yolo.integration.training import trains_channels_last
    from scsa_yolo.nn.scsa_warmup import validation_passes

    source = Path(trainer.__file__).read_text()
    assert "self.args.channels_last is None and TORCH_1_11 and not WINDOWS" in source
    assert "self.model = self.model.to(memory_format=torch.channels_last)" in source
    assert trains_channels_last("cuda") is (not WINDOWS) and trains_channels_last("cuda", True) is True
    assert trains_channels_last("cuda", False) is False and trains_channels_last("cpu", True) is False
    assert [p.channels_last for p in validation_passes(True, channels_last=True)] == [True, False]
    assert [p.channels_last for p in validation_passes(False, channels_last=True)] == [True, False]
    assert validation_passes(True) == validation_passes(True, channels_last=False)

    code = (
        "import json\n"
        "from ultralytics import YOLO\n"
        "from scsa_yolo.integration import register\n"
        "from scsa_yolo.nn import scsa_fast\n"
        "from scsa_yolo.nn.scsa_warmup import warm_up\n"
        "register()\n"
        "warm_up(YOLO('yolov8n-scsa.yaml').model, imgsz=64, batch=1, device='cpu', amp=False, rect=False,\n"
        "        channels_last=True)\n"
        "print(json.dumps(sorted({(name, dict(consts).get('XU')) for name, _, consts in scsa_fast._launch.variants\n"
        "                          if 'XU' in dict(consts)})))\n")
    env = dict(os.environ, SCSA_YOLO_TRITON_INTERPRET="1", TRITON_CACHE_DIR=str(tmp_path / "triton"),
               YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(tmp_path / "yolo"))
    env.pop("SCSA_YOLO_IMPL", None)
    done = subprocess.run(python_command(code), capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    layouts = {tuple(pair) for pair in json.loads(done.stdout.strip().splitlines()[-1])}
    for kernel in ("fwd_reduce_kernel", "fwd_apply_kernel"):
        assert {(kernel, 1), (kernel, 3)} <= layouts, layouts  # channels-last and contiguous maps
    assert any(name.startswith("bwd_") and xu == 1 for name, xu in layouts), layouts  # the channels-last step
