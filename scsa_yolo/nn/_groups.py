"""The small-width rule shared by the grouped attentions (SA, EMA, ELA).

Their published group counts assume wide layers: SA's 64 groups need ``C % 128 == 0``,
EMA's 32 groups ``C % 32 == 0``, ELA's GroupNorm with 16 groups ``C % 16 == 0``. YOLO's
narrow layers (YOLOv8n bottlenecks: 16 channels; YOLO11n: 8) cannot take them.

Rule: keep the requested count when it fits; otherwise use the **largest count not above
the requested one that fits** (``channels % (unit * g) == 0``, ``unit`` the channels each
group must hold a multiple of: 2 for SA's two halves, 1 otherwise). The layer keeps the
count it uses as an attribute, so nothing changes silently. With ``adapt=False`` a width
that does not fit raises instead. A width no count can serve (SA with an odd width) raises
a ``ValueError`` naming the layer, the argument and the width.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_positive_int, layer_error


def fitted_groups(layer: str, argument: str, channels: int, requested: int, unit: int = 1, adapt: bool = True) -> int:
    """The group count ``layer`` uses for ``channels``: ``requested`` if it fits, else the rule's.

    Args:
        layer, argument: names used in error messages (``"SA"``, ``"groups"``).
        channels: the layer's width C.
        requested: the group count asked for (the published default, or the caller's).
        unit: every group must hold a multiple of ``unit`` channels.
        adapt: apply the rule; False raises when ``requested`` does not fit.
    """
    check_positive_int(layer, "channels", channels)
    check_positive_int(layer, argument, requested)
    if channels % (unit * requested) == 0:
        return requested
    need = f"channels divisible by {unit} * {argument}" if unit > 1 else f"channels divisible by {argument}"
    if not adapt:
        raise layer_error(layer, argument, requested, f"does not fit channels={channels} ({need}); "
                          f"pass adapt_groups=True to use the largest {argument} below it that fits")
    for groups in range(min(requested, channels // unit), 0, -1):
        if channels % (unit * groups) == 0:
            return groups
    raise layer_error(layer, "channels", channels, f"cannot be served by any {argument} <= {requested} ({need})")


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` that also takes groups of a single value.

    ``F.group_norm`` refuses an input whose groups hold one value each (batch 1, one
    channel per group, a 1-long sequence or a 1x1 map), which ELA meets on YOLO's narrow
    layers and smallest maps. Normalisation is well defined there (the centred value is 0,
    so the output is the bias ``beta``); this calls the same kernel without the check.
    Parameters and state-dict keys are those of ``nn.GroupNorm``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.group_norm(x, self.num_groups, self.weight, self.bias, self.eps, torch.backends.cudnn.enabled)
