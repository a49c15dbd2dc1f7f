"""ELA: Efficient Local Attention.

Xu and Wan, "ELA: Efficient Local Attention for Deep Convolutional Neural Networks"
(arXiv:2403.01123, 2024). Like coordinate attention, the map is averaged along W and
along H, but without channel reduction: one 1-D convolution and one GroupNorm, shared by
both directions, give each a gate:

* ``z_h = mean_W(X)`` (B, C, H), ``z_w = mean_H(X)`` (B, C, W);
* ``y_h = sigmoid(GN(F(z_h)))``, ``y_w = sigmoid(GN(F(z_w)))``, ``F`` a bias-free 1-D
  convolution of kernel k ('same' padding) with C/g input channels per output channel
  (g = 1: depth-wise), GN with G groups;
* output: ``X * y_w * y_h`` (gate ``y_h[c, h] * y_w[c, w]`` at position (h, w)).

The ELA paper's four sizes (``variant``):

=======  ======  ===================  ===========
variant  kernel  conv channels/group  GN groups
=======  ======  ===================  ===========
T        5       1 (depth-wise)       32
B        7       1 (depth-wise)       16
S        5       8                    16
L        7       8                    16
=======  ======  ===================  ===========

Parameters: ``C * g * k + 2 C``: ``9 C`` for B, ``7 C`` for T, ``42 C`` for S, ``58 C``
for L.

The SCSA authors' comparison code (HZAI-ZJNU/SCSA, ``mmpretrain/models/attentions/ELA.py``)
is ELA-B (kernel 7, depth-wise, GroupNorm with 16 groups), the default here; it follows the
ELA paper, and equal weights give equal outputs. T, S and L are the paper's other sizes.

Small widths: GroupNorm's G must divide C, and so must the conv's channels per group. A
width the requested value does not divide uses the largest value below it that does (see
:mod:`._groups`): G = 8 for C = 8.
"""

from __future__ import annotations

import torch
from torch import nn

from ._groups import GroupNorm, fitted_groups
from ._validate import check_choice, check_positive_int, layer_error

__all__ = ["ELA", "ELA_VARIANTS"]

#: The ELA paper's sizes: variant -> (kernel size, conv channels per group, GroupNorm groups).
ELA_VARIANTS: dict[str, tuple[int, int, int]] = {"T": (5, 1, 32), "B": (7, 1, 16), "S": (5, 8, 16), "L": (7, 8, 16)}


class ELA(nn.Module):
    """Efficient local attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        variant: the ELA paper's size, ``"T"``, ``"B"`` (default, as in SCSA's comparison),
            ``"S"`` or ``"L"``; the three arguments below override its values.
        kernel_size: odd 1-D kernel k (B: 7).
        num_groups: GroupNorm groups G (B: 16).
        group_channels: input channels per output channel of the 1-D convolution, g
            (1 = depth-wise; S and L: 8).
        adapt_groups: when ``num_groups`` or ``group_channels`` does not divide C, use the
            largest value below it that does (True, default) or raise (False).
            ``self.num_groups`` and ``self.group_channels`` are the values in use.
    """

    def __init__(
        self,
        channels: int,
        variant: str = "B",
        kernel_size: int | None = None,
        num_groups: int | None = None,
        group_channels: int | None = None,
        adapt_groups: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("ELA", "channels", channels)
        check_choice("ELA", "variant", variant, list(ELA_VARIANTS))
        default_kernel, default_group_channels, default_groups = ELA_VARIANTS[variant]
        kernel_size = default_kernel if kernel_size is None else kernel_size
        if check_positive_int("ELA", "kernel_size", kernel_size) % 2 == 0:
            raise layer_error("ELA", "kernel_size", kernel_size, "must be odd (centred 'same' padding)")
        self.variant = variant
        self.num_groups = fitted_groups(
            "ELA", "num_groups", channels, default_groups if num_groups is None else num_groups, adapt=adapt_groups
        )
        self.group_channels = fitted_groups(
            "ELA", "group_channels", channels,
            default_group_channels if group_channels is None else group_channels, adapt=adapt_groups,
        )
        self.conv = nn.Conv1d(
            channels, channels, kernel_size, padding=kernel_size // 2, groups=channels // self.group_channels, bias=False
        )
        self.norm = GroupNorm(self.num_groups, channels)

    def _gate(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.norm(self.conv(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_h = self._gate(x.mean(dim=3)).unsqueeze(3)  # (B, C, H, 1)
        gate_w = self._gate(x.mean(dim=2)).unsqueeze(2)  # (B, C, 1, W)
        return x * gate_w * gate_h
