"""Compile the fused SCSA kernels for a model's shapes before a long job (issue 28).

A fresh machine compiles the fused SCSA kernels on their first use: about a second per
kernel variant, one variant per (layer configuration, size bucket, dtype), and a stock
``yolo train`` meets dozens of them (the training step, then Ultralytics' rectangular
validation batches, whose shapes follow the images' aspect ratios). Triton keeps what it
compiled in its cache folder (``TRITON_CACHE_DIR``, by default ``~/.triton/cache``), so
the cost is paid once per cache folder. :func:`warm_up` pays it up front: it runs the
model, on random inputs, through

* one training step: ``batch`` images of ``imgsz`` x ``imgsz`` (the mosaic batches),
  forward and backward, fp16 autocast with float32 parameters when ``amp``;
* the validation batches the trainer will form: ``2 * batch`` images at every shape
  Ultralytics' rectangular batches can take at this size (:func:`rect_val_shapes`), plus
  the square ``imgsz`` one. Under ``amp`` each shape twice (:func:`validation_passes`):
  fp16 images under autocast with float32 weights (how Ultralytics 8.4 validates during
  training: its EMA weights stay float32) and fp16 weights (the final validation of
  best.pt, and how older releases validated during training). The kernels are compiled per
  weight dtype, so warming one of the two left the other's variants to the job (on an H100,
  session 13: 67 of a run's 135 variants, 19.5 s of first launches);
* optionally (``predict``) single images at every letterboxed shape ``yolo predict`` makes
  (:func:`letterbox_shapes`), float32 as Ultralytics predicts by default.

Nothing of the model is changed (it runs on a copy). Work can be split over processes
(``shard=(k, n)``: shard 0 the training step, the others the inference shapes): their
compiles fill the same cache folder in parallel.

:func:`compile_ahead` is the same walk for a job that is about to start (a trainer's exact
batches, one image per kind), with the SCSA layers queuing their compiles on background
threads instead of launching: what a training job runs at its setup
(:mod:`scsa_yolo.integration.job_kernels`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

__all__ = ["ValidationPass", "WarmupReport", "compile_ahead", "letterbox_shapes", "rect_val_shapes",
           "triton_cache_dir", "our_cached_kernels", "validation_passes", "warm_up"]


def rect_val_shapes(imgsz: int, stride: int = 32, pad: float = 0.5) -> list[tuple[int, int]]:
    """Every (H, W) a rectangular validation batch can take at ``imgsz``.

    Ultralytics (``YOLODataset.set_rectangle``, ``pad=0.5`` for validation) sizes a batch
    as ``ceil(s * imgsz / stride + pad) * stride`` per side, where the side ratios s are
    1 for the long side and (0, 1] for the short one: at 640 the long side is 672 and the
    short one any multiple of 32 up to 672.
    """
    top = math.ceil(imgsz / stride + pad)
    long_side = top * stride
    shapes = []
    for k in range(1, top + 1):
        side = k * stride
        shapes += [(long_side, side)] + ([(side, long_side)] if side != long_side else [])
    return shapes


def letterbox_shapes(imgsz: int, stride: int = 32) -> list[tuple[int, int]]:
    """Every (H, W) ``yolo predict`` letterboxes an image to (``auto=True``): the long side
    ``imgsz``, the short side padded up to a multiple of ``stride``."""
    shapes = []
    for side in range(stride, imgsz + 1, stride):
        shapes += [(imgsz, side)] + ([(side, imgsz)] if side != imgsz else [])
    return shapes


def triton_cache_dir() -> Path:
    """The folder Triton keeps compiled kernels in (``TRITON_CACHE_DIR``, else
    ``$TRITON_HOME/.triton/cache`` with TRITON_HOME defaulting to the home folder)."""
    explicit = os.environ.get("TRITON_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("TRITON_HOME", "").strip() or Path.home()) / ".triton" / "cache"


def our_cached_kernels(folder: Path | None = None) -> int:
    """Compiled fused-SCSA kernels (``fwd_*`` / ``bwd_*`` binaries) in Triton's cache folder."""
    root = folder or triton_cache_dir()
    if not root.is_dir():
        return 0
    return sum(1 for p in root.rglob("*.cubin") if p.name.startswith(("fwd_", "bwd_")))


@dataclass
class WarmupReport:
    """What a warm-up ran: per step, a label, the input shapes and seconds."""

    scsa_layers: int = 0
    fused_layers: int = 0
    steps: list[dict] = field(default_factory=list)
    variants: int = 0  # kernel variants this process launched (compiled or loaded from the cache)
    first_launch_s: float = 0.0

    def to_dict(self) -> dict:
        return {"scsa_layers": self.scsa_layers, "fused_layers": self.fused_layers, "steps": self.steps,
                "variants": self.variants, "first_launch_s": round(self.first_launch_s, 3)}


@dataclass(frozen=True)
class ValidationPass:
    """One way Ultralytics runs the model over validation batches: the dtype of the weights
    and of the images, and whether under fp16 autocast."""

    label: str
    weights: torch.dtype
    images: torch.dtype
    autocast: bool
    channels_last: bool = False  # the model's memory format (its feature maps follow it)


def validation_passes(half: bool, channels_last: bool = False,
                      final_channels_last: bool = False) -> list[ValidationPass]:
    """The validation passes a training job meets: with AMP on a GPU (``half``), validation
    during training (fp16 images under autocast, float32 weights, Ultralytics 8.4) and the
    final validation of best.pt (fp16 weights; older releases validated this way during
    training too); without AMP, float32 throughout.

    ``channels_last``: the trainer runs its model in channels-last memory
    (:func:`scsa_yolo.integration.training.trains_channels_last`). Validation during training
    runs the EMA, a copy of that model, so its feature maps are channels-last too; the final
    validation's AutoBackend keeps a CUDA model contiguous. The kernels are compiled per
    layout: a job after a contiguous-only warm-up still compiled 41 kernels on an H200, and
    in Triton's interpreter the variants such a job adds are channels-last ones.
    ``final_channels_last``: the final validation's AutoBackend runs channels-last
    (:func:`scsa_yolo.integration.training.autobackend_channels_last`: on a GPU only when
    the job asks for it, on an x86 CPU by default)."""
    layout = ", channels-last" if channels_last else ""
    if not half:
        passes = [ValidationPass("validation" + layout, torch.float32, torch.float32, False, channels_last)]
        if channels_last != final_channels_last:
            passes.append(ValidationPass("final validation (" + ("channels-last" if final_channels_last
                                                                  else "contiguous") + ")",
                                         torch.float32, torch.float32, False, final_channels_last))
        return passes
    final_layout = ", channels-last" if final_channels_last else ""
    return [ValidationPass(f"validation during training (fp16 autocast, float32 weights{layout})", torch.float32,
                           torch.float16, True, channels_last),
            ValidationPass(f"final validation (fp16 weights{final_layout})", torch.float16, torch.float16, False,
                           final_channels_last)]


def _leaves(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _leaves(item)]
    return []


def _share(shapes: list, k: int, n: int) -> list:
    """Shard k's share of the inference shapes: with several shards, shard 0 has the
    training step (the longest compile) and the others split the rest."""
    if n == 1:
        return shapes
    return [s for i, s in enumerate(shapes) if i % (n - 1) == k - 1] if k > 0 else []


def _by_count(batches: list[tuple[int, tuple[int, int]]]) -> list[tuple[int, list[tuple[int, int]]]]:
    """(images, (h, w)) batches -> [(images, [distinct shapes])], in first-seen order."""
    grouped: dict[int, list[tuple[int, int]]] = {}
    for count, shape in batches:
        shapes = grouped.setdefault(int(count), [])
        if tuple(shape) not in shapes:
            shapes.append(tuple(shape))
    return list(grouped.items())


def _input_channels(net: nn.Module) -> int:
    yaml = getattr(net, "yaml", None)
    return int(yaml.get("channels", yaml.get("ch", 3))) if isinstance(yaml, dict) else 3


def _copy(net: nn.Module, device: torch.device, dtype: torch.dtype, channels_last: bool) -> nn.Module:
    """A copy of ``net`` on ``device`` in ``dtype``, in the memory layout a pass runs, set
    either way: the net handed in may already be channels-last (a trainer's model on a GPU)
    where the pass is not (the final validation's AutoBackend makes a CUDA model contiguous),
    and the kernels are compiled per layout (an H100 job whose final-validation copy kept the
    trainer's layout launched 44 variants it had not queued)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return copy.deepcopy(net).to(device=device, dtype=dtype).to(memory_format=layout)


def warm_up(net: nn.Module, *, imgsz: int = 640, batch: int = 16, device: torch.device | str = "cuda",
            amp: bool = True, rect: bool = True, predict: bool = False, shard: tuple[int, int] = (0, 1),
            log=None, count_flops=None, channels_last: bool = False, final_channels_last: bool = False,
            train_batches: list[tuple[int, tuple[int, int]]] | None = None,
            val_batches: list[tuple[int, tuple[int, int]]] | None = None, plan_only: bool = False) -> WarmupReport:
    """Run ``net`` (an Ultralytics detection model, or any module taking (B, C, H, W)
    images) through its training, validation and (``predict``) inference shapes, so the
    fused SCSA kernels of those shapes are compiled into Triton's cache. See the module
    docstring for the shapes; ``shard=(k, n)``: with n > 1, shard 0 runs the training
    step and shards 1..n-1 split the inference shapes; the last shard also runs the
    validator's one-image warm-up and, given ``count_flops`` ((module, imgsz) -> GFLOPs,
    Ultralytics' FLOPs count), that count's own forwards. ``log`` gets one line per step.
    ``channels_last``: the trainer's model runs in channels-last memory (the training step
    and validation during training then do too; see :func:`validation_passes`), and
    ``final_channels_last`` the final validation's.
    ``train_batches`` / ``val_batches``: the exact (images, (height, width)) batches a job
    will form, when known (a trainer's loaders: :func:`compile_ahead`), instead of ``batch``
    images at ``imgsz`` and ``2 * batch`` at every shape ``rect`` allows. ``plan_only``: run
    each kind with one image (two for training) inside ``scsa_fast.compile_ahead(batch=n)``,
    which queues the compiles of the kernels ``n`` images need instead of launching them."""
    from . import scsa_fast
    from .scsa import SCSA

    device = torch.device(device)
    k, n = shard
    report = WarmupReport()
    layers = [m for m in net.modules() if isinstance(m, SCSA)]
    report.scsa_layers = len(layers)
    if not layers:
        return report
    stride = int(max(getattr(net, "stride", torch.tensor([32])).tolist() or [32]))
    channels = _input_channels(net)
    half = amp and device.type == "cuda"
    stats0 = scsa_fast.kernel_stats()

    def step(label: str, make, shapes: list[tuple[int, int]], count: int, least: int = 1) -> None:
        """``make(images)`` -> a function of (h, w) running ``images`` images; planning only,
        the model runs ``least`` images, planned as ``count``."""
        if not shapes:
            return
        start = time.perf_counter()
        fn = make(min(count, least) if plan_only else count)
        with scsa_fast.compile_ahead(batch=count) if plan_only else contextlib.nullcontext():
            for h, w in shapes:
                fn(h, w)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        report.steps.append({"step": label, "batch": count, "shapes": [list(s) for s in shapes],
                             "seconds": round(seconds, 3)})
        if log is not None:
            log(f"{label}: {len(shapes)} shape(s) at batch {count}, {seconds:.1f} s")

    report.fused_layers = sum(scsa_fast._module_reason(m) is None for m in layers)
    if k == 0:
        train_net = _copy(net, device, torch.float32, channels_last).train()
        for p in train_net.parameters():
            p.requires_grad_(True)

        def train_step(count: int):
            def run(h: int, w: int) -> None:
                x = torch.rand(count, channels, h, w, device=device)
                with torch.autocast(device.type, dtype=torch.float16, enabled=half):
                    out = train_net(x)
                sum(t.float().sum() for t in _leaves(out)).backward()
                train_net.zero_grad(set_to_none=True)
            return run

        label = ("training step (forward + backward" + (", fp16 autocast" if half else "")
                 + (", channels-last)" if channels_last else ")"))
        for count, shapes in _by_count(train_batches or [(batch, (imgsz, imgsz))]):
            step(label, train_step, shapes, count, least=2)  # BatchNorm trains on 2 or more values
        del train_net

    def infer(dtype: torch.dtype, model: nn.Module, autocast: bool = False):
        def make(count: int):
            def run(h: int, w: int) -> None:
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=autocast):
                    model(torch.rand(count, channels, h, w, device=device, dtype=dtype))
            return run
        return make

    if val_batches is None:
        val_shapes = list(dict.fromkeys(([(imgsz, imgsz)] + rect_val_shapes(imgsz, stride)) if rect
                                        else [(imgsz, imgsz)]))
        val_batches = [(2 * batch, shape) for shape in val_shapes]
    passes = validation_passes(half, channels_last, final_channels_last)
    # every (pass, batch) pair is one unit of work for the shards
    mine = _share([(i, batch_kind) for i in range(len(passes)) for batch_kind in val_batches], k, n)
    for i, vpass in enumerate(passes):
        kinds = [batch_kind for j, batch_kind in mine if j == i]
        if not kinds:
            continue
        eval_net = _copy(net, device, vpass.weights, vpass.channels_last).eval()
        label = vpass.label + (" (rectangular batches)" if rect and not half else "")
        for count, shapes in _by_count(kinds):
            step(label, infer(vpass.images, eval_net, vpass.autocast), shapes, count)
        del eval_net
    if k == n - 1:
        # What the final validation runs besides its batches: the standalone validator warms
        # its AutoBackend with one image at imgsz in the weights' dtype (Ultralytics 8.4,
        # BaseValidator), and fusing best.pt counts FLOPs with float32 forwards of its own.
        # Each is a new input kind for the kernels (batch 1; small maps): the H100 run after
        # a warm-up without them still compiled 58 kernels (15.7 s, session 14).
        final = passes[-1]
        eval_net = _copy(net, device, final.weights, final.channels_last).eval()
        step("validator warm-up (one image)", infer(final.images, eval_net), [(imgsz, imgsz)], 1)
        del eval_net
        if count_flops is not None:
            # AutoBackend fuses (and so counts FLOPs) before it sets its memory format, on
            # best.pt's weights, which Ultralytics saves contiguous
            flops_net = _copy(net, device, torch.float32, False).eval()
            step("FLOPs count (model.info)", lambda _: lambda h, w: count_flops(flops_net, imgsz), [(imgsz, imgsz)],
                 1)
            del flops_net
    if predict:
        pred_net = _copy(net, device, torch.float32, final_channels_last).eval()
        mine = _share(letterbox_shapes(imgsz, stride), k, n)
        step("prediction (letterboxed single images, fp32)", infer(torch.float32, pred_net), mine, 1)
    stats = scsa_fast.kernel_stats()
    report.variants = stats["variants"] - stats0["variants"]
    report.first_launch_s = stats["first_launch_s"] - stats0["first_launch_s"]
    return report


def compile_ahead(net: nn.Module, *, device: torch.device | str, imgsz: int,
                  train_batches: list[tuple[int, tuple[int, int]]],
                  val_batches: list[tuple[int, tuple[int, int]]], amp: bool, channels_last: bool = False,
                  final_channels_last: bool = False, count_flops=None) -> tuple[WarmupReport, dict]:
    """Queue the compiles of every fused SCSA kernel variant a training job will launch, and
    return while they run in background threads: :func:`warm_up`'s passes over the job's
    exact batches (a trainer's loaders), inside :func:`scsa_fast.compile_ahead`, where the
    SCSA layers only plan and queue (the other layers run, on copies of ``net``, one image per
    kind: a few single-image forward passes); the job's launches then wait only for their own
    kernels.
    Returns the warm-up's report (its steps) and :func:`scsa_fast.ahead_stats`."""
    from . import scsa_fast

    start = time.perf_counter()
    report = warm_up(net, imgsz=imgsz, batch=train_batches[0][0] if train_batches else 1, device=device, amp=amp,
                     rect=False, channels_last=channels_last, final_channels_last=final_channels_last,
                     count_flops=count_flops, train_batches=train_batches, val_batches=val_batches, plan_only=True)
    scsa_fast._launch.ahead_plan_s += time.perf_counter() - start
    return report, scsa_fast.ahead_stats()
