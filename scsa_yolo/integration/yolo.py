"""Ultralytics model objects for the rest of the suite: a ``YOLO`` with our layers known,
a bare detection model, and the installed version.

Every caller goes through :func:`load_yolo`, so no module outside :mod:`scsa_yolo.integration`
imports ``ultralytics`` and every model is built after :func:`register` ran (our YAML rows
and our layer classes in a checkpoint resolve only then).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

__all__ = ["detection_model", "load_yolo", "ultralytics_version"]


def load_yolo(argument: str | Path, **kwargs: Any) -> YOLO:
    """``ultralytics.YOLO(argument, **kwargs)`` after registering our layers.

    Args:
        argument: a checkpoint (``.pt``), a model YAML or one of our model names.
        kwargs: passed on (e.g. ``verbose=False``).
    """
    from ultralytics import YOLO

    from scsa_yolo.integration import register

    register()
    return YOLO(str(argument), **kwargs)


def detection_model(model_yaml: str | Path, verbose: bool = False) -> DetectionModel:
    """The bare ``nn.Module`` Ultralytics builds from a model YAML (random weights), our
    layers registered first."""
    from scsa_yolo.integration import register

    register()
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel(str(model_yaml), verbose=verbose)


def ultralytics_version() -> str:
    """The installed Ultralytics' version (``"8.4.7"``)."""
    import ultralytics

    return ultralytics.__version__
