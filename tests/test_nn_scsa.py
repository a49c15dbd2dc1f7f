"""SCSA against the paper: an independent reference of equations 1-13, parameter count,
argument validation, small maps and the reference/fast dispatch."""

from __future__ import annotations

import math
import types

import pytest
import torch

from scsa_yolo.nn import scsa as scsa_module
from scsa_yolo.nn.scsa import SCSA


# --------------------------------------------------------------------------- reference
def _group_norm(t: torch.Tensor, groups: int, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5):
    """GroupNorm written out: biased variance over (C/groups, *spatial) of each sample."""
    out = torch.empty_like(t)
    b, c = t.shape[:2]
    per = c // groups
    for n in range(b):
        for g in range(groups):
            block = t[n, g * per : (g + 1) * per]
            mean = block.mean()
            var = ((block - mean) ** 2).mean()
            out[n, g * per : (g + 1) * per] = (block - mean) / torch.sqrt(var + eps)
    shape = (1, c) + (1,) * (t.dim() - 2)
    return out * gamma.reshape(shape) + beta.reshape(shape)


def _depthwise_conv1d(seq: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """seq (B, c, L), weight (c, 1, k): out[l] = bias + sum_t w[t] * seq[l + t - k//2] (zero pad)."""
    k = weight.shape[-1]
    pad = k // 2
    length = seq.shape[-1]
    padded = torch.nn.functional.pad(seq, (pad, pad))
    out = bias.reshape(1, -1, 1).expand(seq.shape[0], -1, length).clone()
    for t in range(k):
        out = out + weight[:, 0, t].reshape(1, -1, 1) * padded[:, :, t : t + length]
    return out


def reference_scsa(x: torch.Tensor, p: dict[str, torch.Tensor], kernels=(3, 5, 7, 9), window: int = 7):
    """Equations 1-13 of the paper, plainly. ``p`` is an SCSA state dict."""
    b, c, h, w = x.shape
    groups = len(kernels)
    per = c // groups
    # eq. 1-2: directional average pooling, then channel groups
    x_h = x.sum(dim=3) / w  # (B, C, H)
    x_w = x.sum(dim=2) / h  # (B, C, W)
    conv_h, conv_w = [], []
    for i in range(groups):  # eq. 3-4: the same depth-wise convolution for both directions
        wt, bs = p[f"dwconvs.{i}.weight"], p[f"dwconvs.{i}.bias"]
        conv_h.append(_depthwise_conv1d(x_h[:, i * per : (i + 1) * per], wt, bs))
        conv_w.append(_depthwise_conv1d(x_w[:, i * per : (i + 1) * per], wt, bs))
    # eq. 5-7
    attn_h = torch.sigmoid(_group_norm(torch.cat(conv_h, 1), groups, p["norm_h.weight"], p["norm_h.bias"]))
    attn_w = torch.sigmoid(_group_norm(torch.cat(conv_w, 1), groups, p["norm_w.weight"], p["norm_w.bias"]))
    xs = torch.empty_like(x)
    for i in range(h):
        for j in range(w):
            xs[:, :, i, j] = x[:, :, i, j] * attn_h[:, :, i] * attn_w[:, :, j]
    # eq. 8: 7x7 average pooling, stride 7
    hp, wp = h // window, w // window
    xp = torch.empty(b, c, hp, wp, dtype=x.dtype)
    for i in range(hp):
        for j in range(wp):
            xp[:, :, i, j] = xs[:, :, i * window : (i + 1) * window, j * window : (j + 1) * window].mean(dim=(2, 3))
    xp = _group_norm(xp, 1, p["norm_pcsa.weight"], p["norm_pcsa.bias"])
    # eq. 9-10: depth-wise 1x1 projections, tokens N = H'W'
    tokens = xp.reshape(b, c, hp * wp)
    q = p["q.weight"].reshape(1, c, 1) * tokens
    k = p["k.weight"].reshape(1, c, 1) * tokens
    v = p["v.weight"].reshape(1, c, 1) * tokens
    # eq. 11: channel-wise single-head attention
    logits = torch.einsum("bcn,bdn->bcd", q, k) / math.sqrt(c)
    weights = torch.exp(logits - logits.max(dim=-1, keepdim=True).values)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    attended = torch.einsum("bcd,bdn->bcn", weights, v)
    # eq. 12-13
    gate = torch.sigmoid(attended.mean(dim=-1))
    return xs * gate.reshape(b, c, 1, 1)


def _randomised(layer: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (norm affines included) a random value so parity covers them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in layer.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5 + (1.0 if param.dim() == 1 else 0.0))
    return layer


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize("shape", [(2, 64, 14, 14), (1, 32, 9, 23), (3, 16, 7, 7), (2, 64, 20, 15), (1, 8, 29, 8)])
def test_matches_plain_reference_of_equations(shape):
    torch.manual_seed(1)
    layer = _randomised(SCSA(shape[1], impl="reference")).eval()
    x = torch.randn(*shape) * 2
    expected = reference_scsa(x.double(), {k: v.double() for k, v in layer.state_dict().items()})
    with torch.no_grad():
        got = layer(x)
    assert got.shape == x.shape and got.dtype == x.dtype
    assert (got.double() - expected).abs().max().item() <= 1e-5


def test_default_parameter_count_is_16c():
    for c in (4, 16, 64, 256, 1024):
        assert sum(p.numel() for p in SCSA(c).parameters()) == 16 * c


def test_state_dict_names_are_the_contract():
    names = set(SCSA(16).state_dict())
    expected = {f"dwconvs.{i}.{t}" for i in range(4) for t in ("weight", "bias")}
    expected |= {f"{n}.{t}" for n in ("norm_h", "norm_w", "norm_pcsa") for t in ("weight", "bias")}
    expected |= {"q.weight", "k.weight", "v.weight"}
    assert names == expected


# --------------------------------------------------------------------------- small maps
@pytest.mark.parametrize("size", [(1, 1), (5, 5), (3, 6), (1, 12)])
def test_maps_smaller_than_the_window(size):
    torch.manual_seed(2)
    layer = _randomised(SCSA(32)).eval()
    x = torch.randn(2, 32, *size)
    with torch.no_grad():
        got = layer(x)
    assert got.shape == x.shape and torch.isfinite(got).all()
    if max(size) < 7:
        # one window covers the whole map: identical to the global-pooling ablation
        global_pool = SCSA(32, window=None).eval()
        global_pool.load_state_dict(layer.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(got, global_pool(x), rtol=0, atol=1e-6)


def test_short_axis_pools_in_one_window_long_axis_in_sevens():
    """A 3x15 map: window (3, 7) -> 1x2 tokens; checked against pooling written by hand."""
    torch.manual_seed(3)
    layer = _randomised(SCSA(16)).eval()
    x = torch.randn(1, 16, 3, 15)
    with torch.no_grad():
        xs = layer._smsa(x)
        pooled = layer._pool(xs)
    by_hand = torch.stack([xs[..., 0:7].mean(dim=(2, 3)), xs[..., 7:14].mean(dim=(2, 3))], dim=-1)
    torch.testing.assert_close(pooled, by_hand.unsqueeze(2))


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        (dict(channels=30), "channels=30"),
        (dict(channels=64, kernel_sizes=(3, 5, 7)), "channels=64"),  # 64 % 3 != 0
        (dict(channels=64, kernel_sizes=(3, 5, 7, 9), groups=2), "kernel_sizes"),
        (dict(channels=64, kernel_sizes=(3, 4, 7, 9)), "kernel_sizes"),
        (dict(channels=64, window=-7), "window=-7"),
        (dict(channels=64, window=7.5), "window=7.5"),
        (dict(channels=64, num_heads=3), "num_heads=3"),
        (dict(channels=64, norm="instance"), "norm='instance'"),
        (dict(channels=64, impl="cuda"), "impl='cuda'"),
        (dict(channels=64, use_smsa=False, use_pcsa=False), "use_smsa"),
    ],
)
def test_bad_arguments_name_layer_argument_and_value(kwargs, argument):
    with pytest.raises(ValueError) as info:
        SCSA(**kwargs)
    message = str(info.value)
    assert message.startswith("SCSA") and argument in message


def test_channels_not_divisible_by_groups_message():
    with pytest.raises(ValueError, match=r"SCSA: channels=30 must be divisible by the number of groups K=4"):
        SCSA(30)


def test_wrong_input_channels_is_a_clear_error():
    with pytest.raises(ValueError, match=r"SCSA expects input \(B, 16, H, W\)"):
        SCSA(16)(torch.randn(1, 8, 7, 7))


# --------------------------------------------------------------------------- dispatch
def test_reference_forced_by_environment(monkeypatch):
    monkeypatch.setenv(scsa_module.IMPL_ENV_VAR, "reference")
    layer = SCSA(16, impl="fast")
    assert layer.resolved_impl() == "reference"
    assert layer(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)


def test_invalid_environment_value_is_reported(monkeypatch):
    monkeypatch.setenv(scsa_module.IMPL_ENV_VAR, "turbo")
    with pytest.raises(ValueError, match="SCSA_YOLO_IMPL='turbo'"):
        SCSA(16)(torch.randn(1, 16, 8, 8))


def test_fast_requested_but_unsupported_raises(monkeypatch):
    monkeypatch.delenv(scsa_module.IMPL_ENV_VAR, raising=False)
    rejecting = types.SimpleNamespace(supports=lambda layer, x: False, scsa_forward=None)
    monkeypatch.setattr(scsa_module, "_fast_module", rejecting)
    with pytest.raises(RuntimeError, match="impl='fast'.*unavailable"):
        SCSA(16, impl="fast")(torch.randn(1, 16, 8, 8))
    # auto falls back to the reference path silently
    assert SCSA(16)(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)


def test_auto_dispatches_to_a_supporting_fast_module(monkeypatch):
    monkeypatch.delenv(scsa_module.IMPL_ENV_VAR, raising=False)
    calls = []

    def fused(layer, x):
        calls.append(tuple(x.shape))
        return layer.forward_reference(x)

    accepting = types.SimpleNamespace(supports=lambda layer, x: True, scsa_forward=fused)
    monkeypatch.setattr(scsa_module, "_fast_module", accepting)
    SCSA(16)(torch.randn(2, 16, 8, 8))
    SCSA(16, impl="reference")(torch.randn(2, 16, 8, 8))
    assert calls == [(2, 16, 8, 8)]
