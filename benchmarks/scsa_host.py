"""Host time of the fused SCSA called eagerly: microseconds of Python and launch work per call.

    python3 benchmarks/scsa_host.py . [OLD_TREE ...]

Each argument is a source tree (a checkout, or ``git archive REV scsa_yolo benchmarks``
unpacked into a folder); every tree is timed in its own process, in the order given, so
several trees (or the same one repeated) can be compared side by side in one call. A call
is timed without synchronising, at (2, 256, 20, 20), where the GPU work is a few
microseconds, and at (32, 128, 80, 80): forward (fp16 layer, no grad) and forward + backward
(fp32 parameters under fp16 autocast; gradients accumulate, as without zero_grad). 'host' is
the time to issue the calls, 'wall' the same loop until the GPU is done: when they are equal
the eager path is host-bound. Needs a CUDA device.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def time_tree(root: str) -> None:
    import torch

    sys.path.insert(0, root)
    sys.path.insert(0, str(Path(root) / "benchmarks"))
    from scsa_layer import make_layer

    def host_us(shape, grad: bool, n: int) -> tuple[float, float]:
        layer = make_layer(shape[1], seed=2).cuda()
        layer.impl = "fast"
        if not grad:
            layer = layer.half().eval()
        x = torch.randn(shape, device="cuda", dtype=torch.float16, requires_grad=grad)
        dout = torch.randn(shape, device="cuda", dtype=torch.float16)

        def step():
            if grad:
                with torch.autocast("cuda", dtype=torch.float16):
                    out = layer(x)
                out.backward(dout)
            else:
                with torch.no_grad():
                    layer(x)

        for _ in range(30):
            step()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        return (t1 - t0) / n * 1e6, (t2 - t0) / n * 1e6

    for shape in ((2, 256, 20, 20), (32, 128, 80, 80)):
        for grad in (False, True):
            h, w = host_us(shape, grad, 100 if grad else 300)
            print(f"{root} {shape} {'f+b' if grad else 'fwd'}: host {h:.0f} us/call, wall {w:.0f} us/call",
                  flush=True)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--worker":
        time_tree(argv[1])
        return 0
    for root in argv or ["."]:
        subprocess.run([sys.executable, __file__, "--worker", root], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
