"""The fused SCSA operators under DistributedDataParallel with torch.compile, as Ultralytics'
trainer combines them with ``compile=True`` on several GPUs: the model is compiled first, then
wrapped in DDP with ``static_graph=True``.

Two processes (gloo on 127.0.0.1, CPU, the kernels in Triton's interpreter) each compile a small
conv + SCSA + conv model with a recording AOT backend, wrap it in DDP and run one forward and
backward on their own batch. The test asserts that each rank's compiled graphs hold the fused
operators (one forward, one backward, no graph break) and that the gradients DDP leaves on every
rank equal the mean of the two ranks' eager gradients (the autograd Function, no compile).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FWD, BWD = "scsa_yolo.fused_forward.default", "scsa_yolo.fused_backward.default"
WORLD = 2


def _model(seed: int):
    import torch
    from torch import nn

    from scsa_yolo.nn.scsa import SCSA

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), SCSA(16, impl="auto"), nn.Conv2d(16, 4, 1))
    with torch.no_grad():  # random norm and conv parameters, not the init's ones and zeros
        for name, p in model[1].named_parameters():
            p.copy_((1.0 if name.startswith("norm") and name.endswith("weight") else 0.0) + 0.5 * torch.randn_like(p))
    return model


def _batch(rank: int):
    import torch

    g = torch.Generator().manual_seed(100 + rank)
    return torch.randn(2, 3, 9, 11, generator=g), torch.randn(2, 4, 9, 11, generator=g)


def _eager_grads(model, rank: int):
    import torch

    x, target = _batch(rank)
    loss = ((model(x) - target) ** 2).mean()
    return torch.autograd.grad(loss, list(model.parameters()))


def _rank(rank: int, port: int, out_dir: str) -> None:
    from scsa_yolo.nn import scsa_fast

    assert scsa_fast._import_triton() is None and scsa_fast._kernel_state["interpreted"]
    import torch
    import torch.distributed as dist
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch.aot_autograd import make_boxed_func
    from torch.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    graphs: list = []

    def keep(kind):
        def compiler(gm, example_inputs):
            graphs.append((kind, [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]))
            return make_boxed_func(gm.forward)
        return compiler

    backend = aot_autograd(fw_compiler=keep("fw"), bw_compiler=keep("bw"))
    model = _model(seed=3)
    expected = [(a + b) / WORLD for a, b in zip(_eager_grads(_model(seed=3), 0), _eager_grads(_model(seed=3), 1))]
    ddp = DDP(torch.compile(model, backend=backend), static_graph=True)  # Ultralytics' order
    x, target = _batch(rank)
    ((ddp(x) - target) ** 2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    explain = torch._dynamo.explain(_model(seed=3))(x)
    result = {
        "fw": [t for kind, ts in graphs if kind == "fw" for t in ts],
        "bw": [t for kind, ts in graphs if kind == "bw" for t in ts],
        "graph_breaks": explain.graph_break_count,
        "max_abs_diff": max((g - e).abs().max().item() for g, e in zip(grads, expected)),
        "max_abs_grad": max(e.abs().max().item() for e in expected),
        "all_grads": all(g is not None for g in grads),
    }
    dist.destroy_process_group()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    pytest.importorskip("triton")
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, SCSA_YOLO_TRITON_INTERPRET="1", TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    for name in ("SCSA_YOLO_IMPL", "SCSA_YOLO_FAST_COMPILE", "SCSA_YOLO_FAST_EAGER_OPS"):
        env.pop(name, None)
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--rank", str(r), str(port), str(out)],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(WORLD)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]


pytestmark = pytest.mark.slow


def test_each_rank_compiles_the_fused_operators_without_a_graph_break(ranks):
    for result in ranks:
        assert result["graph_breaks"] == 0
        assert result["fw"].count(FWD) == 1 and result["bw"].count(BWD) == 1, result
        assert not any("group_norm" in t for t in result["fw"] + result["bw"])


def test_ddp_gradients_are_the_mean_of_the_ranks_eager_gradients(ranks):
    for result in ranks:
        assert result["all_grads"]
        # the fused kernels are deterministic, so the only difference is the order of the
        # two-term sum in the all-reduce: float32 rounding of the largest gradient at most
        assert result["max_abs_diff"] <= 1e-6 * max(result["max_abs_grad"], 1.0), result


if __name__ == "__main__" and "--rank" in sys.argv:
    i = sys.argv.index("--rank")
    _rank(int(sys.argv[i + 1]), int(sys.argv[i + 2]), sys.argv[i + 3])
