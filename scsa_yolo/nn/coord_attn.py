"""CA: Coordinate Attention.

Hou, Zhou and Feng, "Coordinate Attention for Efficient Mobile Network Design" (CVPR 2021).
The map is averaged along W and along H; both direction-aware descriptors share one 1x1
convolution (C -> m), BatchNorm and h-swish, then separate 1x1 convolutions (m -> C) and
sigmoids give an attention along H and one along W. ``m = max(8, C // reduction)``,
reduction 32.

Parameters: ``3 * C * m + 3 * m + 2 * C`` (three biased 1x1 convolutions and BN's affine).
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_positive_int, reduced_channels

__all__ = ["CA"]


class CA(nn.Module):
    """Coordinate attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        reduction: r (paper: 32); the middle width is ``max(min_channels, C // r)``.
        min_channels: floor of the middle width (paper: 8).
    """

    def __init__(self, channels: int, reduction: int = 32, min_channels: int = 8) -> None:
        super().__init__()
        check_positive_int("CA", "channels", channels)
        check_positive_int("CA", "reduction", reduction)
        check_positive_int("CA", "min_channels", min_channels)
        mid = reduced_channels(channels, reduction, min_channels)
        self.conv1 = nn.Conv2d(channels, mid, 1, bias=True)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mid, channels, 1, bias=True)
        self.conv_w = nn.Conv2d(mid, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        pooled_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        pooled_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([pooled_h, pooled_w], dim=2))))  # (B, m, H+W, 1)
        y_h, y_w = torch.split(y, [h, w], dim=2)
        attn_h = torch.sigmoid(self.conv_h(y_h))  # (B, C, H, 1)
        attn_w = torch.sigmoid(self.conv_w(y_w.transpose(2, 3)))  # (B, C, 1, W)
        return x * attn_h * attn_w
