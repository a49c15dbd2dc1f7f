"""Where the eager fused SCSA's host time goes (issue 15 item 2): one layer, forward +
backward, at a shape whose GPU work is a few microseconds, so that every microsecond
measured is host work.

    PYTHONPATH=. python3 benchmarks/scsa_host_profile.py [--shape 2,256,20,20] [--out DIR]

Prints, per call:
  1. host time of several forms of the same step, each against a reference point, so that
     the cost of each piece shows as a difference:
       - ``fwd``: forward only, no grad;
       - ``fb-accum``: forward + backward with gradients accumulating (no zero_grad);
       - ``fb-none``: forward + backward after ``zero_grad(set_to_none=True)`` (how a
         trainer runs: AccumulateGrad steals the new gradient, no add kernel);
       - ``fb-noparams``: only x requires grad (the Function's parameter bookkeeping idle);
       - ``fb-conv``: a plain Conv2d 3x3 + BatchNorm2d of the same width, for scale;
       - ``empty5``: five ``torch.empty`` + five tiny ``add_`` kernels, a floor for five
         launches through PyTorch;
  2. cProfile of the ``fb-none`` step (top functions by own time);
  3. torch.profiler CPU totals of the same step (top ops by self CPU time).
Needs a CUDA device.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [".", "benchmarks"]
from scsa_layer import make_layer  # noqa: E402


def host_us(step, n: int = 200, warm: int = 30) -> tuple[float, float]:
    """(median, min) host microseconds per call over 5 blocks of n calls."""
    for _ in range(warm):
        step()
    torch.cuda.synchronize()
    blocks = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        blocks.append((time.perf_counter() - t0) / n * 1e6)
        torch.cuda.synchronize()
    blocks.sort()
    return blocks[2], blocks[0]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="2,256,20,20")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    say(f"# host time per call, {torch.cuda.get_device_name()}, torch {torch.__version__}, shape {shape}")
    layer = make_layer(shape[1], seed=2).cuda()
    layer.impl = "fast"
    x = torch.randn(shape, device="cuda", dtype=torch.float16, requires_grad=True)
    x_nograd = x.detach()
    dout = torch.randn(shape, device="cuda", dtype=torch.float16)
    conv = torch.nn.Sequential(torch.nn.Conv2d(shape[1], shape[1], 3, padding=1, bias=False),
                               torch.nn.BatchNorm2d(shape[1])).cuda()

    def fwd():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
            layer(x_nograd)

    def fb_accum():
        with torch.autocast("cuda", dtype=torch.float16):
            out = layer(x)
        out.backward(dout)

    def fresh_grads_step(module):
        """Forward + backward after setting gradients to None, as a trainer's step does."""
        def step():
            module.zero_grad(set_to_none=True)
            x.grad = None
            with torch.autocast("cuda", dtype=torch.float16):
                out = module(x)
            out.backward(dout)
        return step

    fb_none, fb_conv = fresh_grads_step(layer), fresh_grads_step(conv)

    small = torch.zeros(16, device="cuda")

    def empty5():
        for _ in range(5):
            torch.empty(1024, device="cuda")
            small.add_(1)

    forms = {"fwd": fwd, "fb-accum": fb_accum, "fb-none": fb_none, "fb-conv": fb_conv, "empty5": empty5}
    for name, step in forms.items():
        med, low = host_us(step)
        say(f"{name:12s} host median {med:7.1f} us  min {low:7.1f} us  (5 blocks of 200 calls)")
    for p in layer.parameters():
        p.requires_grad_(False)
    med, low = host_us(fb_none)  # the same step; the Function's parameters now need no gradient
    say(f"{'fb-noparams':12s} host median {med:7.1f} us  min {low:7.1f} us  (5 blocks of 200 calls)")
    for p in layer.parameters():
        p.requires_grad_(True)

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(200):
        fb_none()
    torch.cuda.synchronize()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
    say("\n# cProfile, 200 calls of fb-none, by own time\n" + buf.getvalue())

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as tp:
        for _ in range(100):
            fb_none()
        torch.cuda.synchronize()
    say("# torch.profiler, 100 calls of fb-none, by self CPU time\n"
        + tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"scsa_host_profile_{'x'.join(map(str, shape))}.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
