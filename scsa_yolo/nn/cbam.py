"""CBAM: Convolutional Block Attention Module.

Woo et al., "CBAM: Convolutional Block Attention Module" (ECCV 2018). Channel attention
first: a shared two-layer MLP (reduction 16, ReLU) on the average- and the max-pooled
descriptors, summed, sigmoid. Spatial attention second: the channel-wise mean and max maps
go through a 7x7 convolution (no bias) and BatchNorm, then a sigmoid.

Parameters: ``2 * C * m + m + C`` (MLP, biased, ``m = max(1, C // 16)``) ``+ 2 * k * k + 2``
(spatial conv and BN affine; 100 for k = 7).
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_positive_int, layer_error, reduced_channels

__all__ = ["CBAM"]


class CBAM(nn.Module):
    """Channel then spatial attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        reduction: MLP ratio (paper: 16); the hidden width never drops below 1.
        spatial_kernel: odd kernel of the spatial convolution (paper: 7).
    """

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7) -> None:
        super().__init__()
        check_positive_int("CBAM", "channels", channels)
        check_positive_int("CBAM", "reduction", reduction)
        if check_positive_int("CBAM", "spatial_kernel", spatial_kernel) % 2 == 0:
            raise layer_error("CBAM", "spatial_kernel", spatial_kernel, "must be odd (centred 'same' padding)")
        hidden = reduced_channels(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1)

    def _mlp(self, t: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(t)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3), keepdim=True)
        peak = x.amax(dim=(2, 3), keepdim=True)
        x = x * torch.sigmoid(self._mlp(avg) + self._mlp(peak))
        descriptors = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return x * torch.sigmoid(self.spatial_bn(self.spatial(descriptors)))
