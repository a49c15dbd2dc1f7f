"""Params, GFLOPs, throughput and latency: the cost columns of the paper's Table 2.

* Params: every parameter of the (unfused) model, as trained.
* GFLOPs: FLOPs of one forward pass of one image at ``imgsz``, counted at the aten level by
  ``torch.utils.flop_counter.FlopCounterMode``. That counter sees every convolution and
  matrix product, including the ones inside an attention layer (SCSA's channel self-
  attention), and counts one multiply-add as 2 FLOPs; element-wise ops, normalisation and
  pooling are not counted. GFLOPs = FLOPs / 1e9. This is the convention of the paper's
  tools (fvcore, thop, mmcv's counter count the multiply-adds of convolutions, linear
  layers and matrix products; thop and Ultralytics report 2 x MACs as FLOPs), so most
  attentions, whose work is element-wise gating, pooling and normalisation, add ~0.
* GFLOPs (all ops), field ``gflops_all``: ``gflops`` plus the element-wise work under one
  rule: every aten op that is element-wise (tagged pointwise, plus hardswish), a reduction
  (mean, sum, amax, var, ...), a softmax, a pooling or a normalisation (group, batch, layer
  norm) adds **one FLOP per element of the largest tensor it reads or writes**: a
  ``sigmoid`` or ``mul`` of an (C, H, W) map adds C*H*W, a mean over H*W adds C*H*W, a
  GroupNorm of the map adds C*H*W. Data movement (views, reshapes, permutes, concatenation,
  copies, clones) adds nothing, nor do bias additions fused inside a convolution. It is a
  lower bound of the arithmetic (a normalisation does several operations per element, a
  pooling window of k x k reads k^2 inputs per output) that makes the attentions'
  element-wise cost visible beside the matmul/conv-only figure.
* Throughput (images/s), the paper's protocol on a GPU: batch 32, warm-up, 100 timed
  forward passes under fp16 autocast, timed with CUDA events (the GPU queue is drained
  before the clock stops). Latency: the same at batch 1, milliseconds per forward.
* On a CPU the same code runs with smaller settings (defaults below) and the result says
  ``reduced: true`` so nobody mistakes it for a paper-protocol figure.

Inference figures use the Conv+BN-fused model, as Ultralytics deploys it.
"""
from __future__ import annotations

import contextlib
import copy
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from scsa_yolo.device import device_name, resolve_device  # noqa: F401 (resolve_device re-exported for the CLI)
from scsa_yolo.integration.training import quiet

FLOPS_CONVENTION = (
    "torch.utils.flop_counter.FlopCounterMode, batch 1: convolutions and matrix products "
    "(attention matmuls included), 1 multiply-add = 2 FLOPs; element-wise ops not counted"
)

ALL_OPS_CONVENTION = (
    "torch.utils.flop_counter.FlopCounterMode, batch 1: convolutions and matrix products, 1 multiply-add = "
    "2 FLOPs; plus 1 FLOP per element of the largest tensor read or written by each element-wise, "
    "reduction, softmax, pooling and normalisation aten op; views, reshapes, concatenation and copies not counted"
)

# The paper's protocol (GPU) and the reduced CPU settings that stand in for it.
GPU_SETTINGS = {"batch": 32, "warmup": 10, "reps": 100, "half": True}
CPU_SETTINGS = {"batch": 2, "warmup": 2, "reps": 10, "half": False}


@dataclass
class ProfileResult:
    """Cost figures of one model at one image size on one device."""

    model: str
    imgsz: int
    params: int
    gflops: float
    flops_convention: str
    device: str
    device_name: str
    batch: int
    warmup: int
    reps: int
    half: bool
    throughput: float | None  # images per second at ``batch``
    latency_ms: float | None  # milliseconds per forward at batch 1
    timing: str
    reduced: bool  # True when not the paper's protocol (CPU, or settings changed)
    fused: bool
    note: str = ""
    gflops_all: float | None = None  # gflops plus element-wise work (ALL_OPS_CONVENTION)
    flops_all_convention: str = ALL_OPS_CONVENTION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"{self.model} @ {self.imgsz}: params {self.params / 1e6:.3f} M, GFLOPs {self.gflops:.3f} "
            f"(all ops {_fmt(self.gflops_all, '.3f')})",
            f"  throughput {_fmt(self.throughput, '.1f')} img/s (batch {self.batch}, {self.reps} reps, "
            f"{'fp16 autocast' if self.half else 'fp32'}, {self.device_name})",
            f"  latency {_fmt(self.latency_ms, '.2f')} ms at batch 1",
        ]
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(module: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of ``module(example)`` at the aten level (2 per multiply-add)."""
    return count_flops_split(module, example)[0]


def count_flops_split(module: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """``(matmul/conv FLOPs, element-wise FLOPs)`` of one ``module(example)`` call.

    The first is :func:`count_flops`'s figure (FlopCounterMode); the second counts the ops
    that counter leaves out under the rule of the module docstring (``gflops_all``).
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    elementwise = _ElementwiseFlopCounter()
    with torch.inference_mode(), counter, elementwise:
        module(example)
    return int(counter.get_total_flops()), elementwise.flops


# Ops without the pointwise/reduction tags that still do arithmetic on every element.
_EXTRA_COUNTED = {
    "hardswish", "hardswish_", "_softmax", "_log_softmax", "softmax", "log_softmax", "logsumexp",
    "native_group_norm", "native_batch_norm", "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training", "_batch_norm_with_update", "_batch_norm_no_update",
    "native_layer_norm", "_fused_rms_norm", "cumsum",
    # the composite forms, which inference mode dispatches without decomposing
    "group_norm", "batch_norm", "layer_norm", "instance_norm", "rms_norm",
}
# Tagged pointwise, but pure data movement.
_NOT_COUNTED = {"clone", "_to_copy", "copy", "copy_", "lift_fresh_copy", "fill", "fill_", "zero_", "detach"}


def _elementwise_cost(func: Any, args: Any, kwargs: Any, out: Any) -> int:
    """FLOPs one aten call adds under the ``gflops_all`` rule (0 for ops not counted)."""
    from torch.utils._pytree import tree_leaves
    from torch.utils.flop_counter import flop_registry

    packet = getattr(func, "overloadpacket", None)
    if packet is None or packet in flop_registry:
        return 0  # counted by FlopCounterMode (or not an aten op)
    name = packet.__name__
    if name in _NOT_COUNTED:
        return 0
    tags = getattr(func, "tags", ())
    if not (torch.Tag.pointwise in tags or torch.Tag.reduction in tags or name in _EXTRA_COUNTED or "pool" in name):
        return 0
    sizes = [t.numel() for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
    return max(sizes, default=0)


class _ElementwiseFlopCounter(TorchDispatchMode):
    """Adds :func:`_elementwise_cost` over every aten call made while active."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.flops += _elementwise_cost(func, args, kwargs, out)
        return out


def time_forward(
    fn: Callable[[], Any], device: torch.device, warmup: int, reps: int, rounds: int = 10
) -> float:
    """Seconds per call of ``fn`` after ``warmup`` untimed calls.

    The ``reps`` timed calls are split into ``rounds`` back-to-back rounds and the median of
    the per-round means is returned: one hiccup (a clock ramp, a host stall, another process)
    then moves the figure by one round at most, where a single mean would absorb it. On CUDA
    each round is timed with events and the device is synchronised before reading them.
    """
    return time_interleaved([fn], device, warmup, reps, rounds)[0]


def _autocast(device: torch.device, half: bool):
    if half and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def load_detection_model(model: str | nn.Module) -> tuple[nn.Module, str]:
    """The ``nn.Module`` of a model YAML, a ``.pt`` checkpoint, a run folder, or a module."""
    if isinstance(model, nn.Module):
        return model, type(model).__name__
    from pathlib import Path

    from scsa_yolo.eval.evaluate import resolve_weights
    from scsa_yolo.integration.yolo import load_yolo

    source = str(model)
    if Path(source).is_dir() or source.endswith(".pt"):
        source = str(resolve_weights(source))
    with quiet():  # no model summary: it prints unfused GFLOPs of its own
        net = load_yolo(source).model
    return net.float(), Path(str(model)).name


@dataclass
class _Prepared:
    """A model ready to time: fused, on the device, with its counts."""

    name: str
    net: nn.Module
    params: int
    flops: int
    elementwise_flops: int
    fused: bool


def _prepare(model: str | nn.Module, imgsz: int, channels: int, dev: torch.device) -> _Prepared:
    net, name = load_detection_model(model)
    params = count_params(net)
    net = copy.deepcopy(net).to(dev).eval()
    fused = hasattr(net, "fuse")
    if fused:
        with quiet():  # no model summary: it prints unfused GFLOPs of its own
            net = net.fuse(verbose=False) if "verbose" in net.fuse.__code__.co_varnames else net.fuse()
    for p in net.parameters():
        p.requires_grad_(False)
    flops, elementwise = count_flops_split(net, torch.zeros(1, channels, imgsz, imgsz, device=dev))
    return _Prepared(name, net, params, flops, elementwise, fused)


def time_interleaved(
    fns: list[Callable[[], Any]], device: torch.device, warmup: int, reps: int, rounds: int = 10
) -> list[float]:
    """Seconds per call of each of ``fns``, timed in interleaved rounds.

    Every function gets ``warmup`` untimed calls; then, ``rounds`` times, each function in
    turn runs its share of the ``reps`` timed calls (CUDA events on a GPU). Each figure is the
    median of that function's per-round means. Competing models thus meet the same host and
    clock drift: a stall or a slow minute hits all of them in one round, not one of them for
    good, as it would when each model is timed to the end before the next.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    rounds = max(1, min(rounds, reps))
    per_round = [reps // rounds + (1 if r < reps % rounds else 0) for r in range(rounds)]
    means: list[list[float]] = [[] for _ in fns]
    for count in per_round:
        for i, fn in enumerate(fns):
            means[i].append(_time_block(fn, device, count))
    return [float(statistics.median(m)) for m in means]


def _time_block(fn: Callable[[], Any], device: torch.device, count: int) -> float:
    """Mean seconds per call over ``count`` back-to-back calls."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(count):
            fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1000.0 / count
    begin = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - begin) / count


def profile_models(
    models: list[str | nn.Module],
    imgsz: int = 640,
    batch: int | None = None,
    reps: int | None = None,
    warmup: int | None = None,
    device: str | int | torch.device | None = None,
    half: bool | None = None,
    latency: bool = True,
    channels: int = 3,
) -> list[ProfileResult]:
    """Params, GFLOPs, throughput and latency of detection models, timed side by side.

    Args:
        models: model YAML names or paths (``yolov8n-scsa.yaml``), ``.pt`` checkpoints, run
            folders, or ``nn.Module`` s taking ``(B, channels, imgsz, imgsz)``.
        imgsz: square input size; use the training size (FLOPs scale with it).
        batch, reps, warmup, half: timing settings; ``None`` takes the paper's protocol on a
            GPU (32, 100, 10, fp16) and the reduced CPU settings (2, 10, 2, fp32) on a CPU.
        latency: also time batch 1.

    All models are loaded first, then timed in interleaved rounds (:func:`time_interleaved`),
    throughput and latency alike, so their ratios do not carry the host's drift.
    """
    dev = resolve_device(device)
    defaults = GPU_SETTINGS if dev.type == "cuda" else CPU_SETTINGS
    batch = defaults["batch"] if batch is None else batch
    reps = defaults["reps"] if reps is None else reps
    warmup = defaults["warmup"] if warmup is None else warmup
    half = defaults["half"] if half is None else half
    if half and dev.type != "cuda":
        raise ValueError("half=True (fp16 autocast) needs a CUDA device; on CPU profile in fp32")

    prepared = [_prepare(model, imgsz, channels, dev) for model in models]
    throughputs: list[float | None] = [None] * len(prepared)
    latencies: list[float | None] = [None] * len(prepared)
    if reps > 0:
        images = torch.rand(batch, channels, imgsz, imgsz, device=dev)
        single = images[:1].clone()
        with torch.inference_mode(), _autocast(dev, half):
            seconds = time_interleaved([_forward_of(p.net, images) for p in prepared], dev, warmup, reps)
            throughputs = [batch / s for s in seconds]
            if latency:
                latencies = [1000.0 * s for s in
                             time_interleaved([_forward_of(p.net, single) for p in prepared], dev, warmup, reps)]

    paper = GPU_SETTINGS
    reduced = dev.type != "cuda" or (batch, reps, half) != (paper["batch"], paper["reps"], paper["half"])
    note = ""
    if reduced:
        note = (
            f"reduced protocol ({dev.type}: batch {batch}, {reps} reps, {'fp16' if half else 'fp32'}); "
            f"the paper's is batch {paper['batch']}, {paper['reps']} reps, fp16 autocast on a GPU"
        )
    timing = "cuda-events" if dev.type == "cuda" else "perf_counter"
    if len(prepared) > 1:
        timing += f", interleaved rounds over {len(prepared)} models"
    return [
        ProfileResult(
            model=p.name,
            imgsz=imgsz,
            params=p.params,
            gflops=round(p.flops / 1e9, 4),
            flops_convention=FLOPS_CONVENTION,
            device=str(dev),
            device_name=device_name(dev),
            batch=batch,
            warmup=warmup,
            reps=reps,
            half=half,
            throughput=None if tp is None else round(tp, 2),
            latency_ms=None if lat is None else round(lat, 3),
            timing=timing,
            reduced=reduced,
            fused=p.fused,
            note=note,
            gflops_all=round((p.flops + p.elementwise_flops) / 1e9, 4),
        )
        for p, tp, lat in zip(prepared, throughputs, latencies)
    ]


def _forward_of(net: nn.Module, images: torch.Tensor) -> Callable[[], Any]:
    return lambda: net(images)


def profile_model(model: str | nn.Module, **settings: Any) -> ProfileResult:
    """:func:`profile_models` of one model (same settings)."""
    return profile_models([model], **settings)[0]


@dataclass
class LayerProfileResult:
    """Cost of one attention layer on one input shape."""

    layer: str
    shape: tuple[int, int, int, int]  # (B, C, H, W)
    params: int
    gflops: float  # one image (batch 1), same counter and convention as the model figures
    device: str
    device_name: str
    dtype: str
    warmup: int
    reps: int
    forward_ms: float | None
    forward_backward_ms: float | None
    timing: str
    gflops_all: float | None = None  # gflops plus element-wise work (ALL_OPS_CONVENTION)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        b, c, h, w = self.shape
        return (
            f"{self.layer} on (B={b}, C={c}, H={h}, W={w}) {self.dtype} {self.device_name}: params {self.params}, "
            f"MFLOPs per image {1000 * self.gflops:.3f} (all ops {_fmt(None if self.gflops_all is None else 1000 * self.gflops_all, '.3f')}), forward {_fmt(self.forward_ms, '.3f')} ms, "
            f"forward+backward {_fmt(self.forward_backward_ms, '.3f')} ms ({self.reps} reps)"
        )


def profile_layer(
    name: str,
    shape: tuple[int, int, int],
    batch: int = 32,
    reps: int | None = None,
    warmup: int | None = None,
    device: str | int | torch.device | None = None,
    dtype: str = "fp32",
    backward: bool = True,
    **layer_kwargs: Any,
) -> LayerProfileResult:
    """Time one attention layer (from the registry) on a ``(batch, C, H, W)`` input.

    ``dtype`` is ``fp32``, or ``fp16``/``bf16`` run under autocast (CUDA; bf16 also on CPU).
    Forward is timed under ``inference_mode``; forward+backward with a sum loss.
    """
    from scsa_yolo.nn.registry import create_attention, get_attention

    dev = resolve_device(device)
    defaults = GPU_SETTINGS if dev.type == "cuda" else CPU_SETTINGS
    reps = defaults["reps"] if reps is None else reps
    warmup = defaults["warmup"] if warmup is None else warmup
    spec = get_attention(name)
    channels, height, width = shape
    layer = (create_attention(spec.name, channels, **layer_kwargs) if spec.cls is not None else nn.Identity()).to(dev)
    x = torch.randn(batch, channels, height, width, device=dev)
    amp_dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype not in amp_dtype:
        raise ValueError(f"dtype must be one of {list(amp_dtype)}, got {dtype!r}")
    if amp_dtype[dtype] is not None and dev.type != "cuda" and dtype != "bf16":
        raise ValueError(f"{dtype} autocast needs a CUDA device")

    def autocast():
        if amp_dtype[dtype] is None:
            return contextlib.nullcontext()
        return torch.autocast(dev.type, dtype=amp_dtype[dtype])

    flops, elementwise_flops = count_flops_split(layer, x[:1])
    with torch.inference_mode(), autocast():
        forward = time_forward(lambda: layer(x), dev, warmup, reps) if reps > 0 else None
    both = None
    if backward and reps > 0 and any(p.requires_grad for p in layer.parameters()):
        x_grad = x.clone().requires_grad_(True)

        def step():
            with autocast():
                out = layer(x_grad)
            out.float().sum().backward()

        both = time_forward(step, dev, warmup, reps)
    return LayerProfileResult(
        layer=spec.name,
        shape=(batch, channels, height, width),
        params=count_params(layer),
        gflops=round(flops / 1e9, 9),
        device=str(dev),
        device_name=device_name(dev),
        dtype=dtype,
        warmup=warmup,
        reps=reps,
        forward_ms=None if forward is None else round(forward * 1000, 4),
        forward_backward_ms=None if both is None else round(both * 1000, 4),
        timing="cuda-events" if dev.type == "cuda" else "perf_counter",
        gflops_all=round((flops + elementwise_flops) / 1e9, 9),
    )
