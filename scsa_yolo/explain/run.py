"""``explain()``: CAM panels, gate pictures and ERFs for a set of models and images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import PARTS
from .cam import cam_with_detections
from .erf import effective_receptive_fields
from .gates import capture_gates
from .index import ExplainReport, gate_stats, write_index, write_summary
from .inputs import find_images, load_images, to_batch
from .layers import select_layers
from .models import load_models
from .render import save_cam_panel, save_erf_grid, save_gate_figure

if TYPE_CHECKING:
    import torch

__all__ = ["PARTS", "explain"]


def _batches(images, size, device):
    return [to_batch(images[i:i + size], device) for i in range(0, len(images), size)]


def explain(models: Sequence[str], images: Sequence[str | Path], out: str | Path, *,
            layers: Sequence[str] | None = None, imgsz: int = 320, device: str | None = None,
            conf: float = 0.25, max_images: int | None = None, cam_images: int | None = None,
            gate_rows: int = 4, batch: int = 8,
            parts: Sequence[str] = PARTS, note: str = "",
            echo: Callable[[str], None] = print) -> ExplainReport:
    """Write the pictures and ``index.md`` for ``models`` on ``images`` into ``out``.

    Args:
        models: checkpoints (``.pt``), suite names (``yolov8n-scsa-block``) or YAMLs.
        images: image files and/or folders.
        out: output folder (created).
        layers: attention layers to draw (keys such as ``4/m.0.attn``); all when empty.
        imgsz: square model input for every part.
        device: ``cpu``, ``0``, ``cuda:0``; default: the first GPU if any, else the CPU.
        conf: detection threshold for the CAM and the boxes drawn.
        max_images: use at most this many images (sorted by path).
        cam_images: draw CAM panels for the first this many images only (gates and ERFs
            still use every image); default: all.
        gate_rows: images drawn per gate picture (statistics use every image).
        batch: images per forward pass for gates and ERFs.
        parts: any of :data:`PARTS`.
        note: a paragraph put at the top of ``index.md``.
        echo: receives one progress line at a time.

    Raises:
        ExplainInputError: no images, an unreadable image, a missing path.
        LayerSelectionError: a layer no model has (the message lists the valid ones).
        scsa_yolo.integration.specs.ModelArgumentError: a model that cannot be resolved.
    """
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    work = _prepare(models, images, Path(out), layers, imgsz, device, conf, max_images, cam_images, gate_rows, parts,
                    note, echo)
    if "cam" in parts:
        _draw_cams(work, imgsz, conf, cam_images, echo)
    batches = _batches(work.images, batch, work.device) if {"gates", "erf"} & set(parts) else []
    if "gates" in parts:
        _draw_gates(work, batches, gate_rows, echo)
    if "erf" in parts:
        _measure_erfs(work, batches, echo)
    write_summary(work.report)
    index = write_index(work.report)
    echo(f"wrote {index}")
    return work.report


@dataclass
class _Work:
    """What every part of an explanation reads: the images, the models with the layers
    chosen in each, the device, and the report the parts fill in."""

    images: list
    models: list
    chosen: list
    device: "torch.device"
    report: ExplainReport


def _prepare(models, images, out: Path, layers, imgsz, device, conf, max_images, cam_images, gate_rows, parts, note,
             echo) -> _Work:
    """Images found and letterboxed, models resolved and built, layers chosen, the report begun."""
    from scsa_yolo.device import resolve_device
    from scsa_yolo.integration.yolo import ultralytics_version

    paths = find_images(images, max_images)
    loaded_images = load_images(paths, imgsz)
    torch_device = resolve_device(device)
    echo(f"explain: {len(loaded_images)} image(s), {len(models)} model(s), input {imgsz}, device {torch_device}")
    loaded = load_models(models, torch_device)
    chosen = select_layers([(m.label, m.layers) for m in loaded], layers)
    for m, picked in zip(loaded, chosen):
        echo(f"  {m.label}: {len(m.layers)} attention layer(s)"
             + (f", drawing {len(picked)}" if layers else "") + ("" if m.trained else " (random weights)"))
    report = ExplainReport(
        out=out, note=note, images=[str(p) for p in paths],
        settings={"imgsz": imgsz, "conf": conf, "device": str(torch_device), "ultralytics": ultralytics_version(),
                  "parts": list(parts), "layers": list(layers or []), "cam_images": cam_images,
                  "gate_rows": gate_rows},
        models=[{"label": m.label, "given": m.given, "argument": m.argument, "trained": m.trained,
                 "layers": [{"key": layer.key, "label": layer.label, "module": layer.module_name}
                            for layer in m.layers]} for m in loaded],
    )
    return _Work(loaded_images, loaded, chosen, torch_device, report)


def _draw_cams(work: _Work, imgsz: int, conf: float, cam_images: int | None, echo) -> None:
    """One panel per image: the image, then each model's LayerCAM with its detections."""
    cam_set = work.images[:cam_images] if cam_images else work.images
    for i, image in enumerate(cam_set):
        panels, entry = [], {"image": image.path.name, "models": []}
        for m in work.models:
            cam = cam_with_detections(m, image, imgsz, conf, str(work.device))
            panels.append((f"{m.label}: {cam.detections} det.", cam.overlay))
            entry["models"].append({"label": m.label, "detections": cam.detections, "classes": cam.classes})
        entry["file"] = f"cam/{i + 1:03d}-{image.stem}.png"
        save_cam_panel(work.report.out / entry["file"], image.rgb, image.path.name, panels)
        work.report.cam.append(entry)
        echo(f"[cam {i + 1}/{len(cam_set)}] {entry['file']}")


def _draw_gates(work: _Work, batches, gate_rows: int, echo) -> None:
    """Per chosen attention layer: its spatial and channel gates on the first images, and
    their statistics over every image."""
    rows = work.images[:gate_rows]
    names = [image.path.name for image in work.images]
    for m, picked in zip(work.models, work.chosen):
        if not picked:
            continue
        captured = capture_gates(m.net, picked, batches)
        read = {g.layer.key for g in captured}
        work.report.skipped_layers += [f"{m.label} {layer.label}" for layer in picked if layer.key not in read]
        for j, gates in enumerate(captured):
            rel = f"gates/{m.slug}/{gates.layer.slug}.png"
            save_gate_figure(
                work.report.out / rel, f"{m.label}: {gates.layer.label}", [im.letterboxed for im in rows],
                names[:gate_rows], None if gates.spatial is None else gates.spatial[:gate_rows], gates.spatial_title,
                None if gates.channel is None else gates.channel[:gate_rows], gates.channel_title, gates.notes)
            work.report.gates.append({"model": m.label, "key": gates.layer.key, "label": gates.layer.label,
                                      "module": gates.layer.module_name, "file": rel, "stats": gate_stats(gates)})
            echo(f"[gates {m.label} {j + 1}/{len(captured)}] {rel}")


def _measure_erfs(work: _Work, batches, echo) -> None:
    """Each model's effective receptive field at P3/P4/P5, and one picture of them all."""
    report = work.report
    for k, m in enumerate(work.models):
        report.erf[m.label] = effective_receptive_fields(m.net, batches)
        echo(f"[erf {k + 1}/{len(work.models)}] {m.label}: "
             + ", ".join(f"{s.stage} 50% in {100 * s.area[0.5]:.1f}% of the image" for s in report.erf[m.label]))
    report.erf_file = "erf/erf.png"
    save_erf_grid(report.out / report.erf_file, [
        (label, [(f"{s.stage} (stride {s.stride})", s.erf) for s in stages])
        for label, stages in report.erf.items()])
