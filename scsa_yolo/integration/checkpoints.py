"""Checkpoint files in: the one place that reads a ``.pt`` or says what is wrong with it.

Every command that takes a checkpoint goes through here: ``models transfer`` and
``train --pretrained`` / ``bench --pretrained`` read it with :func:`load_checkpoint`;
``train --model``, ``val``, ``profile`` and ``explain`` build their model with
:func:`load_yolo`. A missing, empty, truncated or foreign file, or one without a model in
it, is one :class:`CheckpointError` naming the file and the fix, never a traceback from
deep inside torch or Ultralytics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scsa_yolo.errors import ScsaYoloError

__all__ = ["CheckpointError", "load_checkpoint", "load_yolo", "model_in"]

_FIX = "re-download or re-export it, or pass another checkpoint"


class CheckpointError(ScsaYoloError, ValueError):
    """A checkpoint file that cannot be used; the message names the file and the fix."""


def model_in(checkpoint: Any) -> Any:
    """The model object of a loaded checkpoint (the EMA first, as Ultralytics takes it),
    or None when there is none (a bare state dict, some other pickle)."""
    import torch

    if isinstance(checkpoint, torch.nn.Module):
        return checkpoint
    if isinstance(checkpoint, dict):
        model = checkpoint.get("ema") or checkpoint.get("model")
        return model if isinstance(model, torch.nn.Module) else None
    return None


def _existing_file(weights: str | Path) -> Path:
    path = Path(weights).expanduser()
    if path.is_dir():
        raise CheckpointError(f"{weights} is a folder, not a checkpoint file (a run's weights are in "
                              f"{path / 'weights' / 'best.pt'})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {weights} not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is an empty file; {_FIX}")
    return path


def load_checkpoint(weights: str | Path, *, need_model: bool = True) -> Any:
    """What ``torch.load`` finds in ``weights`` (CPU tensors), with our layer classes known.

    Args:
        weights: a ``.pt`` file: an Ultralytics checkpoint (release or training format), a
            pickled model, or (with ``need_model=False``) a bare state dict.
        need_model: refuse a file without a model object in it (see :func:`model_in`).

    Raises:
        CheckpointError: the file is missing, empty, not a PyTorch checkpoint (damaged,
            truncated, another format) or, with ``need_model``, holds no model.
    """
    path = _existing_file(weights)
    import torch

    from scsa_yolo.integration import register

    register()  # a checkpoint of an attention model pickles our layer classes
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a zip cut short, bytes that are no pickle, a class that no longer exists ...
        raise CheckpointError(f"checkpoint {path} cannot be read: the file is damaged, truncated or not a PyTorch "
                              f"checkpoint ({type(error).__name__}: {error}); {_FIX}") from None
    if need_model and model_in(checkpoint) is None:
        kind = ("a bare state dict" if isinstance(checkpoint, dict) and checkpoint
                and all(isinstance(v, torch.Tensor) for v in checkpoint.values()) else type(checkpoint).__name__)
        raise CheckpointError(
            f"checkpoint {path} holds no model ({kind}); pass an Ultralytics checkpoint such as a run's best.pt, "
            f"or map a state dict into a model first: scsa-yolo models transfer --weights {path} --model ... --out ...")
    return checkpoint


def load_yolo(argument: str | Path, verbose: bool = False):
    """``ultralytics.YOLO(argument)`` with our layers registered.

    ``argument`` is what :func:`scsa_yolo.integration.specs.resolve_model` gives: a model
    YAML or suite name (built; a bad row raises
    :class:`~scsa_yolo.integration.ultralytics.YamlRowError` naming the file and the row)
    or a ``.pt`` file (loaded by Ultralytics).

    Raises:
        CheckpointError: a ``.pt`` that is missing, empty, damaged or holds no model.
    """
    from scsa_yolo.integration import register

    register()
    from ultralytics import YOLO

    text = str(argument)
    if not text.endswith(".pt"):
        return YOLO(text, verbose=verbose)
    path = _existing_file(text)  # also keeps Ultralytics from trying to download a missing name
    try:
        return YOLO(str(path), verbose=verbose)
    except Exception:
        # Ultralytics read the file once already; only when it failed is the file read again,
        # to tell a bad file (one clear error) from a real failure (raised as it is).
        load_checkpoint(path)
        raise
