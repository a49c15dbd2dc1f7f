"""The fused SCSA path (scsa_yolo.nn.scsa_fast) against the PyTorch reference.

The Triton kernels run on CPU in Triton's interpreter. Triton decides at import time
whether it interprets, so the kernel checks run in one child process started with
``SCSA_YOLO_TRITON_INTERPRET=1`` (this file with ``--worker``), which prints one JSON
line of measured errors; the tests assert on it. Every comparison is against the
reference run in float64 on the same inputs and parameters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from scsa_yolo.nn import scsa_fast
from scsa_yolo.nn.scsa import SCSA

ROOT = Path(__file__).resolve().parents[1]

# (name, (B, C, H, W), SCSA keywords, dtype, channels_last)
CASES = [
    ("default", (2, 16, 9, 11), {}, "float32", False),
    ("small_map", (2, 8, 5, 3), {}, "float32", False),  # H, W < 7: one window per axis
    ("several_windows", (1, 32, 16, 15), {}, "float32", False),  # 2x2 windows, ragged edges
    ("one_pixel", (2, 16, 1, 1), {}, "float32", False),
    ("one_row", (2, 16, 1, 9), {}, "float32", False),
    ("g1", (2, 12, 9, 11), {"kernel_sizes": (3,)}, "float32", False),
    ("g2_tokens_w3", (2, 24, 10, 10), {"kernel_sizes": (3, 7), "scale_mode": "tokens", "window": 3}, "float32",
     False),
    ("many_channels", (1, 80, 15, 8), {}, "float32", False),  # channel blocks with a ragged tail
    ("channels_last", (2, 16, 9, 11), {}, "float32", True),
    ("fp16", (2, 16, 9, 11), {}, "float16", False),
    ("bf16", (2, 16, 9, 11), {}, "bfloat16", False),
    ("channels_last_fp16", (2, 16, 12, 20), {}, "float16", True),  # unit-stride channels, AL 4
    ("channels_last_bf16", (2, 24, 10, 10), {"kernel_sizes": (3, 7), "window": 3}, "bfloat16", True),
]


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.detach().double(), ref.detach().double()
    if not torch.isfinite(a).all():
        return float("inf")
    return ((a - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def _layer(channels: int, kwargs: dict, impl: str, seed: int = 0) -> SCSA:
    torch.manual_seed(seed)
    layer = SCSA(channels, impl=impl, **kwargs)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            base = 1.0 if name.startswith("norm") and name.endswith("weight") else 0.0
            p.copy_(base + 0.5 * torch.randn_like(p))
    return layer


def _run(layer: SCSA, x: torch.Tensor, dout: torch.Tensor):
    x = x.detach().requires_grad_(True)
    params = list(layer.parameters())
    out = layer(x)
    grads = torch.autograd.grad(out, [x, *params], dout.to(out.dtype))
    return out.detach(), grads[0], list(grads[1:])


def _case(name, shape, kwargs, dtype_name, channels_last) -> dict:
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    x = torch.randn(shape).to(dtype)
    dout = torch.randn(shape).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    fast = _layer(shape[1], kwargs, "fast").to(dtype)
    ref = _layer(shape[1], kwargs, "reference").to(dtype)
    truth = _layer(shape[1], kwargs, "reference").double()
    truth.load_state_dict({k: v.double() for k, v in fast.state_dict().items()})
    t_out, t_dx, t_grads = _run(truth, x.double(), dout.double())
    out, dx, grads = _run(fast, x, dout)
    again = _run(fast, x, dout)
    r_out, r_dx, r_grads = _run(ref, x, dout)
    with torch.no_grad():
        nograd = fast(x)
    return {
        "fast_supported": scsa_fast.supports(fast, x),
        "out": _rel(out, t_out),
        "dx": _rel(dx, t_dx),
        "params": max(_rel(g, t) for g, t in zip(grads, t_grads)),
        "ref_out": _rel(r_out, t_out),
        "ref_dx": _rel(r_dx, t_dx),
        "ref_params": max(_rel(g, t) for g, t in zip(r_grads, t_grads)),
        "out_dtype_ok": out.dtype == dtype and dx.dtype == dtype,
        "out_channels_last": out.is_contiguous(memory_format=torch.channels_last),
        "repeat_identical": all(torch.equal(a, b) for a, b in zip([out, dx, *grads], [again[0], again[1], *again[2]])),
        "nograd_equal": torch.equal(nograd, out),
    }


def _params_only_case() -> dict:
    """x without requires_grad: dx is not computed, parameter gradients still are."""
    shape = (2, 16, 9, 11)
    x, dout = torch.randn(shape), torch.randn(shape)
    fast, truth = _layer(16, {}, "fast"), _layer(16, {}, "reference").double()
    params = list(fast.parameters())
    out = fast(x)
    grads = torch.autograd.grad(out, params, dout)
    t_params = list(truth.parameters())
    t_grads = torch.autograd.grad(truth(x.double()), t_params, dout.double())
    return {"params": max(_rel(g, t) for g, t in zip(grads, t_grads)), "x_grad_none": x.grad is None}


def _checkpoint_case() -> dict:
    """Train one SGD step on each path, swap the checkpoints, run on the other path."""
    shape = (2, 16, 9, 11)
    x, target = torch.randn(shape), torch.randn(shape)
    out = {}
    for trained_with, runs_with in (("fast", "reference"), ("reference", "fast")):
        layer = _layer(16, {}, trained_with, seed=3)
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        loss = ((layer(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
        other = SCSA(16, impl=runs_with)
        other.load_state_dict(layer.state_dict())
        with torch.no_grad():
            out[f"{trained_with}_to_{runs_with}"] = _rel(other(x), layer.forward_reference(x).double())
    # Both paths take the same step from the same start.
    steps = {}
    for impl in ("fast", "reference"):
        layer = _layer(16, {}, impl, seed=4)
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        ((layer(x) - target) ** 2).mean().backward()
        opt.step()
        steps[impl] = torch.cat([p.detach().flatten() for p in layer.parameters()])
    out["same_step"] = _rel(steps["fast"], steps["reference"])
    return out


def _grad_landing_case() -> dict:
    """Where the fused backward's parameter gradients land: in each parameter's own .grad,
    shaped and strided like it, equal to the reference path's, also when a second backward
    accumulates onto them (as a trainer accumulating batches does) and after an optimizer step
    changed the weights in place; a backward through the gradients (create_graph) still raises."""
    shape = (2, 16, 9, 11)
    torch.manual_seed(8)
    xs, douts = [torch.randn(shape) for _ in range(2)], [torch.randn(shape) for _ in range(2)]
    fast, ref = _layer(16, {}, "fast", seed=9), _layer(16, {}, "reference", seed=9).double()
    out = {"layout": True, "accumulated": [], "after_step": []}
    opt = torch.optim.SGD(fast.parameters(), lr=0.1)
    for step in ("accumulated", "after_step"):
        for layer in (fast, ref):
            layer.zero_grad(set_to_none=True)
        for x, dout in zip(xs, douts):
            fast(x).backward(dout)
            ref(x.double()).backward(dout.double())
        for p, r in zip(fast.parameters(), ref.parameters()):
            out["layout"] &= p.grad.shape == p.shape and p.grad.stride() == p.stride()
            out[step].append(_rel(p.grad, r.grad))
        opt.step()  # in place: the next round's forward reads the new weights
        ref.load_state_dict({k: v.double() for k, v in fast.state_dict().items()})
    out["accumulated"], out["after_step"] = max(out["accumulated"]), max(out["after_step"])
    x = xs[0].detach().requires_grad_(True)
    dout = douts[0].clone().requires_grad_(True)  # so that dx depends on something differentiable
    (dx,) = torch.autograd.grad(fast(x), x, dout, create_graph=True)
    try:
        dx.sum().backward()
        out["double_backward"] = "no error"
    except RuntimeError as exc:
        out["double_backward"] = str(exc)
    return out


#: Tile overrides that reach the kernels' less common paths on small maps: several key
#: blocks merged by the output pass (three, or two with the second half masked), a row
#: loop whose last step is half masked (24 rows, 16 a step), one plane per reduction
#: program, widths without a tail run (W = 16, 16 pooled columns), and the wide 64 x 64
#: channel-attention blocks of the 80 x 80 maps (48 channels: a third of each block masked).
TILINGS = {
    "default": {},
    "small_tiles": {"pcsa_key_tile": 256, "plane_tile": 256, "pool_tile": 64, "apply_tile": 64},
    "ragged_keys": {"pcsa_key_tile": 1024},
    "wide_attention": {"pcsa_wide_tokens": 16, "pcsa_wide_channels": 16},
}


def _tiling_case() -> dict:
    """One layer under each of TILINGS: output and gradients against float64, and the
    plan's block counts (so the test can check the overrides took effect)."""
    shape, kwargs = (2, 48, 24, 16), {"window": 4}
    torch.manual_seed(6)
    x, dout = torch.randn(shape), torch.randn(shape)
    layer = _layer(shape[1], kwargs, "fast")
    truth = _layer(shape[1], kwargs, "reference").double()
    truth.load_state_dict({k: v.double() for k, v in layer.state_dict().items()})
    t_out, t_dx, t_grads = _run(truth, x.double(), dout.double())
    saved = dict(scsa_fast.TUNE)
    out = {}
    try:
        for name, tune in TILINGS.items():
            scsa_fast.TUNE.update({**saved, **tune})
            scsa_fast._plans.clear()
            o, dx, grads = _run(layer, x, dout)
            plan = next(iter(scsa_fast._plans.values()))
            consts = {kname: c for kname, _, c in plan.split}
            out[name] = {"out": _rel(o, t_out), "dx": _rel(dx, t_dx),
                         "params": max(_rel(g, t) for g, t in zip(grads, t_grads)),
                         "NKB": plan.NKB, "BHR": consts["fwd_reduce_kernel"]["BHR"],
                         "CBQ": consts["fwd_pcsa_kernel"]["CBQ"],
                         "CBR": consts["fwd_reduce_kernel"]["CBR"],
                         "W1": consts["fwd_apply_kernel"]["W1"], "P1": consts["fwd_pool_kernel"]["P1"]}
    finally:
        scsa_fast.TUNE.clear()
        scsa_fast.TUNE.update(saved)
        scsa_fast._plans.clear()
    return out


#: One layer configuration at map sizes that share every kernel variant with the first
#: (same size buckets), then one that needs new variants (other powers of two).
REUSE_SHAPES = [(2, 16, 9, 11), (2, 16, 11, 12), (2, 16, 13, 12), (2, 16, 20, 24)]


def _reuse_case() -> dict:
    """Kernel variants (Triton compiles on a GPU) launched before and after each new map
    size, forward and backward, and each size's errors against float64."""
    layer = _layer(16, {}, "fast", seed=7)
    truth = _layer(16, {}, "reference", seed=7).double()
    variants, plans, errors = [scsa_fast.kernel_stats()["variants"]], [], []
    for shape in REUSE_SHAPES:
        torch.manual_seed(shape[2] * 100 + shape[3])
        x, dout = torch.randn(shape), torch.randn(shape)
        out, dx, grads = _run(layer, x, dout)
        t_out, t_dx, t_grads = _run(truth, x.double(), dout.double())
        errors.append(max(_rel(out, t_out), _rel(dx, t_dx), max(_rel(g, t) for g, t in zip(grads, t_grads))))
        variants.append(scsa_fast.kernel_stats()["variants"])
        plans.append(scsa_fast.kernel_stats()["plans"])
    return {"variants": variants, "plans": plans, "errors": errors}


def _blend_case() -> dict:
    """The residual placements' expressions folded into the output pass (inference), against
    the unfused expressions on the same layer and inputs; g = 0 must give x exactly; the fold
    must step aside when a backward may follow or a hook watches the layer."""
    from scsa_yolo.nn.placement import AttendedBottleneck, ResidualAttention

    res = {}
    for dtype_name in ("float32", "float16"):
        dtype = getattr(torch, dtype_name)
        torch.manual_seed(7)
        x = torch.randn(2, 16, 9, 11).to(dtype)
        layer = _layer(16, {}, "fast").to(dtype).eval()
        wrap = ResidualAttention(16, layer).eval()
        with torch.no_grad():
            wrap.gate.copy_(0.5 * torch.randn(16))
            g = wrap.gate
            folded, unfused = wrap(x), x + g.view(1, -1, 1, 1).to(dtype) * layer(x)
            gated = layer.fused_blend(x, g, "gated")
            gated_unfused = x + g.view(1, -1, 1, 1).to(dtype) * (layer(x) - x)
            zero = torch.zeros_like(g)
            exact = torch.equal(layer.fused_blend(x, zero, "residual"), x) and torch.equal(
                layer.fused_blend(x, zero, "gated"), x)
        res[dtype_name] = {"residual": _rel(folded, unfused), "gated": _rel(gated, gated_unfused),
                           "zero_exact": bool(exact)}
    variants = [key[2] for key in scsa_fast._launch.variants if key[0] == "fwd_apply_kernel"]
    res["res_modes"] = sorted({dict(consts)["RES"] for consts in variants})
    # when the fold must step aside: a backward may follow, a hook watches the layer
    layer = _layer(16, {}, "fast").eval()
    x = torch.randn(1, 16, 8, 8)
    res["with_grad"] = layer.fused_blend(x, torch.zeros(16, requires_grad=True), "residual") is None
    handle = layer.register_forward_hook(lambda *args: None)
    with torch.no_grad():
        res["with_hook"] = layer.fused_blend(x, torch.zeros(16), "residual") is None
        handle.remove()
        layer.fold_residual = False  # benchmarks/yolo_e2e.py --unfolded
        res["switched_off"] = layer.fused_blend(x, torch.zeros(16), "residual") is None
        layer.fold_residual = True
        res["folds"] = layer.fused_blend(x, torch.zeros(16), "residual") is not None
    # the gated bottleneck through its own forward, folded, against the unfused expression
    torch.manual_seed(3)
    cv1, cv2 = torch.nn.Conv2d(8, 16, 1), torch.nn.Conv2d(16, 8, 1)
    block = AttendedBottleneck(cv1, _layer(16, {}, "fast"), cv2, add=True, gated=True).eval()
    xb = torch.randn(2, 8, 9, 11)
    with torch.no_grad():
        block.gate.copy_(0.5 * torch.randn(16))
        h = cv1(xb)
        expected = xb + cv2(h + block.gate.view(1, -1, 1, 1) * (block.attn(h) - h))
        res["bottleneck"] = _rel(block(xb), expected)
    return res


def _worker() -> None:
    results = {"cases": {}, "errors": {}}
    for name, shape, kwargs, dtype_name, channels_last in CASES:
        try:
            results["cases"][name] = _case(name, shape, kwargs, dtype_name, channels_last)
        except Exception as exc:  # reported per case, so one failure does not hide the others
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
    for name, fn in (("params_only", _params_only_case), ("checkpoint", _checkpoint_case),
                     ("tilings", _tiling_case), ("reuse", _reuse_case), ("blend", _blend_case),
                     ("grad_landing", _grad_landing_case)):
        try:
            results[name] = fn()
        except Exception as exc:
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
    results["interpreted"] = bool(scsa_fast._kernel_state.get("interpreted"))
    print(json.dumps(results))


@pytest.fixture(scope="module")
def interp() -> dict:
    pytest.importorskip("triton")
    env = dict(os.environ, SCSA_YOLO_TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    env.pop("SCSA_YOLO_IMPL", None)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker"], capture_output=True,
                          text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- interpreter


@pytest.mark.slow
def test_worker_ran_every_case_in_the_interpreter(interp):
    assert interp["interpreted"] is True
    assert interp["errors"] == {}
    assert set(interp["cases"]) == {c[0] for c in CASES}
    assert all(c["fast_supported"] for c in interp["cases"].values())


@pytest.mark.slow
def test_residual_placements_fold_into_the_output_pass_at_inference(interp):
    blend = interp["blend"]
    assert blend["res_modes"] == [0, 1, 2]  # the folded variants really ran
    assert blend["float32"]["residual"] < 1e-6 and blend["float32"]["gated"] < 1e-6, blend
    # fp16: one rounding in float32 where the unfused expression rounds after every operation
    assert blend["float16"]["residual"] < 2e-3 and blend["float16"]["gated"] < 2e-3, blend
    assert blend["float32"]["zero_exact"] and blend["float16"]["zero_exact"]  # the identity start stays exact
    assert blend["with_grad"] and blend["with_hook"]  # stepped aside: a backward or a hook needs attn(x) itself
    assert blend["switched_off"] and blend["folds"]
    assert blend["bottleneck"] < 1e-6, blend


@pytest.mark.slow
def test_every_tiling_matches_float64(interp):
    cases = interp["tilings"]
    assert set(cases) == set(TILINGS)
    for name, case in cases.items():
        assert case["out"] < 1e-5 and case["dx"] < 1e-5 and case["params"] < 1e-4, (name, case)
        assert case["W1"] == 0 and case["P1"] == 0, case  # 16 columns, 4 windows of 4: no tail runs
    default, small, ragged = cases["default"], cases["small_tiles"], cases["ragged_keys"]
    assert (default["NKB"], small["NKB"], ragged["NKB"]) == (1, 3, 2)
    assert cases["wide_attention"]["CBQ"] == 64 and default["CBQ"] == 32  # 48 channels in one masked block
    assert (small["BHR"], small["CBR"]) == (16, 1)  # one plane, 24 rows in two steps of 16
    assert default["CBR"] > 1


@pytest.mark.slow
@pytest.mark.parametrize("name", [c[0] for c in CASES if c[3] == "float32"])
def test_float32_matches_float64_reference(interp, name):
    case = interp["cases"][name]
    # Output, input gradient and every parameter gradient (norm-relative errors).
    assert case["out"] < 1e-5
    assert case["dx"] < 1e-5
    assert case["params"] < 1e-4
    assert case["out_dtype_ok"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_half_precision_is_no_worse_than_the_reference(interp, name):
    case = interp["cases"][name]
    limit = {"fp16": 2e-3, "bf16": 2e-2}[name]
    for key in ("out", "dx", "params"):
        assert case[key] < limit, (key, case)
        # The fused path computes in float32 and rounds once; the reference rounds its
        # gates to the input dtype, so the fused error is at most about the reference's.
        assert case[key] <= 1.5 * case["ref_" + key] + 1e-4, (key, case)
    assert case["out_dtype_ok"]


@pytest.mark.slow
def test_channels_last_input_gives_channels_last_output(interp):
    case = interp["cases"]["channels_last"]
    assert case["out_channels_last"]
    assert case["out"] < 1e-5 and case["dx"] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(("name", "limit"), [("channels_last_fp16", 2e-3), ("channels_last_bf16", 2e-2)])
def test_channels_last_half_precision_is_no_worse_than_the_reference(interp, name, limit):
    case = interp["cases"][name]
    assert case["out_channels_last"] and case["out_dtype_ok"], case
    for key in ("out", "dx", "params"):
        assert case[key] < limit and case[key] <= 1.5 * case["ref_" + key] + 1e-4, (key, case)


@pytest.mark.slow
def test_repeated_calls_are_bit_identical_and_no_grad_matches(interp):
    for name, case in interp["cases"].items():
        assert case["repeat_identical"], name
        assert case["nograd_equal"], name


@pytest.mark.slow
def test_parameter_gradients_without_input_gradient(interp):
    assert interp["params_only"]["params"] < 1e-4
    assert interp["params_only"]["x_grad_none"]


def test_parameter_gradients_land_in_each_parameters_grad(interp):
    """The fused backward's flat gradient buffer, viewed per parameter, ends up in each
    parameter's .grad with its shape and strides, equal to the reference's, accumulating over
    two backward calls and following in-place optimizer steps; differentiating the gradients
    again raises (the Function is once-differentiable)."""
    g = interp["grad_landing"]
    assert g["layout"]
    assert g["accumulated"] < 1e-4
    assert g["after_step"] < 1e-4
    assert "twice" in g["double_backward"], g["double_backward"]


@pytest.mark.slow
def test_checkpoints_move_between_paths(interp):
    ck = interp["checkpoint"]
    assert ck["fast_to_reference"] < 1e-6
    assert ck["reference_to_fast"] < 1e-6
    assert ck["same_step"] < 1e-5


@pytest.mark.slow
def test_a_new_map_size_in_the_same_buckets_compiles_nothing(interp):
    """Sizes and strides are run-time kernel arguments: the second and third map sizes
    launch only kernel variants the first one launched (on a GPU: no Triton compile), yet
    each gets its own plan and correct results; sizes in other buckets add variants."""
    case = interp["reuse"]
    first, second, third, other = case["variants"][1:]
    assert first > case["variants"][0] or first >= 10  # forward and backward kernels ran
    assert second == first and third == first, case
    assert other > first, case
    assert len(set(case["plans"])) == len(REUSE_SHAPES), case  # one plan per new size
    assert max(case["errors"]) < 1e-4, case


# ----------------------------------------------------------------------------- selection


def test_cpu_input_without_interpreter_runs_the_reference(monkeypatch):
    monkeypatch.delenv(scsa_fast.INTERPRET_ENV_VAR, raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    layer, x = SCSA(16), torch.randn(1, 16, 8, 8)
    reason = scsa_fast.unsupported_reason(layer, x)
    assert reason is not None and "CPU tensor" in reason
    assert not scsa_fast.supports(layer, x)
    torch.testing.assert_close(layer(x), layer.forward_reference(x))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"use_pcsa": False}, "use_pcsa"),
        ({"use_smsa": False}, "use_smsa"),
        ({"num_heads": 4}, "num_heads"),
        ({"norm": "bn"}, "norm"),
        ({"norm_position": "before"}, "norm_position"),
        ({"shared": False}, "shared"),
        ({"order": "pcsa_first"}, "order"),
        ({"window": None}, "window"),
        ({"kernel_sizes": (3, 3, 3, 3, 3), "groups": 5}, "conv groups"),
    ],
)
def test_ablations_outside_the_fused_path_are_refused(kwargs, needle):
    channels = 20 if kwargs.get("groups") == 5 else 16
    reason = scsa_fast._module_reason(SCSA(channels, **kwargs))
    assert reason is not None and needle in reason


@pytest.mark.parametrize("kwargs", [{}, {"kernel_sizes": (3,)}, {"kernel_sizes": (3, 7)}, {"scale_mode": "tokens"},
                                    {"window": 5}])
def test_covered_variants_are_accepted(kwargs):
    assert scsa_fast._module_reason(SCSA(16, **kwargs)) is None


def test_workspace_segments_are_128_byte_aligned():
    segs, total = scsa_fast._layout({"a": 5, "b": 33, "c": 1})
    assert [s.off % 32 for s in segs.values()] == [0, 0, 0]
    assert segs["b"].off >= 5 and segs["c"].off >= segs["b"].off + 33
    assert total >= segs["c"].off + 1


def test_direct_launches_pass_the_pointers_of_each_calls_tensors(monkeypatch):
    """A compiled kernel is called with raw pointers; after its first launch the launcher
    fills only the positions of tensors and workspace segments. Later calls with new
    tensors and workspaces must get their own pointers, as the JIT path's views would."""
    monkeypatch.setattr(scsa_fast._Launcher, "direct_ok", True)
    launcher, received = scsa_fast._Launcher(), []
    launcher.cache[("k",)] = (lambda *args, stream=None: received.append((args, stream)), [7], False)
    param = torch.nn.Parameter(torch.randn(4))
    expected = []
    for call in range(3):
        x, wss = torch.randn(2, 3), (torch.empty(40), torch.empty(64))
        args = [x, scsa_fast._Seg(32, 5, 1), 3, 0.5, param, scsa_fast._Seg(0, 2, 0), True]
        launcher(None, ("k",), (1,), args, wss, {}, stream=call)
        views = [x, wss[1].narrow(0, 32, 5), 3, 0.5, param, wss[0].narrow(0, 0, 2), True]
        expected.append((tuple(v.data_ptr() if isinstance(v, torch.Tensor) else v for v in views) + (7,), call))
    assert received == expected
    assert launcher.cache[("k",)][2] == (((1, 1, 128), (5, 0, 0)), (0, 4))  # positions kept after the first


if __name__ == "__main__" and "--worker" in sys.argv:
    _worker()


class _StubKernel:
    """Stands in for a triton.jit kernel, which compiles only with a GPU driver: its warmup
    hands the compile to the active AsyncCompileMode, as Triton's JIT does, and each
    compile waits at ``barrier`` so that the compiles of a group must overlap to finish."""

    arg_names = ("x", "n", "BLOCK")

    def __init__(self, name: str, barrier, fail: bool = False):
        self.fn = SimpleNamespace(__name__=name)
        self.barrier, self.fail, self.compiles = barrier, fail, 0

    def warmup(self, *args, grid, **consts):
        from triton.runtime._async_compile import active_mode

        def compile_kernel():
            self.compiles += 1
            self.barrier.wait(timeout=30)
            if self.fail:
                raise RuntimeError("ptxas failed")
            return "kernel"

        return active_mode.get().submit((self.fn.__name__, consts["BLOCK"]), compile_kernel, lambda kernel: None)


def test_a_groups_new_kernels_compile_side_by_side_once(monkeypatch):
    import threading

    monkeypatch.setitem(scsa_fast._kernel_state, "interpreted", False)
    monkeypatch.setattr(scsa_fast, "COMPILE_THREADS", 4)
    launcher, barrier = scsa_fast._Launcher(), threading.Barrier(3)
    kernels = [_StubKernel(name, barrier) for name in ("r", "g", "p")]
    x = torch.empty(8)
    launches = [(k, (k.fn.__name__, 1), (1,), [x, 8], (), {"BLOCK": 4}) for k in kernels]
    launcher.precompile(launches)  # the three compiles meet at the barrier: they ran at once
    assert launcher.group_error == "" and launcher.group_compiles == 1
    assert [k.compiles for k in kernels] == [1, 1, 1] and len(launcher.variants) == 3
    launcher.precompile(launches)  # the same group again: nothing to do
    launcher.precompile([launches[0], (kernels[1], ("g", 2), (1,), [x, 8], (), {"BLOCK": 4})])
    assert [k.compiles for k in kernels] == [1, 1, 1]  # a new group of known variants compiles nothing
    launcher.forget(1)  # an evicted plan's groups are offered again; known variants still skipped
    launcher.precompile(launches)
    assert [k.compiles for k in kernels] == [1, 1, 1]


def test_a_failed_group_compile_leaves_the_kernels_to_their_launches(monkeypatch):
    import threading

    monkeypatch.setitem(scsa_fast._kernel_state, "interpreted", False)
    monkeypatch.setattr(scsa_fast, "COMPILE_THREADS", 2)
    launcher, barrier = scsa_fast._Launcher(), threading.Barrier(2)
    kernels = [_StubKernel("r", barrier), _StubKernel("g", barrier, fail=True)]
    x = torch.empty(8)
    launcher.precompile([(k, (k.fn.__name__, 1), (1,), [x, 8], (), {"BLOCK": 4}) for k in kernels])
    assert "ptxas failed" in launcher.group_error and launcher.group_compiles == 0
    assert launcher.variants == {}  # not counted: the launches compile (and report) them
    launcher.precompile([(k, (k.fn.__name__, 2), (1,), [x, 8], (), {"BLOCK": 8}) for k in kernels])
    assert [k.compiles for k in kernels] == [1, 1]  # after a failure: no more side-by-side compiles


def test_compile_threads_come_from_the_environment_and_a_bad_value_names_the_variable(monkeypatch):
    from scsa_yolo.nn.scsa_fast import _compile_threads

    monkeypatch.delenv("SCSA_YOLO_COMPILE_THREADS", raising=False)
    assert _compile_threads(6) == 6
    monkeypatch.setenv("SCSA_YOLO_COMPILE_THREADS", " 3 ")
    assert _compile_threads(6) == 3
    monkeypatch.setenv("SCSA_YOLO_COMPILE_THREADS", "0")
    assert _compile_threads(6) == 1  # at least one: compiles at first launch
    monkeypatch.setenv("SCSA_YOLO_COMPILE_THREADS", "many")
    with pytest.raises(ValueError, match="SCSA_YOLO_COMPILE_THREADS='many' is not a whole number"):
        _compile_threads(6)


def test_max_shapes_from_the_environment_names_the_variable_when_it_is_not_a_number(monkeypatch):
    from scsa_yolo.nn.scsa_fast import _env_count

    monkeypatch.setenv("SCSA_YOLO_FAST_MAX_SHAPES", "16")
    assert _env_count("SCSA_YOLO_FAST_MAX_SHAPES", 64, "64") == 16
    monkeypatch.setenv("SCSA_YOLO_FAST_MAX_SHAPES", "lots")
    with pytest.raises(ValueError, match="SCSA_YOLO_FAST_MAX_SHAPES='lots' is not a whole number; use e.g. 64"):
        _env_count("SCSA_YOLO_FAST_MAX_SHAPES", 64, "64")
