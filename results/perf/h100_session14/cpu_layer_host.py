"""Dev-CPU host cost of one ResidualAttention(SCSA) layer, launches stubbed: eager (folded),
compiled alone (its own graph, as in Ultralytics' fragmented compiled inference), the op call
alone, and a trivial compiled graph (the graph-call floor)."""
import os, sys, time, statistics
os.environ["SCSA_YOLO_TRITON_INTERPRET"] = "1"; os.environ["TRITON_INTERPRET"] = "1"
import torch
from scsa_yolo.nn import scsa_fast as F
assert F._import_triton() is None
from scsa_yolo.nn.placement import ResidualAttention
from scsa_yolo.nn.scsa import SCSA
F._Launcher.__call__ = lambda self, *a, **k: None
torch.manual_seed(0)
layer = ResidualAttention(128, SCSA(128)).eval()
layer.attn.impl = "fast"
with torch.no_grad():
    layer.gate.fill_(0.1)
x = torch.rand(1, 128, 8, 8)
comp = torch.compile(layer, backend=sys.argv[1] if len(sys.argv) > 1 else "inductor")
triv = torch.compile(lambda t: t * 2.0 + 1.0, backend=sys.argv[1] if len(sys.argv) > 1 else "inductor")
cfg = F._config(layer.attn); params = F._params(layer.attn)
def op(): return F._ops_forward(x, cfg, params)
g = layer.gate.detach()
def blend_op(): return torch.ops.scsa_yolo.fused_blend(x, g, params, list(cfg.kernel_sizes), cfg.window, cfg.eps_h, cfg.eps_w, cfg.eps_p, cfg.scale_mode == "tokens", 1)
cases = {"eager layer (folded)": lambda: layer(x), "compiled layer": lambda: comp(x), "op alone (fused_forward)": op, "blend op alone": blend_op,
         "trivial compiled graph": lambda: triv(x)}
res = {k: [] for k in cases}
with torch.no_grad():
    for f in cases.values():
        for _ in range(5): f()
    for rnd in range(7):
        for k, f in cases.items():
            t = time.perf_counter()
            for _ in range(300): f()
            res[k].append((time.perf_counter() - t) / 300 * 1e6)
for k, v in res.items():
    print(f"{k:28s} median {statistics.median(v):7.1f} us  min {min(v):7.1f} us")
