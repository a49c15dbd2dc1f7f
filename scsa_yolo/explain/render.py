"""Matplotlib figures of ``scsa-yolo explain``: CAM panels, gate small multiples, ERF grid.

Every function takes plain arrays and writes one PNG (through a temporary file and a
rename, so a reader never sees half a picture) and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scsa_yolo.atomic import write_file_atomic

__all__ = ["MAX_GATE_GROUPS", "save_cam_panel", "save_erf_grid", "save_gate_figure"]

#: Spatial-gate groups drawn per layer; layers with more (SA, EMA: up to 32) show the first ones.
MAX_GATE_GROUPS = 8
_DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    try:
        return write_file_atomic(path, lambda tmp: fig.savefig(tmp, dpi=_DPI, format="png"))
    finally:
        _pyplot().close(fig)


def save_cam_panel(path: Path, image: np.ndarray, title: str,
                   panels: Sequence[tuple[str, np.ndarray]], panel_inches: float = 2.6) -> Path:
    """One row: the image, then each model's CAM overlay.

    Args:
        image: (H, W, 3) uint8 RGB.
        title: caption of the first panel (the file name).
        panels: (caption, (H, W, 3) uint8 RGB overlay) per model.
    """
    plt = _pyplot()
    h, w = image.shape[:2]
    cols = 1 + len(panels)
    fig, axes = plt.subplots(1, cols, figsize=(panel_inches * cols, panel_inches * h / w + 0.55), squeeze=False)
    for ax, (caption, picture) in zip(axes[0], [(title, image), *panels]):
        ax.imshow(picture)
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    return _save(fig, path)


def _upsample(gate: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(gate.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def _limits(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 1e-3, hi + 1e-3)


def _map_limits(values: np.ndarray, min_span: float = 0.01) -> tuple[float, float]:
    """Colour range of one map: its own [min, max], widened to ``min_span`` around the mean
    so that a nearly constant map looks constant instead of showing rounding noise."""
    lo, hi = _limits(values)
    if hi - lo < min_span:
        mid = float(np.nanmean(values))
        lo, hi = mid - min_span / 2, mid + min_span / 2
    return lo, hi


def save_gate_figure(path: Path, title: str, images: Sequence[np.ndarray], names: Sequence[str],
                     spatial: np.ndarray | None, spatial_title: str,
                     channel: np.ndarray | None, channel_title: str, notes: Sequence[str] = ()) -> Path:
    """Small multiples of one attention layer's gates.

    One row per image: the (letterboxed) image with the mean spatial gate over it, then the
    gate of each group, each map on its own colour scale (its [min, max] in its title, at
    least 0.01 wide); below, the channel gate of every image as a heat strip (images x
    channels) on one scale (also at least 0.01 wide), shown on its colour bar.

    Args:
        images: (S, S, 3) uint8 RGB model inputs, one per row.
        names: their file names.
        spatial: (N, G, h, w) or None.
        channel: (N, C) or None.
    """
    from matplotlib.cm import ScalarMappable

    plt = _pyplot()
    n = len(images)
    total_groups = 0 if spatial is None else spatial.shape[1]
    groups = min(total_groups, MAX_GATE_GROUPS) if total_groups > 1 else 0
    cols = 1 + groups  # picture columns; one narrow colour-bar column follows
    rows = (n if spatial is not None else 0) + (1 if channel is not None else 0)
    lines = [line for line in (title, spatial_title if spatial is not None else "", *notes) if line]
    header, footer = 0.14 * len(lines) + 0.35, 0.45
    height = 1.75 * rows + header + footer
    fig = plt.figure(figsize=(1.6 * max(cols, 3) + 0.9, height))
    grid = fig.add_gridspec(rows, cols + 1, width_ratios=[1] * cols + [0.07], hspace=0.45, wspace=0.1,
                            top=1 - header / height, bottom=footer / height, left=0.1, right=0.93)
    fig.suptitle("\n".join(lines), fontsize=7, y=1 - 0.08 / height)
    if spatial is not None:
        for i, (picture, name) in enumerate(zip(images, names)):
            ax = fig.add_subplot(grid[i, 0])
            ax.imshow(picture.mean(axis=2), cmap="gray")
            mean_map = np.nanmean(spatial[i], axis=0)
            lo, hi = _map_limits(mean_map)
            ax.imshow(_upsample(mean_map, picture.shape[:2]), cmap="jet", alpha=0.5, vmin=lo, vmax=hi)
            what = name if total_groups == 1 else f"{name}: mean of {total_groups} groups"
            ax.set_title(f"{what}\n[{lo:.3g}, {hi:.3g}]", fontsize=6)
            ax.axis("off")
            for g in range(groups):
                ax = fig.add_subplot(grid[i, 1 + g])
                lo, hi = _map_limits(spatial[i, g])
                ax.imshow(spatial[i, g], cmap="jet", vmin=lo, vmax=hi, interpolation="nearest")
                more = f" of {total_groups}" if g == groups - 1 and total_groups > groups else ""
                ax.set_title(f"group {g + 1}{more}\n[{lo:.3g}, {hi:.3g}]", fontsize=6)
                ax.axis("off")
        bar = fig.colorbar(ScalarMappable(cmap="jet"), cax=fig.add_subplot(grid[:n, cols]), ticks=[0, 1])
        bar.ax.set_yticklabels(["low", "high"], fontsize=6)
        bar.set_label("each map on its own scale [min, max] (in its title)", fontsize=6)
    if channel is not None:
        lo, hi = _map_limits(channel)
        ax = fig.add_subplot(grid[rows - 1, :cols])
        strip = ax.imshow(channel, cmap="viridis", vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(names)), [str(name)[:16] for name in names], fontsize=6)
        ax.set_xlabel(f"{channel_title}: channel 0..{channel.shape[1] - 1}", fontsize=6)
        ax.tick_params(axis="x", labelsize=6)
        bar = fig.colorbar(strip, cax=fig.add_subplot(grid[rows - 1, cols]))
        bar.ax.tick_params(labelsize=6)
        bar.set_label("channel", fontsize=6)
    return _save(fig, path)


def save_erf_grid(path: Path, rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]],
                  floor: float = 1e-3) -> Path:
    """Rows of models, columns of stages; each ERF on a log colour scale [``floor``, 1].

    Args:
        rows: (model label, [(caption, (H, W) map in [0, 1])]) per model.
    """
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    cols = max(len(stages) for _, stages in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.3 * cols + 0.9, 2.3 * len(rows) + 0.5), squeeze=False)
    shown = None
    for r, (label, stages) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(stages):
                ax.axis("off")
                continue
            caption, erf = stages[c]
            shown = ax.imshow(np.clip(erf, floor, 1.0), cmap="magma", norm=LogNorm(vmin=floor, vmax=1.0))
            ax.set_title(caption, fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.colorbar(shown, ax=axes, fraction=0.03, label="|d centre / d input| (max = 1, log scale)")
    return _save(fig, path)
