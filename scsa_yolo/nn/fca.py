"""FCA: Frequency Channel Attention (FcaNet).

Qin et al., "FcaNet: Frequency Channel Attention Networks" (ICCV 2021). Global average
pooling is the lowest 2-D DCT frequency; FcaNet splits the channels into parts and
compresses each part with a different DCT basis function (multi-spectral pooling), then
applies an SE-style bias-free bottleneck (reduction 16) and a sigmoid. The frequencies are
the paper's 'top16' selection on a 7x7 DCT grid.

Any feature map size works: the input is adaptive-average-pooled to the DCT grid (maps
smaller than the grid are replicated up by the same adaptive pooling). The DCT basis is a
fixed buffer, not a parameter. Parameters: ``2 * C * m``, ``m = max(1, C // 16)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_positive_int, layer_error, reduced_channels

__all__ = ["FCA", "TOP16_FREQUENCIES", "dct_filters"]

#: (u, v) = (vertical, horizontal) frequency indices on a 7x7 grid, best first ('top16').
TOP16_FREQUENCIES: tuple[tuple[int, int], ...] = tuple(
    zip((0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2), (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2))
)


def _dct_basis(freq: int, size: int) -> torch.Tensor:
    """Orthonormal 1-D DCT-II basis vector of frequency ``freq`` over ``size`` positions."""
    pos = torch.arange(size, dtype=torch.float64)
    basis = torch.cos(math.pi * freq * (pos + 0.5) / size) / math.sqrt(size)
    return basis * math.sqrt(2) if freq else basis


def dct_filters(channels: int, frequencies, grid: tuple[int, int]) -> torch.Tensor:
    """(C, gh, gw) filters: channel c uses frequency ``c * F // C`` of ``frequencies``.

    With C divisible by F this is FcaNet's split into F equal channel parts; otherwise the
    parts differ by at most one channel.
    """
    filters = torch.empty(channels, *grid, dtype=torch.float64)
    for c in range(channels):
        u, v = frequencies[c * len(frequencies) // channels]
        filters[c] = torch.outer(_dct_basis(u, grid[0]), _dct_basis(v, grid[1]))
    return filters.float()


class FCA(nn.Module):
    """Multi-spectral channel attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C. With C < 16 only the first C frequencies are used.
        reduction: bottleneck ratio (paper: 16); the hidden width never drops below 1.
        num_freq: how many of the 'top16' frequencies to use (1-16).
        dct_size: side of the DCT grid the frequencies live on (paper indices: 7). Indices
            scale with ``dct_size // 7`` as in FcaNet.
    """

    def __init__(self, channels: int, reduction: int = 16, num_freq: int = 16, dct_size: int = 7) -> None:
        super().__init__()
        check_positive_int("FCA", "channels", channels)
        check_positive_int("FCA", "reduction", reduction)
        if check_positive_int("FCA", "num_freq", num_freq) > len(TOP16_FREQUENCIES):
            raise layer_error("FCA", "num_freq", num_freq, f"must be at most {len(TOP16_FREQUENCIES)}")
        if check_positive_int("FCA", "dct_size", dct_size) < 7:
            raise layer_error("FCA", "dct_size", dct_size, "must be >= 7 (the frequency indices go up to 6)")
        step = dct_size // 7
        freqs = [(u * step, v * step) for u, v in TOP16_FREQUENCIES[: min(num_freq, channels)]]
        self.grid = (dct_size, dct_size)
        self.register_buffer("dct_filter", dct_filters(channels, freqs, self.grid), persistent=True)
        hidden = reduced_channels(channels, reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        grid_x = F.adaptive_avg_pool2d(x, self.grid)  # identity when (H, W) is the grid
        spectral = (grid_x * self.dct_filter.to(grid_x.dtype)).sum(dim=(2, 3))  # (B, C)
        return x * torch.sigmoid(self.fc(spectral)).reshape(b, c, 1, 1)
