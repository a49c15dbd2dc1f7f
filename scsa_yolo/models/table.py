"""Parameter and GFLOPs tables of the committed model YAMLs (``cfg/models/README.md``), one
per task (detect, segment, classify).

Figures are for the YAML as committed (80 classes for detection and segmentation, 1000 for
classification), built with Ultralytics' model class of its task:

* params: every parameter of the built model;
* GFLOPs: one forward pass of a square image of the task's table size
  (:data:`TABLE_IMGSZ`: 640 for detect and segment, 224 for classify, the sizes Ultralytics
  trains and reports them at) counted by ``torch.utils.flop_counter.FlopCounterMode``
  (2 FLOPs per multiply-add of every convolution and matrix multiply, attention's included;
  element-wise ops are not counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scsa_yolo.identity import DEFAULT_PLACEMENT, PLACEMENTS, ModelId

from .catalog import (
    COMMITTED_ATTENTIONS,
    COMMITTED_FAMILIES,
    COMMITTED_TASK_BASES,
    committed_models,
    committed_placements,
    load_base,
)
from scsa_yolo.atomic import write_text_atomic

TABLE_SCALES = ("n", "s")
#: input size of the GFLOPs count per task: Ultralytics' training size of the task.
TABLE_IMGSZ: dict[str, int] = {"detect": 640, "segment": 640, "classify": 224}
_BEGIN = "<!-- model-table:begin -->"
_END = "<!-- model-table:end -->"


@dataclass(frozen=True)
class Figures:
    params: int
    gflops: float


def measure(model_name: str, imgsz: int = 640) -> Figures:
    """Build ``model_name`` (e.g. ``yolov8n-scsa.yaml``) and count params and GFLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from scsa_yolo.integration.yolo import task_model

    model = task_model(model_name).eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, imgsz, imgsz))
    return Figures(params, counter.get_total_flops() / 1e9)


def scaled(file_name: str, scale: str) -> str:
    """``yolov8-scsa.yaml`` at scale n -> ``yolov8n-scsa.yaml``; ``yolov8-seg.yaml`` -> ``yolov8n-seg.yaml``."""
    return ModelId.parse(file_name).with_(scale=scale).yaml_name(scaled=True)


def table_rows(task: str | None = None) -> list[tuple[str, str, str, str]]:
    """``(file_name, base, attn, placement)`` per row (of one task's table, when given): per
    task, stock bases first, then ours by base, placement and attention."""
    tasks = [task] if task is not None else list(COMMITTED_TASK_BASES)
    rows = [(f"{base}.yaml", base, "none", "-") for t in tasks for base in COMMITTED_TASK_BASES[t]]
    rows += [(name, base, attn, placement) for t in tasks for base, attn, placement, name in committed_models(t)]
    order = {base: i for i, base in enumerate(b for t in tasks for b in COMMITTED_TASK_BASES[t])}
    attn_order = {a: i for i, a in enumerate(("none", *COMMITTED_ATTENTIONS))}
    return sorted(rows, key=lambda r: (order[r[1]], r[3] != "-", r[3], attn_order[r[2]]))


def render_table(figures: dict[tuple[str, str], Figures], task: str = "detect") -> str:
    """Markdown table of one task from ``{(file_name, scale): Figures}``."""
    head = ["Model YAML", "Attention", "Placement"]
    for scale in TABLE_SCALES:
        head += [f"Params ({scale})", f"GFLOPs ({scale})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (2 * len(TABLE_SCALES))]
    for name, _, attn, placement in table_rows(task):
        cells = [f"`{name}`", attn, placement]
        for scale in TABLE_SCALES:
            fig = figures[(name, scale)]
            cells += [f"{fig.params:,}", f"{fig.gflops:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure_all(progress: Callable[[str], None] | None = None) -> dict[tuple[str, str], Figures]:
    """Figures of every table row at every table scale, each task at its table size."""
    figures = {}
    rows = [(task, row) for task in COMMITTED_TASK_BASES for row in table_rows(task)]
    for k, (task, (name, *_rest)) in enumerate(rows, start=1):
        for scale in TABLE_SCALES:
            figures[(name, scale)] = measure(scaled(name, scale), imgsz=TABLE_IMGSZ[task])
        if progress:
            progress(f"[{k}/{len(rows)}] {name}")
    return figures


def _placement_lines() -> str:
    return "\n".join(f"* **{p.name}**: {p.description}." for p in PLACEMENTS.values())


def _task_tables(figures: dict[tuple[str, str], Figures]) -> str:
    """One headed table per task, each inside its own begin/end markers."""
    sections = []
    for task, bases in COMMITTED_TASK_BASES.items():
        imgsz = TABLE_IMGSZ[task]
        stock = ", ".join(f"`{base}.yaml`" for base in bases)
        sections.append(
            f"### {task.capitalize()} ({stock})\n\n"
            f"{load_base(bases[0])['nc']} classes, {imgsz}x{imgsz} input; placements: "
            f"{', '.join(committed_placements(task))}.\n\n"
            f"{_BEGIN}\n{render_table(figures, task)}\n{_END}")
    return "\n\n".join(sections)


def readme_text(figures: dict[tuple[str, str], Figures]) -> str:
    """The whole ``cfg/models/README.md``."""
    suffixes = ", ".join(f"`{bases[0]}` {task}" for task, bases in COMMITTED_TASK_BASES.items())
    return f"""# Model YAMLs with attention

Generated by `scsa-yolo models make --all` from the stock Ultralytics YAMLs of the
{', '.join(COMMITTED_FAMILIES)} families for detection, instance segmentation and classification
(`yolov8.yaml`, `yolov8-seg.yaml`, `yolov8-cls.yaml`, ... of the installed ultralytics); do not
edit by hand -- a test regenerates every file and fails on any difference.

Use any of them by name from any directory, with the scale letter after the family name,
exactly as for the stock files: `yolo train model=yolov8n-scsa.yaml`,
`YOLO("yolo11s-cbam-neck.yaml")`, `yolo segment train model=yolov8n-seg-scsa.yaml`,
`yolo classify train model=yolo11n-cls-scsa-block.yaml`. The attention rows carry no channel
counts (`[-1, 1, SCSA, []]`); they are inferred at build time, so every scale n/s/m/l/x works.

Names are `{{base}}-{{attn}}-{{placement}}.yaml`, the base naming the task as Ultralytics'
files do ({suffixes}); a name without a placement (`yolov8n-scsa.yaml`,
`yolov8n-seg-scsa.yaml`) means the default, `{DEFAULT_PLACEMENT}`. Placements:

{_placement_lines()}

Series and residual rows are inserted after their targets, and every row that read the
attended block (the next row, Concat skips, the Detect or Segment head) reads the attention's
output; `block` inserts no row, so layer indices match the plain model. A classification model
has a backbone and a Classify head and no neck: it takes the backbone placements only, and its
`backbone`/`backbone-res` rows attend the one backbone output the head reads (not P3/P4/P5).
Pose and OBB models (`yolov8n-pose-scsa.yaml`, `yolo11n-obb-cbam-neck.yaml`) take every
placement and are generated on first use rather than committed. Other combinations (ablations
such as `scsa-no-pcsa`, other base YAMLs) come from `scsa-yolo models make --base ... --attn ...
--placement ...` or, in Python, `scsa_yolo.integration.model_spec(model, attn, placement)`.

## Params and GFLOPs

Per task, for the YAML as committed (the stock YAML's class count), detection and
segmentation at 640x640 input, classification at 224x224: the sizes Ultralytics trains and
reports each task at.
GFLOPs are counted by `torch.utils.flop_counter.FlopCounterMode`: 2 FLOPs per multiply-add of
every convolution and matrix multiply, attention's included, element-wise operations not
counted, so numbers differ slightly from Ultralytics' THOP-based summary.

{_task_tables(figures)}
"""


def write_readme(out_dir: Path, figures: dict[tuple[str, str], Figures]) -> Path:
    """Write ``out_dir/README.md`` with the table (atomically)."""
    return write_text_atomic(Path(out_dir) / "README.md", readme_text(figures))
