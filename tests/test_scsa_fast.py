"""The fused SCSA path (scsa_yolo.nn.scsa_fast) against the PyTorch reference.

The Triton kernels run on CPU in Triton's interpreter. Triton decides at import time
whether it interprets, so the kernel checks run in one child process started with
``SCSA_YOLO_TRITON_INTERPRET=1`` (this file with ``--worker``), which prints one JSON
line of measured errors; the tests assert on it. Every comparison is against the
reference run in float64 on the same inputs and parameters.
"""

from __future__ import annotations

import contextlib
import importlib
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
    slowest = scsa_fast.kernel_stats(slowest=3)["slowest"]
    return {"variants": variants, "plans": plans, "errors": errors, "slowest": slowest}


#: The two-launch path of small maps (scsa_fast.TUNE["small_map_max"]), each case run on
#: both paths: (name, (B, C, H, W), SCSA keywords, dtype, channels_last, TUNE overrides).
#: "small_chunks": S1 in several channel chunks, S2 over several key blocks and row blocks.
SMALL_CASES = [
    ("small_fp32_12x20", (1, 32, 12, 20), {}, "float32", False, {}),
    ("small_fp16_channels_last", (2, 16, 12, 20), {}, "float16", True, {}),
    ("small_bf16_g2_w3", (2, 24, 10, 10), {"kernel_sizes": (3, 7), "window": 3}, "bfloat16", False, {}),
    ("small_below_window", (2, 16, 5, 6), {}, "float32", False, {}),
    ("small_chunks", (1, 48, 12, 20), {}, "float32", False,
     {"small_tile": 256, "pcsa_key_tile": 256, "small_out_tile": 512}),
]


@contextlib.contextmanager
def _tuned(tune: dict):
    """scsa_fast.TUNE with ``tune`` on top of the entries it had, and fresh plans."""
    saved = dict(scsa_fast.TUNE)
    scsa_fast.TUNE.update(tune)
    scsa_fast._plans.clear()
    try:
        yield
    finally:
        scsa_fast.TUNE.clear()
        scsa_fast.TUNE.update(saved)
        scsa_fast._plans.clear()


def _small_case(name, shape, kwargs, dtype_name, channels_last, tune) -> dict:
    """One input on the small-map path and on the five-launch path (forward and
    backward): each path's errors against float64, their difference, and the launches."""
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    x, dout = torch.randn(shape).to(dtype), torch.randn(shape).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    fast = _layer(shape[1], kwargs, "fast").to(dtype)
    truth = _layer(shape[1], kwargs, "reference").double()
    truth.load_state_dict({k: v.double() for k, v in fast.state_dict().items()})
    t_out, t_dx, t_grads = _run(truth, x.double(), dout.double())
    cfg = scsa_fast._config(fast)
    prm = scsa_fast._Params(tuple(scsa_fast._params(fast)), len(cfg.kernel_sizes))
    runs, launches, res, workspaces = {}, {}, {}, {}
    for path, small_max in (("small", 1 << 30), ("five", 0)):
        with _tuned({**tune, "small_map_max": small_max, "small_min_programs": 0, "small_max_channels": 1 << 30}):
            out, dx, grads = runs[path] = _run(fast, x, dout)
            plan = next(iter(scsa_fast._plans.values()))
            launches[path] = [kname for kname, _, _ in plan.split]
            with torch.no_grad():  # the workspace the backward reads, as the operator returns it
                workspaces[path] = scsa_fast._forward(cfg, x, prm, clean=True)[2]
            res[path + "_key_blocks"] = plan.NKB
            res[path] = {"out": _rel(out, t_out), "dx": _rel(dx, t_dx),
                         "params": max(_rel(g, t) for g, t in zip(grads, t_grads))}
            if path == "small":
                with torch.no_grad():
                    res["nograd_equal"] = torch.equal(fast(x), out)
                consts = {kname: c for kname, _, c in plan.split}
                res["chunks"] = {k: consts["fwd_small_gates_kernel"][k] for k in ("CBR", "CBP")}
                res["chunks"].update({k: consts["fwd_small_out_kernel"][k] for k in ("NKB", "BH", "ONE")})
    small, five = runs["small"], runs["five"]
    res["vs_five"] = max(_rel(small[0], five[0]), _rel(small[1], five[1]),
                         max(_rel(a, b) for a, b in zip(small[2], five[2])))
    res["launches"] = launches
    res["workspace_equal"] = torch.equal(workspaces["small"], workspaces["five"])
    res["out_dtype_ok"] = small[0].dtype == dtype and small[1].dtype == dtype
    res["out_channels_last"] = small[0].is_contiguous(memory_format=torch.channels_last)
    return res


def _blend_forms(dtype: torch.dtype, seed: int) -> dict:
    """A residual placement's folded forms on one layer (2x16x9x11, gate g ~ 0.5 N(0, 1)):
    relative errors of the folded residual and gated forms against their unfused
    expressions, and whether g = 0 returns x exactly."""
    from scsa_yolo.nn.placement import ResidualAttention

    torch.manual_seed(seed)
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
    return {"residual": _rel(folded, unfused), "gated": _rel(gated, gated_unfused), "zero_exact": bool(exact)}


def _blend_case() -> dict:
    """The residual placements' expressions folded into the output pass (inference), against
    the unfused expressions on the same layer and inputs; g = 0 must give x exactly; the fold
    must step aside when a backward may follow or a hook watches the layer."""
    from scsa_yolo.nn.placement import AttendedBottleneck

    res = {dtype_name: _blend_forms(getattr(torch, dtype_name), seed=7) for dtype_name in ("float32", "float16")}
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


def _small_blend_case() -> dict:
    """The residual forms folded into the small-map path's S2 (forced: small_min_programs 0),
    against the unfused expressions on that path: fp32 at one row block per S2 program,
    fp16 at several (small_out_tile 512); g = 0 must give x exactly."""
    res = {}
    forced = {"small_map_max": 1 << 30, "small_min_programs": 0, "small_max_channels": 1 << 30}
    for dtype_name, tune in (("float32", {}), ("float16", {"small_out_tile": 512})):
        with _tuned({**tune, **forced}):
            forms = _blend_forms(getattr(torch, dtype_name), seed=11)
            plan = next(iter(scsa_fast._plans.values()))
            forms.update(launches=[name for name, _, _ in plan.split_for(2)],
                         one_row_block=dict(plan.split[-1][2])["ONE"])
        res[dtype_name] = forms
    variants = [key[2] for key in scsa_fast._launch.variants if key[0] == "fwd_small_out_kernel"]
    res["res_modes"] = sorted({dict(consts)["RES"] for consts in variants})
    return res


def _worker() -> None:
    results = {"cases": {}, "errors": {}, "small": {}}
    # The cases above test the five-launch path (the one of every map above the small-map
    # threshold), whatever the size of their tiny maps; SMALL_CASES test the other.
    scsa_fast.TUNE["small_map_max"] = 0
    for name, shape, kwargs, dtype_name, channels_last in CASES:
        try:
            results["cases"][name] = _case(name, shape, kwargs, dtype_name, channels_last)
        except Exception as exc:  # reported per case, so one failure does not hide the others
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
    for name, fn in (("params_only", _params_only_case), ("checkpoint", _checkpoint_case),
                     ("tilings", _tiling_case), ("reuse", _reuse_case), ("blend", _blend_case),
                     ("small_blend", _small_blend_case), ("grad_landing", _grad_landing_case)):
        try:
            results[name] = fn()
        except Exception as exc:
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
    for name, *case in SMALL_CASES:
        try:
            results["small"][name] = _small_case(name, *case)
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
def test_residual_placements_fold_into_the_small_map_path_at_inference(interp):
    blend = interp["small_blend"]
    assert blend["res_modes"] == [0, 1, 2]  # S2's folded variants really ran
    for dtype_name, limit in (("float32", 1e-6), ("float16", 2e-3)):
        case = blend[dtype_name]
        assert case["launches"] == ["fwd_small_gates_kernel", "fwd_small_out_kernel"], case
        assert case["residual"] < limit and case["gated"] < limit, blend
        assert case["zero_exact"], blend  # the identity start stays exact
    # S2's single-pass and row-block-loop forms both folded
    assert blend["float32"]["one_row_block"] and not blend["float16"]["one_row_block"]


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
    # kernel_stats(slowest=N): the variants with the longest first launch, slowest first,
    # each named with the constants and argument kinds Triton keys it on
    seconds = [entry[0] for entry in case["slowest"]]
    assert len(seconds) == 3 and seconds == sorted(seconds, reverse=True), case["slowest"]
    assert all(name.startswith(("fwd_", "bwd_")) and isinstance(consts, dict) and kinds
               for _, name, consts, kinds in case["slowest"]), case["slowest"]


@pytest.mark.slow
@pytest.mark.parametrize("name", [c[0] for c in SMALL_CASES])
def test_small_map_path_matches_float64_and_the_five_launches(interp, name):
    """The two-launch forward of small maps, then the usual backward from its workspace:
    output and every gradient as close to float64 as the five-launch path's."""
    case = interp["small"][name]
    assert case["launches"]["small"] == ["fwd_small_gates_kernel", "fwd_small_out_kernel"], case
    assert len(case["launches"]["five"]) == 5, case
    dtype = next(c[3] for c in SMALL_CASES if c[0] == name)
    limit = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 2e-2}[dtype]
    for key in ("out", "dx", "params"):
        bound = limit * (10 if key == "params" and dtype == "float32" else 1)
        assert case["small"][key] < bound, (key, case)
        assert case["small"][key] <= 1.5 * case["five"][key] + 1e-6, (key, case)
    # Both paths round once, at the output: the same numbers to float32 rounding.
    assert case["vs_five"] < {"float32": 1e-6, "float16": 1e-3, "bfloat16": 1e-2}[dtype], case
    assert case["nograd_equal"] and case["out_dtype_ok"], case
    if case["five_key_blocks"] == 1:  # then S2 stores the very partials Q stores
        assert case["workspace_equal"], case
    if next(c[4] for c in SMALL_CASES if c[0] == name):
        assert case["out_channels_last"], case


@pytest.mark.slow
def test_small_map_chunking_overrides_reach_every_loop(interp):
    chunks = interp["small"]["small_chunks"]["chunks"]
    # 48 channels in 4 groups of 12, 256-element chunks: one channel per R step (a
    # 12 x 32 padded plane), two per window row of P (7 x 16 columns); S2: three key
    # blocks of 16 channels, 12 rows one at a time (a 16 x 20 tile of 512 elements).
    assert (chunks["CBR"], chunks["CBP"], chunks["NKB"], chunks["BH"], chunks["ONE"]) == (1, 2, 3, 1, False), chunks
    default = interp["small"]["small_fp32_12x20"]["chunks"]
    # Defaults: a whole group of 8 channels per step, all keys in one block, 12 rows in
    # two blocks of 8 (16 x 8 x 20 elements of out: within 4096).
    assert (default["CBR"], default["CBP"], default["NKB"], default["BH"], default["ONE"]) == (8, 8, 1, 8, False)


# ----------------------------------------------------------------------------- selection


def _launch_names(channels: int, shape: tuple[int, ...]) -> list[str]:
    cfg = scsa_fast._config(SCSA(channels))
    return [name for name, _, _ in scsa_fast._Plan(cfg, torch.empty(shape), torch.float32).split]


def test_plan_picks_two_launches_on_small_maps_and_the_switch_forces_either(monkeypatch):
    small = ["fwd_small_gates_kernel", "fwd_small_out_kernel"]
    assert _launch_names(64, (32, 64, 20, 20)) == small
    assert _launch_names(32, (32, 32, 20, 12)) == small  # a rectangular validation batch
    five = _launch_names(64, (32, 64, 80, 80))
    assert len(five) == 5 and not set(five) & set(small)
    # By default batches of fewer than 128 S1 programs (batch x 4 groups) keep the five
    # launches: at batch 1 the small path measured slower on an H100.
    assert _launch_names(64, (1, 64, 20, 20)) == five and _launch_names(256, (16, 256, 20, 20)) == five
    # ... and so do layers wider than 64 channels, where it measured slower on an H200 at
    # every batch (YOLO's 20 x 20 layers: 256 channels and more)
    wide_five = _launch_names(256, (32, 256, 20, 20))
    assert len(wide_five) == 5 and not set(wide_five) & set(small)
    monkeypatch.setitem(scsa_fast.TUNE, "small_max_channels", 256)
    assert _launch_names(256, (32, 256, 20, 20)) == small
    monkeypatch.setitem(scsa_fast.TUNE, "small_min_programs", 0)
    assert _launch_names(64, (1, 64, 20, 12)) == small
    assert _launch_names(64, (2, 64, 5, 6)) == small  # below the window
    monkeypatch.setitem(scsa_fast.TUNE, "small_map_max", 0)
    assert _launch_names(64, (32, 64, 20, 20)) == five
    monkeypatch.setitem(scsa_fast.TUNE, "small_map_max", 80 * 80)
    assert _launch_names(64, (32, 64, 80, 80)) == small
    monkeypatch.setitem(scsa_fast.TUNE, "small_min_programs", 8)
    assert _launch_names(64, (1, 64, 20, 20)) == five and _launch_names(64, (2, 64, 20, 20)) == small


def test_paths_benchmark_forces_each_path_and_summarises_against_the_floor(monkeypatch):
    """benchmarks/scsa_size_buckets.py paths (a GPU benchmark): its CPU-side parts."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = importlib.import_module("scsa_size_buckets")
    monkeypatch.setitem(scsa_fast.TUNE, "small_map_max", scsa_fast.TUNE["small_map_max"])  # restored after
    counts = {}
    for path in ("small", "five", "auto"):
        bench.force_path(path)
        counts[path] = (len(_launch_names(128, (32, 128, 40, 40))), len(_launch_names(64, (1, 64, 20, 20))))
    assert counts == {"small": (2, 2), "five": (5, 5), "auto": (5, 5)}, counts  # auto: batch 1 takes five
    assert len(_launch_names(64, (32, 64, 20, 20))) == 2  # ... and batch 32 the small path
    variants = bench.parse_variants(["w2:small_warps=2,small_tile=2048"])
    assert variants == {"small:w2": {"small_warps": 2, "small_tile": 2048}}
    bench.force_path("small", variants["small:w2"])
    cfg = scsa_fast._config(SCSA(64))
    s1 = scsa_fast._Plan(cfg, torch.empty(32, 64, 20, 20), torch.float32).split[0][2]
    assert s1["num_warps"] == 2 and s1["CBR"] == 2, s1  # 2048 elements: two 32 x 32 padded planes
    bench.force_path("auto")  # the default tiles again
    assert scsa_fast.TUNE["small_warps"] == bench._TUNE_SAVED["small_warps"] != 2
    assert len(_launch_names(64, (32, 64, 80, 80))) == 5
    # (32, 256, 20, 20) fp16 at the H200's 4.22 TB/s copy bandwidth: the 6.3 us of results/perf/NOTES.md.
    assert abs(bench.floor_us((32, 256, 20, 20), 2, 4220.0) - 6.21) < 0.01
    times = {"32x64x20x20": {"small": {"clean": [3.0, 1.0, 2.0], "hot": [1.5, 1.0, 2.0]},
                             "five": {"clean": [6.0, 4.0, 5.0], "hot": [4.0, 3.0, 5.0]}}}
    res = {"rounds": 3, "copy_bw_GBps": 4220.0, "paths": bench.summarise_paths(times, {"32x64x20x20": 0.5})}
    row = res["paths"]["32x64x20x20"]
    assert row["small"]["clean"]["median"] == 2.0 and row["small"]["clean"]["min"] == 1.0
    assert row["small"]["clean"]["x_floor"] == 4.0 and row["five"]["clean"]["x_floor"] == 10.0
    assert row["speedup"] == {"clean": 2.5, "hot": 4.0 / 1.5}
    row_text = "| 32x64x20x20 | 0.5 | 2.0 / 1.0 | 5.0 / 4.0 | 4.00x | 10.00x | 2.50x | 1.5 | 4.0 |"
    assert row_text in bench.paths_table(res)


def test_paths_benchmark_graphs_hold_their_inputs_after_the_next_capture(monkeypatch):
    """A CUDA graph keeps alive only what it allocated; torch.cuda.graph empties the
    allocator's cache at every capture, so the first paths run at batch 32 replayed a
    graph whose input had been freed (an illegal memory access). Every captured forward
    must hold its input and layer for as long as it is kept. The capture here stands in
    for a CUDA graph (none on CPU): like one, it holds no reference to the function."""
    import gc
    import weakref

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = importlib.import_module("scsa_size_buckets")
    monkeypatch.setitem(scsa_fast.TUNE, "small_map_max", scsa_fast.TUNE["small_map_max"])  # restored after
    held, replays = [], []

    def capture(fn):
        held.extend(weakref.ref(t) for t in (*fn.__defaults__[0].parameters(), fn.__defaults__[1]))
        return type("Graph", (), {"replay": lambda self: replays.append(1)})()

    graphs = {s: bench.capture_paths(s, ["small", "five"], {}, "cpu", capture) for s in ((1, 8, 6, 6), (2, 8, 5, 7))}
    bench.force_path("auto")
    gc.collect()
    per_capture = len(list(SCSA(8).parameters())) + 1  # the parameters and x
    assert len(held) == 2 * 2 * per_capture and all(r() is not None for r in held)
    graphs[(1, 8, 6, 6)]["five"].replay()
    assert replays == [1]
    assert bench.capture_paths((1, 8, 6, 6), ["small"], {}, "cpu") == {}  # compile only (--warm-only)
    del graphs
    gc.collect()
    assert all(r() is None for r in held)  # ... and the replays were what held them


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
