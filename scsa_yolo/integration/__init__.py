"""Ultralytics integration: our attention layers as model-YAML rows, and model names.

Every part of scsa-yolo that builds or loads a model calls :func:`register` itself first
(train, val/eval, the bench worker, profile, explain), so none depends on how the process
started. For everything else -- the stock ``yolo`` command, user code, the DDP workers
Ultralytics spawns -- an installed package also registers on the import of
``ultralytics.nn.tasks`` (``scsa_yolo-autoload.pth`` -> :mod:`scsa_yolo._autoload`); with
the autoload disabled (``SCSA_YOLO_NO_AUTOLOAD=1``) or the package on ``sys.path`` without
being installed, call :func:`register` yourself.

* :func:`register` -- make ``SCSA``, ``SE``, ... usable in any Ultralytics model YAML.
* :func:`model_spec` -- the ``YOLO(...)`` argument for (model, attention, placement).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["model_spec", "register"]


def register(tasks: ModuleType | None = None) -> None:
    """Register the attention layers with Ultralytics (idempotent; imports ultralytics)."""
    from . import ultralytics as _ultralytics

    _ultralytics.register(tasks)


def model_spec(model: str = "yolov8n", attn: str = "scsa", placement: str | None = None) -> str:
    """See :func:`scsa_yolo.integration.specs.model_spec`."""
    from .specs import model_spec as _model_spec

    return _model_spec(model, attn, placement)
