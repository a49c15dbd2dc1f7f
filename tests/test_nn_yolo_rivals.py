"""The rivals YOLO users compare against (issue 31: SimAM, LSKA, MLCA, CAA): equal to the
authors' code with equal weights, parameter counts by formula, every YOLO width and map size,
autocast, gradients, ONNX / TorchScript export, compile, the registry entries, and bad
arguments named as a layer error and as a model-YAML row error.

Each ``_authors_*`` function below re-states, with plain torch ops and the layer's weights,
the computation of the authors' public file it names, step by step in their order."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from test_nn_table2_rivals import (
    WIDTHS,
    _params,
    _perturbed,
    assert_compiled_forward_and_backward_match,
    assert_jit_trace_matches_on_other_shapes,
    assert_onnx_export_matches_onnxruntime,
)

from scsa_yolo.nn import CAA, LSKA, MLCA, SimAM
from scsa_yolo.nn.eca import eca_kernel_size
from scsa_yolo.nn.mlca import adaptive_pool_matrix
from scsa_yolo.nn.registry import attention_names, create_attention, get_attention

LAYERS = [SimAM, LSKA, MLCA, CAA]
SHAPES = [(2, 3), (5, 5), (7, 7), (13, 22), (20, 20), (40, 40)]  # H, W; 1 x 1 has its own tests


# ----------------------------------------------------------------------------- the authors' code


def _authors_simam(x: torch.Tensor, e_lambda: float = 1e-4) -> torch.Tensor:
    # ZjjConan/SimAM, mmdetection/mmdet/models/backbones/attentions/simam_module.py
    # (commit 9a2b154c6d802209314e96ac3ba381550317d9e3), simam_module.forward
    b, c, h, w = x.size()
    n = w * h - 1
    centred_sq = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
    y = centred_sq / (4 * (centred_sq.sum(dim=[2, 3], keepdim=True) / n + e_lambda)) + 0.5
    return x * torch.sigmoid(y)


# StevenLauHKHK/Large-Separable-Kernel-Attention, models/van.py
# (commit 3629d63f6cf92198cde6ec650301c30bb90b77e1), class LSKA: per k_size, the literal
# (kernel, padding) of conv0h/conv0v and (kernel, padding, dilation) of conv_spatial_h/_v.
_AUTHORS_LSKA = {
    7: ((3, 1), (3, 2, 2)), 11: ((3, 1), (5, 4, 2)), 23: ((5, 2), (7, 9, 3)),
    35: ((5, 2), (11, 15, 3)), 41: ((5, 2), (13, 18, 3)), 53: ((5, 2), (17, 24, 3)),
}


def _authors_lska(layer: LSKA, x: torch.Tensor, k_size: int) -> torch.Tensor:
    # models/van.py, LSKA.forward: u * conv1(conv_spatial_v(conv_spatial_h(conv0v(conv0h(x)))))
    (k0, p0), (k1, p1, d) = _AUTHORS_LSKA[k_size]
    c = x.shape[1]
    assert layer.local_h.weight.shape == (c, 1, 1, k0) and layer.dilated_v.weight.shape == (c, 1, k1, 1)
    u = x.clone()
    attn = F.conv2d(x, layer.local_h.weight, layer.local_h.bias, padding=(0, p0), groups=c)
    attn = F.conv2d(attn, layer.local_v.weight, layer.local_v.bias, padding=(p0, 0), groups=c)
    attn = F.conv2d(attn, layer.dilated_h.weight, layer.dilated_h.bias, padding=(0, p1), dilation=d, groups=c)
    attn = F.conv2d(attn, layer.dilated_v.weight, layer.dilated_v.bias, padding=(p1, 0), dilation=d, groups=c)
    attn = F.conv2d(attn, layer.proj.weight, layer.proj.bias)
    return u * attn


def _authors_mlca_kernel(in_size: int, gamma: float = 2, b: float = 1) -> int:
    # wandahangFY/MLCA, MLCA.py (commit b970c8d04fc63b109fc6ff0f3443170e1e637f8d), MLCA.__init__
    t = int(abs(math.log(in_size, 2) + b) / gamma)
    return t if t % 2 else t + 1


def _authors_mlca(layer: MLCA, x: torch.Tensor, local_size: int = 5, local_weight: float = 0.5) -> torch.Tensor:
    # wandahangFY/MLCA, MLCA.py (commit b970c8d04fc63b109fc6ff0f3443170e1e637f8d), MLCA.forward
    k = layer.kernel_size
    local_arv = F.adaptive_avg_pool2d(x, local_size)
    global_arv = F.adaptive_avg_pool2d(local_arv, 1)
    b, c, m, n = x.shape
    temp_local = local_arv.view(b, c, -1).transpose(-1, -2).reshape(b, 1, -1)
    temp_global = global_arv.view(b, c, -1).transpose(-1, -2)
    y_local = F.conv1d(temp_local, layer.conv_local.weight, padding=(k - 1) // 2)
    y_global = F.conv1d(temp_global, layer.conv_global.weight, padding=(k - 1) // 2)
    y_local_t = y_local.reshape(b, local_size * local_size, c).transpose(-1, -2).view(b, c, local_size, local_size)
    y_global_t = y_global.view(b, -1).unsqueeze(-1).unsqueeze(-1)
    att_local = y_local_t.sigmoid()
    att_global = F.adaptive_avg_pool2d(y_global_t.sigmoid(), [local_size, local_size])
    att_all = F.adaptive_avg_pool2d(att_global * (1 - local_weight) + (att_local * local_weight), [m, n])
    return x * att_all


def _conv_module(x, conv, norm_act, stats, training):
    """mmcv ConvModule as CAA builds it: conv (bias only without a norm) -> BN -> SiLU."""
    if not norm_act:
        return F.conv2d(x, conv.weight, conv.bias)
    conv, bn = conv[0], conv[1]
    assert conv.bias is None
    mean, var = stats
    y = F.conv2d(x, conv.weight)
    y = F.batch_norm(y, mean, var, bn.weight, bn.bias, training=training, momentum=0.03, eps=0.001)
    return F.silu(y)


def _authors_caa(layer: CAA, x: torch.Tensor, stats, training: bool, norm_act: bool = True, k: int = 11):
    # PKINet/PKINet, mmrotate/models/backbones/pkinet.py (commit c2ee525025a330b9a943be9b791d99017837b325),
    # class CAA (defaults: h/v_kernel_size 11, norm_cfg BN(momentum=0.03, eps=0.001), act_cfg SiLU);
    # their forward returns the factor; as an attention row it gates its input: x * factor.
    # (The index holds NUST-Machine-Intelligence-Laboratory/PKINet only with its v2 files, no CAA.)
    c = x.shape[1]
    t = F.avg_pool2d(x, 7, 1, 3)  # nn.AvgPool2d(7, 1, 3): zero padding counted in the mean
    t = _conv_module(t, layer.conv1, norm_act, stats[0], training)
    t = F.conv2d(t, layer.h_conv.weight, layer.h_conv.bias, padding=(0, k // 2), groups=c)
    t = F.conv2d(t, layer.v_conv.weight, layer.v_conv.bias, padding=(k // 2, 0), groups=c)
    t = _conv_module(t, layer.conv2, norm_act, stats[1], training)
    return x * torch.sigmoid(t)


# ----------------------------------------------------------------------------- equal to the authors


@pytest.mark.parametrize("e_lambda", [1e-4, 0.1])
def test_simam_is_bit_equal_to_the_authors(e_lambda):
    torch.manual_seed(0)
    layer = SimAM(32) if e_lambda == 1e-4 else SimAM(32, e_lambda=e_lambda)
    for h, w in SHAPES + [(1, 2), (80, 80)]:
        x = torch.randn(2, 32, h, w) * 3
        assert torch.equal(layer(x), _authors_simam(x, e_lambda)), (h, w)


def test_simam_one_pixel_map_is_the_limit_where_the_authors_divide_zero_by_zero():
    x = torch.randn(2, 8, 1, 1)
    assert torch.isnan(_authors_simam(x)).all()
    torch.testing.assert_close(SimAM(8)(x), x * torch.sigmoid(torch.tensor(0.5)), rtol=0, atol=0)


def test_simam_energy_by_hand():
    """One channel [0, 0, 0, 4]: mean 1, squared deviations (1, 1, 1, 9), n = 3, variance 4."""
    x = torch.tensor([0.0, 0.0, 0.0, 4.0]).reshape(1, 1, 2, 2)
    lam = 1e-4
    inverse = torch.tensor([1.0, 1.0, 1.0, 9.0]) / (4 * (4 + lam)) + 0.5
    torch.testing.assert_close(SimAM(1)(x).flatten(), x.flatten() * torch.sigmoid(inverse))


@pytest.mark.parametrize("k_size", sorted(_AUTHORS_LSKA))
def test_lska_equals_the_authors_for_every_kernel_size(k_size):
    torch.manual_seed(k_size)
    layer = LSKA(16, kernel_size=k_size)
    assert (layer.kernel_size, _params(layer)) == (k_size, _lska_formula(16, k_size))
    with torch.no_grad():
        for h, w in SHAPES + [(1, 1)]:
            x = torch.randn(2, 16, h, w)
            torch.testing.assert_close(layer(x), _authors_lska(layer, x, k_size), rtol=1e-5, atol=1e-6)


def test_lska_reach_is_the_large_kernel():
    """The cascade reaches k = k0 + (k1 - 1) d: a k x k window around each output."""
    for k_size in (7, 23):
        layer = LSKA(2, kernel_size=k_size)
        x = torch.randn(1, 2, 61, 61, requires_grad=True)
        layer(x)[0, :, 30, 30].sum().backward()
        rows, cols = (x.grad[0].abs().sum(dim=0) > 0).nonzero().unbind(1)
        half = k_size // 2
        assert (rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()) == (
            30 - half, 30 + half, 30 - half, 30 + half)


def test_mlca_kernel_size_is_the_authors_for_every_width():
    assert all(MLCA(c).kernel_size == _authors_mlca_kernel(c) == eca_kernel_size(c) for c in range(1, 2049))
    assert [MLCA(c).kernel_size for c in WIDTHS] == [3, 3, 3, 3, 5, 5, 5, 5]


@pytest.mark.parametrize("channels", [8, 16, 128, 256])
def test_mlca_equals_the_authors(channels):
    torch.manual_seed(channels)
    layer = _perturbed(MLCA, channels)
    with torch.no_grad():
        for h, w in SHAPES + [(1, 1), (3, 11)]:
            x = torch.randn(2, channels, h, w)
            torch.testing.assert_close(layer(x), _authors_mlca(layer, x), rtol=1e-5, atol=1e-6)


def test_mlca_options_equal_the_authors():
    torch.manual_seed(0)
    layer = _perturbed(MLCA, 64)
    custom = MLCA(64, local_size=3, local_weight=0.8)
    custom.load_state_dict(layer.state_dict())
    x = torch.randn(2, 64, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(custom(x), _authors_mlca(custom, x, local_size=3, local_weight=0.8))


def test_mlca_local_branch_reads_channels_position_by_position():
    """Kernel [0, 0, 1] (each value takes its right neighbour): at grid cell p, channel j
    takes channel j + 1 of the same cell, and the last channel takes channel 0 of cell p + 1."""
    layer = MLCA(8, local_size=2, local_weight=1.0)  # k = 3 for 8 channels
    with torch.no_grad():
        layer.conv_local.weight.copy_(torch.tensor([0.0, 0.0, 1.0]).reshape(1, 1, 3))
    x = (torch.arange(32.0).reshape(1, 8, 2, 2) + 1) * 0.05  # a 2 x 2 map: one value per grid cell
    gate = layer(x) / x
    cells = x.flatten(2)[0]  # (C, cells)
    expected = torch.empty(8, 4)
    for p in range(4):
        for ch in range(8):
            nxt = cells[ch + 1, p] if ch < 7 else (cells[0, p + 1] if p < 3 else torch.tensor(0.0))
            expected[ch, p] = torch.sigmoid(nxt)
    torch.testing.assert_close(gate.flatten(2)[0], expected)


@pytest.mark.parametrize("norm_act", [True, False])
def test_caa_equals_the_authors_in_training_and_evaluation(norm_act):
    torch.manual_seed(0)
    layer = _perturbed(CAA, 32) if norm_act else CAA(32, norm_act=False)
    stats = [(torch.zeros(32), torch.ones(32)), (torch.zeros(32), torch.ones(32))]
    for h, w in SHAPES[:4] + [(1, 1)]:
        x = torch.randn(2, 32, h, w)
        layer.train()
        expected = _authors_caa(layer, x, stats, training=True, norm_act=norm_act)  # updates ``stats`` in place
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)
    if norm_act:  # the running statistics moved alike (momentum 0.03)
        for (mean, var), seq in zip(stats, (layer.conv1, layer.conv2)):
            torch.testing.assert_close(seq[1].running_mean, mean)
            torch.testing.assert_close(seq[1].running_var, var)
            assert seq[1].eps == 1e-3 and seq[1].momentum == 0.03 and (mean != 0).any()
    layer.eval()
    with torch.no_grad():
        for h, w in SHAPES[:4] + [(1, 1)]:
            x = torch.randn(1, 32, h, w)
            torch.testing.assert_close(layer(x), _authors_caa(layer, x, stats, training=False, norm_act=norm_act),
                                       rtol=1e-5, atol=1e-6)


def test_caa_strip_lengths_are_options():
    torch.manual_seed(0)
    layer = CAA(8, h_kernel_size=13, v_kernel_size=13).eval()
    stats = [(bn.running_mean, bn.running_var) for bn in (layer.conv1[1], layer.conv2[1])]
    x = torch.randn(1, 8, 15, 9)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _authors_caa(layer, x, stats, training=False, k=13))
    assert CAA(8, h_kernel_size=3, v_kernel_size=5).v_conv.kernel_size == (5, 1)


def test_mlca_pool_matrix_is_adaptive_pooling():
    """The export path's matrices average exactly what adaptive pooling averages, both ways."""
    for n_in in range(1, 24):
        for n_out in range(1, 24):
            v = torch.randn(3, n_in)
            expected = F.adaptive_avg_pool1d(v.unsqueeze(1), n_out).squeeze(1)
            torch.testing.assert_close(v @ adaptive_pool_matrix(n_in, n_out, v).T, expected)


# ----------------------------------------------------------------------------- parameters


def _lska_formula(c: int, k_size: int = 7) -> int:
    k0, k1, _ = {7: (3, 3, 2), 11: (3, 5, 2), 23: (5, 7, 3), 35: (5, 11, 3), 41: (5, 13, 3), 53: (5, 17, 3)}[k_size]
    return c * c + c + 2 * c * (k0 + 1) + 2 * c * (k1 + 1)


FORMULAS = {
    SimAM: lambda c: 0,
    LSKA: _lska_formula,
    MLCA: lambda c: 2 * _authors_mlca_kernel(c),
    CAA: lambda c: 2 * c * c + 4 * c + 2 * c * (11 + 1),
}


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("channels", WIDTHS)
def test_parameter_count_matches_the_formula(cls, channels):
    assert _params(cls(channels)) == FORMULAS[cls](channels)


def test_known_sizes():
    assert (_params(LSKA(64)), _params(MLCA(64)), _params(MLCA(256)), _params(CAA(64))) == (
        64 * 64 + 17 * 64, 6, 10, 2 * 64 * 64 + 28 * 64)
    assert _params(CAA(64, norm_act=False)) == 2 * 64 * 64 + 2 * 64 + 64 * (11 + 11 + 2)


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SimAM(0), "SimAM: channels=0 must be a positive int"),
        (lambda: SimAM(16, e_lambda=0), "SimAM: e_lambda=0 must be a positive number"),
        (lambda: SimAM(16, e_lambda="small"), "SimAM: e_lambda='small' must be a positive number"),
        (lambda: LSKA(16, kernel_size=9), "LSKA: kernel_size=9 is not one of 7, 11, 23, 35, 41, 53"),
        (lambda: LSKA(True), "LSKA: channels=True must be a positive int"),
        (lambda: MLCA(16, local_size=0), "MLCA: local_size=0 must be a positive int"),
        (lambda: MLCA(16, local_weight=1.5), "MLCA: local_weight=1.5 must be a number in [0, 1]"),
        (lambda: MLCA(16, gamma=0), "MLCA: gamma=0 must be a positive number"),
        (lambda: MLCA(16, b=None), "MLCA: b=None must be a number"),
        (lambda: CAA(16, h_kernel_size=10), "CAA: h_kernel_size=10 must be odd"),
        (lambda: CAA(16, v_kernel_size=0), "CAA: v_kernel_size=0 must be a positive int"),
        (lambda: CAA(16, norm_act="yes"), "CAA: norm_act='yes' must be true or false"),
    ],
)
def test_bad_arguments_name_layer_argument_and_value(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert str(info.value).startswith(message)


# ----------------------------------------------------------------------------- every width and map size


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_every_yolo_width_and_map_size(cls):
    torch.manual_seed(0)
    for channels in WIDTHS:
        layer = cls(channels)
        for size in [(1, 1), (1, 5), (2, 3), (7, 7), (13, 22)]:
            x = torch.randn(2, channels, *size)
            y = layer(x)
            assert y.shape == x.shape and torch.isfinite(y).all(), (channels, size)
        layer.eval()
        with torch.no_grad():
            assert torch.isfinite(layer(torch.randn(1, channels, 1, 1))).all()


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_gradients_are_finite_and_reach_every_parameter(cls):
    layer = _perturbed(cls, 32)
    x = torch.randn(2, 32, 9, 11, requires_grad=True)
    (layer(x) ** 2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    tiny = torch.randn(2, 8, 1, 1, requires_grad=True)  # narrowest width, 1x1 map
    cls(8)(tiny).sum().backward()
    assert torch.isfinite(tiny.grad).all()


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_dtypes_and_autocast(cls):
    torch.manual_seed(0)
    layer = cls(32).eval()
    x = torch.randn(2, 32, 10, 12)
    with torch.no_grad():
        expected = layer(x)
        for dtype in (torch.float16, torch.bfloat16):
            got = copy.deepcopy(layer).to(dtype)(x.to(dtype))
            assert got.dtype == dtype and torch.isfinite(got).all()
            torch.testing.assert_close(got.float(), expected, rtol=6e-2, atol=6e-2)
            with torch.autocast("cpu", dtype=dtype):
                auto = layer(x)
            assert auto.dtype == torch.float32  # every one ends by rescaling the fp32 input
            torch.testing.assert_close(auto.float(), expected, rtol=6e-2, atol=6e-2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.isfinite(cls(8).eval()(torch.randn(2, 8, 1, 1))).all()
        assert layer(x.transpose(2, 3).contiguous().transpose(2, 3)).shape == x.shape  # non-contiguous


# ----------------------------------------------------------------------------- export and compile


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_onnx_export_opset17_matches_onnxruntime(cls):
    assert_onnx_export_matches_onnxruntime(_perturbed(cls).eval(),
                                           [(2, 16, 15, 22), (1, 16, 9, 30), (3, 16, 1, 1), (1, 16, 40, 40)])


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # deprecated, but what YOLO's TorchScript export uses
@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_jit_trace_runs_on_other_shapes(cls):
    assert_jit_trace_matches_on_other_shapes(_perturbed(cls).eval())


@pytest.mark.slow
@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_torch_compile_forward_and_backward_on_cpu(cls):
    assert_compiled_forward_and_backward_match(_perturbed(cls).eval())


# ----------------------------------------------------------------------------- registry


def test_registry_lists_the_four_with_labels():
    expected = {"simam": (SimAM, "+SimAM"), "lska": (LSKA, "+LSKA"), "mlca": (MLCA, "+MLCA"), "caa": (CAA, "+CAA")}
    names = attention_names()
    for name, (cls, label) in expected.items():
        spec = get_attention(name)
        assert name in names and (spec.cls, spec.label, spec.yaml_module) == (cls, label, cls.__name__)
        assert spec.kwargs == {} and spec.yaml_args == []  # the authors' defaults
        layer = create_attention(name, 16)
        assert type(layer) is cls and layer(torch.randn(2, 16, 4, 4)).shape == (2, 16, 4, 4)
    assert names.index("ela") < names.index("simam") < names.index("caa") < names.index("scsa-no-smsa")
    assert get_attention("SimAM").name == "simam" and get_attention("LSKA").name == "lska"
    assert create_attention("lska", 64, kernel_size=23).dilated_h.dilation == (3, 3)
    assert create_attention("caa", 64, norm_act=False).conv1.bias is not None


# ----------------------------------------------------------------------------- model-YAML rows


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([-1, 1, "ResAttn", ["LSKA", {"kernel_size": 9}]],
         "LSKA at width 64: LSKA: kernel_size=9 is not one of 7, 11, 23, 35, 41, 53"),
        ([-1, 1, "CAA", [{"h_kernel_size": 4}]],
         "CAA at width 64: CAA: h_kernel_size=4 must be odd"),
        ([-1, 1, "SimAM", [{"e_lambda": -1}]],
         "SimAM at width 64: SimAM: e_lambda=-1 must be a positive number (paper: 1e-4)"),
        ([-1, 1, "MLCA", [{"local_weight": 2}]],
         "MLCA at width 64: MLCA: local_weight=2 must be a number in [0, 1] (authors: 0.5)"),
    ],
    ids=["LSKA", "CAA", "SimAM", "MLCA"],
)
def test_a_bad_row_names_the_row_the_attention_the_width_and_the_fix(tmp_path, row, expected):
    """Every width and map size suits these four, so what a row can get wrong is an option."""
    import yaml

    import scsa_yolo.integration as integration
    from scsa_yolo.integration.ultralytics import YamlRowError, resolve_model_yaml

    integration.register()
    from ultralytics.nn.tasks import DetectionModel

    model = yaml.safe_load(resolve_model_yaml("yolov8-simam-backbone-res.yaml").read_text())
    model["backbone"][5] = row  # after row 4, the 64-channel P3 output of YOLOv8n
    path = tmp_path / "yolov8n-bad.yaml"
    path.write_text(yaml.safe_dump(model))
    with pytest.raises(YamlRowError) as info:
        DetectionModel(str(path), verbose=False)
    # the message starts with the file (issue 26 item 1), then the row, the attention, the width and the fix
    assert str(info.value).startswith(f"{path}: model YAML row 5 [{', '.join(map(str, row))}]: {expected}")


# ----------------------------------------------------------------------------- scsa-yolo profile


def test_profile_counts_the_four_and_table2_labels_them(tmp_path):
    """Params and GFLOPs only (no timing): SimAM adds the three residual gates alone."""
    import json

    from click.testing import CliRunner

    from scsa_yolo.cli.main import main

    records, out = tmp_path / "records", tmp_path / "profile.json"
    outcome = CliRunner().invoke(main, [
        "profile", "--model", "yolov8n", "--attns", "none,simam,lska,mlca,caa", "--imgsz", "64", "--device", "cpu",
        "--reps", "0", "--records", str(records), "--out", str(out),
    ])
    assert outcome.exit_code == 0, outcome.output
    results = {r["model"]: r for r in json.loads(out.read_text())}
    plain = results["yolov8n"]["params"]
    widths = (64, 128, 256)  # YOLOv8n's P3, P4, P5 outputs, each in backbone-res: + C gate parameters
    assert results["yolov8n-simam-backbone-res"]["params"] == plain + sum(widths)
    assert results["yolov8n-lska-backbone-res"]["params"] == plain + sum(_lska_formula(c) + c for c in widths)
    assert results["yolov8n-mlca-backbone-res"]["params"] == plain + sum(FORMULAS[MLCA](c) + c for c in widths)
    assert results["yolov8n-caa-backbone-res"]["params"] == plain + sum(FORMULAS[CAA](c) + c for c in widths)
    assert results["yolov8n-lska-backbone-res"]["gflops"] > results["yolov8n"]["gflops"]
    report = CliRunner().invoke(main, ["report", str(records), "--style", "table2"])
    assert report.exit_code == 0, report.output
    for label in ("+SimAM (backbone-res)", "+LSKA (backbone-res)", "+MLCA (backbone-res)", "+CAA (backbone-res)"):
        assert label in report.output


# ----------------------------------------------------------------------------- checkpoints

RELOAD = """
import sys, torch
from ultralytics.nn.tasks import load_checkpoint
for path in sys.argv[1:]:
    model, _ = load_checkpoint(path, device="cpu")
    model = model.float().eval()
    x = torch.load(path + ".x", weights_only=True)
    with torch.no_grad():
        y = model(x)[0]
    print(path, float((y - torch.load(path + ".y", weights_only=True)).abs().max()))
"""


@pytest.mark.slow
def test_checkpoints_of_the_four_reload_in_a_fresh_process_with_safe_load(tmp_path):
    """Ultralytics' restricted loading (ULTRALYTICS_SAFE_LOAD=1) takes every class the four
    bring (pooling, Conv1d, BatchNorm, SiLU, Sequential): one fresh process, one checkpoint each,
    in four different placements."""
    import os
    import subprocess
    import sys

    from scsa_yolo.integration.specs import resolve_model
    from scsa_yolo.integration.transfer import build_target, save_checkpoint

    paths = []
    for attn, placement in (("simam", "backbone"), ("lska", "neck-res"), ("mlca", "block"), ("caa", "backbone-res")):
        argument = resolve_model("yolov8n", attn, placement).argument
        torch.manual_seed(0)
        model = build_target(argument, 3)
        path = tmp_path / f"{attn}.pt"
        save_checkpoint(model, path, argument)
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            torch.save(x, f"{path}.x")
            torch.save(model.eval()(x)[0], f"{path}.y")
        paths.append(str(path))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCSA_YOLO_", "ULTRALYTICS_SAFE"))}
    result = subprocess.run([sys.executable, "-c", RELOAD, *paths], capture_output=True, text=True, cwd=tmp_path,
                            env={**env, "YOLO_OFFLINE": "1", "ULTRALYTICS_SAFE_LOAD": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    differences = dict(line.rsplit(" ", 1) for line in result.stdout.strip().splitlines())
    assert set(differences) == set(paths) and all(float(d) <= 1e-5 for d in differences.values()), differences
