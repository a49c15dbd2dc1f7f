"""Ultralytics integration: our attention layers as model-YAML rows, and model names.

Installed packages register automatically (``scsa_yolo-autoload.pth`` -> :mod:`scsa_yolo._autoload`
hooks the import of ``ultralytics.nn.tasks``). Call :func:`register` yourself only when
the autoload is disabled (``SCSA_YOLO_NO_AUTOLOAD=1``) or the package is on ``sys.path``
without being installed.

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
