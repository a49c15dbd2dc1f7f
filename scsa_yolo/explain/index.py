"""The index page (``index.md``) and the machine-readable summary (``explain.json``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scsa_yolo.atomic import write_json_atomic, write_text_atomic

from .erf import AREA_FRACTIONS, StageERF
from .gates import LayerGates

__all__ = ["ExplainReport", "gate_stats", "write_index", "write_summary"]


@dataclass
class ExplainReport:
    """Everything one ``explain`` run wrote, relative to ``out``."""

    out: Path
    settings: dict
    models: list[dict]
    images: list[str]
    cam: list[dict] = field(default_factory=list)  # {image, file, models: [{label, detections, classes}]}
    gates: list[dict] = field(default_factory=list)  # {model, key, label, file, stats}
    erf_file: str | None = None
    erf: dict[str, list[StageERF]] = field(default_factory=dict)
    skipped_layers: list[str] = field(default_factory=list)
    note: str = ""


def _stats(values: np.ndarray | None) -> dict | None:
    if values is None:
        return None
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"mean": None, "std": None, "min": None, "max": None, "shape": list(values.shape)}
    return {"mean": float(finite.mean()), "std": float(finite.std()), "min": float(finite.min()),
            "max": float(finite.max()), "shape": list(values.shape)}


def gate_stats(gates: LayerGates) -> dict:
    """Mean, spread and range of a layer's spatial and channel gates over all images."""
    return {"spatial": _stats(gates.spatial), "spatial_title": gates.spatial_title,
            "spatial_range": gates.spatial_range, "channel": _stats(gates.channel),
            "channel_title": gates.channel_title, "channel_range": gates.channel_range, "notes": gates.notes}


def _fmt(stats: dict | None) -> str:
    if stats is None:
        return "-"
    if stats["mean"] is None:
        return "n/a"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f} [{stats['min']:.3f}, {stats['max']:.3f}]"


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def write_summary(report: ExplainReport) -> Path:
    """``explain.json``: settings, models, layers, gate statistics, ERF area ratios, files."""
    data = {
        "settings": report.settings, "models": report.models, "images": report.images, "note": report.note,
        "cam": report.cam, "gates": report.gates, "skipped_layers": report.skipped_layers,
        "erf": {"file": report.erf_file, "fractions": list(AREA_FRACTIONS), "models": {
            label: [{"stage": s.stage, "stride": s.stride, "feature_shape": list(s.feature_shape), "images": s.images,
                     "area_ratio": {str(t): s.area[t] for t in AREA_FRACTIONS}} for s in stages]
            for label, stages in report.erf.items()}},
    }
    return write_json_atomic(data, report.out / "explain.json", indent=2)


def _model_section(report: ExplainReport) -> list[str]:
    lines = ["## Models", "", "| label | given as | weights | attention layers |", "|---|---|---|---|"]
    for m in report.models:
        layers = ", ".join(f"`{layer['key']}` {layer['label']}" for layer in m["layers"]) or "none"
        weights = "trained checkpoint" if m["trained"] else "**random** (built from a name or YAML)"
        lines.append(f"| {m['label']} | `{m['given']}` | {weights} | {layers} |")
    if any(not m["trained"] for m in report.models):
        lines += ["", "Models with random weights show what the architecture does before any training, "
                      "not what a trained model attends to."]
    return lines + [""]


def _cam_section(report: ExplainReport) -> list[str]:
    lines = [
        "## 1. Class activation maps", "",
        "Ultralytics' own LayerCAM (`predict(visualize=True)`, "
        "`ultralytics.utils.plotting.class_activation_map`): every position of the three maps entering the "
        "detection head is weighted by its positive gradient toward the class score of each prediction kept at "
        f"conf {report.settings['conf']} (at most 16; the single best one when none passes), each prediction and "
        "level normalised, and the element-wise maximum taken. Red is where the evidence for the detections lies. "
        "The map is blended 50/50 with the image and the model's detections at the same threshold are drawn on "
        "top. Each row: the image, then one panel per model, in the order of `--model`.", "",
    ]
    for entry in report.cam:
        shown = "; ".join(f"{m['label']}: {m['detections']} detection(s)"
                          + (f" ({', '.join(m['classes'][:4])}{', ...' if len(m['classes']) > 4 else ''})"
                             if m["classes"] else "") for m in entry["models"])
        lines.append(f"- [`{entry['file']}`]({entry['file']}): image `{entry['image']}`. {shown}.")
    return lines + [""]


def _gate_section(report: ExplainReport) -> list[str]:
    lines = [
        "## 2. Gates of every attention layer", "",
        "What each attention layer multiplied its input by, read with forward hooks on the layer's submodules "
        "while the model ran on the images (letterboxed to the model input). Per picture, one row per image: "
        "the image with the mean spatial gate laid over it, then the spatial gate of each group (SCSA: the "
        "H and W gates of each SMSA sub-feature group as an HxW map, a_h[c,h]*a_w[c,w] averaged over the "
        "group's channels); below, the channel gate of every image (images x channels). Colour scales span "
        "the values shown (see the colour bars), so small differences are visible: read the numbers below "
        f"for absolute levels. Each picture draws the first {report.settings.get('gate_rows', 4)} image(s); the "
        f"columns below are mean ± std [min, max] over all {len(report.images)} image(s) (and positions or "
        "channels).", "",
    ]
    for model in report.models:
        entries = [g for g in report.gates if g["model"] == model["label"]]
        if not entries:
            continue
        lines += [f"### {model['label']}", "", "| layer | picture | spatial gate | channel gate | notes |",
                  "|---|---|---|---|---|"]
        for g in entries:
            notes = "; ".join(g["stats"]["notes"])
            lines.append(f"| `{g['key']}` {g['label']} | [`{g['file']}`]({g['file']}) | "
                         f"{_fmt(g['stats']['spatial'])} | {_fmt(g['stats']['channel'])} | {notes} |")
        lines.append("")
    if report.skipped_layers:
        lines += ["Layers without a gate reader (no picture): " + ", ".join(report.skipped_layers), ""]
    return lines


def _erf_section(report: ExplainReport) -> list[str]:
    if not report.erf_file:
        return []
    heads = [f"{s.stage} {int(t * 100)}%" for s in next(iter(report.erf.values())) for t in AREA_FRACTIONS]
    lines = [
        "## 3. Effective receptive fields", "",
        f"[`{report.erf_file}`]({report.erf_file}): for each map the detection head reads (P3, P4, P5; rows: "
        "models, columns: stages), the gradient of the map's centre position (summed over channels) with respect "
        "to the input image, |gradient| summed over colour channels, averaged over "
        f"{len(report.images)} image(s) and divided by its maximum; log colour scale from 1e-3 to 1 (the SCSA "
        "paper's Fig. 5 shows the same quantity). The table gives RepLKNet's high-contribution area ratio: the "
        "area of the smallest centred square that holds t of the total gradient, as a share of the image "
        "(larger: the centre draws on a wider neighbourhood).", "",
        "| model | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads),
    ]
    for label, stages in report.erf.items():
        lines.append(f"| {label} | " + " | ".join(_pct(s.area[t]) for s in stages for t in AREA_FRACTIONS) + " |")
    return lines + [""]


def write_index(report: ExplainReport, extra: Sequence[str] = ()) -> Path:
    """``index.md``: what each picture shows, with the numbers behind them."""
    s = report.settings
    lines = ["# scsa-yolo explain", ""]
    if report.note:
        lines += [report.note, ""]
    lines += [
        f"{len(report.images)} image(s), input {s['imgsz']}x{s['imgsz']} (letterboxed), device {s['device']}, "
        f"Ultralytics {s['ultralytics']}, SCSA on its PyTorch reference path. Numbers: `explain.json`.", "",
    ]
    lines += _model_section(report) + _cam_section(report) + _gate_section(report) + _erf_section(report)
    lines += list(extra)
    return write_text_atomic(report.out / "index.md", "\n".join(lines).rstrip() + "\n")
