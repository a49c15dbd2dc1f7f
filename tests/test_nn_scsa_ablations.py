"""Table 1 ablations of SCSA: each builds, runs, has the expected parameters and does what
its name says (checked against the default layer or a hand computation)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scsa_yolo.nn.scsa import SCSA

C = 64
# Table 1 row -> (constructor keywords, parameters as a multiple of C).
# Default: convs C/K*(sum k) + C biases = 7C, two SMSA norms 4C, PCSA norm 2C + q/k/v 3C.
VARIANTS = {
    "baseline": ({}, 16),
    "w/o SMSA": ({"use_smsa": False}, 5),
    "w/o PCSA": ({"use_pcsa": False}, 11),
    "PCSA prior": ({"order": "pcsa_first"}, 16),
    "GN prior": ({"norm_position": "before"}, 16),
    "w/o normalization": ({"norm": "none"}, 12),
    "GN->BN": ({"norm": "bn"}, 16),
    "GN->LN": ({"norm": "ln"}, 16),
    "w/o PC": ({"progressive": False}, 16),
    "multi-head + shuffle": ({"num_heads": 4, "channel_shuffle": True}, 16),
    "unshared": ({"shared": False}, 23),
    "scaled sqrt(H'W')": ({"scale_mode": "tokens"}, 16),
    "G1(3)": ({"kernel_sizes": (3,)}, 3 + 1 + 4 + 5),
    "G1(7)": ({"kernel_sizes": (7,)}, 7 + 1 + 4 + 5),
    "G2(3,7)": ({"kernel_sizes": (3, 7)}, 5 + 1 + 4 + 5),
    "G4(3,5,7,9)": ({"kernel_sizes": (3, 5, 7, 9)}, 16),
}


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _seeded(**kwargs) -> SCSA:
    torch.manual_seed(0)
    layer = SCSA(C, **kwargs)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return layer


@pytest.mark.parametrize("row", list(VARIANTS))
def test_variant_builds_runs_trains_and_counts_parameters(row):
    kwargs, per_channel = VARIANTS[row]
    layer = SCSA(C, **kwargs)
    assert _params(layer) == per_channel * C
    for shape in [(2, C, 15, 10), (2, C, 5, 5), (2, C, 1, 1)]:
        x = torch.randn(*shape, requires_grad=True)
        y = layer(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
    (y**2).sum().backward()
    missing = [n for n, p in layer.named_parameters() if p.grad is None]
    assert not missing
    layer.eval()
    with torch.no_grad():
        assert layer(torch.randn(1, C, 9, 9)).shape == (1, C, 9, 9)


def test_without_smsa_is_channel_only():
    layer = _seeded(use_smsa=False)
    assert layer.dwconvs is None and layer.norm_h is None
    x = torch.randn(2, C, 14, 14).abs() + 0.1
    ratio = layer(x) / x  # one gate per (sample, channel)
    torch.testing.assert_close(ratio, ratio[:, :, :1, :1].expand_as(ratio))


def test_without_pcsa_equals_the_smsa_half():
    full = _seeded()
    smsa_only = SCSA(C, use_pcsa=False)
    smsa_only.load_state_dict(full.state_dict(), strict=False)
    x = torch.randn(2, C, 14, 14)
    torch.testing.assert_close(smsa_only(x), full._smsa(x))


def test_pcsa_prior_swaps_the_order():
    full = _seeded()
    swapped = SCSA(C, order="pcsa_first")
    swapped.load_state_dict(full.state_dict())
    x = torch.randn(2, C, 14, 14)
    torch.testing.assert_close(swapped(x), full._smsa(full._pcsa(x)))
    assert not torch.allclose(swapped(x), full(x))


def _manual_smsa(layer: SCSA, x: torch.Tensor, convs_w: nn.ModuleList, norm_first: bool) -> torch.Tensor:
    """SMSA with dwconvs on H and ``convs_w`` on W; norm before or after the convolutions."""

    def attention(seq, convs, norm):
        if norm_first:
            seq = norm(seq)
        out = torch.cat([conv(t) for conv, t in zip(convs, seq.split(C // 4, 1))], 1)
        return torch.sigmoid(out if norm_first else norm(out))

    attn_h = attention(x.mean(3), layer.dwconvs, layer.norm_h)
    attn_w = attention(x.mean(2), convs_w, layer.norm_w)
    return x * attn_h[..., None] * attn_w[:, :, None, :]


def test_gn_prior_normalises_the_pooled_sequences():
    layer = _seeded(norm_position="before")
    x = torch.randn(2, C, 14, 11)
    torch.testing.assert_close(layer._smsa(x), _manual_smsa(layer, x, layer.dwconvs, norm_first=True))


def test_unshared_uses_separate_width_convolutions():
    layer = _seeded(shared=False)
    assert len(layer.dwconvs_w) == 4
    x = torch.randn(2, C, 14, 11)
    torch.testing.assert_close(layer._smsa(x), _manual_smsa(layer, x, layer.dwconvs_w, norm_first=False))
    assert not torch.allclose(layer._smsa(x), _manual_smsa(layer, x, layer.dwconvs, norm_first=False))


@pytest.mark.parametrize(("norm", "cls"), [("none", nn.Identity), ("bn", nn.BatchNorm1d), ("ln", nn.GroupNorm)])
def test_norm_replacements(norm, cls):
    layer = SCSA(C, norm=norm)
    assert type(layer.norm_h) is cls and type(layer.norm_w) is cls
    if norm == "ln":  # layer norm over the whole (C, L) sequence
        assert layer.norm_h.num_groups == 1


def test_global_pooling_ablation_pools_to_one_token():
    layer = _seeded(progressive=False)
    assert layer.window is None and SCSA(C, window=0).window is None and SCSA(C, window=None).window is None
    xs = torch.randn(2, C, 15, 15)
    torch.testing.assert_close(layer._pool(xs), xs.mean(dim=(2, 3), keepdim=True))


def _gate(layer: SCSA, xs: torch.Tensor, heads_index: list[list[int]], scale: float) -> torch.Tensor:
    """Channel gate computed head by head from explicit channel index lists."""
    b = xs.shape[0]
    tokens = layer.norm_pcsa(layer._pool(xs)).reshape(b, C, -1)
    q, k, v = (tokens * m.weight.reshape(1, C, 1) for m in (layer.q, layer.k, layer.v))
    out = torch.empty(b, C)
    for idx in heads_index:
        attn = torch.softmax(q[:, idx] @ k[:, idx].transpose(1, 2) * scale, dim=-1)
        out[:, idx] = (attn @ v[:, idx]).mean(-1)
    return torch.sigmoid(out)


def test_multi_head_with_shuffle_mixes_every_group_into_every_head():
    layer = _seeded(num_heads=4, channel_shuffle=True)
    per_group = C // 4
    shuffled = [j * 4 + g for g in range(4) for j in range(per_group)]  # new position of channel c
    order = sorted(range(C), key=lambda ch: shuffled[ch])  # channel at each shuffled position
    heads = [order[h * C // 4 : (h + 1) * C // 4] for h in range(4)]
    assert all({ch // per_group for ch in head} == {0, 1, 2, 3} for head in heads)
    xs = torch.randn(2, C, 14, 14)
    expected = xs * _gate(layer, xs, heads, (C // 4) ** -0.5)[..., None, None]
    torch.testing.assert_close(layer._pcsa(xs), expected)


def test_token_scaling_uses_sqrt_hw():
    layer = _seeded(scale_mode="tokens")
    xs = torch.randn(2, C, 21, 14)  # 3 x 2 tokens
    expected = xs * _gate(layer, xs, [list(range(C))], 1 / math.sqrt(6))[..., None, None]
    torch.testing.assert_close(layer._pcsa(xs), expected)


def test_branch_variants_split_channels_per_kernel():
    layer = SCSA(C, kernel_sizes=[3, 7])  # a YAML list works too
    assert layer.groups == 2 and [m.kernel_size[0] for m in layer.dwconvs] == [3, 7]
    assert all(m.in_channels == C // 2 for m in layer.dwconvs)
    assert layer.norm_h.num_groups == 2
