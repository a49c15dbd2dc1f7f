"""SCSA fidelity options (issue 13 item 6) and the kernel_sizes message (issue 20 item 7).

attn_drop: dropout on PCSA's softmax map, training only, the fused path steps aside.
qkv_init: 'official' draws q/k/v as the authors' mmpretrain init does, N(0, 2/C).
Small maps: the gate is sigmoid(softmax(q k^T / sqrt(C)) v), not sigmoid(v).
"""

from __future__ import annotations

import math
import pickle
import types

import pytest
import torch
import torch.nn.functional as F

from scsa_yolo.nn import scsa as scsa_module
from scsa_yolo.nn.scsa import SCSA


def _randomised(layer: SCSA, seed: int = 0) -> SCSA:
    """Every parameter drawn at random, so no check passes because of a neutral init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.7 + (1.0 if p.dim() == 1 else 0.0))
    return layer


# --------------------------------------------------------------------------- attn_drop
def test_attn_drop_changes_training_outputs_but_not_eval_outputs():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 14, 14)
    plain = _randomised(SCSA(32))
    dropped = SCSA(32, attn_drop=0.5)
    dropped.load_state_dict(plain.state_dict())
    with torch.no_grad():
        expected = plain.eval()(x)
        torch.testing.assert_close(dropped.eval()(x), expected, rtol=0, atol=0)
        dropped.train()
        torch.manual_seed(1)
        first = dropped(x)
        torch.manual_seed(2)
        second = dropped(x)
        # GroupNorm has no running statistics: without dropout, train == eval
        torch.testing.assert_close(plain.train()(x), expected, rtol=0, atol=0)
    assert (first - expected).abs().max() > 1e-3
    assert (first - second).abs().max() > 1e-3


def test_attn_drop_acts_on_the_softmax_channel_map():
    """Rebuilt by hand for a globally pooled layer: the dropout mask multiplies softmax(QK^T)."""
    torch.manual_seed(3)
    c, p = 16, 0.3
    layer = _randomised(SCSA(c, window=None, use_smsa=False, attn_drop=p)).train()
    x = torch.randn(2, c, 9, 9)
    torch.manual_seed(7)
    with torch.no_grad():
        got = layer(x)
    torch.manual_seed(7)
    # dropout draws depend on shape/dtype only: the same seed gives the layer's mask
    mask = F.dropout(torch.ones(2, 1, c, c), p, training=True)
    y = F.group_norm(x.mean(dim=(2, 3), keepdim=True), 1, layer.norm_pcsa.weight, layer.norm_pcsa.bias)
    y = y.reshape(2, c)
    q, k, v = (y * proj.weight.reshape(1, c) for proj in (layer.q, layer.k, layer.v))
    attn = torch.softmax(q[:, :, None] * k[:, None, :] / math.sqrt(c), dim=-1)  # (B, C, C)
    gate = torch.sigmoid(((attn * mask[:, 0]) @ v[:, :, None])[..., 0])
    torch.testing.assert_close(got, x * gate[:, :, None, None], rtol=1e-5, atol=1e-6)
    assert (mask == 0).any()  # the check above is not vacuous


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, True, "0.1", None, float("nan")])
def test_attn_drop_is_validated(value):
    with pytest.raises(ValueError, match=r"SCSA: attn_drop=.* must be a dropout probability p with 0 <= p < 1"):
        SCSA(16, attn_drop=value)


def test_attn_drop_without_pcsa_is_refused():
    with pytest.raises(ValueError, match=r"SCSA: attn_drop=0\.1 acts on PCSA's attention map.*use_pcsa=False"):
        SCSA(16, use_pcsa=False, attn_drop=0.1)


def test_fused_path_steps_aside_for_dropout_in_training(monkeypatch):
    monkeypatch.delenv(scsa_module.IMPL_ENV_VAR, raising=False)
    calls = []

    def fused(layer, x):
        calls.append(layer.training)
        return layer.forward_reference(x)

    monkeypatch.setattr(scsa_module, "_fast_module", types.SimpleNamespace(supports=lambda m, x: True,
                                                                             scsa_forward=fused))
    x = torch.randn(1, 16, 8, 8)
    layer = SCSA(16, attn_drop=0.1)
    layer.train()(x)
    assert calls == []  # training with dropout: the reference path
    layer.eval()(x)
    assert calls == [False]  # eval: dropout is off, the kernel may run
    SCSA(16).train()(x)
    assert calls == [False, True]  # no dropout: the kernel also trains
    with pytest.raises(RuntimeError, match=r"impl='fast'.*attn_drop=0\.1 in training mode"):
        SCSA(16, attn_drop=0.1, impl="fast").train()(x)


# --------------------------------------------------------------------------- qkv_init
def _qkv(layer: SCSA) -> torch.Tensor:
    return torch.cat([layer.q.weight.flatten(), layer.k.weight.flatten(), layer.v.weight.flatten()])


@pytest.mark.parametrize("channels", [256, 1024])
def test_official_qkv_init_is_kaiming_normal_fan_out(channels):
    torch.manual_seed(4)
    w = _qkv(SCSA(channels, qkv_init="official"))
    std = math.sqrt(2.0 / channels)
    assert abs(w.std().item() / std - 1) < 0.06
    assert abs(w.mean().item()) < 0.1 * std
    # a normal law: about 68% within one std (a uniform law of that std gives 58%)
    assert 0.64 < (w.abs() < std).float().mean().item() < 0.72


def test_default_qkv_init_is_unchanged_uniform():
    torch.manual_seed(5)
    w = _qkv(SCSA(1024))
    assert w.abs().max() <= 1.0 and w.abs().max() > 0.99
    assert abs(w.std().item() - 1 / math.sqrt(3)) < 0.02


def test_official_qkv_init_touches_only_q_k_v():
    torch.manual_seed(6)
    default = SCSA(64)
    torch.manual_seed(6)
    official = SCSA(64, qkv_init="official")
    a, b = default.state_dict(), official.state_dict()
    for name in a:
        if name.split(".")[0] in ("q", "k", "v"):
            assert not torch.equal(a[name], b[name]), name
        else:
            assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("value", ["kaiming", "Official", None])
def test_qkv_init_is_validated(value):
    with pytest.raises(ValueError, match=r"SCSA: qkv_init=.* is not one of 'default', 'official'"):
        SCSA(16, qkv_init=value)


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("source, target", [
    ({}, {"qkv_init": "official", "attn_drop": 0.1}),
    ({"qkv_init": "official", "attn_drop": 0.1}, {}),
])
def test_state_dict_is_the_same_whatever_the_options(source, target):
    src, dst = _randomised(SCSA(32, **source)), SCSA(32, **target)
    assert {k: v.shape for k, v in src.state_dict().items()} == {k: v.shape for k, v in dst.state_dict().items()}
    dst.load_state_dict(src.state_dict(), strict=True)
    x = torch.randn(1, 32, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(dst.eval()(x), src.eval()(x), rtol=0, atol=0)


def test_a_pickled_layer_from_before_the_options_still_runs():
    """Ultralytics checkpoints pickle whole modules; older SCSA objects lack the new attributes."""
    layer = _randomised(SCSA(16)).eval()
    del layer.__dict__["attn_drop"], layer.__dict__["qkv_init"]
    old = pickle.loads(pickle.dumps(layer))
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(old(x), layer(x))
        old.train()(x)
    assert old.attn_drop == 0.0 and old.qkv_init == "default" and "attn_drop" not in repr(old)


# --------------------------------------------------------------------------- small maps
def test_single_token_gate_is_attention_over_channels_not_sigmoid_v():
    """The docstring's formula for maps below 7x7 (N = 1), written out."""
    torch.manual_seed(8)
    c = 16
    layer = _randomised(SCSA(c, use_smsa=False)).eval()
    x = torch.randn(3, c, 5, 5)
    with torch.no_grad():
        got = layer(x)
        y = F.group_norm(x.mean(dim=(2, 3), keepdim=True), 1, layer.norm_pcsa.weight, layer.norm_pcsa.bias)
        y = y.reshape(3, c)
        q, k, v = (y * proj.weight.reshape(1, c) for proj in (layer.q, layer.k, layer.v))
        attn = torch.softmax(q[:, :, None] * k[:, None, :] / math.sqrt(c), dim=-1)
        gate = torch.sigmoid((attn @ v[:, :, None])[..., 0])
    torch.testing.assert_close(got, x * gate[:, :, None, None], rtol=1e-5, atol=1e-6)
    assert (torch.sigmoid(v) - gate).abs().max() > 0.05  # what the old docstring claimed


# --------------------------------------------------------------------------- YAML rows
@pytest.fixture
def build():
    """DetectionModel from a YAML dict, with our rows registered (imported only here: the
    layer tests above do not need ultralytics)."""
    import scsa_yolo.integration as integration

    integration.register()
    from ultralytics.nn.tasks import DetectionModel

    return lambda cfg: DetectionModel(cfg, verbose=False)


def _yaml(row):
    return {"nc": 3, "scales": {"n": [0.33, 0.25, 1024]}, "scale": "n",
            "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [128, 3, 2]]],
            "head": [row, [[-1], 1, "Detect", ["nc"]]]}


def test_a_channel_count_as_first_argument_is_explained(build):
    from scsa_yolo.integration.ultralytics import YamlRowError

    with pytest.raises(YamlRowError) as info:
        build(_yaml([-1, 1, "SCSA", [30]]))
    message = str(info.value)
    assert "model YAML row 2 [-1, 1, SCSA, [30]]" in message
    assert "kernel_sizes=30 must be a list of odd ints" in message
    assert "first positional argument of SCSA is kernel_sizes, not a channel count" in message
    assert "from the previous layer" in message and "[-1, 1, SCSA, []]" in message
    # the advice given works
    model = build(_yaml([-1, 1, "SCSA", []]))
    assert [m.channels for m in model.modules() if isinstance(m, SCSA)] == [32]


@pytest.mark.parametrize("value", ["3579", 7.0])
def test_other_non_list_kernel_sizes_keep_the_plain_message(value):
    with pytest.raises(ValueError, match=r"SCSA: kernel_sizes=.* must be a non-empty list of odd ints"):
        SCSA(16, kernel_sizes=value)


def test_yaml_keywords_select_the_official_options(build):
    model = build(_yaml([-1, 1, "SCSA", [{"attn_drop": 0.1, "qkv_init": "official"}]]))
    (layer,) = [m for m in model.modules() if isinstance(m, SCSA)]
    assert layer.attn_drop == 0.1 and layer.qkv_init == "official"
    assert "attn_drop=0.1" in repr(layer) and "qkv_init='official'" in repr(layer)
