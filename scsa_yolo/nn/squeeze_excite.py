"""SE: Squeeze-and-Excitation.

Hu, Shen and Sun, "Squeeze-and-Excitation Networks" (CVPR 2018). Global average pooling
squeezes each channel to one value; a two-layer bottleneck (reduction r = 16, ReLU) and a
sigmoid turn those values into per-channel gates.

Parameters: ``2 * C * m + m + C`` with ``m = max(1, C // reduction)`` (both layers biased).
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_positive_int, reduced_channels

__all__ = ["SE"]


class SE(nn.Module):
    """Squeeze-and-excitation channel gate; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        reduction: bottleneck ratio r (paper: 16). The hidden width is ``C // r`` but never
            below 1, so narrow layers (e.g. C = 8) still get a valid bottleneck.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        check_positive_int("SE", "channels", channels)
        check_positive_int("SE", "reduction", reduction)
        hidden = reduced_channels(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(squeezed))))
