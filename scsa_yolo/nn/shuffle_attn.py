"""SA: Shuffle Attention.

Zhang and Yang, "SA-Net: Shuffle Attention for Deep Convolutional Neural Networks"
(ICASSP 2021). The C channels are split into G groups (sub-features) of C/G channels; each
group is cut into two halves of C/2G channels, ``X_k1`` and ``X_k2``:

* channel branch: ``s = mean_HW(X_k1)``, ``X'_k1 = sigmoid(W1 * s + b1) * X_k1``;
* spatial branch: ``X'_k2 = sigmoid(W2 * GN(X_k2) + b2) * X_k2``, GroupNorm with one
  group per channel (each channel normalised over its H x W positions, with affine);

``W1, b1, W2, b2`` are per-channel scalars of shape (C/2G,) shared by all G groups,
initialised to 0 (weights) and 1 (biases). The halves are concatenated, the groups put back
together, and a channel shuffle with 2 groups mixes the two branches across the channels:
output channel ``2j`` is pre-shuffle channel ``j``, channel ``2j + 1`` is ``C/2 + j``.

Parameters: ``6 * C / (2G) = 3C / G`` (four scalar vectors and GroupNorm's affine pair);
6 for C = 128 and the paper's G = 64.

The SCSA authors' comparison code (HZAI-ZJNU/SCSA, ``mmpretrain/models/attentions/SA.py``)
follows SA-Net's paper and code exactly, so this layer has no departure option; with equal
weights the outputs are equal.

Small widths: G must satisfy ``C % 2G == 0`` (128 channels for the default 64 groups). A
width the requested G does not fit uses the largest G below it that fits (see
:mod:`._groups`), e.g. G = 8 for C = 16 and G = 4 for C = 8; odd widths cannot be split
into halves and raise.
"""

from __future__ import annotations

import torch
from torch import nn

from ._groups import GroupNorm, fitted_groups

__all__ = ["SA"]


class SA(nn.Module):
    """Shuffle attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C (even).
        groups: G, sub-feature groups (paper: 64); each holds C/G channels.
        adapt_groups: when ``C % 2G != 0``, use the largest G below ``groups`` that fits
            (True, default) or raise (False). ``self.groups`` is the count in use.
    """

    def __init__(self, channels: int, groups: int = 64, adapt_groups: bool = True) -> None:
        super().__init__()
        self.groups = fitted_groups("SA", "groups", channels, groups, unit=2, adapt=adapt_groups)
        half = channels // (2 * self.groups)
        self.channel_weight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.channel_bias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.spatial_weight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.spatial_bias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.norm = GroupNorm(half, half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        grouped = x.reshape(b * self.groups, c // self.groups, h, w)  # (B*G, C/G, H, W)
        x_chan, x_spat = grouped.chunk(2, dim=1)  # two (B*G, C/2G, H, W) halves
        squeezed = x_chan.mean(dim=(2, 3), keepdim=True)  # (B*G, C/2G, 1, 1)
        out_chan = x_chan * torch.sigmoid(self.channel_weight * squeezed + self.channel_bias)
        out_spat = x_spat * torch.sigmoid(self.spatial_weight * self.norm(x_spat) + self.spatial_bias)
        out = torch.cat([out_chan, out_spat], dim=1).reshape(b, 2, c // 2, h, w)
        return out.transpose(1, 2).reshape(b, c, h, w)  # channel shuffle, 2 groups
