"""Python-side cost of calling fused SCSA eagerly, with the kernel launches stubbed out, so
only the wrappers are timed. Runs on the CPU (Triton's interpreter compiles nothing here:
the launches are stubbed after one real call).

    python3 benchmarks/scsa_op_wrapper_cost.py [--rounds 5] [--calls 500] [--stub direct|launcher]
                                               [--profile layer-fb] [--tree DIR]
    python3 benchmarks/scsa_op_wrapper_cost.py --compare OLD_TREE NEW_TREE [--procs 3] ...
    PSORT=cumulative PN=40 python3 benchmarks/scsa_op_wrapper_cost.py --profile layer-fb   (profile order, rows)

Variants, per call (us), each timed in interleaved rounds (median / min over rounds):
  layer-fb     the layer's own forward + backward (what eager training runs: SCSA.forward,
               supports(), the autograd Function, AccumulateGrad of 17 parameters and x;
               gradients set to None before each call, as a trainer's zero_grad does)
  layer-fwd    the layer's forward under no_grad (eager inference)
  function-fb  the autograd Function alone, forward + backward (gradients accumulate)
  op-fb        torch.ops.scsa_yolo.fused_forward + its registered backward (eager through the ops)
  function-fwd / op-fwd  forward only, no grad (op-fwd is what a compiled graph calls per layer)
  floor-fb     an autograd Function that takes x and the same 17 parameters, saves them, allocates
               out, dx and one flat gradient buffer and returns its views, and does nothing else:
               what any Function over the layer's separate parameters pays (autograd's per-
               parameter work), so layer-fb minus floor-fb is the fused path's own Python
  flat-fb      floor-fb's Function taking the parameters as one flat buffer (torch.cat of the
               flattened parameters in front of it, its backward splitting the buffer's gradient
               back): the "one flat buffer" form of the eager call, for comparison with floor-fb
  conv-fb      a Conv2d 3x3 + BatchNorm2d of the same shape, forward + backward, for scale only:
               on the CPU its figure includes the arithmetic (and oneDNN's set-up), which the stubbed
               SCSA skips, so it says nothing about the issue's GPU target (SCSA host time within
               1.5x of a conv3x3+BN layer's): that needs benchmarks/scsa_host_profile.py on a GPU

Stubs: ``direct`` (default) replaces only the compiled kernel with a no-op, so the launcher's
direct path (a pointer per argument) runs as on a GPU after the first launch; ``launcher``
replaces the whole launch call (what this script measured before), so argument marshalling
is not counted.

``--tree DIR`` imports scsa_yolo from DIR (a checkout, or ``git archive REV scsa_yolo`` unpacked
there); ``--compare OLD NEW`` runs OLD and NEW alternately in ``--procs`` fresh processes each
(OLD, NEW, OLD, NEW, ...) and reports the median / min over all their rounds per tree.
The figures are this CPU's, not a GPU host's; the ratio between variants and trees is the point.
"""
import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("SCSA_YOLO_TRITON_INTERPRET", "1")
HERE = os.path.dirname(os.path.abspath(__file__))


def _import_tree(tree: str | None):
    """scsa_fast from ``tree`` (default: this checkout); scsa_yolo may already be imported at
    start-up by the package's autoload hook, so it is dropped and re-imported from there."""
    root = os.path.abspath(tree or os.path.join(HERE, ".."))
    for name in [m for m in sys.modules if m == "scsa_yolo" or m.startswith("scsa_yolo.")]:
        del sys.modules[name]
    sys.path[:0] = [root, HERE]
    from scsa_yolo.nn import scsa_fast  # noqa: PLC0415

    if not os.path.abspath(scsa_fast.__file__).startswith(root + os.sep):
        raise SystemExit(f"scsa_fast was imported from {scsa_fast.__file__}, not from {root}")
    return scsa_fast


def variants(F, channels: int, shape: tuple[int, int, int], stub: str):
    """Callables of the variants on one layer; launches are stubbed after a real call."""
    import torch  # noqa: PLC0415
    from scsa_layer import make_layer  # noqa: PLC0415

    layer = make_layer(channels, seed=2)
    layer.impl = "fast"
    x = torch.randn(shape[0], channels, shape[1], shape[2], requires_grad=True)
    layer(x).sum().backward()  # one real call through the interpreter: plans and kernels exist
    if stub == "launcher":
        F._Launcher.__call__ = lambda self, *args, **kwargs: None
    else:
        untried = (lambda *args, **kwargs: None, [], False)  # (compiled runner, constants, not launched yet)

        class AlwaysCompiled(dict):
            """Every launch finds a compiled no-op runner; the launcher's own first direct
            launch then stores what it keeps for later ones, as on a GPU."""

            def get(self, key, default=None):
                return super().get(key, untried)

        F._launch.cache = AlwaysCompiled()
    cfg, params = F._config(layer), F._params(layer)
    dout = torch.ones_like(x)
    leaves = [x, *layer.parameters()]
    x_nograd = x.detach()
    conv = torch.nn.Sequential(torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                               torch.nn.BatchNorm2d(channels))
    conv_leaves = [x, *conv.parameters()]

    def layer_fb():
        for t in leaves:
            t.grad = None
        layer(x).backward(dout)

    def layer_fwd():
        with torch.no_grad():
            layer(x_nograd)

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

    class Floor(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, *params):
            ctx.save_for_backward(x, *params)
            return torch.empty_like(x)

        @staticmethod
        def backward(ctx, dout):
            x, *params = ctx.saved_tensors
            flat = torch.empty(sum(p.numel() for p in params), dtype=params[0].dtype)
            return (torch.empty_like(x), *torch._C._nn.unflatten_dense_tensors(flat, params))

    floor_params = tuple(F._params(layer))

    def floor_fb():
        for t in leaves:
            t.grad = None
        Floor.apply(x, *floor_params).backward(dout)

    class FlatFloor(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, flat):
            ctx.save_for_backward(x, flat)
            return torch.empty_like(x)

        @staticmethod
        def backward(ctx, dout):
            x, flat = ctx.saved_tensors
            return torch.empty_like(x), torch.empty_like(flat)

    def flat_fb():
        for t in leaves:
            t.grad = None
        FlatFloor.apply(x, torch.cat([p.reshape(-1) for p in floor_params])).backward(dout)

    def conv_fb():
        for t in conv_leaves:
            t.grad = None
        conv(x).backward(dout)

    return {"layer-fb": layer_fb, "layer-fwd": layer_fwd, "function-fb": function_fb, "op-fb": op_fb,
            "function-fwd": function_fwd, "op-fwd": op_fwd, "floor-fb": floor_fb,
            "flat-fb": flat_fb, "conv-fb": conv_fb}


def measure(args) -> dict[str, list[float]]:
    F = _import_tree(args.tree)
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)  # one core: the host path is single-threaded, and conv-fb's CPU kernels
    # must not spread onto cores that other processes (or the interleaved tree) are using
    fns = variants(F, 64, (2, 8, 8), args.stub)
    if args.profile is not None and args.profile not in fns:
        raise SystemExit(f"--profile {args.profile!r}: choose one of {', '.join(fns)}")
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
    if args.profile:
        prof = cProfile.Profile()
        fn = fns[args.profile]
        prof.enable()
        for _ in range(args.calls):
            fn()
        prof.disable()
        pstats.Stats(prof).sort_stats(os.environ.get("PSORT", "tottime")).print_stats(int(os.environ.get("PN", "20")))
    return times


def compare(args) -> None:
    trees = args.compare
    times = {tree: {} for tree in trees}
    for _ in range(args.procs):
        for tree in trees:
            cmd = [sys.executable, __file__, "--json", "--tree", tree, "--rounds", str(args.rounds),
                   "--calls", str(args.calls), "--stub", args.stub]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            for name, ts in json.loads(out.strip().splitlines()[-1]).items():
                times[tree].setdefault(name, []).extend(ts)
    n = args.procs * args.rounds
    print(f"CPU, layer C=64 on 2x64x8x8, launches stubbed ({args.stub}); per tree {args.procs} processes x "
          f"{args.rounds} interleaved rounds of {args.calls} calls = {n} rounds, trees alternating by process; "
          "us per call, median / min")
    names = list(times[trees[0]])
    print(f"  {'variant':13s} " + "  ".join(f"{os.path.basename(os.path.abspath(t))[:17]:>17s}" for t in trees))
    for name in names:
        cells = [f"{statistics.median(times[t][name]):7.1f} / {min(times[t][name]):6.1f}" for t in trees]
        print(f"  {name:13s} " + "  ".join(f"{c:>17s}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=500, help="calls per variant and round")
    ap.add_argument("--stub", choices=("direct", "launcher"), default="direct")
    ap.add_argument("--profile", default=None, help="also print a cProfile of one variant (e.g. layer-fb)")
    ap.add_argument("--tree", default=None, help="import scsa_yolo from this source tree")
    ap.add_argument("--compare", nargs="+", metavar="TREE", help="time these trees in alternating processes")
    ap.add_argument("--procs", type=int, default=3, help="with --compare: processes per tree")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.calls < 1 or args.procs < 1:
        ap.error("--rounds, --calls and --procs must be at least 1")
    if args.compare:
        compare(args)
        return 0
    times = measure(args)
    if args.json:
        print(json.dumps(times))
        return 0
    import torch  # noqa: PLC0415

    print(f"torch {torch.__version__}, CPU, layer C=64 on 2x64x8x8, launches stubbed ({args.stub}); "
          f"{args.rounds} interleaved rounds of {args.calls} calls; us per call, median / min")
    for name, ts in times.items():
        print(f"  {name:13s} {statistics.median(ts):7.1f} / {min(ts):7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
