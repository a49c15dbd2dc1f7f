"""The rest of the SCSA paper's Table 2 rivals (SA, EMA, CPCA, ELA): parameter counts by
their papers' formulas, hand-computed outputs on tiny inputs, the small-width group rule,
every YOLO width and map size, autocast, gradients, ONNX / TorchScript export, compile, and
the registry entries."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

from scsa_yolo.nn import CPCA, ELA, EMA, SA
from scsa_yolo.nn.ela import ELA_VARIANTS
from scsa_yolo.nn.registry import attention_names, create_attention, get_attention

LAYERS = [SA, EMA, CPCA, ELA]
WIDTHS = [8, 16, 32, 64, 128, 256, 512, 1024]  # YOLO11n's narrowest bottleneck up to the widest stage
SIG = torch.sigmoid


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _largest_fit(channels: int, cap: int, unit: int = 1) -> int:
    """Brute force over every candidate: the rule the layers document."""
    return max(g for g in range(1, cap + 1) if channels % (unit * g) == 0)


# Parameter formulas, from each paper's description (see the module docstrings).
def _sa_formula(c: int) -> int:
    return 6 * (c // (2 * _largest_fit(c, 64, unit=2)))  # W1, b1, W2, b2, GN affine: C/2G each


def _ema_formula(c: int) -> int:
    w = c // _largest_fit(c, 32)
    return (w * w + w) + (9 * w * w + w) + 2 * w  # 1x1 conv, 3x3 conv, GN affine


def _cpca_formula(c: int, r: int = 16) -> int:
    m = max(1, c // r)
    strips = sum(2 * (k * c + c) for k in (7, 11, 21))
    return (c * c + c) + (2 * c * m + m + c) + (25 * c + c) + strips


def _ela_formula(c: int, variant: str = "B") -> int:
    kernel, group_channels, _ = {"T": (5, 1, 32), "B": (7, 1, 16), "S": (5, 8, 16), "L": (7, 8, 16)}[variant]
    return c * _largest_fit(c, group_channels) * kernel + 2 * c


def _perturbed(cls, channels=16):
    torch.manual_seed(0)
    layer = cls(channels)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return layer


FORMULAS = {SA: _sa_formula, EMA: _ema_formula, CPCA: _cpca_formula, ELA: _ela_formula}


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("channels", WIDTHS)
def test_parameter_count_matches_the_papers_formula(cls, channels):
    assert _params(cls(channels)) == FORMULAS[cls](channels)


def test_known_sizes():
    assert (SA(128).groups, _params(SA(128)), _params(SA(1024))) == (64, 6, 48)  # SA-Net: 3C/G
    assert (_params(EMA(64)), _params(EMA(1024))) == (48, 10 * 32 * 32 + 4 * 32)
    assert _params(CPCA(64)) == 64 * 64 + 2 * 64 * 4 + 4 + 112 * 64
    assert _params(ELA(64)) == 9 * 64


@pytest.mark.parametrize("variant", ["T", "B", "S", "L"])
def test_ela_paper_variants(variant):
    layer = ELA(256, variant=variant)
    kernel, group_channels, groups = ELA_VARIANTS[variant]
    assert (layer.conv.kernel_size[0], layer.group_channels, layer.num_groups) == (kernel, group_channels, groups)
    assert _params(layer) == _ela_formula(256, variant)
    assert _params(layer) == {"T": 7, "B": 9, "S": 42, "L": 58}[variant] * 256
    assert ELA(256, variant=variant, kernel_size=3).conv.kernel_size == (3,)  # explicit value wins


def test_cpca_reduction_option_gives_cpcanet_block():
    assert CPCA(64, reduction=4).fc1.out_channels == 16  # the CPCA authors' own default
    assert CPCA(64).fc1.out_channels == 4  # the SCSA authors' comparison
    assert _params(CPCA(64, reduction=4)) == _cpca_formula(64, 4)


# ----------------------------------------------------------------------------- small-width rule


@pytest.mark.parametrize("channels", WIDTHS + [24, 48, 96, 192, 576, 40, 3, 10])
def test_group_rule_is_the_largest_fit_not_above_the_default(channels):
    if channels % 2 == 0:
        assert SA(channels).groups == _largest_fit(channels, 64, unit=2)
    assert EMA(channels).groups == _largest_fit(channels, 32)
    ela = ELA(channels)
    assert (ela.num_groups, ela.group_channels) == (_largest_fit(channels, 16), 1)
    assert ELA(channels, variant="S").group_channels == _largest_fit(channels, 8)


def test_group_rule_examples():
    assert [SA(c).groups for c in (8, 16, 32, 64, 128, 576)] == [4, 8, 16, 32, 64, 48]
    assert [EMA(c).groups for c in (8, 16, 24, 32, 1024)] == [8, 16, 24, 32, 32]
    assert [ELA(c).num_groups for c in (8, 16, 24, 1024)] == [8, 16, 12, 16]
    assert ELA(8, variant="T").num_groups == 8


@pytest.mark.parametrize(
    ("build", "layer", "argument", "width"),
    [
        (lambda: SA(7), "SA", "groups", "channels=7"),
        (lambda: SA(1), "SA", "groups", "channels=1"),
        (lambda: SA(48, groups=32, adapt_groups=False), "SA", "groups=32", "channels=48"),
        (lambda: EMA(48, factor=32, adapt_groups=False), "EMA", "factor=32", "channels=48"),
        (lambda: ELA(8, adapt_groups=False), "ELA", "num_groups=16", "channels=8"),
        (lambda: ELA(12, variant="L", num_groups=4, adapt_groups=False), "ELA", "group_channels=8", "channels=12"),
    ],
)
def test_widths_no_rule_serves_name_layer_argument_and_width(build, layer, argument, width):
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    assert message.startswith(f"{layer}: ") and argument in message and width in message


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: SA(0), "SA: channels=0"),
        (lambda: SA(64, groups=0), "SA: groups=0"),
        (lambda: EMA(64, factor=-2), "EMA: factor=-2"),
        (lambda: CPCA(64, reduction=0), "CPCA: reduction=0"),
        (lambda: CPCA(64, strip_kernels=(7, 10)), "CPCA: strip_kernels=10"),
        (lambda: CPCA(64, square_kernel=4), "CPCA: square_kernel=4"),
        (lambda: ELA(64, variant="X"), "ELA: variant='X'"),
        (lambda: ELA(64, kernel_size=6), "ELA: kernel_size=6"),
        (lambda: ELA(True), "ELA: channels=True"),
    ],
)
def test_bad_arguments_name_layer_and_argument(build, argument):
    with pytest.raises(ValueError, match=argument.replace("(", r"\(")):
        build()


# ----------------------------------------------------------------------------- hand-computed outputs


def test_sa_hand_computed_two_branches():
    """C = 4, G = 1: channels 0, 1 take the channel branch, 2, 3 the spatial one."""
    layer = SA(4, groups=1)
    with torch.no_grad():
        layer.channel_weight.copy_(torch.tensor([1.0, -2.0]).reshape(1, 2, 1, 1))
        layer.channel_bias.copy_(torch.tensor([0.0, 0.5]).reshape(1, 2, 1, 1))
        layer.spatial_weight.fill_(1.0)
        layer.spatial_bias.fill_(0.0)
    x = torch.tensor([[1.0, 3.0], [2.0, 2.0], [1.0, 3.0], [0.0, 4.0]]).reshape(1, 4, 1, 2)
    s = SIG(torch.tensor(1.0))
    chan0 = [1 * SIG(torch.tensor(1 * 2.0)), 3 * SIG(torch.tensor(1 * 2.0))]  # mean 2
    chan1 = [2 * SIG(torch.tensor(-2 * 2.0 + 0.5))] * 2  # mean 2
    spat2 = [1 * (1 - s), 3 * s]  # GN: [1, 3] -> [-1, 1]
    spat3 = [0 * (1 - s), 4 * s]  # GN: [0, 4] -> [-1, 1]
    # concat [c0, c1, s2, s3], then the 2-group shuffle: [c0, s2, c1, s3]
    expected = torch.tensor([chan0, spat2, chan1, spat3]).reshape(1, 4, 1, 2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_sa_channel_shuffle_order():
    """At initialisation (weights 0, biases 1) every gate is sigmoid(1); the output is the
    input permuted by the shuffle: C = 8, G = 2 -> [0, 4, 1, 5, 2, 6, 3, 7]."""
    x = torch.randn(2, 8, 3, 5)
    expected = x[:, [0, 4, 1, 5, 2, 6, 3, 7]] * SIG(torch.tensor(1.0))
    torch.testing.assert_close(SA(8, groups=2)(x), expected)


def test_ema_hand_computed_single_channel_groups():
    """One channel per group: the softmax over one channel is 1, so M = X2 + X1.
    1x1 conv all zero -> both gates 1/2 -> X1 = GN(X / 4) = the channel standardised."""
    layer = EMA(2, factor=2)
    with torch.no_grad():
        layer.conv1x1.weight.zero_()
        layer.conv1x1.bias.zero_()
        layer.conv3x3.weight.zero_()
        layer.conv3x3.bias.fill_(0.5)  # X2 = 0.5 everywhere
    x = torch.tensor([1.0, 3.0, 4.0, 0.0]).reshape(1, 2, 1, 2)
    expected = torch.tensor([1 * SIG(torch.tensor(0.5 - 1)), 3 * SIG(torch.tensor(0.5 + 1)),
                             4 * SIG(torch.tensor(0.5 + 1)), 0.0]).reshape(1, 2, 1, 2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)


def test_ema_cross_spatial_weights_pool_the_other_branch():
    """Two channels in one group. X1 = channel-standardised X (zero spatial mean, so
    w1 = softmax(0, 0) = (1/2, 1/2)); X2 = constant biases (0, ln 3), so
    w2 = softmax(0, ln 3) = (1/4, 3/4). M = w1 . X2 + w2 . X1 = ln3 / 2 + (1/4) Z0 + (3/4) Z1."""
    layer = EMA(2, factor=1)
    with torch.no_grad():
        layer.conv1x1.weight.zero_()
        layer.conv1x1.bias.zero_()
        layer.conv3x3.weight.zero_()
        layer.conv3x3.bias.copy_(torch.tensor([0.0, math.log(3.0)]))
    x = torch.tensor([1.0, 3.0, 5.0, 1.0]).reshape(1, 2, 1, 2)  # Z0 = (-1, 1), Z1 = (1, -1)
    m = torch.tensor([math.log(3) / 2 + (-0.25 + 0.75), math.log(3) / 2 + (0.25 - 0.75)])
    expected = x * SIG(m).reshape(1, 1, 1, 2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)


def _gelu(t: torch.Tensor) -> torch.Tensor:
    return t * 0.5 * (1 + torch.erf(t / math.sqrt(2)))


def _cpca_identity_weights(layer: CPCA) -> None:
    """P = identity, 5x5 = identity tap, strips contribute nothing."""
    c = layer.proj.in_channels
    with torch.no_grad():
        layer.proj.weight.copy_(torch.eye(c).reshape(c, c, 1, 1))
        layer.proj.bias.zero_()
        layer.square.weight.zero_()
        layer.square.weight[:, :, 2, 2] = 1.0
        layer.square.bias.zero_()
        for strip in layer.strips:
            for conv in strip:
                conv.weight.zero_()
                conv.bias.zero_()


def test_cpca_hand_computed_channel_prior_is_a_sum_of_two_sigmoids():
    """C = 2, m = 1; fc1 reads channel 0 only, fc2 writes +h to channel 0 and -h to 1.
    With P = identity and a pass-through spatial path the output is (g * GELU(x))^2."""
    layer = CPCA(2, reduction=2)
    _cpca_identity_weights(layer)
    with torch.no_grad():
        layer.fc1.weight.copy_(torch.tensor([1.0, 0.0]).reshape(1, 2, 1, 1))
        layer.fc1.bias.zero_()
        layer.fc2.weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
        layer.fc2.bias.zero_()
    x = torch.tensor([[0.5, 2.0, -1.0, 1.0], [1.5, 0.0, 3.0, -0.5]]).reshape(1, 2, 2, 2)
    f = _gelu(x)
    avg0, peak0 = f[0, 0].mean().clamp(min=0), f[0, 0].max().clamp(min=0)  # ReLU of the hidden unit
    gate = torch.stack([SIG(avg0) + SIG(peak0), SIG(-avg0) + SIG(-peak0)]).reshape(1, 2, 1, 1)
    torch.testing.assert_close(layer(x), (gate * f) ** 2, rtol=1e-5, atol=1e-6)


def test_cpca_spatial_reach_is_the_5x5_plus_21_strip_window():
    """With the channel MLP silenced, output (y, x) depends on inputs within
    (5 - 1) / 2 + (21 - 1) / 2 = 12 rows and columns: a 25 x 25 window."""
    torch.manual_seed(0)
    layer = CPCA(4)
    with torch.no_grad():
        layer.fc1.weight.zero_()  # constant channel gate: no global coupling
    x = torch.randn(1, 4, 33, 33, requires_grad=True)
    layer(x)[0, :, 16, 16].sum().backward()
    reach = x.grad[0].abs().sum(dim=0) > 0
    rows, cols = reach.nonzero().unbind(1)
    assert (rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()) == (4, 28, 4, 28)


def test_ela_hand_computed():
    """C = 2, GN with 2 groups (one channel each), identity 1-D kernel: each gate is
    sigmoid of the standardised row / column means."""
    layer = ELA(2, kernel_size=3, num_groups=2)
    with torch.no_grad():
        layer.conv.weight.zero_()
        layer.conv.weight[:, 0, 1] = 1.0
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [4.0, 0.0], [2.0, 2.0]]).reshape(1, 2, 2, 2)
    # channel 0: row means (1.5, 3.5) -> (-1, 1); column means (2, 3) -> (-1, 1)
    # channel 1: row means (2, 2) -> (0, 0); column means (3, 1) -> (1, -1)
    lo, hi, mid = SIG(torch.tensor(-1.0)), SIG(torch.tensor(1.0)), SIG(torch.tensor(0.0))
    gate0 = torch.tensor([[lo * lo, lo * hi], [hi * lo, hi * hi]])
    gate1 = torch.tensor([[mid * hi, mid * lo], [mid * hi, mid * lo]])
    expected = x * torch.stack([gate0, gate1]).unsqueeze(0)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)


def test_ela_shares_conv_and_norm_between_directions():
    """One convolution and one GroupNorm for both H and W: transposing the map transposes
    the output."""
    torch.manual_seed(0)
    layer = ELA(32)
    x = torch.randn(2, 32, 9, 13)
    torch.testing.assert_close(layer(x.transpose(2, 3)), layer(x).transpose(2, 3))


def test_ela_gate_is_rank_one_per_channel():
    torch.manual_seed(0)
    layer = ELA(16)
    x = torch.rand(1, 16, 6, 8) + 0.5
    with torch.no_grad():
        ratio = (layer(x) / x)[0]
    assert (torch.linalg.matrix_rank(ratio.double(), rtol=1e-5) == 1).all()


def test_sa_and_ema_gates_only_rescale_within_groups():
    """SA and EMA act on each group alone: changing one group's input leaves the others."""
    torch.manual_seed(0)
    for layer, width in ((SA(64, groups=4), 16), (EMA(64, factor=4), 16)):
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        x = torch.randn(1, 64, 7, 7)
        bumped = x.clone()
        bumped[:, :width] += 1.0  # group 0 only
        out, out_bumped = layer(x), layer(bumped)
        if isinstance(layer, SA):  # undo the shuffle: pre-shuffle channel j sits at 2j (j < C/2) or 2(j - C/2) + 1
            order = [2 * j if j < 32 else 2 * (j - 32) + 1 for j in range(64)]
            out, out_bumped = out[:, order], out_bumped[:, order]
        changed = (out - out_bumped).abs().amax(dim=(0, 2, 3)) > 0
        assert changed[:width].all() and not changed[width:].any()


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
            assert layer(torch.randn(1, channels, 1, 1)).shape == (1, channels, 1, 1)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_gradients_are_finite_and_reach_every_parameter(cls):
    layer = _perturbed(cls, 32)  # SA's zero-initialised weights would block GN's gradient
    if cls is CPCA:
        with torch.no_grad():
            layer.fc1.bias.fill_(1.0)  # keep CPCA's two ReLU hidden units alive for this input
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
            # CPCA ends with a convolution, which autocast runs in the low dtype; the
            # others end by rescaling the fp32 input
            assert auto.dtype == (dtype if cls is CPCA else torch.float32)
            torch.testing.assert_close(auto.float(), expected, rtol=6e-2, atol=6e-2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.isfinite(cls(8)(torch.randn(2, 8, 1, 1))).all()
        assert layer(x.transpose(2, 3).contiguous().transpose(2, 3)).shape == x.shape  # non-contiguous


# ----------------------------------------------------------------------------- export and compile
# The checks every attention layer's export and compile tests share (test_nn_yolo_rivals too).


def assert_onnx_export_matches_onnxruntime(layer, shapes) -> None:
    """Export ``layer`` as ultralytics does (the TorchScript exporter, dynamo=False, dynamic batch
    and size, opset 17) and compare onnxruntime's output with PyTorch's at every shape."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    buffer = io.BytesIO()
    torch.onnx.export(
        layer, (torch.randn(*shapes[0]),), buffer, opset_version=17, dynamo=False,
        input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}, "y": {0: "b", 2: "h", 3: "w"}},
    )
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for shape in shapes:
        probe = torch.randn(*shape)
        (got,) = session.run(None, {"x": probe.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(got), layer(probe), rtol=1e-4, atol=1e-5)


def assert_jit_trace_matches_on_other_shapes(layer) -> None:
    """Trace at one shape, save, load, and compare with the layer at other shapes."""
    with torch.no_grad():
        traced = torch.jit.trace(layer, torch.randn(2, 16, 12, 10), check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    with torch.no_grad():
        for shape in [(2, 16, 12, 10), (1, 16, 7, 19), (2, 16, 1, 1)]:
            probe = torch.randn(*shape)
            torch.testing.assert_close(loaded(probe), layer(probe), rtol=1e-5, atol=1e-6)


def assert_compiled_forward_and_backward_match(layer) -> None:
    """torch.compile(fullgraph=True) on CPU: same output, finite gradients to input and every parameter."""
    compiled = torch.compile(layer, fullgraph=True)
    x = torch.randn(2, 16, 9, 9, requires_grad=True)
    got = compiled(x)
    torch.testing.assert_close(got, layer(x), rtol=1e-5, atol=1e-5)
    got.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_onnx_export_opset17_matches_onnxruntime(cls):
    assert_onnx_export_matches_onnxruntime(_perturbed(cls).eval(), [(2, 16, 15, 22), (1, 16, 9, 30), (3, 16, 1, 1)])


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # deprecated, but what YOLO's TorchScript export uses
@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_jit_trace_runs_on_other_shapes(cls):
    assert_jit_trace_matches_on_other_shapes(_perturbed(cls).eval())


@pytest.mark.slow
@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_torch_compile_forward_and_backward_on_cpu(cls):
    """About 5-20 s per layer on 2 CPU cores (inductor compiles C++)."""
    assert_compiled_forward_and_backward_match(_perturbed(cls).eval())


# ----------------------------------------------------------------------------- registry


def test_registry_lists_the_table2_rivals_with_labels():
    expected = {"sa": (SA, "+SA"), "ema": (EMA, "+EMA"), "cpca": (CPCA, "+CPCA"), "ela": (ELA, "+ELA")}
    names = attention_names()
    for name, (cls, label) in expected.items():
        spec = get_attention(name)
        assert name in names and (spec.cls, spec.label, spec.yaml_module) == (cls, label, cls.__name__)
        assert spec.kwargs == {} and spec.yaml_args == []  # the published defaults
        layer = create_attention(name, 16)
        assert type(layer) is cls and layer(torch.randn(1, 16, 4, 4)).shape == (1, 16, 4, 4)
    assert get_attention("SA").name == "sa"
    assert create_attention("ela", 64, variant="L").group_channels == 8
    assert create_attention("cpca", 64, reduction=4).fc1.out_channels == 16
