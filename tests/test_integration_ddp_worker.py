"""Ultralytics' DDP launch path with an SCSA model, on CPU with one process.

Multi-GPU training makes Ultralytics pickle the trainer and its model into a temporary
file and start fresh interpreters with ``torch.distributed.run``. NCCL itself needs GPUs,
but the part that is ours -- a fresh worker unpickling a model full of scsa_yolo layers,
training it and saving a checkpoint -- runs here: the generated file is launched exactly as
Ultralytics does, with one process.
"""
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_generated_ddp_worker_trains_an_scsa_model(tmp_path):
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.dist import generate_ddp_command

    from test_data_common import prepare_synthetic
    from scsa_yolo.nn import SCSA

    data = prepare_synthetic(tmp_path / "datasets", num_train=16, num_val=8, imgsz=64)
    trainer = DetectionTrainer(
        overrides=dict(
            model="yolov8n-scsa.yaml", data=str(data), epochs=1, imgsz=64, batch=4, workers=0,
            device="cpu", plots=False, val=False, project=str(tmp_path / "runs"), name="ddp",
        )
    )
    # What Model.train() does before the DDP branch: the built model travels in the pickle.
    trainer.model = trainer.get_model(cfg="yolov8n-scsa.yaml", verbose=False)
    assert sum(isinstance(m, SCSA) for m in trainer.model.modules()) == 3
    trainer.world_size = 1  # one worker: a CPU cannot run NCCL ranks
    cmd, ddp_file = generate_ddp_command(trainer)
    try:
        env = {k: v for k, v in os.environ.items() if k not in {"LOCAL_RANK", "RANK", "WORLD_SIZE"}}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    finally:
        for leftover in (Path(ddp_file), Path(ddp_file).with_suffix(".pt")):
            leftover.unlink(missing_ok=True)
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, log
    weights = tmp_path / "runs" / "ddp" / "weights" / "last.pt"
    assert weights.is_file(), log
    # what the worker trained and saved is the SCSA model it unpickled
    import torch

    saved = torch.load(weights, map_location="cpu", weights_only=False)["model"]
    assert sum(isinstance(m, SCSA) for m in saved.modules()) == 3
