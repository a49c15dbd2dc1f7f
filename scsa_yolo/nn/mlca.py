"""MLCA: Mixed Local Channel Attention.

Wan et al., "Mixed local channel attention for object detection" (Engineering
Applications of Artificial Intelligence, 2023). ECA's channel attention computed twice, on
a coarse S x S grid of local averages (S = 5) and on the global average, then mixed:

* ``L = AvgPool_{S x S}(X)`` (adaptive average pooling, (B, C, S, S)) and
  ``G = mean_{S x S}(L)`` (the global average of the local averages, (B, C, 1, 1));
* local branch: L is read as one sequence of ``S*S*C`` values, position by position with
  the C channels of a position adjacent, and a 1-D convolution ``F_l`` (kernel k, no bias)
  runs along it: each value is mixed with its channel neighbours at the same position
  (and, at the ends of a position's run, with the first or last channels of the next or
  previous position, as the authors' flattening does); ``A_l = sigmoid(F_l(L))``;
* global branch: ``A_g = sigmoid(F_g(G))``, ``F_g`` a second 1-D convolution across the C
  channels (ECA exactly);
* mix: ``A = (1 - w) A_g + w A_l`` (w = 0.5), broadcast over the S x S grid, then brought
  to H x W by adaptive average pooling (the authors' "un-pooling"), and
  ``output = X (.) A``.

k is ECA's adaptive size, ``t = int(|log2(C) + b| / gamma)``, ``k = t`` if odd else
``t + 1`` (gamma 2, b 1): 3 for C = 8 ... 64, 5 for C = 128 ... 1024.

Parameters: ``2 k`` (two bias-free 1-D kernels): 6 for C = 64, 10 for C = 256.

Equal to the authors' module (wandahangFY/MLCA, ``MLCA.py``): equal weights give equal
outputs (to float rounding: the global average is taken in a different reduction order).

Export: ONNX export takes the two adaptive poolings as matrix products (see
:func:`adaptive_pool_matrix`); the exported graph serves every map size.

Small widths and maps: every width works; a map smaller than S x S is pooled up to the
S x S grid (adaptive pooling repeats its cells), as in the authors' code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_positive_int, is_number, layer_error
from .eca import eca_kernel_size

__all__ = ["MLCA", "adaptive_pool_matrix"]


def adaptive_pool_matrix(size_in: int | torch.Tensor, size_out: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(size_out, size_in) matrix whose row i averages the inputs that adaptive average
    pooling puts into output i: ``[floor(i * n / m), ceil((i + 1) * n / m))`` for n inputs
    and m outputs (bins overlap when m does not divide n; with m > n it repeats inputs).

    Built from tensor operations, so a traced or exported graph keeps it for every size.
    """
    rows = torch.arange(size_out, device=like.device)
    cols = torch.arange(size_in, device=like.device)
    start = (rows * size_in) // size_out
    end = ((rows + 1) * size_in + size_out - 1) // size_out
    inside = (cols.unsqueeze(0) >= start.unsqueeze(1)) & (cols.unsqueeze(0) < end.unsqueeze(1))
    return inside.to(like.dtype) / (end - start).unsqueeze(1).to(like.dtype)


def _adaptive_avg_pool(x: torch.Tensor, height: int | torch.Tensor, width: int | torch.Tensor) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, (height, width))``; (B, C, H, W) -> (B, C, height, width).

    The ONNX exporter takes adaptive pooling only when the output size divides a known input
    size, which MLCA's pooling down to 5 x 5 and back up to H x W never both satisfy; while
    exporting, the same averages are taken as two matrix products instead.
    """
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, (height, width))
    rows = adaptive_pool_matrix(x.shape[2], height, x)  # (height, H)
    cols = adaptive_pool_matrix(x.shape[3], width, x)  # (width, W)
    return rows @ x @ cols.transpose(0, 1)


class MLCA(nn.Module):
    """Mixed local channel attention; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        local_size: S, the side of the local pooling grid (authors: 5).
        gamma, b: constants of ECA's adaptive kernel size (authors: 2 and 1).
        local_weight: w, the local branch's share of the mixed gate, in [0, 1] (authors: 0.5).

    ``self.kernel_size`` is the k in use.
    """

    def __init__(
        self, channels: int, local_size: int = 5, gamma: float = 2, b: float = 1, local_weight: float = 0.5
    ) -> None:
        super().__init__()
        check_positive_int("MLCA", "channels", channels)
        check_positive_int("MLCA", "local_size", local_size)
        if not is_number(local_weight) or not 0 <= local_weight <= 1:
            raise layer_error("MLCA", "local_weight", local_weight, "must be a number in [0, 1] (authors: 0.5)")
        if not is_number(gamma) or not gamma > 0:
            raise layer_error("MLCA", "gamma", gamma, "must be a positive number (authors: 2)")
        if not is_number(b):
            raise layer_error("MLCA", "b", b, "must be a number (authors: 1)")
        self.local_size = local_size
        self.local_weight = float(local_weight)
        self.kernel_size = eca_kernel_size(channels, gamma, b)  # odd, >= 1
        pad = (self.kernel_size - 1) // 2
        self.conv_global = nn.Conv1d(1, 1, self.kernel_size, padding=pad, bias=False)
        self.conv_local = nn.Conv1d(1, 1, self.kernel_size, padding=pad, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.local_size
        local = _adaptive_avg_pool(x, s, s)  # (B, C, S, S)
        pooled = local.mean(dim=(2, 3))  # (B, C)
        # position-major sequence: the C channels of grid cell 0, then of cell 1, ...
        sequence = local.flatten(2).transpose(1, 2).reshape(b, 1, s * s * c)
        local_gate = torch.sigmoid(self.conv_local(sequence)).reshape(b, s * s, c).transpose(1, 2)
        global_gate = torch.sigmoid(self.conv_global(pooled.unsqueeze(1))).reshape(b, c, 1, 1)
        mixed = global_gate * (1 - self.local_weight) + local_gate.reshape(b, c, s, s) * self.local_weight
        return x * _adaptive_avg_pool(mixed, h, w)
