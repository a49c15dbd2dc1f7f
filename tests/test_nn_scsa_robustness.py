"""SCSA on every input a detector can hand it: layouts, dtypes, autocast, gradients,
torch.compile and ONNX export."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from scsa_yolo.nn.scsa import SCSA


@pytest.fixture(scope="module")
def layer() -> SCSA:
    torch.manual_seed(0)
    module = SCSA(32, impl="reference")
    with torch.no_grad():  # non-trivial norm affines so every parameter matters
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return module.eval()


def _run(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)


def test_batch_of_one_matches_the_same_sample_in_a_batch(layer):
    x = torch.randn(3, 32, 15, 11)
    torch.testing.assert_close(_run(layer, x[1:2]), _run(layer, x)[1:2], rtol=0, atol=1e-6)


def test_non_contiguous_inputs(layer):
    base = torch.randn(2, 32, 11, 16)
    transposed = base.transpose(2, 3)  # (2, 32, 16, 11), not contiguous
    strided = base[:, :, :, ::2]  # (2, 32, 11, 8)
    for x in (transposed, strided):
        assert not x.is_contiguous()
        torch.testing.assert_close(_run(layer, x), _run(layer, x.contiguous()), rtol=0, atol=1e-6)


def test_channels_last_input(layer):
    x = torch.randn(2, 32, 14, 9)
    got = _run(layer, x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, _run(layer, x), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float16, 2e-2), (torch.bfloat16, 6e-2)])
def test_half_precision_modules(layer, dtype, tol):
    x = torch.randn(2, 32, 14, 14)
    half = copy.deepcopy(layer).to(dtype)
    got = _run(half, x.to(dtype))
    assert got.dtype == dtype and torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), _run(layer, x), rtol=tol, atol=tol)


def test_fp16_attention_logits_beyond_fp16_range_stay_finite(layer):
    """With q/k weights of 300 the C x C logits exceed fp16's 65504: the attention must
    not be computed in fp16."""
    sharp = copy.deepcopy(layer)
    with torch.no_grad():
        sharp.q.weight.fill_(300.0)
        sharp.k.weight.fill_(300.0)
        x = torch.randn(1, 32, 14, 14)
        tokens = sharp.norm_pcsa(sharp._pool(sharp._smsa(x))).reshape(1, 32, -1) * 300
        assert (tokens @ tokens.transpose(1, 2) / 32**0.5).abs().max() > 65504  # the case is real
    expected = _run(sharp, x)
    got = _run(sharp.half(), x.half())
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cpu_autocast_keeps_input_dtype(layer, dtype):
    x = torch.randn(2, 32, 14, 14)
    with torch.autocast("cpu", dtype=dtype):
        got = _run(layer, x)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    torch.testing.assert_close(got, _run(layer, x), rtol=2e-2, atol=2e-2)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    module = SCSA(32)
    x = torch.randn(2, 32, 15, 15, requires_grad=True)
    (module(x) ** 2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.slow
def test_torch_compile_forward_and_backward_on_cpu():
    torch.manual_seed(0)
    module = SCSA(16)
    compiled = torch.compile(module, fullgraph=True)
    x = torch.randn(2, 16, 15, 15, requires_grad=True)
    got = compiled(x)
    torch.testing.assert_close(got, module(x), rtol=1e-5, atol=1e-5)
    got.sum().backward()
    assert module.q.weight.grad is not None and torch.isfinite(module.q.weight.grad).all()


def test_onnx_export_opset17_matches_onnxruntime(layer):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(2, 32, 15, 22)
    buffer = io.BytesIO()
    # ultralytics exports with the TorchScript exporter (dynamo=False); do the same.
    torch.onnx.export(
        layer, (x,), buffer, opset_version=17, dynamo=False, input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}, "y": {0: "b", 2: "h", 3: "w"}},
    )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for shape in [(2, 32, 15, 22), (1, 32, 28, 9)]:  # dynamic sizes >= the window
        probe = torch.randn(*shape)
        (got,) = session.run(None, {"x": probe.numpy()})
        torch.testing.assert_close(torch.from_numpy(got), _run(layer, probe), rtol=1e-4, atol=1e-5)
