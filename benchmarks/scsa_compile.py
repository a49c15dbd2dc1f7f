"""SCSA layer per call: eager (autograd Function) vs eager through the custom ops vs torch.compile
with the ops (default, reduce-overhead) vs torch.compile of the reference. fp16 autocast, fp32
parameters, forward + backward; 'host' = time to issue a call, 'wall' = until the GPU is done.
Compiled-ops variants run their timed loop under torch.cuda.set_sync_debug_mode("error").

    PYTHONPATH=. python3 benchmarks/scsa_compile.py cuda [CxHxW,...]   (default: the six YOLO shapes)"""
import sys, time
import torch
sys.path[:0] = [".", "benchmarks"]
from scsa_layer import DEFAULT_SHAPES, make_layer  # noqa: E402
from scsa_yolo.nn import scsa_fast as F  # noqa: E402  (scsa loads it at import)
dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
batch, n = (32, 100) if dev == "cuda" else (2, 2)
shapes = DEFAULT_SHAPES if dev == "cuda" else ((16, 9, 11),)
if len(sys.argv) > 2:
    shapes = [tuple(int(v) for v in s.split("x")) for s in sys.argv[2].split(",")]
amp = torch.float16 if dev == "cuda" else torch.bfloat16
sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
for c, h, w in shapes:
    for variant in ("eager", "eager-ops", "compile-ops", "reduce-overhead-ops", "compile-ref"):
        if dev != "cuda" and variant == "reduce-overhead-ops":
            continue
        torch._dynamo.reset()
        F.COMPILE_OPS, F.EAGER_OPS = variant != "compile-ref", variant == "eager-ops"
        layer = make_layer(c, seed=2).to(dev)
        fn = layer if variant.startswith("eager") else torch.compile(
            layer, fullgraph=True, mode="reduce-overhead" if variant.startswith("reduce") else None)
        x = torch.randn(batch, c, h, w, device=dev, dtype=amp, requires_grad=True)
        dout = torch.randn_like(x)

        def step():
            if variant.startswith("reduce"):
                torch.compiler.cudagraph_mark_step_begin()
            with torch.autocast(dev, dtype=amp):
                out = fn(x)
            out.backward(dout)

        for _ in range(3 if dev != "cuda" else 30):
            step()
        sync()
        checked = dev == "cuda" and variant.endswith("-ops") and variant != "eager-ops"
        if checked:
            torch.cuda.set_sync_debug_mode("error")
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        t1 = time.perf_counter()
        sync()
        t2 = time.perf_counter()
        if checked:
            torch.cuda.set_sync_debug_mode("default")
        print(f"({batch},{c},{h},{w}) {variant:20s} f+b host {(t1 - t0) / n * 1e6:7.0f} us  "
              f"wall {(t2 - t0) / n * 1e6:7.0f} us", flush=True)
