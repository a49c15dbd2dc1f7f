"""Ultralytics model objects for the rest of the suite: a bare model of any task and the
installed version. A ``YOLO`` with our layers known (and a clear error for a bad checkpoint)
is :func:`scsa_yolo.integration.checkpoints.load_yolo`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["MODEL_CLASSES", "model_task", "task_model", "ultralytics_version"]

#: The ``ultralytics.nn.tasks`` class that builds a model of each task (Ultralytics' own task names).
MODEL_CLASSES = {"detect": "DetectionModel", "segment": "SegmentationModel", "classify": "ClassificationModel",
                 "pose": "PoseModel", "obb": "OBBModel"}


def model_task(model: Any) -> str:
    """Ultralytics' task (``detect``, ``segment``, ``classify``, ``pose``, ``obb``) of a model
    object, a model YAML dict or a model YAML name/path (our suite names resolve too)."""
    from scsa_yolo.integration import register

    register()
    from ultralytics.nn import tasks

    if isinstance(model, (str, Path)) and Path(str(model)).suffix in (".yaml", ".yml"):
        model = tasks.yaml_model_load(str(model))
    return tasks.guess_model_task(model)


def task_model(model_yaml: str | Path, nc: int | None = None, verbose: bool = False) -> Any:
    """The bare ``nn.Module`` Ultralytics builds from a model YAML of any task (a
    ``SegmentationModel`` for ``yolov8n-seg-scsa.yaml``, a ``ClassificationModel`` for
    ``yolo11n-cls.yaml``), random weights, our layers registered first.

    Args:
        model_yaml: a model YAML path or a name the YAML resolver knows.
        nc: class count (default: the YAML's).

    Raises:
        ModelArgumentError: a task this suite builds no model for (the message names it).
    """
    from ultralytics.nn import tasks

    from scsa_yolo.integration.specs import ModelArgumentError

    task = model_task(model_yaml)
    if task not in MODEL_CLASSES:
        raise ModelArgumentError(f"{model_yaml} is a {task!r} model; the suite builds {', '.join(MODEL_CLASSES)} "
                                 "models")
    return getattr(tasks, MODEL_CLASSES[task])(str(model_yaml), nc=nc, verbose=verbose)


def ultralytics_version() -> str:
    """The installed Ultralytics' version (``"8.4.7"``)."""
    import ultralytics

    return ultralytics.__version__
