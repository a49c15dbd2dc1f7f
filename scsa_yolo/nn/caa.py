"""CAA: Context Anchor Attention.

Cai et al., "Poly Kernel Inception Network for Remote Sensing Detection" (PKINet, CVPR
2024). A local average, a pair of long depth-wise strip convolutions (horizontal, then
vertical) framed by two 1x1 convolutions, and a sigmoid give a spatial-and-channel gate
that sees a long cross-shaped context at low cost:

    P = AvgPool_{7x7, stride 1}(X)            (zero padding 3, counted in the mean)
    F = Conv1x1_2(DW_{k_v x 1}(DW_{1 x k_h}(Conv1x1_1(P))))
    output = X (.) sigmoid(F)

The 1x1 convolutions are C -> C, each followed by BatchNorm (eps 1e-3, momentum 0.03) and
SiLU, the class's defaults (``norm_act=True``); the strips are depth-wise and biased, with
'same' padding, k_h = k_v = 11.

Parameters: ``2 C^2 + 4 C`` (1x1 convolutions and BatchNorm affine) ``+ C (k_h + 1) + C (k_v + 1)``,
i.e. ``2 C^2 + 28 C`` with the defaults; with ``norm_act=False`` ``2 C^2 + 2 C + C (k_h + k_v + 2)``.

Equal to the authors' ``CAA`` (PKINet, ``mmrotate/models/backbones/pkinet.py``) with equal
weights, in training (batch statistics) and in evaluation (running statistics). Two
differences of use, not of computation:

* the authors' module returns the gate ``sigmoid(F)`` and their Inception bottleneck
  multiplies it with *another* branch's features; as an attention row here it gates its own
  input, ``X (.) sigmoid(F)`` (as YOLO attention collections use it);
* inside PKINet the bottleneck builds CAA without BatchNorm and activation (biased 1x1
  convolutions); pass ``norm_act=False`` for that form. PKINet also grows the strip length
  by 2 per block (11, 13, 15, ...); ``h_kernel_size`` / ``v_kernel_size`` take any odd size.

Small widths and maps: every width works; zero padding lets the pool and the strips run on
every map size, down to 1 x 1.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_positive_int, layer_error

__all__ = ["CAA"]


def _pointwise(channels: int, norm_act: bool) -> nn.Module:
    """1x1 convolution C -> C: with BatchNorm and SiLU (bias-free conv) or biased alone."""
    if not norm_act:
        return nn.Conv2d(channels, channels, 1)
    return nn.Sequential(
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels, eps=1e-3, momentum=0.03),
        nn.SiLU(),
    )


class CAA(nn.Module):
    """Context anchor attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        h_kernel_size: odd length of the horizontal 1 x k strip (authors: 11).
        v_kernel_size: odd length of the vertical k x 1 strip (authors: 11).
        norm_act: BatchNorm and SiLU after each 1x1 convolution (the authors' class
            default, True) or biased 1x1 convolutions alone (how PKINet's blocks build it).
    """

    def __init__(self, channels: int, h_kernel_size: int = 11, v_kernel_size: int = 11, norm_act: bool = True) -> None:
        super().__init__()
        check_positive_int("CAA", "channels", channels)
        for name, k in (("h_kernel_size", h_kernel_size), ("v_kernel_size", v_kernel_size)):
            if check_positive_int("CAA", name, k) % 2 == 0:
                raise layer_error("CAA", name, k, "must be odd (centred 'same' padding)")
        if not isinstance(norm_act, bool):
            raise layer_error("CAA", "norm_act", norm_act, "must be true or false")
        self.pool = nn.AvgPool2d(7, stride=1, padding=3)
        self.conv1 = _pointwise(channels, norm_act)
        self.h_conv = nn.Conv2d(channels, channels, (1, h_kernel_size), padding=(0, h_kernel_size // 2), groups=channels)
        self.v_conv = nn.Conv2d(channels, channels, (v_kernel_size, 1), padding=(v_kernel_size // 2, 0), groups=channels)
        self.conv2 = _pointwise(channels, norm_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.v_conv(self.h_conv(self.conv1(self.pool(x))))
        return x * torch.sigmoid(self.conv2(context))
