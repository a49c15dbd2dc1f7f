"""Python-side cost of calling fused SCSA through the custom operators vs the autograd Function,
with the kernel launches stubbed out, so only the wrappers are timed. Runs on the CPU (Triton's
interpreter compiles nothing here: the launches are replaced after one real call).

    python3 benchmarks/scsa_op_wrapper_cost.py [--rounds 5] [--calls 500] [--profile op-fb]

Variants, per call (us), each timed in interleaved rounds (median / min over rounds):
  function-fb  autograd Function forward + backward (what eager training runs)
  op-fb        torch.ops.scsa_yolo.fused_forward + its registered backward (eager through the ops)
  function-fwd / op-fwd  forward only, no grad (op-fwd is what a compiled graph calls per layer)
The figures are this CPU's, not a GPU host's; the ratio between variants is the point.
"""
import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("SCSA_YOLO_TRITON_INTERPRET", "1")
sys.path[:0] = [".", "benchmarks"]

import torch  # noqa: E402

from scsa_layer import make_layer  # noqa: E402
from scsa_yolo.nn import scsa_fast as F  # noqa: E402


def variants(channels: int, shape: tuple[int, int, int]):
    """Callables of the four variants on one layer; launches are stubbed after a real call."""
    layer = make_layer(channels, seed=2)
    layer.impl = "fast"
    x = torch.randn(shape[0], channels, shape[1], shape[2], requires_grad=True)
    layer(x).sum().backward()  # one real call through the interpreter: plans and kernels exist
    F._Launcher.__call__ = lambda self, *args, **kwargs: None
    cfg, params = F._config(layer), F._params(layer)
    dout = torch.ones_like(x)

    def function_fb():
        torch.autograd.backward(F._FusedSCSA.apply(x, cfg, *params), dout)

    def op_fb():
        torch.autograd.backward(F._ops_forward(x, cfg, params), dout)

    def function_fwd():
        with torch.no_grad():
            F._forward(cfg, x, F._Params(tuple(params), len(cfg.kernel_sizes)))

    def op_fwd():
        with torch.no_grad():
            F._ops_forward(x, cfg, params)

    return {"function-fb": function_fb, "op-fb": op_fb, "function-fwd": function_fwd, "op-fwd": op_fwd}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=500, help="calls per variant and round")
    ap.add_argument("--profile", default=None, help="also print a cProfile of one variant (e.g. op-fb)")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        ap.error("--rounds and --calls must be at least 1")
    fns = variants(64, (2, 8, 8))
    if args.profile is not None and args.profile not in fns:
        ap.error(f"--profile {args.profile!r}: choose one of {', '.join(fns)}")
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():  # warm-up
        for _ in range(50):
            fn()
    for _ in range(args.rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                fn()
            times[name].append((time.perf_counter() - start) / args.calls * 1e6)
    print(f"torch {torch.__version__}, CPU, layer C=64 on 2x64x8x8, launches stubbed; "
          f"{args.rounds} interleaved rounds of {args.calls} calls; us per call, median / min")
    for name, ts in times.items():
        print(f"  {name:13s} {statistics.median(ts):7.1f} / {min(ts):7.1f}")
    if args.profile:
        prof = cProfile.Profile()
        fn = fns[args.profile]
        prof.enable()
        for _ in range(args.calls):
            fn()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
