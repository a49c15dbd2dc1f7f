"""Find the attention layers of a built YOLO model and name them by row and path.

Every layer is addressed the way a reader of the model YAML finds it: the row of
``model.model`` it sits in and its path inside that row, never a bare module index.

* series row ``[-1, 1, SCSA, []]`` at row 5: key ``5``, label ``row 5 (SCSA)``;
* residual row (``ResidualAttention``) at row 5: key ``5/attn``, label
  ``row 5 / attn (SCSA, residual)``;
* ``block`` placement, second bottleneck of the C2f at row 4: key ``4/m.1.attn``, label
  ``row 4 / m.1.attn (SCSA, in bottleneck)``; ``block-res``: the same key, label
  ``row 4 / m.1.attn (SCSA, in bottleneck, gated)``.

The PyTorch module name (``model.4.m.1.attn``) is kept as well, and ``--layers`` accepts
the key, the module name or the label.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from scsa_yolo.errors import ScsaYoloError

__all__ = ["AttentionLayer", "LayerSelectionError", "attention_classes", "find_attention_layers", "select_layers"]


class LayerSelectionError(ScsaYoloError, ValueError):
    """A ``--layers`` name that no model holds; the message lists the valid names."""

    usage = True
    option = "--layers"


def attention_classes() -> tuple[type[nn.Module], ...]:
    """Every layer class of the attention registry (SCSA, SE, ECA, ...)."""
    from scsa_yolo.nn.registry import attention_names, get_attention

    classes = {get_attention(name).cls for name in attention_names()} - {None}
    return tuple(sorted(classes, key=lambda cls: cls.__name__))


@dataclass(frozen=True)
class AttentionLayer:
    """One attention layer of a model.

    Attributes:
        row: index of the row in ``model.model`` (the YAML row).
        path: dotted path inside that row ('' when the row is the attention itself).
        module_name: full PyTorch name (``model.4.m.1.attn``).
        kind: class name of the attention (``SCSA``, ``SE``, ...).
        form: ``series``, ``residual`` (inside ``ResidualAttention``) or ``bottleneck``
            (inside ``AttendedBottleneck``, the block placement).
        module: the layer itself.
        residual_gate: the learned per-channel g (C,) of the residual form
            ``y = x + g * attn(x)`` or of the gated bottleneck ``h + g * (attn(h) - h)``
            (``block-res``); None for a layer without a gate.
    """

    row: int
    path: str
    module_name: str
    kind: str
    form: str
    module: nn.Module
    residual_gate: torch.Tensor | None = None

    @property
    def key(self) -> str:
        """``5``, ``5/attn``, ``4/m.1.attn``: what ``--layers`` takes."""
        return f"{self.row}/{self.path}" if self.path else str(self.row)

    @property
    def label(self) -> str:
        """``row 4 / m.1.attn (SCSA, in bottleneck)``."""
        where = f"row {self.row} / {self.path}" if self.path else f"row {self.row}"
        form = {"series": "", "residual": ", residual", "bottleneck": ", in bottleneck"}[self.form]
        gated = ", gated" if self.form == "bottleneck" and self.residual_gate is not None else ""
        return f"{where} ({self.kind}{form}{gated})"

    @property
    def slug(self) -> str:
        """File-name form of the key: ``row04-m.1.attn``."""
        return f"row{self.row:02d}" + (f"-{self.path}" if self.path else "")

    def matches(self, name: str) -> bool:
        text = name.strip()
        return text in (self.key, self.module_name, self.label, self.slug)


def find_attention_layers(detection_model: nn.Module) -> list[AttentionLayer]:
    """The attention layers of an Ultralytics model (``YOLO(...).model``), in row order.

    An attention nested in another attention (none today) is listed once, at the outer one.
    """
    from scsa_yolo.nn.placement import AttendedBottleneck, ResidualAttention

    classes = attention_classes()
    rows = getattr(detection_model, "model", None)
    if not isinstance(rows, nn.Sequential):
        raise TypeError(f"expected an Ultralytics model with rows in .model, got {type(detection_model).__name__}")
    layers: list[AttentionLayer] = []
    for index, row in enumerate(rows):
        parents = {"": None}
        taken: list[str] = []
        for path, module in row.named_modules():
            for name, child in module.named_children():
                parents[f"{path}.{name}" if path else name] = module
            if not isinstance(module, classes) or any(path.startswith(f"{t}.") or t == "" for t in taken):
                continue
            taken.append(path)
            parent = parents.get(path)
            if isinstance(parent, ResidualAttention):
                form, gate = "residual", parent.gate.detach().float().cpu().clone()
            elif isinstance(parent, AttendedBottleneck):
                learned = parent.learned_gate
                form, gate = "bottleneck", None if learned is None else learned.detach().float().cpu().clone()
            else:
                form, gate = "series", None
            full = f"model.{index}" + (f".{path}" if path else "")
            layers.append(AttentionLayer(index, path, full, type(module).__name__, form, module, gate))
    return layers


def select_layers(per_model: Sequence[tuple[str, Sequence[AttentionLayer]]],
                  requested: Iterable[str] | None) -> list[list[AttentionLayer]]:
    """The layers of each model that ``requested`` names (all of them when it is empty).

    Args:
        per_model: (model label, its layers) for every model.
        requested: keys, module names or labels; commas separate several in one string
            (a string that is a whole label is taken as it is).

    Raises:
        LayerSelectionError: a name that no model holds; the message lists every model's
            valid names.
    """
    every = [layer for _, layers in per_model for layer in layers]
    names: list[str] = []
    for item in requested or ():
        text = str(item).strip()
        if any(layer.matches(text) for layer in every):  # labels hold commas: "(SCSA, residual)"
            names.append(text)
        else:
            names += [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        return [list(layers) for _, layers in per_model]
    unknown = [n for n in names if not any(layer.matches(n) for layer in every)]
    if unknown:
        lines = []
        for label, layers in per_model:
            choices = ", ".join(f"{layer.key} = {layer.label}" for layer in layers) or "(no attention layers)"
            lines.append(f"  {label}: {choices}")
        raise LayerSelectionError(
            f"no model has the layer {', '.join(repr(n) for n in unknown)}. Name layers by row/path "
            f"(or the module name, e.g. model.4.m.0.attn). Valid choices:\n" + "\n".join(lines))
    return [[layer for layer in layers if any(layer.matches(n) for n in names)] for _, layers in per_model]
