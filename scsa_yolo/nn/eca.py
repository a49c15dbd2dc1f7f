"""ECA: Efficient Channel Attention.

Wang et al., "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks"
(CVPR 2020). Global average pooling, then a 1-D convolution across neighbouring channels
(no dimensionality reduction) and a sigmoid. The kernel size adapts to the channel count:
``t = int(|(log2(C) + b) / gamma|)``, ``k = t`` if t is odd else ``t + 1`` (gamma 2, b 1).

Parameters: ``k`` (one bias-free 1-D kernel), e.g. 3 for C = 64, 5 for C = 256.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validate import check_positive_int, layer_error

__all__ = ["ECA", "eca_kernel_size"]


def eca_kernel_size(channels: int, gamma: float = 2, b: float = 1) -> int:
    """The ECA paper's adaptive, always odd kernel size for ``channels``."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class ECA(nn.Module):
    """Efficient channel attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        kernel_size: odd 1-D kernel; None (default) picks the adaptive size.
        gamma, b: constants of the adaptive kernel size (paper: 2 and 1).
    """

    def __init__(self, channels: int, kernel_size: int | None = None, gamma: float = 2, b: float = 1) -> None:
        super().__init__()
        check_positive_int("ECA", "channels", channels)
        if kernel_size is None:
            kernel_size = eca_kernel_size(channels, gamma, b)
        elif check_positive_int("ECA", "kernel_size", kernel_size) % 2 == 0:
            raise layer_error("ECA", "kernel_size", kernel_size, "must be odd (centred 'same' padding)")
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        pooled = x.mean(dim=(2, 3)).reshape(b, 1, c)  # channels as a 1-D sequence
        return x * torch.sigmoid(self.conv(pooled)).reshape(b, c, 1, 1)
