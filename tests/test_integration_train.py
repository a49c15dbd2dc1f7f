"""End to end with the stock ``yolo`` command: train, reload (also restricted), export ONNX.

The training run happens in a fresh interpreter started as the ``yolo`` console script, in
a folder outside the repository: the layers and ``yolov8n-scsa.yaml`` are found only
through the installed autoload hook.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_data_common import prepare_synthetic

pytestmark = pytest.mark.slow

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SCSA_YOLO_", "ULTRALYTICS_SAFE"))}
ENV["YOLO_OFFLINE"] = "1"
YOLO = Path(sys.executable).with_name("yolo")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("yolo-train")
    data = prepare_synthetic(work / "datasets", num_train=16, num_val=8, imgsz=64)
    command = [
        str(YOLO), "train", "model=yolov8n-scsa.yaml", f"data={data}", "epochs=1", "imgsz=64", "batch=4",
        "workers=0", "plots=False", "device=cpu", f"project={work / 'runs'}", "name=run", "exist_ok=True",
    ]
    out = subprocess.run(command, capture_output=True, text=True, cwd=work, env=ENV, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    best = work / "runs" / "run" / "weights" / "best.pt"
    assert best.is_file(), out.stdout[-2000:]
    return work, data, best


RELOAD = """
from ultralytics import YOLO
model = YOLO({best!r})
print("layers", sorted({{type(m).__name__ for m in model.model.modules() if type(m).__module__.startswith("scsa_yolo")}}))
metrics = model.val(data={data!r}, imgsz=64, batch=4, workers=0, plots=False, device="cpu", verbose=False)
print("map50", metrics.box.map50)
"""


@pytest.mark.parametrize("safe_load", ["0", "1"])
def test_best_pt_reloads_and_validates_in_a_fresh_process(trained, safe_load):
    work, data, best = trained
    out = subprocess.run(
        [sys.executable, "-c", RELOAD.format(best=str(best), data=str(data))],
        capture_output=True, text=True, cwd=work, env={**ENV, "ULTRALYTICS_SAFE_LOAD": safe_load}, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "layers ['ResidualAttention', 'SCSA']" in lines
    assert any(line.startswith("map50 ") for line in lines)


def test_restricted_load_really_needs_our_allow_list(trained):
    """Control: without registration, ULTRALYTICS_SAFE_LOAD refuses the checkpoint."""
    work, data, best = trained
    out = subprocess.run(
        [sys.executable, "-c", RELOAD.format(best=str(best), data=str(data))],
        capture_output=True, text=True, cwd=work, timeout=300,
        env={**ENV, "ULTRALYTICS_SAFE_LOAD": "1", "SCSA_YOLO_NO_AUTOLOAD": "1"},
    )
    assert out.returncode != 0
    assert "outside the supported Ultralytics checkpoint format" in out.stderr


def test_onnx_export_matches_pytorch(trained, tmp_path):
    import onnxruntime
    import torch
    from ultralytics import YOLO

    _, _, best = trained
    model = YOLO(str(best))
    onnx_path = Path(model.export(format="onnx", imgsz=64, device="cpu"))
    assert onnx_path.is_file()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: image})
    torch_model = YOLO(str(best)).model.float().eval()
    with torch.no_grad():
        torch_out = torch_model(torch.from_numpy(image))[0].numpy()
    assert onnx_out.shape == torch_out.shape
    assert np.allclose(onnx_out, torch_out, atol=1e-3, rtol=1e-3)


def test_stock_yolo_trains_a_generated_block_yaml(tmp_path):
    """Issue 13's 'done when': models make --placement block writes a YAML the stock command trains."""
    scsa_yolo = Path(sys.executable).with_name("scsa-yolo")
    made = subprocess.run([str(scsa_yolo), "models", "make", "--base", "yolov8", "--attn", "scsa", "--placement",
                           "block", "--out", str(tmp_path)], capture_output=True, text=True, env=ENV, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    yaml_path = tmp_path / "yolov8-scsa-block.yaml"
    data = prepare_synthetic(tmp_path / "datasets", num_train=8, num_val=4, imgsz=64)
    command = [
        str(YOLO), "train", f"model={yaml_path}", f"data={data}", "epochs=1", "imgsz=64", "batch=4", "workers=0",
        "plots=False", "device=cpu", f"project={tmp_path / 'runs'}", "name=block", "exist_ok=True",
    ]
    out = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "SCSA inside 1 bottleneck(s)" in out.stdout + out.stderr  # row 2 of YOLOv8n: one bottleneck
    assert (tmp_path / "runs" / "block" / "weights" / "last.pt").is_file()


@pytest.mark.parametrize("task, model", [("segment", "yolov8n-seg-scsa.yaml"), ("classify", "yolov8n-cls-scsa.yaml")])
def test_stock_yolo_trains_the_seg_and_cls_attention_models_from_any_folder(tmp_path, task, model):
    """Issue 29's 'done when': `yolo segment train model=yolov8n-seg-scsa.yaml data=<prepared
    synthetic>` (its polygons serve segmentation) and `yolo classify train
    model=yolov8n-cls-scsa.yaml data=<class folders>`, the stock command in a folder outside the repo."""
    from _task_data import write_cls_dataset
    from ultralytics import YOLO as load

    data = (prepare_synthetic(tmp_path / "datasets", num_train=8, num_val=4, imgsz=64) if task == "segment"
            else write_cls_dataset(tmp_path / "cls", n_train=2, n_val=1, size=32))
    command = [str(YOLO), task, "train", f"model={model}", f"data={data}", "epochs=1",
               f"imgsz={64 if task == 'segment' else 32}", "batch=4", "workers=0", "plots=False", "device=cpu",
               f"project={tmp_path / 'runs'}", "name=run", "exist_ok=True"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trained = load(str(tmp_path / "runs" / "run" / "weights" / "last.pt"))
    assert trained.task == task
    assert {"ResidualAttention", "SCSA"} <= {type(m).__name__ for m in trained.model.modules()}
