"""Load the models to compare and give each a readable, unique label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from scsa_yolo.identity import ModelId

from .layers import AttentionLayer, find_attention_layers

__all__ = ["ExplainModel", "load_models"]


@dataclass
class ExplainModel:
    """One model of the comparison.

    Attributes:
        given: the ``--model`` argument as typed.
        argument: what was passed to ``YOLO(...)``.
        label: readable unique name (``yolov8n-scsa-block``, the checkpoint's model).
        yolo: the ``ultralytics.YOLO`` object.
        trained: False for a model built from a YAML or name (random weights).
        layers: its attention layers (see :mod:`~scsa_yolo.explain.layers`).
    """

    given: str
    argument: str
    label: str
    yolo: object
    trained: bool
    layers: list[AttentionLayer]

    @property
    def net(self) -> nn.Module:
        """The PyTorch detection model."""
        return self.yolo.model

    @property
    def slug(self) -> str:
        return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.label)


def _label(given: str, argument: str, yolo) -> str:
    """The suite name of the model where it can be told, else the file stem."""
    ckpt = getattr(yolo, "ckpt", None) or {}
    source = (ckpt.get("train_args") or {}).get("model") if isinstance(ckpt, dict) else None
    for candidate in (source, argument, given):
        if candidate:
            model_id = ModelId.try_parse(Path(str(candidate)).name)
            if model_id is not None:
                return model_id.name
    return Path(given).stem


def load_models(models: Sequence[str], device: torch.device) -> list[ExplainModel]:
    """Resolve every ``--model`` the way ``scsa-yolo train`` does and build it.

    A ``.pt`` is loaded as it is; a suite name (``yolov8n-scsa-block``) or YAML builds a
    model with random weights. Labels that would repeat get ``#2``, ``#3``.

    Raises:
        scsa_yolo.integration.specs.ModelArgumentError: a model argument that cannot be
            resolved (the message says why).
    """
    from scsa_yolo.integration.specs import resolve_model
    from scsa_yolo.integration.yolo import load_yolo

    loaded: list[ExplainModel] = []
    seen: dict[str, int] = {}
    for given in models:
        resolved = resolve_model(given, attn=None, placement=None)
        yolo = load_yolo(resolved.argument, verbose=False)
        yolo.model.to(device).eval()
        label = _label(given, resolved.argument, yolo)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label}#{seen[label]}"
        trained = resolved.kind == "weights"
        loaded.append(ExplainModel(given, resolved.argument, label, yolo, trained, find_attention_layers(yolo.model)))
    return loaded
