"""EMA: Efficient Multi-Scale Attention.

Ouyang et al., "Efficient Multi-Scale Attention Module with Cross-Spatial Learning"
(ICASSP 2023). The channels are reshaped into G groups ("factor", paper: 32) of c = C/G
channels, folded into the batch; every group X (c, H, W) gets one spatial gate:

* 1x1 branch: ``z_h = mean_W(X)`` (c, H) and ``z_w = mean_H(X)`` (c, W) are concatenated
  along the position axis, go through one 1x1 convolution (c -> c, biased) and are split
  again; ``X1 = GN(X * sigmoid(a_h) * sigmoid(a_w))`` (GroupNorm, one group per channel);
* 3x3 branch: ``X2 = conv3x3(X)`` (c -> c, biased, 'same' padding);
* cross-spatial learning: ``w1 = softmax_c(mean_HW(X1))``, ``w2 = softmax_c(mean_HW(X2))``
  (softmax over the c channels), and the (H, W) map ``M = w1^T X2 + w2^T X1`` (each
  branch's channel weights pool the *other* branch's features);
* output: ``X * sigmoid(M)``, the same gate for every channel of the group.

Parameters: ``10 c^2 + 4 c`` with ``c = C / G`` (1x1 conv ``c^2 + c``, 3x3 conv
``9 c^2 + c``, GroupNorm affine ``2 c``); 48 for C = 64, G = 32.

The SCSA authors' comparison code (HZAI-ZJNU/SCSA, ``mmpretrain/models/attentions/EMA.py``)
is EMA's own code with the unused second channel argument dropped; it follows the paper, so
there is no departure option. Equal weights give equal outputs.

Small widths: G must divide C. A width the requested factor does not divide uses the
largest G below it that does (see :mod:`._groups`): G = 8 for C = 8 (one channel per
group, where the softmax over one channel is 1 and ``M = X2 + X1``), G = 16 for C = 16.
"""

from __future__ import annotations

import torch
from torch import nn

from ._groups import GroupNorm, fitted_groups

__all__ = ["EMA"]


class EMA(nn.Module):
    """Efficient multi-scale attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        factor: G, the number of groups (paper: 32); each holds C/G channels.
        adapt_groups: when G does not divide C, use the largest G below ``factor`` that
            does (True, default) or raise (False). ``self.groups`` is the count in use.
    """

    def __init__(self, channels: int, factor: int = 32, adapt_groups: bool = True) -> None:
        super().__init__()
        self.groups = fitted_groups("EMA", "factor", channels, factor, adapt=adapt_groups)
        width = channels // self.groups
        self.conv1x1 = nn.Conv2d(width, width, 1)
        self.conv3x3 = nn.Conv2d(width, width, 3, padding=1)
        self.norm = GroupNorm(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        grouped = x.reshape(b * self.groups, c // self.groups, h, w)  # (B*G, c, H, W)
        pooled = torch.cat([grouped.mean(dim=3), grouped.mean(dim=2)], dim=2)  # (B*G, c, H+W)
        gates = torch.sigmoid(self.conv1x1(pooled.unsqueeze(3)))  # (B*G, c, H+W, 1)
        gate_h = gates[:, :, :h]  # (B*G, c, H, 1)
        gate_w = gates[:, :, h:].transpose(2, 3)  # (B*G, c, 1, W)
        x1 = self.norm(grouped * gate_h * gate_w)
        x2 = self.conv3x3(grouped)
        w1 = torch.softmax(x1.mean(dim=(2, 3)), dim=1).unsqueeze(1)  # (B*G, 1, c)
        w2 = torch.softmax(x2.mean(dim=(2, 3)), dim=1).unsqueeze(1)
        spatial = torch.matmul(w1, x2.flatten(2)) + torch.matmul(w2, x1.flatten(2))  # (B*G, 1, H*W)
        out = grouped * torch.sigmoid(spatial).reshape(b * self.groups, 1, h, w)
        return out.reshape(b, c, h, w)
