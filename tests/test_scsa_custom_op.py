"""The fused SCSA as PyTorch custom operators (torch.ops.scsa_yolo.fused_forward / fused_backward).

The kernels run on CPU in Triton's interpreter, in one child process started with
``SCSA_YOLO_TRITON_INTERPRET=1`` (this file with ``--worker``; Triton fixes the interpreter
choice when it is first imported, and torch.compile imports it). The worker prints one JSON
line of measurements; the tests assert on it:

- ``torch.library.opcheck`` on both operators (schema, fake tensor, autograd registration,
  AOT dispatch with static and dynamic shapes);
- the operators called eagerly give bit for bit what the layer's eager autograd Function
  gives, and both match the float64 reference;
- ``torch.compile(layer, fullgraph=True)`` (AOT autograd with recording compilers, which run
  the traced graphs as they are) keeps the layer as one ``fused_forward`` node in the
  forward graph and one ``fused_backward`` node in the backward graph, with no graph break;
  with a dynamic batch, under autocast, without gradients; a whole YOLOv8n-SCSA compiled as
  Ultralytics' ``compile=True`` compiles it has one pair of nodes per SCSA layer and no graph
  break; Inductor's generated code calls both operators; and the opt-out
  (``COMPILE_OPS = False``) and an ablation the kernels do not cover compile the reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FWD, BWD = "scsa_yolo.fused_forward.default", "scsa_yolo.fused_backward.default"


def _worker() -> None:  # noqa: C901 (one process, many measurements)
    import torch

    from scsa_yolo.nn import scsa_fast
    from scsa_yolo.nn.scsa import SCSA

    assert scsa_fast._import_triton() is None  # before torch.compile imports triton
    results: dict = {"errors": {}, "interpreted": bool(scsa_fast._kernel_state.get("interpreted"))}

    def layer_for(channels: int, seed: int = 0, **kwargs) -> SCSA:
        torch.manual_seed(seed)
        layer = SCSA(channels, impl="auto", **kwargs)
        with torch.no_grad():
            for name, p in layer.named_parameters():
                base = 1.0 if name.startswith("norm") and name.endswith("weight") else 0.0
                p.copy_(base + 0.5 * torch.randn_like(p))
        return layer

    def rel(a, ref) -> float:
        a, ref = a.detach().double(), ref.detach().double()
        return ((a - ref).norm() / ref.norm().clamp_min(1e-30)).item() if torch.isfinite(a).all() else float("inf")

    def op_args(layer: SCSA, x):
        cfg = scsa_fast._config(layer)
        return (x, scsa_fast._params(layer), list(cfg.kernel_sizes), cfg.window, cfg.eps_h, cfg.eps_w, cfg.eps_p,
                cfg.scale_mode == "tokens")

    def run(fn, layer: SCSA, x, dout):
        """fn(x) and the gradients of x (when it requires them) and of every parameter."""
        params = list(layer.parameters())
        out = fn(x)
        wrt = ([x] if x.requires_grad else []) + params
        grads = torch.autograd.grad(out, wrt, dout.to(out.dtype))
        return out.detach(), list(grads)

    def record(name, fn):
        try:
            results[name] = fn()
        except Exception as exc:  # reported per check, so one failure does not hide the others
            import traceback

            results["errors"][name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}"

    # --------------------------------------------------------------------------- opcheck
    def opcheck_case(channels, shape, dtype, params_dtype, x_grad, utils, **kwargs):
        layer = layer_for(channels, **kwargs).to(params_dtype)
        torch.manual_seed(1)
        x = torch.randn(shape).to(dtype).requires_grad_(x_grad)
        args = op_args(layer, x)
        out = {}
        for util in utils:
            out["fwd_" + util] = torch.library.opcheck(torch.ops.scsa_yolo.fused_forward.default, args,
                                                       test_utils=util)[util]
        fwd_out, ws = torch.ops.scsa_yolo.fused_forward(*[a.detach() if isinstance(a, torch.Tensor) else a
                                                          for a in args])
        for need_dx in (True, False):
            bargs = (x.detach(), torch.randn_like(fwd_out), ws, [p.detach() for p in args[1]], *args[2:], need_dx)
            for util in ("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"):
                key = f"bwd_{util}_{'dx' if need_dx else 'no_dx'}"
                out[key] = torch.library.opcheck(torch.ops.scsa_yolo.fused_backward.default, bargs,
                                                 test_utils=util)[util]
        # floats of the workspace no kernel writes (padding, key-block room beyond the plan's
        # NKB): zero-filled in the operator, so its workspace output is defined (the AOT checks
        # compare it between two calls)
        plan = scsa_fast._plan_for(scsa_fast._config(layer), x, params_dtype)
        out["workspace_gaps"] = plan.fws_gaps
        out["key_blocks"] = (plan.NKB, scsa_fast._max_key_blocks(channels))
        return out

    all_utils = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_static",
                 "test_aot_dispatch_dynamic")
    # four groups, B * C = 32 (no workspace padding), x and parameters differentiable
    record("opcheck_default", lambda: opcheck_case(16, (2, 16, 9, 11), torch.float32, torch.float32, True,
                                                   all_utils))
    # one group, padded layout, fp16 input with float32 parameters (as under autocast),
    # gradients of the parameters only
    record("opcheck_mixed", lambda: opcheck_case(12, (1, 12, 8, 5), torch.float16, torch.float32, False,
                                                 ("test_schema", "test_autograd_registration", "test_faketensor",
                                                  "test_aot_dispatch_dynamic"), kernel_sizes=(3,), window=4))
    # 64 channels on a small map: one key block of 64 where the layout has room for four
    record("opcheck_key_blocks", lambda: opcheck_case(64, (2, 64, 6, 6), torch.float32, torch.float32, True,
                                                      all_utils))

    # --------------------------------------------------------------------------- eager parity
    def eager_case():
        shape = (2, 16, 9, 11)
        layer = layer_for(16)
        truth = layer_for(16).double()
        truth.impl = "reference"
        torch.manual_seed(2)
        x, dout = torch.randn(shape, requires_grad=True), torch.randn(shape)
        t_out, t_grads = run(truth, truth, x.detach().double().requires_grad_(True), dout.double())
        f_out, f_grads = run(layer, layer, x, dout)  # the layer's eager path: the autograd Function
        o_out, o_grads = run(lambda t: torch.ops.scsa_yolo.fused_forward(*op_args(layer, t))[0], layer, x, dout)
        return {
            "function_is_used": scsa_fast.supports(layer, x) and not scsa_fast.EAGER_OPS,
            "op_equals_function": torch.equal(o_out, f_out)
            and all(torch.equal(a, b) for a, b in zip(o_grads, f_grads)),
            "out": rel(o_out, t_out), "dx": rel(o_grads[0], t_grads[0]),
            "params": max(rel(g, t) for g, t in zip(o_grads[1:], t_grads[1:])),
        }

    record("eager", eager_case)

    def bad_params_case():
        layer = layer_for(16)
        messages = {}
        for name, edit in (("missing", lambda ps: ps[:-1]),  # v's weight left out
                           ("shape", lambda ps: ps[:-1] + [ps[-1].reshape(4, 4, 1, 1)])):
            args = list(op_args(layer, torch.randn(1, 16, 9, 12)))  # an input kind not planned before
            args[1] = edit(list(args[1]))
            try:
                torch.ops.scsa_yolo.fused_forward(*args)
                messages[name] = "no error"
            except ValueError as exc:
                messages[name] = str(exc)
        return messages

    record("bad_params", bad_params_case)

    # --------------------------------------------------------------------------- torch.compile
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch.aot_autograd import make_boxed_func

    def recording_backend(graphs: list):
        def keep(kind):
            def compiler(gm, example_inputs):
                graphs.append((kind, [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]))
                return make_boxed_func(gm.forward)
            return compiler
        return aot_autograd(fw_compiler=keep("fw"), bw_compiler=keep("bw"), inference_compiler=keep("inference"))

    def targets(graphs, kind):
        return [t for k, ts in graphs if k == kind for t in ts]

    def compile_case(shapes, dtype=torch.float32, autocast=False, grad=True, dynamic_batch=False, channels=16,
                     **kwargs):
        torch._dynamo.reset()
        layer = layer_for(channels, seed=5, **kwargs)
        graphs: list = []
        compiled = torch.compile(layer, fullgraph=True, backend=recording_backend(graphs))
        out = {"match": True}
        for i, shape in enumerate(shapes):
            torch.manual_seed(10 + i)
            x = torch.randn(shape).to(dtype).requires_grad_(grad)
            dout = torch.randn(shape)
            if dynamic_batch and i == 0:
                torch._dynamo.mark_dynamic(x, 0)
            ctx = torch.autocast("cpu", dtype=dtype) if autocast else torch.autocast("cpu", enabled=False)

            def fwd(fn):
                with ctx:
                    return fn(x)

            if grad:
                e_out, e_grads = run(lambda t: fwd(layer), layer, x, dout)
                c_out, c_grads = run(lambda t: fwd(compiled), layer, x, dout)
                out["grad_dtypes"] = [str(g.dtype).replace("torch.", "") for g in c_grads[:2]]
            else:
                with torch.no_grad():
                    e_out, c_out = fwd(layer), fwd(compiled)
                e_grads = c_grads = []
            same = torch.equal(e_out, c_out) and all(torch.equal(a, b) for a, b in zip(e_grads, c_grads))
            out["match"] = out["match"] and same
            out["out_dtype"] = str(c_out.dtype).replace("torch.", "")
        explain = torch._dynamo.explain(layer)(x.detach())
        out.update(graph_breaks=explain.graph_break_count, dynamo_graphs=explain.graph_count,
                   fw=targets(graphs, "fw"), bw=targets(graphs, "bw"), inference=targets(graphs, "inference"),
                   n_graphs=len(graphs))
        return out

    record("compile_train", lambda: compile_case([(2, 16, 9, 11), (2, 16, 9, 11)]))
    record("compile_dynamic_batch", lambda: compile_case([(2, 16, 9, 11), (3, 16, 9, 11)], dynamic_batch=True))
    record("compile_autocast", lambda: compile_case([(2, 16, 9, 11)], dtype=torch.bfloat16, autocast=True))
    # new map sizes, as `yolo predict/val compile=True` meet with rectangular batches
    record("compile_map_sizes", lambda: compile_case([(2, 16, 9, 11), (2, 16, 10, 12), (2, 16, 12, 9)]))
    record("compile_inference", lambda: compile_case([(2, 24, 10, 10)], grad=False, channels=24,
                                                     kernel_sizes=(3, 7), scale_mode="tokens", window=3))

    def opted_out():
        saved = scsa_fast.COMPILE_OPS
        scsa_fast.COMPILE_OPS = False
        try:
            return compile_case([(2, 16, 9, 11)])
        finally:
            scsa_fast.COMPILE_OPS = saved

    def inductor_case():
        """The default backend (Inductor, what Ultralytics' compile=True uses): the generated
        code calls both operators, and the results are the eager Function's bit for bit."""
        from torch._inductor.utils import run_and_get_code

        torch._dynamo.reset()
        layer = layer_for(16, seed=7)
        compiled = torch.compile(layer, fullgraph=True)
        torch.manual_seed(11)
        x, dout = torch.randn(2, 16, 9, 11, requires_grad=True), torch.randn(2, 16, 9, 11)
        e_out, e_grads = run(layer, layer, x, dout)
        (c_out, c_grads), codes = run_and_get_code(run, compiled, layer, x, dout)
        code = "\n".join(codes)
        return {"match": torch.equal(e_out, c_out) and all(torch.equal(a, b) for a, b in zip(e_grads, c_grads)),
                "n_codes": len(codes), "calls_fwd": "scsa_yolo.fused_forward" in code,
                "calls_bwd": "scsa_yolo.fused_backward" in code}

    def yolo_case():
        """YOLOv8n-SCSA (default placement, three SCSA layers) compiled whole, as Ultralytics'
        ``compile=True`` compiles the trainer's model (torch.compile of the DetectionModel; a
        recording backend here instead of Inductor), one training forward and backward."""
        from ultralytics import YOLO

        from scsa_yolo.integration import register

        register()
        torch._dynamo.reset()
        torch.manual_seed(12)
        model = YOLO("yolov8n-scsa.yaml").model.train()
        for p in model.parameters():
            p.requires_grad_(True)
        graphs: list = []
        compiled = torch.compile(model, backend=recording_backend(graphs))
        x = torch.rand(2, 3, 64, 64)
        out = compiled(x)
        leaves = [t for level in (out if isinstance(out, (list, tuple)) else [out])
                  for t in (level.values() if isinstance(level, dict) else [level]) if isinstance(t, torch.Tensor)]
        sum(t.float().sum() for t in leaves).backward()
        explain = torch._dynamo.explain(model)(x)
        return {"scsa_layers": sum(isinstance(m, SCSA) for m in model.modules()),
                "graph_breaks": explain.graph_break_count, "fw": targets(graphs, "fw"), "bw": targets(graphs, "bw")}

    def yolo_inference_case():
        """YOLOv8n-SCSA in eval mode compiled whole after one eager batch of the same shape
        (benchmarks/yolo_e2e.py --compile --prime): the eager batch fills the head's anchor
        cache, so Dynamo meets no make_anchors and the model is one graph, with the three
        SCSA layers as fused operator nodes (their residual folded in) and nothing else of
        SCSA traced."""
        from ultralytics import YOLO

        from scsa_yolo.integration import register

        register()
        torch._dynamo.reset()
        model = YOLO("yolov8n-scsa.yaml").model.eval()
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            eager = model(x)[0]
            explain = torch._dynamo.explain(model)(x)
            graphs: list = []
            compiled = torch.compile(model, backend=recording_backend(graphs))(x)[0]
        return {"graphs": explain.graph_count, "graph_breaks": explain.graph_break_count,
                "inference": targets(graphs, "inference"), "match": bool(torch.allclose(compiled, eager, atol=1e-4))}

    def probe_case():
        """The support check's Triton probe runs outside Dynamo's trace, as a constant. Tracing
        it broke the graph on torch 2.11 (type(tl.zeros)), seen in the real compile=True trainer;
        here the probe calls torch._dynamo.graph_break(), which breaks a traced call and does
        nothing in an eager one, so fullgraph=True fails unless the probe runs eagerly."""
        real = scsa_fast._import_triton

        def probe():
            torch._dynamo.graph_break()
            return real()

        torch._dynamo.reset()
        scsa_fast._import_triton = probe
        try:
            return compile_case([(2, 16, 9, 11)])
        finally:
            scsa_fast._import_triton = real

    def channels_last_case():
        """Inductor (CPU, its layout optimisation runs convolutions channels-last) compiles
        conv -> SiLU -> SCSA -> conv: both operators are tagged flexible_layout and receive the
        channels-last maps as they are (no layout copy around them); results match eager."""
        from torch import nn

        torch._dynamo.reset()
        seen = []
        real_fwd, real_bwd = scsa_fast._forward, scsa_fast._backward

        def spy_fwd(cfg, x, prm, p=None, clean=False):
            seen.append(("fwd", x.is_contiguous(memory_format=torch.channels_last)))
            return real_fwd(cfg, x, prm, p, clean)

        def spy_bwd(cfg, x, dout, prm, p, fws, need_dx):
            seen.append(("bwd", x.is_contiguous(memory_format=torch.channels_last)
                         and dout.is_contiguous(memory_format=torch.channels_last)))
            return real_bwd(cfg, x, dout, prm, p, fws, need_dx)

        torch.manual_seed(13)
        model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.SiLU(), layer_for(16, seed=13), nn.Conv2d(16, 8, 1))
        x = torch.randn(2, 8, 9, 11, requires_grad=True)
        e_out = model(x)
        e_grad = torch.autograd.grad(e_out.sum(), x)[0]
        scsa_fast._forward, scsa_fast._backward = spy_fwd, spy_bwd
        try:
            c_out = torch.compile(model)(x)
            c_grad = torch.autograd.grad(c_out.sum(), x)[0]
        finally:
            scsa_fast._forward, scsa_fast._backward = real_fwd, real_bwd
        tags = [torch.Tag.flexible_layout in op.default.tags
                for op in (torch.ops.scsa_yolo.fused_forward, torch.ops.scsa_yolo.fused_backward)]
        return {"seen": seen, "tags": tags, "out": rel(c_out, e_out), "dx": rel(c_grad, e_grad)}

    def blend_case():
        """The residual placements at inference under torch.compile: ResidualAttention (x + g
        SCSA(x)) and the gated bottleneck slot (h + g (SCSA(h) - h)) become one fused_blend node
        each (no pointwise residual of their own), equal to the eager folded path bit for bit and
        to the unfused expression within rounding; with grad enabled (a training graph) the
        forward and backward operators are used instead and fused_blend is not."""
        from torch import nn

        from scsa_yolo.nn.placement import AttendedBottleneck, ResidualAttention

        out = {}
        torch.manual_seed(14)
        wrappers = {"residual": ResidualAttention(16, layer_for(16, seed=14)),
                    "gated": AttendedBottleneck(nn.Conv2d(16, 16, 1), layer_for(16, seed=15), nn.Identity(),
                                                add=False, gated=True)}
        for mode, module in wrappers.items():
            module.eval()
            with torch.no_grad():
                module.gate.copy_(0.3 * torch.randn(16))  # away from its identity start
            x = torch.randn(2, 16, 9, 11)
            base = module.cv1(x).detach() if mode == "gated" else x  # what a zero gate returns
            g = module.gate
            attn = module.attn
            with torch.no_grad():
                eager = module(x)
                attn.fold_residual = False
                unfused = module(x)
                attn.fold_residual = True
                torch._dynamo.reset()
                graphs: list = []
                compiled = torch.compile(module, fullgraph=True, backend=recording_backend(graphs))(x)
                fake = torch.ops.scsa_yolo.fused_blend.default
                args = (base, g.detach(), scsa_fast._params(attn), *op_args(attn, base)[2:],
                        scsa_fast.BLEND_MODES[mode])
                checks = {u: torch.library.opcheck(fake, args, test_utils=u)[u]
                          for u in ("test_schema", "test_faketensor", "test_aot_dispatch_dynamic")}
            torch._dynamo.reset()
            train_graphs: list = []
            module.train()
            torch.compile(module, fullgraph=True, backend=recording_backend(train_graphs))(x.requires_grad_(True)).sum(
                ).backward()
            out[mode] = {"equal_eager": torch.equal(compiled, eager), "unfused": rel(compiled, unfused),
                         "moved": rel(compiled, base), "inference": targets(graphs, "inference"),
                         "train_fw": targets(train_graphs, "fw"), "train_bw": targets(train_graphs, "bw"),
                         "opcheck": checks}
        return out

    record("compile_blend", blend_case)
    record("compile_channels_last", channels_last_case)
    record("compile_yolo", yolo_case)
    record("compile_yolo_inference", yolo_inference_case)
    record("compile_probe", probe_case)
    record("compile_inductor", inductor_case)
    record("compile_opted_out", opted_out)
    record("compile_ablation", lambda: compile_case([(2, 16, 9, 11)], num_heads=4))
    print(json.dumps(results))


@pytest.fixture(scope="module")
def ops() -> dict:
    pytest.importorskip("triton")
    env = dict(os.environ, SCSA_YOLO_TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    for name in ("SCSA_YOLO_IMPL", "SCSA_YOLO_FAST_COMPILE", "SCSA_YOLO_FAST_EAGER_OPS"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker"], capture_output=True,
                          text=True, env=env, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.slow


def test_worker_ran_every_check_in_the_interpreter(ops):
    assert ops["interpreted"] is True
    assert ops["errors"] == {}


def test_opcheck_passes_for_both_operators(ops):
    for case in ("opcheck_default", "opcheck_mixed", "opcheck_key_blocks"):
        checks = {k: v for k, v in ops[case].items() if k.startswith(("fwd_", "bwd_"))}
        assert checks and all(v == "SUCCESS" for v in checks.values()), (case, checks)
    assert "fwd_test_aot_dispatch_static" in ops["opcheck_default"]
    assert "fwd_test_aot_dispatch_dynamic" in ops["opcheck_mixed"]
    # unwritten workspace floats: none, padding (B * C = 12), key-block room (1 of 4 blocks used)
    assert [ops[case]["workspace_gaps"] for case in ("opcheck_default", "opcheck_mixed", "opcheck_key_blocks")] \
        == [False, True, True]
    assert ops["opcheck_key_blocks"]["key_blocks"] == [1, 4]  # (the plan's NKB, the room for C / 16)


def test_eager_operators_equal_the_autograd_function_and_float64(ops):
    case = ops["eager"]
    assert case["function_is_used"]
    assert case["op_equals_function"]
    assert case["out"] < 1e-5 and case["dx"] < 1e-5 and case["params"] < 1e-4, case


def test_operator_rejects_wrong_parameters(ops):
    messages = ops["bad_params"]
    assert messages["missing"].startswith("scsa_yolo::fused_forward: 16 parameters for 4 conv groups"), messages
    assert messages["shape"].startswith("scsa_yolo::fused_forward: parameter shapes"), messages


@pytest.mark.parametrize("name", ["compile_train", "compile_dynamic_batch", "compile_autocast"])
def test_compiled_training_graph_runs_the_fused_operators(ops, name):
    case = ops[name]
    assert case["graph_breaks"] == 0 and case["dynamo_graphs"] == 1
    assert case["fw"].count(FWD) == 1 and BWD not in case["fw"]
    assert case["bw"].count(BWD) == 1
    # nothing of the reference formulation is left in either graph
    reference_ops = ("avg_pool2d", "softmax", "sigmoid", "native_group_norm", "convolution")
    for target in case["fw"] + case["bw"]:
        assert not any(op in target for op in reference_ops), target
    assert case["match"], case  # bit for bit the eager autograd Function (same kernels)


def test_compiled_graphs_are_reused(ops):
    # two calls of one shape: one forward and one backward graph; a dynamic batch: one
    # graph for batch 2 and 3 (the workspace size is symbolic in the fake implementation)
    assert ops["compile_train"]["n_graphs"] == 2
    assert ops["compile_dynamic_batch"]["n_graphs"] == 2


def test_new_map_sizes_reuse_one_dynamic_graph(ops):
    """The operators do not pin H and W: the second map size recompiles once with dynamic
    sizes (as Dynamo does for a plain conv), the third reuses that graph; the results are
    the eager Function's bit for bit at every size."""
    case = ops["compile_map_sizes"]
    assert case["match"] and case["graph_breaks"] == 0, case
    assert case["n_graphs"] == 4  # (forward + backward) x (static first size, then dynamic)
    assert case["fw"].count(FWD) == 2 and case["bw"].count(BWD) == 2


def test_compiled_layer_under_autocast_keeps_dtypes(ops):
    case = ops["compile_autocast"]
    assert case["out_dtype"] == "bfloat16"
    assert case["grad_dtypes"] == ["bfloat16", "float32"]  # dx as x, parameter gradients as the parameters


def test_compiled_inference_graph_has_only_the_forward_operator(ops):
    case = ops["compile_inference"]
    assert case["graph_breaks"] == 0
    assert case["inference"].count(FWD) == 1 and not case["fw"] and not case["bw"]
    assert case["match"]


def test_inductor_code_calls_the_fused_operators(ops):
    case = ops["compile_inductor"]
    assert case["n_codes"] == 2 and case["calls_fwd"] and case["calls_bwd"], case
    assert case["match"]


def test_a_compiled_yolo_runs_the_fused_operators_of_every_scsa_layer(ops):
    """What `yolo train model=yolov8n-scsa.yaml compile=True` compiles: the whole model."""
    case = ops["compile_yolo"]
    assert case["scsa_layers"] == 3 and case["graph_breaks"] == 0, case
    assert case["fw"].count(FWD) == 3 and case["bw"].count(BWD) == 3
    assert not any("group_norm" in t for t in case["fw"] + case["bw"])  # SCSA's reference path is not traced


def test_a_primed_compiled_yolo_is_one_graph_holding_every_scsa_layer(ops):
    case = ops["compile_yolo_inference"]
    assert case["graphs"] == 1 and case["graph_breaks"] == 0, case
    assert case["inference"].count("scsa_yolo.fused_blend.default") == 3, case  # backbone-res: residual folded
    assert not any("group_norm" in t for t in case["inference"]) and case["match"], case


def test_triton_probe_runs_outside_the_trace(ops):
    """A model whose first call is compiled (Ultralytics' trainer) traces the support check with
    nothing probed yet; the probe must not be traced (it broke the graph 24 times on torch 2.11)."""
    assert "compile_probe" not in ops["errors"], ops["errors"].get("compile_probe")
    case = ops["compile_probe"]
    assert case["graph_breaks"] == 0 and case["match"], case
    assert case["fw"].count(FWD) == 1 and case["bw"].count(BWD) == 1


@pytest.mark.parametrize("mode", ["residual", "gated"])
def test_compiled_inference_folds_the_residual_into_one_operator_node(ops, mode):
    case = ops["compile_blend"][mode]
    # the gated slot's graph also holds its cv1 (a convolution here); nothing else but the operator
    assert [t for t in case["inference"] if t != "aten.convolution.default"] == ["scsa_yolo.fused_blend.default"], \
        case["inference"]
    assert case["equal_eager"] and case["unfused"] < 1e-6 and case["moved"] > 1e-3, case
    assert all(v == "SUCCESS" for v in case["opcheck"].values()), case["opcheck"]
    assert FWD in case["train_fw"] and BWD in case["train_bw"], case
    assert not any("fused_blend" in t for t in case["train_fw"] + case["train_bw"]), case


def test_inductor_passes_channels_last_maps_to_the_operators(ops):
    """Item 3 of issue 28: no layout copy before or after SCSA inside a compiled model whose
    convolutions run channels-last; the kernels read and write those maps in place."""
    case = ops["compile_channels_last"]
    assert case["tags"] == [True, True]
    assert case["seen"] == [["fwd", True], ["bwd", True]], case
    assert case["out"] < 1e-5 and case["dx"] < 1e-5, case


@pytest.mark.parametrize("name", ["compile_opted_out", "compile_ablation"])
def test_reference_compiles_when_opted_out_or_unsupported(ops, name):
    case = ops[name]
    assert case["graph_breaks"] == 0
    assert FWD not in case["fw"] and BWD not in case["bw"]
    assert any("softmax" in t for t in case["fw"])


if __name__ == "__main__" and "--worker" in sys.argv:
    _worker()
