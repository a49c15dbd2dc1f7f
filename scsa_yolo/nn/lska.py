"""LSKA: Large Separable Kernel Attention.

Lau, Po and Rehman, "Large Separable Kernel Attention: Rethinking the Large Kernel
Attention Design in CNN" (Expert Systems with Applications, 2024). VAN's large kernel
attention (a depth-wise k0 x k0 convolution, a dilated depth-wise k1 x k1 one, then a 1x1
convolution) with each 2-D depth-wise kernel split into a horizontal 1 x k and a vertical
k x 1 one, applied in cascade:

    A = W_1x1 * DW^v_{k1,d}(DW^h_{k1,d}(DW^v_{k0}(DW^h_{k0}(X))))
    output = A (.) X

``DW^h_{k}`` is a depth-wise 1 x k convolution, ``DW^v_{k}`` a depth-wise k x 1 one, the
second pair dilated by d ('same' padding, all biased). Together they reach a k x k window,
``k = k0 + (k1 - 1) d``; the paper's sizes:

======  ===  ===  ==
kernel  k0   k1   d
======  ===  ===  ==
7       3    3    2
11      3    5    2
23      5    7    3
35      5    11   3
41      5    13   3
53      5    17   3
======  ===  ===  ==

A is not squashed (no sigmoid): LSKA multiplies by an unbounded map, as VAN's LKA does.

Parameters: ``C^2 + C + 2 C (k0 + 1) + 2 C (k1 + 1)``: ``C^2 + 17 C`` for kernel 7 (the
authors' default and their ``train_lska.sh`` setting).

Equal to the authors' module (StevenLauHKHK/Large-Separable-Kernel-Attention,
``models/van.py``, class ``LSKA``); VAN wraps it as ``proj_2(LSKA(GELU(proj_1(x)))) + x``,
which here is the placement's business (``backbone-res`` is the residual form).

Small widths and maps: every width works (depth-wise); zero padding lets every kernel run
on every map size, down to 1 x 1.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_choice, check_positive_int

__all__ = ["LSKA", "LSKA_KERNELS"]

#: The LSKA paper's kernel sizes: k -> (plain kernel k0, dilated kernel k1, dilation d).
LSKA_KERNELS: dict[int, tuple[int, int, int]] = {
    7: (3, 3, 2), 11: (3, 5, 2), 23: (5, 7, 3), 35: (5, 11, 3), 41: (5, 13, 3), 53: (5, 17, 3),
}


def _strip(channels: int, length: int, horizontal: bool, dilation: int = 1) -> nn.Conv2d:
    """Depth-wise 1 x length (horizontal) or length x 1 convolution, 'same' padding."""
    reach = (length - 1) * dilation // 2
    kernel, padding = ((1, length), (0, reach)) if horizontal else ((length, 1), (reach, 0))
    return nn.Conv2d(channels, channels, kernel, padding=padding, dilation=dilation, groups=channels)


class LSKA(nn.Module):
    """Large separable kernel attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        kernel_size: the large kernel k the cascade reaches, one of 7 (default), 11, 23,
            35, 41, 53 (the paper's table).
    """

    def __init__(self, channels: int, kernel_size: int = 7) -> None:
        super().__init__()
        check_positive_int("LSKA", "channels", channels)
        check_choice("LSKA", "kernel_size", kernel_size, list(LSKA_KERNELS))
        self.kernel_size = kernel_size
        local, dilated, dilation = LSKA_KERNELS[kernel_size]
        self.local_h = _strip(channels, local, horizontal=True)
        self.local_v = _strip(channels, local, horizontal=False)
        self.dilated_h = _strip(channels, dilated, horizontal=True, dilation=dilation)
        self.dilated_v = _strip(channels, dilated, horizontal=False, dilation=dilation)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.dilated_v(self.dilated_h(self.local_v(self.local_h(x))))
        return x * self.proj(attn)
