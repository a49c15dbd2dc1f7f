"""Params, GFLOPs, throughput and latency: the cost columns of the paper's Table 2.

* Params: every parameter of the (unfused) model, as trained.
* GFLOPs: FLOPs of one forward pass of one image at ``imgsz``, counted at the aten level by
  ``torch.utils.flop_counter.FlopCounterMode``. That counter sees every convolution and
  matrix product, including the ones inside an attention layer (SCSA's channel self-
  attention), and counts one multiply-add as 2 FLOPs; element-wise ops, normalisation and
  pooling are not counted. GFLOPs = FLOPs / 1e9.
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

from scsa_yolo.device import cpu_name, device_name, resolve_device  # noqa: F401 (re-exported)

FLOPS_CONVENTION = (
    "torch.utils.flop_counter.FlopCounterMode, batch 1: convolutions and matrix products "
    "(attention matmuls included), 1 multiply-add = 2 FLOPs; element-wise ops not counted"
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"{self.model} @ {self.imgsz}: params {self.params / 1e6:.3f} M, GFLOPs {self.gflops:.3f}",
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
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(example)
    return int(counter.get_total_flops())


def time_forward(
    fn: Callable[[], Any], device: torch.device, warmup: int, reps: int, rounds: int = 10
) -> float:
    """Seconds per call of ``fn`` after ``warmup`` untimed calls.

    The ``reps`` timed calls are split into ``rounds`` back-to-back rounds and the median of
    the per-round means is returned: one hiccup (a clock ramp, a host stall, another process)
    then moves the figure by one round at most, where a single mean would absorb it. On CUDA
    each round is timed with events and the device is synchronised before reading them.
    """
    for _ in range(warmup):
        fn()
    rounds = max(1, min(rounds, reps))
    per_round = [reps // rounds + (1 if r < reps % rounds else 0) for r in range(rounds)]
    means = []
    for count in per_round:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(count):
                fn()
            end.record()
            torch.cuda.synchronize(device)
            means.append(start.elapsed_time(end) / 1000.0 / count)
        else:
            begin = time.perf_counter()
            for _ in range(count):
                fn()
            means.append((time.perf_counter() - begin) / count)
    return float(statistics.median(means))


def _autocast(device: torch.device, half: bool):
    if half and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def load_detection_model(model: str | nn.Module) -> tuple[nn.Module, str]:
    """The ``nn.Module`` of a model YAML, a ``.pt`` checkpoint, a run folder, or a module."""
    if isinstance(model, nn.Module):
        return model, type(model).__name__
    from pathlib import Path

    from scsa_yolo.eval.evaluate import register_layers, resolve_weights

    register_layers()
    from ultralytics import YOLO

    source = str(model)
    if Path(source).is_dir() or source.endswith(".pt"):
        source = str(resolve_weights(source))
    with _quiet_ultralytics():
        net = YOLO(source).model
    return net.float(), Path(str(model)).name


@contextlib.contextmanager
def _quiet_ultralytics():
    """Silence Ultralytics' model summary while building (it prints unfused GFLOPs of its own)."""
    try:
        from ultralytics.utils import LOGGER
    except ImportError:  # pragma: no cover
        yield
        return
    level = LOGGER.level
    LOGGER.setLevel(40)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


def profile_model(
    model: str | nn.Module,
    imgsz: int = 640,
    batch: int | None = None,
    reps: int | None = None,
    warmup: int | None = None,
    device: str | int | torch.device | None = None,
    half: bool | None = None,
    latency: bool = True,
    channels: int = 3,
) -> ProfileResult:
    """Params, GFLOPs, throughput and latency of a detection model.

    Args:
        model: model YAML name or path (``yolov8n-scsa.yaml``), ``.pt`` checkpoint, run
            folder, or an ``nn.Module`` taking ``(B, channels, imgsz, imgsz)``.
        imgsz: square input size; use the training size (FLOPs scale with it).
        batch, reps, warmup, half: timing settings; ``None`` takes the paper's protocol on a
            GPU (32, 100, 10, fp16) and the reduced CPU settings (2, 10, 2, fp32) on a CPU.
        latency: also time batch 1.
    """
    dev = resolve_device(device)
    defaults = GPU_SETTINGS if dev.type == "cuda" else CPU_SETTINGS
    batch = defaults["batch"] if batch is None else batch
    reps = defaults["reps"] if reps is None else reps
    warmup = defaults["warmup"] if warmup is None else warmup
    half = defaults["half"] if half is None else half
    if half and dev.type != "cuda":
        raise ValueError("half=True (fp16 autocast) needs a CUDA device; on CPU profile in fp32")

    net, name = load_detection_model(model)
    params = count_params(net)
    net = copy.deepcopy(net).to(dev).eval()
    if hasattr(net, "fuse"):
        with _quiet_ultralytics():
            net = net.fuse(verbose=False) if "verbose" in net.fuse.__code__.co_varnames else net.fuse()
        fused = True
    else:
        fused = False
    for p in net.parameters():
        p.requires_grad_(False)

    flops = count_flops(net, torch.zeros(1, channels, imgsz, imgsz, device=dev))

    throughput = latency_ms = None
    if reps > 0:
        images = torch.rand(batch, channels, imgsz, imgsz, device=dev)
        with torch.inference_mode(), _autocast(dev, half):
            seconds = time_forward(lambda: net(images), dev, warmup, reps)
            throughput = batch / seconds
            if latency:
                single = images[:1].clone()
                latency_ms = 1000.0 * time_forward(lambda: net(single), dev, warmup, reps)

    paper = GPU_SETTINGS
    reduced = dev.type != "cuda" or (batch, reps, half) != (paper["batch"], paper["reps"], paper["half"])
    note = ""
    if reduced:
        note = (
            f"reduced protocol ({dev.type}: batch {batch}, {reps} reps, {'fp16' if half else 'fp32'}); "
            f"the paper's is batch {paper['batch']}, {paper['reps']} reps, fp16 autocast on a GPU"
        )
    return ProfileResult(
        model=name,
        imgsz=imgsz,
        params=params,
        gflops=round(flops / 1e9, 4),
        flops_convention=FLOPS_CONVENTION,
        device=str(dev),
        device_name=device_name(dev),
        batch=batch,
        warmup=warmup,
        reps=reps,
        half=half,
        throughput=None if throughput is None else round(throughput, 2),
        latency_ms=None if latency_ms is None else round(latency_ms, 3),
        timing="cuda-events" if dev.type == "cuda" else "perf_counter",
        reduced=reduced,
        fused=fused,
        note=note,
    )


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        b, c, h, w = self.shape
        return (
            f"{self.layer} on (B={b}, C={c}, H={h}, W={w}) {self.dtype} {self.device_name}: params {self.params}, "
            f"MFLOPs per image {1000 * self.gflops:.3f}, forward {_fmt(self.forward_ms, '.3f')} ms, "
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

    flops = count_flops(layer, x[:1])
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
    )
