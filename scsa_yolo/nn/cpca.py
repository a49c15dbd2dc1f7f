"""CPCA: Channel Prior Convolutional Attention.

Huang et al., "Channel prior convolutional attention for medical image segmentation"
(Computers in Biology and Medicine, 2024). Channel attention first, then a spatial
attention made of depth-wise multi-scale strip convolutions, inside a block framed by one
1x1 convolution (``P``, C -> C, biased) that is applied three times with the same weights:

* ``F = GELU(P(X))``;
* channel prior: ``F_c = (sigmoid(MLP(avg_HW F)) + sigmoid(MLP(max_HW F))) * F``, one
  shared MLP ``C -> m -> C`` (1x1 convolutions with biases, ReLU), ``m = C // reduction``;
  note the *sum of two sigmoids* (CBAM takes one sigmoid of the sum);
* spatial attention: ``D = DW5x5(F_c)``, ``S = P(D + sum_k DW_kx1(DW_1xk(D)))`` over the
  strip kernels k = 7, 11, 21 (all depth-wise and biased, 'same' padding);
* output: ``P(S * F_c)``.

Unlike the gates of SE or CBAM, the output is a new feature map, not the input rescaled.

Parameters: ``C^2 + C`` (P) ``+ 2 C m + m + C`` (MLP) ``+ 26 C`` (5x5) ``+ sum_k 2 (k + 1) C``
(strips; ``84 C`` for 7, 11, 21), i.e. ``C^2 + 2 C m + m + 112 C`` with the defaults.

Departure: the SCSA authors' comparison code (HZAI-ZJNU/SCSA,
``mmpretrain/models/attentions/CPCA.py``) uses channel reduction 16, the default here; the
CPCA authors' own block (CPCANet, ``channelAttention_reduce``) uses 4: pass
``reduction=4`` for it. Everything else is the same in both, and equal weights give equal
outputs.

Small widths: ``m = C // reduction`` is floored at 1 (as for SE), so every width works.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._validate import check_positive_int, layer_error, reduced_channels

__all__ = ["CPCA"]


class CPCA(nn.Module):
    """Channel-prior convolutional attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        reduction: channel-MLP ratio (SCSA's comparison: 16; CPCANet: 4); the hidden width
            never drops below 1.
        strip_kernels: odd lengths k of the depth-wise 1 x k / k x 1 strip pairs
            (paper: 7, 11, 21).
        square_kernel: odd size of the depth-wise square convolution before the strips
            (paper: 5).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        strip_kernels: Sequence[int] = (7, 11, 21),
        square_kernel: int = 5,
    ) -> None:
        super().__init__()
        check_positive_int("CPCA", "channels", channels)
        check_positive_int("CPCA", "reduction", reduction)
        for name, sizes in (("square_kernel", [square_kernel]), ("strip_kernels", list(strip_kernels))):
            for k in sizes:
                if check_positive_int("CPCA", name, k) % 2 == 0:
                    raise layer_error("CPCA", name, k, "must be odd (centred 'same' padding)")
        hidden = reduced_channels(channels, reduction)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.act = nn.GELU()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.square = nn.Conv2d(channels, channels, square_kernel, padding=square_kernel // 2, groups=channels)
        self.strips = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, (1, k), padding=(0, k // 2), groups=channels),
                nn.Conv2d(channels, channels, (k, 1), padding=(k // 2, 0), groups=channels),
            )
            for k in strip_kernels
        )

    def _mlp(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(self.relu(self.fc1(t))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.act(self.proj(x))
        avg = feat.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        peak = feat.amax(dim=(2, 3), keepdim=True)
        feat = feat * (self._mlp(avg) + self._mlp(peak))
        base = self.square(feat)
        multi = base
        if len(self.strips):
            multi = sum(strip(base) for strip in self.strips) + base
        return self.proj(feat * self.proj(multi))
