"""Dev-CPU estimate: host time per compiled (Inductor) inference call, plain vs SCSA, SCSA launches stubbed."""
import os, sys, time, statistics
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ["SCSA_YOLO_TRITON_INTERPRET"] = "1"; os.environ["TRITON_INTERPRET"] = "1"
import torch
from scsa_yolo.integration import register
register()
from scsa_yolo.nn import scsa_fast as F
assert F._import_triton() is None
F._Launcher.__call__ = lambda self, *a, **k: None   # no kernel runs: host path only
from ultralytics import YOLO
from torch._dynamo.utils import counters
base = sys.argv[1]
x = torch.rand(1, 3, 64, 64)
models = {}
for name in (f"{base}.yaml", f"{base}-scsa.yaml"):
    m = YOLO(name, task="detect").model.fuse().eval()
    for l in m.modules():
        if type(l).__name__ == "SCSA":
            l.impl = "fast"
    before = counters["stats"]["unique_graphs"]
    cm = torch.compile(m, mode="default", backend="inductor")
    with torch.no_grad():
        for _ in range(3):
            cm(x)
    print(name, "graphs", counters["stats"]["unique_graphs"] - before, flush=True)
    models[name] = cm
res = {n: [] for n in models}
with torch.no_grad():
    for rnd in range(7):
        for n, cm in models.items():
            t = time.perf_counter()
            for _ in range(50):
                cm(x)
            res[n].append((time.perf_counter() - t) / 50 * 1e3)
for n, v in res.items():
    print(f"{n}: median {statistics.median(v):.3f} ms, min {min(v):.3f} ms per call (7 rounds x 50 calls)")
a, b = (statistics.median(v) for v in res.values())
print(f"SCSA - plain: {b - a:+.3f} ms")
