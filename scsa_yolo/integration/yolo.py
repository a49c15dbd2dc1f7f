"""Ultralytics model objects for the rest of the suite: a bare model of any task and the
installed version. A ``YOLO`` with our layers known (and a clear error for a bad checkpoint)
is :func:`scsa_yolo.integration.checkpoints.load_yolo`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["task_model", "ultralytics_version"]


def task_model(model_yaml: str | Path, verbose: bool = False) -> torch.nn.Module:
    """The bare ``nn.Module`` Ultralytics builds from a model YAML or suite name (random
    weights): a ``DetectionModel``, ``SegmentationModel``, ``ClassificationModel``, ... as
    the YAML's head says, our layers registered first."""
    from scsa_yolo.integration.checkpoints import load_yolo

    return load_yolo(model_yaml, verbose=verbose).model


def ultralytics_version() -> str:
    """The installed Ultralytics' version (``"8.4.7"``)."""
    import ultralytics

    return ultralytics.__version__
