"""SimAM: a Simple, parameter-free Attention Module.

Yang, Zhang, Li and Xie, "SimAM: A Simple, Parameter-Free Attention Module for
Convolutional Neural Networks" (ICML 2021). Every activation gets its own weight (a 3-D
gate) from an energy function that asks how much the neuron stands out from the other
neurons of its channel. With ``mu`` and ``sigma^2`` the mean and variance of channel c over
its ``n + 1 = H * W`` positions (``sigma^2 = sum (x - mu)^2 / n``), the inverse of the
minimal energy of neuron t is

    1 / e_t = (x_t - mu)^2 / (4 * (sigma^2 + lambda)) + 1/2

and the output is ``X * sigmoid(1 / E)`` (lambda = 1e-4, the paper's value and the
authors' default). A neuron far from its channel's mean gets a gate near 1, an average one
``sigmoid(1/2)``.

Parameters: 0. SimAM is the parameter-free reference point: it separates what a gate does
from what extra weights do.

Equal to the authors' module (ZjjConan/SimAM, ``simam_module``): the same operations in
the same order, so equal inputs give bit-equal outputs in float32.

Small maps: on a 1 x 1 map the authors' ``n = H * W - 1`` is 0 and their variance 0 / 0
(NaN everywhere). Here n is taken as 1 there; the centred value is 0, so the gate is
``sigmoid(1/2)`` for every channel, the limit of the formula. Every larger map is computed
exactly as theirs.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_positive_int, is_number, layer_error

__all__ = ["SimAM"]


class SimAM(nn.Module):
    """Parameter-free energy gate per activation; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C (only checked: the layer has no weights; the argument keeps the
            registry's uniform ``Layer(channels, ...)`` constructor).
        e_lambda: lambda, the regulariser added to the channel variance (paper and
            authors' default: 1e-4; the authors' ImageNet runs used 0.1).
    """

    def __init__(self, channels: int, e_lambda: float = 1e-4) -> None:
        super().__init__()
        check_positive_int("SimAM", "channels", channels)
        if not is_number(e_lambda) or not e_lambda > 0:
            raise layer_error("SimAM", "e_lambda", e_lambda, "must be a positive number (paper: 1e-4)")
        self.channels = channels
        self.e_lambda = float(e_lambda)

    def extra_repr(self) -> str:
        return f"{self.channels}, e_lambda={self.e_lambda:g}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        n = h * w - 1
        # n = 0 on a 1 x 1 map: use 1 (see the module docstring); no Python branch, so a
        # traced or exported graph keeps the rule for every map size
        n = n + (n == 0)
        centred_sq = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)  # (B, C, H, W)
        variance = centred_sq.sum(dim=(2, 3), keepdim=True) / n  # (B, C, 1, 1)
        inverse_energy = centred_sq / (4 * (variance + self.e_lambda)) + 0.5
        return x * torch.sigmoid(inverse_energy)
