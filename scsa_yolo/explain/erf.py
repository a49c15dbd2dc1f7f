"""Effective receptive fields of the maps the detection head reads (P3, P4, P5).

As in the SCSA paper's Fig. 5 (after Luo et al. 2016 and RepLKNet): for every image, the
centre position of a feature map, summed over its channels, is differentiated with respect
to the input image; ``|gradient|`` is summed over the three colour channels, averaged over
the images and divided by its maximum, so the brightest input pixel is 1.

The feature maps are the detection head's inputs (captured by a forward pre-hook on the
head, so the rows that feed it may move without changing what is measured); a map of
stride s is named ``P{log2 s}``. Alongside the map, the *high-contribution area ratio* of
RepLKNet: the area of the smallest square centred on the image centre that holds a
fraction t of the total gradient, over the image area (small: the centre sees a small
neighbourhood; large: the gradient is spread out).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .gates import reference_path

__all__ = ["AREA_FRACTIONS", "StageERF", "area_ratio", "effective_receptive_fields"]

#: Fractions t of the total gradient for which :func:`area_ratio` is reported.
AREA_FRACTIONS: tuple[float, ...] = (0.2, 0.5, 0.9)


class _Stop(Exception):
    """Raised by the head's pre-hook: nothing after the head's inputs is needed."""


@dataclass
class StageERF:
    """ERF of one stage of one model.

    Attributes:
        stage: ``P3``, ``P4``, ``P5``.
        stride: input pixels per feature-map cell.
        feature_shape: (C, h, w) of the feature map.
        erf: (H, W) float map in [0, 1] (max 1), the input's size.
        images: how many images were averaged.
        area: {t: area ratio} for t in :data:`AREA_FRACTIONS`.
    """

    stage: str
    stride: int
    feature_shape: tuple[int, int, int]
    erf: np.ndarray
    images: int
    area: dict[float, float] = field(default_factory=dict)


def area_ratio(grad: np.ndarray, fraction: float) -> float:
    """Area of the smallest centred square holding ``fraction`` of ``grad``'s sum, over the
    map's area (squares are clipped to the map). (H, W) non-negative map -> (0, 1]."""
    total = float(grad.sum())
    if total <= 0:
        return float("nan")
    h, w = grad.shape
    cy, cx = h // 2, w // 2
    for r in range(max(h, w)):
        y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, h), max(cx - r, 0), min(cx + r + 1, w)
        if grad[y0:y1, x0:x1].sum() >= fraction * total:
            return (y1 - y0) * (x1 - x0) / (h * w)
    return 1.0


def effective_receptive_fields(model: nn.Module, batches: Sequence[torch.Tensor],
                               progress: Callable[[int, int], None] | None = None) -> list[StageERF]:
    """ERF of every map the detection head reads.

    Args:
        model: Ultralytics detection model (``YOLO(...).model``), eval mode.
        batches: (B, 3, H, W) inputs in [0, 1], all the same H, W, on the model's device.
        progress: called with (batches done, total).

    Returns:
        One :class:`StageERF` per head input, finest first.
    """
    head = model.model[-1]
    captured: list[torch.Tensor] = []

    def pre_hook(module, inputs):
        maps = inputs[0]
        captured.extend(maps if isinstance(maps, (list, tuple)) else [maps])
        raise _Stop

    sums: list[torch.Tensor] | None = None
    shapes: list[tuple[int, int, int]] = []
    count = 0
    handle = head.register_forward_pre_hook(pre_hook)
    try:
        with reference_path(), torch.inference_mode(False), torch.enable_grad():
            for i, batch in enumerate(batches):
                x = batch.detach().clone().requires_grad_(True)
                captured.clear()
                try:
                    model(x)
                except _Stop:
                    pass
                if not captured:
                    raise RuntimeError("the detection head was not reached; is this an Ultralytics detection model?")
                grads = []
                for k, fmap in enumerate(captured):
                    h, w = fmap.shape[2:]
                    centre = fmap[:, :, h // 2, w // 2].sum()
                    (grad,) = torch.autograd.grad(centre, x, retain_graph=k < len(captured) - 1)
                    grads.append(grad.abs().sum(dim=1).sum(dim=0).float().cpu())  # (H, W), summed over the batch
                if sums is None:
                    sums = grads
                    shapes = [tuple(int(s) for s in f.shape[1:]) for f in captured]
                else:
                    sums = [a + b for a, b in zip(sums, grads)]
                count += x.shape[0]
                if progress is not None:
                    progress(i + 1, len(batches))
    finally:
        handle.remove()
    if sums is None:
        raise ValueError("no input batches")
    stages = []
    size = batches[0].shape[2]
    for total, shape in zip(sums, shapes):
        mean = (total / count).numpy()
        stride = max(1, round(size / shape[1]))
        peak = float(mean.max())
        erf = mean / peak if peak > 0 else mean
        name = f"P{round(math.log2(stride))}"
        stages.append(StageERF(name, stride, shape, erf, count, {t: area_ratio(mean, t) for t in AREA_FRACTIONS}))
    return stages
