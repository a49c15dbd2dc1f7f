"""Compile a training job's fused SCSA kernels in the background while it starts (issue 28).

On a machine whose Triton cache lacks them, the fused SCSA kernels compile at their first
launch, one launch group after another: a stock 3-epoch ``yolo train`` of YOLOv8n-SCSA spent
64 s of an H200 host's time in first launches (124 variants), against 21 s for the whole
plain run. Yet everything the job will feed its model is known when the trainer has built
its loaders: the training batches (``batch`` images at ``imgsz``, and the epoch's last,
smaller batch), the validation batches (Ultralytics' rectangular batches: one shape per
batch, from the images' aspect ratios), the dtypes under AMP and the memory layout. So an
``on_pretrain_routine_end`` callback runs :func:`scsa_yolo.nn.scsa_warmup.compile_ahead`
over exactly those batch kinds (one image each, planned as the batch it stands for, so it
costs a few single-image forward passes): the SCSA layers only queue their kernel variants,
which compile
side by side in background threads while the first epoch starts, and each launch waits only
for its own kernel. ``on_train_end`` logs what it did (queued, launched, compiled unpredicted,
seconds waited). It acts only where the fused path runs (a CUDA device, or Triton's
interpreter in tests) and for models with SCSA layers; ``SCSA_YOLO_COMPILE_AHEAD=0`` turns it
off (each kernel then compiles at its first launch, as before). Not predicted, so compiled at
first launch as before: ``multi_scale`` training sizes, a compiled model's (``compile=True``)
own layouts, and the FLOPs count that logger integrations (W&B, Comet, ClearML, DVC) run on
the trainer's model after the first epoch.

Touch points (Ultralytics >=8.4,<8.5), each checked against the installed source by
``tests/test_compile_ahead.py``:

1. ``ultralytics.utils.callbacks.base.default_callbacks``: every trainer copies it when it is
   made (``get_default_callbacks``), so the two callbacks added there at registration run in
   ``yolo train`` and DDP workers alike (each worker registers through the autoload hook).
2. ``BaseTrainer._setup_train`` runs ``on_pretrain_routine_end`` after it has moved the model
   to its device and memory format, settled ``amp`` and built ``train_loader`` and
   ``test_loader``; ``_do_train`` runs ``on_train_end`` after the final validation.
3. A rectangular dataset (``rect``) keeps one padded (height, width) per batch index in
   ``batch_shapes``; a loader's batches hold ``batch_size`` images, the last one the rest.
"""

from __future__ import annotations

import math
import os

#: "0" (or false, no, off) turns compile-ahead off.
COMPILE_AHEAD_ENV = "SCSA_YOLO_COMPILE_AHEAD"


def compile_ahead_enabled() -> bool:
    return os.environ.get(COMPILE_AHEAD_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def loader_batches(loader, imgsz: int) -> list[tuple[int, tuple[int, int]]]:
    """The distinct (images, (height, width)) batches a loader forms (touch point 3): the
    rectangular dataset's shape per batch, else ``imgsz`` square."""
    dataset = loader.dataset
    size, total = int(loader.batch_size), len(dataset)
    shapes = getattr(dataset, "batch_shapes", None) if getattr(dataset, "rect", False) else None
    batches: dict[tuple[int, tuple[int, int]], None] = {}
    for i in range(math.ceil(total / size)):
        shape = (int(shapes[i][0]), int(shapes[i][1])) if shapes is not None else (imgsz, imgsz)
        batches[(min(size, total - i * size), shape)] = None
    return list(batches)


def _queue_job_kernels(trainer) -> None:
    """``on_pretrain_routine_end``: queue the compiles of the kernels this job will launch."""
    if not compile_ahead_enabled():
        return
    from ultralytics.utils import LOGGER
    from ultralytics.utils.torch_utils import unwrap_model

    from scsa_yolo.nn import scsa_fast
    from scsa_yolo.nn.scsa import SCSA
    from scsa_yolo.nn.scsa_warmup import compile_ahead

    from .training import autobackend_channels_last, trains_channels_last
    from .validation import count_flops

    net = unwrap_model(trainer.model)
    if not any(isinstance(m, SCSA) for m in net.modules()) or not scsa_fast.runs_fused_on(trainer.device.type):
        return
    test_loader = getattr(trainer, "test_loader", None)
    try:
        imgsz = int(trainer.args.imgsz)
        train = loader_batches(trainer.train_loader, imgsz)
        val = loader_batches(test_loader, imgsz) if test_loader is not None else []
        _, stats = compile_ahead(net, device=trainer.device, imgsz=imgsz, train_batches=train, val_batches=val,
                                 amp=bool(trainer.amp), count_flops=count_flops,
                                 channels_last=trains_channels_last(trainer.device, trainer.args.channels_last),
                                 final_channels_last=autobackend_channels_last(trainer.device,
                                                                               trainer.args.channels_last))
    except Exception as exc:  # noqa: BLE001 (never stop a training job: its launches compile as before)
        LOGGER.warning(f"scsa-yolo: could not queue the SCSA kernels ahead ({type(exc).__name__}: {exc}); "
                       "they compile at their first launch")
        return
    how = f"in {stats['threads']} background thread(s)" if stats["threads"] >= 1 else "(recorded only)"
    LOGGER.info(f"scsa-yolo: {stats['queued']} SCSA kernel variant(s) queued to compile {how} for "
                f"{len(train)} training and {len(val)} validation batch kind(s), planned in {stats['plan_s']:.1f} s; "
                f"{COMPILE_AHEAD_ENV}=0 compiles each at its first launch instead")


def _report_job_kernels(trainer) -> None:
    """``on_train_end``: what compiling ahead did for this job."""
    from ultralytics.utils import LOGGER

    from scsa_yolo.nn import scsa_fast

    stats = scsa_fast.ahead_stats()
    if stats["queued"]:
        LOGGER.info(f"scsa-yolo: SCSA kernels compiled ahead: {stats['used']} of {stats['queued']} launched "
                    f"({stats['taken_back']} compiled at their launch before a thread reached them); "
                    f"{stats['unpredicted']} compiled at first launch (not predicted); launches waited "
                    f"{stats['wait_s']:.1f} s for compiles" + (f"; {stats['error']}" if stats["error"] else ""))


def install_job_kernel_callbacks() -> None:
    """Touch point 1: add the two callbacks to Ultralytics' defaults; idempotent."""
    from ultralytics.utils.callbacks.base import default_callbacks

    for event, callback in (("on_pretrain_routine_end", _queue_job_kernels), ("on_train_end", _report_job_kernels)):
        if callback not in default_callbacks.setdefault(event, []):
            default_callbacks[event].append(callback)


__all__ = ["COMPILE_AHEAD_ENV", "compile_ahead_enabled", "install_job_kernel_callbacks", "loader_batches"]
