"""The rival attentions (SE, ECA, CA, FCA, CBAM): published parameter formulas, shapes on
any map, dtypes, gradients and what makes each one itself."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from scsa_yolo.nn.cbam import CBAM
from scsa_yolo.nn.coord_attn import CA
from scsa_yolo.nn.eca import ECA, eca_kernel_size
from scsa_yolo.nn.fca import FCA, TOP16_FREQUENCIES
from scsa_yolo.nn.squeeze_excite import SE


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _se_formula(c: int, r: int = 16) -> int:
    m = max(1, c // r)
    return 2 * c * m + m + c


def _eca_formula(c: int) -> int:
    t = int(abs((math.log2(c) + 1) / 2))
    return t if t % 2 else t + 1


def _ca_formula(c: int) -> int:
    m = max(8, c // 32)
    return 3 * c * m + 3 * m + 2 * c


def _fca_formula(c: int) -> int:
    return 2 * c * max(1, c // 16)


def _cbam_formula(c: int) -> int:
    return _se_formula(c) + 2 * 7 * 7 + 2


FORMULAS = {SE: _se_formula, ECA: _eca_formula, CA: _ca_formula, FCA: _fca_formula, CBAM: _cbam_formula}
LAYERS = list(FORMULAS)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("channels", [16, 64, 256, 1024])
def test_parameter_count_matches_published_formula(cls, channels):
    assert _params(cls(channels)) == FORMULAS[cls](channels)


def test_known_sizes():
    assert (_params(SE(64)), _params(SE(256))) == (580, 8464)
    assert [eca_kernel_size(c) for c in (16, 64, 128, 256, 512)] == [3, 3, 5, 5, 5]
    assert (_params(CA(64)), _params(CA(256))) == (1688, 6680)
    assert FCA(64).dct_filter.shape == (64, 7, 7) and _params(FCA(64)) == 512
    assert _params(CBAM(64)) == 680


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_any_map_size_shape_and_gradients(cls):
    torch.manual_seed(0)
    layer = cls(16)  # narrow: reductions floor at one hidden channel
    for size in [(1, 1), (5, 5), (7, 7), (13, 22)]:
        x = torch.randn(2, 16, *size, requires_grad=True)
        y = layer(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    layer.eval()
    with torch.no_grad():
        one = layer(torch.randn(1, 16, 9, 9))  # batch of one in eval
    assert one.shape == (1, 16, 9, 9)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_dtypes_and_autocast(cls):
    torch.manual_seed(0)
    layer = cls(32).eval()
    x = torch.randn(2, 32, 10, 12)
    with torch.no_grad():
        expected = layer(x)
        for dtype in (torch.float16, torch.bfloat16):
            got = copy.deepcopy(layer).to(dtype)(x.to(dtype))
            assert got.dtype == dtype
            torch.testing.assert_close(got.float(), expected, rtol=5e-2, atol=5e-2)
            with torch.autocast("cpu", dtype=dtype):
                assert layer(x).dtype == torch.float32
        assert layer(x.transpose(2, 3).contiguous().transpose(2, 3)).shape == x.shape  # non-contiguous


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: SE(0), "channels=0"),
        (lambda: SE(64, reduction=0), "reduction=0"),
        (lambda: ECA(64, kernel_size=4), "kernel_size=4"),
        (lambda: CA(64, reduction=-1), "reduction=-1"),
        (lambda: FCA(64, num_freq=17), "num_freq=17"),
        (lambda: FCA(64, dct_size=5), "dct_size=5"),
        (lambda: CBAM(64, spatial_kernel=6), "spatial_kernel=6"),
    ],
)
def test_bad_arguments_name_layer_and_argument(build, argument):
    with pytest.raises(ValueError) as info:
        build()
    assert argument in str(info.value) and str(info.value).split(":")[0] in {"SE", "ECA", "CA", "FCA", "CBAM"}


def test_se_and_eca_gate_channels_only():
    x = torch.rand(2, 32, 9, 9) + 0.5
    for layer in (SE(32), ECA(32)):
        ratio = layer(x) / x
        torch.testing.assert_close(ratio, ratio[:, :, :1, :1].expand_as(ratio))


def test_eca_mixes_only_neighbouring_channels():
    layer = ECA(64)  # k = 3
    x = torch.rand(1, 64, 4, 4) + 0.5
    bumped = x.clone()
    bumped[:, 10] += 1.0
    changed = ((layer(bumped) / bumped - layer(x) / x).abs().amax(dim=(0, 2, 3)) > 1e-7).nonzero().flatten()
    assert changed.tolist() == [9, 10, 11]


def test_ca_attention_is_separable_in_h_and_w():
    torch.manual_seed(0)
    layer = CA(32).eval()
    x = torch.rand(1, 32, 6, 8) + 0.5
    with torch.no_grad():
        ratio = (layer(x) / x)[0]  # (C, H, W) = a_h(c, h) * a_w(c, w): rank one per channel
    assert (torch.linalg.matrix_rank(ratio.double(), rtol=1e-5) == 1).all()


def test_fca_uses_orthonormal_top16_dct_basis():
    layer = FCA(32)
    assert not any(name == "dct_filter" for name, _ in layer.named_parameters())
    filters = layer.dct_filter.reshape(32, 49).double()
    distinct = filters[::2]  # channel parts of 2: one filter per frequency
    torch.testing.assert_close(distinct @ distinct.T, torch.eye(16, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(filters[0], torch.full((49,), 1 / 7, dtype=torch.float64))  # (0,0) = DC
    assert TOP16_FREQUENCIES[:3] == ((0, 0), (0, 1), (6, 0))


def test_fca_pools_any_map_to_the_dct_grid():
    layer = FCA(16)
    x = torch.randn(2, 16, 14, 14)
    grid = torch.nn.functional.avg_pool2d(x, 2)
    spectral = (grid * layer.dct_filter).sum(dim=(2, 3))
    expected = x * torch.sigmoid(layer.fc(spectral))[..., None, None]
    torch.testing.assert_close(layer(x), expected)


def test_cbam_spatial_gate_varies_over_positions():
    torch.manual_seed(0)
    layer = CBAM(32).eval()
    x = torch.rand(1, 32, 9, 9) + 0.5
    with torch.no_grad():
        ratio = layer(x) / x
    assert ratio[0, 0].std() > 0  # spatial attention, unlike SE
