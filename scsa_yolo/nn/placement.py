"""Wrappers that put an attention somewhere other than in series on the trunk.

* :class:`ResidualAttention` -- y = x + g * attn(x) with a learnable per-channel g that
  starts at 0, so a model built with it computes exactly what the plain model computes
  until training moves g (the placements ``backbone-res`` and ``neck-res``). Ultralytics'
  own attention blocks (PSA, C2PSA) are residual for the same reason.
* :class:`AttendedBottleneck` -- a shortcut bottleneck with the attention inside its
  residual branch, between the two convolutions (the placement ``block``; the SCSA
  paper's official ResNet code puts SCSA at this point of every block). It keeps the
  bottleneck's own ``cv1``/``cv2`` modules, so its state dict is the plain bottleneck's
  plus ``attn.*``: plain weights load into it by name. Gated (the placement
  ``block-res``), the attended map is h + g * (attn(h) - h) with g per channel starting
  at 0: the same slot, but the bottleneck starts out computing exactly what the plain one
  does, so a transferred plain checkpoint reproduces the plain model's outputs.

Neither imports ultralytics: the bottleneck is taken apart by attribute (``cv1``,
``cv2``, ``add``), which is all Ultralytics' ``Bottleneck`` has.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AttendedBottleneck", "ResidualAttention"]


class ResidualAttention(nn.Module):
    """y = x + g * attn(x); (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        attn: the attention layer for C channels.

    Parameters: the attention's plus C (the gate g, initialised to 0).
    """

    def __init__(self, channels: int, attn: nn.Module) -> None:
        super().__init__()
        self.attn = attn
        self.gate = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded = _fused_blend(self.attn, x, self.gate, "residual")
        if folded is not None:
            return folded
        return x + self.gate.view(1, -1, 1, 1).to(x.dtype) * self.attn(x)


class AttendedBottleneck(nn.Module):
    """A bottleneck ``x (+) cv2(a(cv1(x)))``; (B, C1, H, W) -> (B, C2, H, W).

    a(h) = attn(h), or gated a(h) = h + g * (attn(h) - h) with g (Ch,) starting at 0.

    Args:
        cv1: the bottleneck's first convolution block, (B, C1, H, W) -> (B, Ch, H, W).
        attn: the attention for Ch channels.
        cv2: the second convolution block, (B, Ch, H, W) -> (B, C2, H, W).
        add: whether the input is added back (the bottleneck's shortcut).
        gated: use the gated form (parameters: the attention's plus Ch).
    """

    def __init__(self, cv1: nn.Module, attn: nn.Module, cv2: nn.Module, add: bool, gated: bool = False) -> None:
        super().__init__()
        self.cv1 = cv1
        self.attn = attn
        self.cv2 = cv2
        self.add = bool(add)
        # registered even when absent, and read through _parameters: a checkpoint pickled
        # before the gated form existed has no "gate" entry and still runs ungated
        self.register_parameter("gate", nn.Parameter(torch.zeros(_out_channels(cv1))) if gated else None)

    @classmethod
    def wrap(cls, bottleneck: nn.Module, attn: nn.Module, gated: bool = False) -> "AttendedBottleneck":
        """The same bottleneck (its own conv modules, not copies) with ``attn`` inside."""
        return cls(bottleneck.cv1, attn, bottleneck.cv2, bottleneck.add, gated)

    @property
    def learned_gate(self) -> torch.Tensor | None:
        """The gate g (Ch,) of the gated form; None when ungated."""
        return self._parameters.get("gate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.cv1(x)
        gate = self.learned_gate
        if gate is None:
            h = self.attn(h)
        else:  # g = 0 adds an exact zero: the plain bottleneck, bit for bit
            folded = _fused_blend(self.attn, h, gate, "gated")
            h = folded if folded is not None else h + gate.view(1, -1, 1, 1).to(h.dtype) * (self.attn(h) - h)
        y = self.cv2(h)
        return x + y if self.add else y


def _fused_blend(attn: nn.Module, x: torch.Tensor, gate: torch.Tensor, mode: str) -> torch.Tensor | None:
    """The residual expression computed inside the attention's fused kernel, for attentions
    that offer it (``fused_blend``: SCSA's output pass stores x + g * attn(x) itself, at
    inference), else None. Saves the residual's own passes over the map."""
    blend = getattr(attn, "fused_blend", None)
    return blend(x, gate, mode) if blend is not None else None


def hidden_channels(bottleneck: nn.Module) -> int:
    """Width between a bottleneck's two convolutions (the attention's C)."""
    return _out_channels(bottleneck.cv1)


def _out_channels(conv_block: nn.Module) -> int:
    """Output width of a convolution block (Ultralytics' ``Conv`` holds its ``conv``)."""
    return int(getattr(conv_block, "conv", conv_block).out_channels)
