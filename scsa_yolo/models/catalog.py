"""Which model YAMLs we generate, from which base, under which file name.

* Bases: the stock Ultralytics YAMLs of a family and task (``yolov8``, ``yolo11-seg``,
  ``yolo26-cls``) read from the installed ``ultralytics`` package, or any model YAML path.
* File names: ``{base}-{attn}-{placement}.yaml``, always :meth:`scsa_yolo.identity.ModelId.yaml_name`,
  so ``yolov8n-scsa-block.yaml`` resolves to ``yolov8-scsa-block.yaml`` at scale n exactly
  like ``yolov8n.yaml`` -> ``yolov8.yaml``; a name without a placement
  (``yolov8n-scsa.yaml``) means the default placement.
* The committed set (``cfg/models/``) is :func:`committed_models`: every committed family x
  task (:data:`COMMITTED_TASKS`) x attention x the placements that task takes
  (:meth:`scsa_yolo.identity.Task.placements`); a test regenerates it and fails on any
  difference.

Nothing here imports torch or ultralytics, except that the attention registry (torch) gives
an attention's YAML module name and arguments.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from scsa_yolo.identity import FAMILY_FOLDERS, PLACEMENTS, TASKS, IdentityError, ModelId, attention, family_yaml, stock_base

if TYPE_CHECKING:
    from scsa_yolo.nn.registry import AttentionSpec

from .generate import ModelYamlError, add_attention
from .render import flow, render_model_yaml

#: stock base name (family and task, ``yolov8``, ``yolov8-seg``) -> path inside the
#: installed ``ultralytics/cfg/models`` (whether that Ultralytics ships it is checked on reading).
STOCK_BASES: dict[str, str] = {
    f"{family}{task.suffix}": family_yaml(family, task.name) for family in FAMILY_FOLDERS for task in TASKS.values()
}
#: families, tasks, attentions and placements of the committed ``cfg/models/`` files. Ultralytics
#: 8.4 ships the detect, segment and classify YAML of every family; pose and OBB models are
#: generated on demand (no committed files).
COMMITTED_FAMILIES: tuple[str, ...] = ("yolov8", "yolo11", "yolo26")
COMMITTED_TASKS: tuple[str, ...] = ("detect", "segment", "classify")
COMMITTED_ATTENTIONS: tuple[str, ...] = ("se", "eca", "ca", "fca", "cbam", "sa", "ema", "cpca", "ela", "scsa", "simam", "lska", "mlca", "caa")
COMMITTED_PLACEMENTS: tuple[str, ...] = tuple(PLACEMENTS)
#: committed base stems per task, in table order: ``{"detect": ("yolov8", ...), "segment": ("yolov8-seg", ...)}``.
COMMITTED_TASK_BASES: dict[str, tuple[str, ...]] = {
    task: tuple(f"{family}{TASKS[task].suffix}" for family in COMMITTED_FAMILIES) for task in COMMITTED_TASKS
}
#: every committed base stem, detection first.
COMMITTED_BASES: tuple[str, ...] = tuple(base for bases in COMMITTED_TASK_BASES.values() for base in bases)


def cfg_models_dir() -> Path:
    """Folder of the committed model YAMLs (``cfg/models`` in the repo, installed as
    ``scsa_yolo/cfg/models``)."""
    from importlib import resources

    return Path(str(resources.files("scsa_yolo.cfg") / "models"))


def ultralytics_models_dir() -> Path:
    """``cfg/models`` of the installed ultralytics package, found without importing it."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise ModelYamlError("ultralytics is not installed: pip install 'ultralytics>=8.4,<8.5'")
    return Path(list(spec.submodule_search_locations)[0]) / "cfg" / "models"


def base_yaml_path(base: str | Path) -> Path:
    """Path of a base model YAML: a stock name (``yolov8``, ``yolo11-seg``, ``yolo26-cls``, ...) or a file.

    Raises:
        ModelYamlError: neither a stock name nor an existing YAML file.
    """
    if str(base) in STOCK_BASES:
        path = ultralytics_models_dir() / STOCK_BASES[str(base)]
        if not path.is_file():
            from importlib.metadata import version

            raise ModelYamlError(
                f"the installed ultralytics {version('ultralytics')} has no {STOCK_BASES[str(base)]} (looked at {path}); "
                "use an Ultralytics release that ships this model (pip install -U ultralytics), another family "
                "or task, or give a model YAML path")
        return path
    path = Path(base).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    raise ModelYamlError(
        f"base {str(base)!r} is neither a stock model ({', '.join(STOCK_BASES)}) nor an existing model YAML file"
    )


def base_label(base: str | Path) -> str:
    """How a base is named in headers: ``ultralytics cfg/models/v8/yolov8.yaml`` or the file name."""
    return f"ultralytics cfg/models/{STOCK_BASES[str(base)]}" if str(base) in STOCK_BASES else Path(base).name


def base_stem(base: str | Path) -> str:
    """Stem used in output names: ``yolov8`` for the stock base, else the file's stem."""
    return str(base) if str(base) in STOCK_BASES else Path(base).stem


def load_base(base: str | Path) -> dict:
    """Read a base model YAML into a dict (rows as lists); a fresh copy on every call."""
    path = base_yaml_path(base)
    return copy.deepcopy(_parse_base(path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=64)
def _parse_base(path: Path, _mtime_ns: int) -> dict:
    """The parsed YAML, once per file version: the committed set reads each of its 9 bases
    dozens of times, and parsing dominated ``models make --all`` and its equality test."""
    try:
        model = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ModelYamlError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(model, dict):
        raise ModelYamlError(f"{path}: a model YAML must be a mapping with 'backbone' and 'head'")
    return model


def attention_row(attn: str) -> "AttentionSpec":
    """The registry's record of an attention that adds a layer (module name, YAML args, label).

    Raises:
        IdentityError: unknown attention, or ``none``, which adds no layer.
    """
    spec = attention(attn)
    if not spec.yaml_module:
        raise IdentityError(f"attention {spec.name!r} adds no layer; use the stock model YAML instead")
    return spec


def model_id_of(base: str | Path, attn: str, placement: str) -> ModelId:
    """The (scale-free) identity of the model a base, attention and placement make.

    Raises:
        IdentityError: a placement the base's task cannot take (a neck placement for a
            classification model).
    """
    stock = stock_base(str(base))
    if stock is not None:
        family, task = stock
        return ModelId(family, None, attn, placement, task=task)
    return ModelId(None, None, attn, placement, base_yaml=str(base))


def make_command(base: str | Path, attn: str, placement: str) -> str:
    """The ``scsa-yolo models make`` command that writes one file."""
    return f"scsa-yolo models make --base {base} --attn {attn} --placement {placement}"


def make_model_text(base: str | Path, row: "AttentionSpec", placement: str) -> tuple[str, str]:
    """Generate ``(file_name, yaml_text)`` for one base, attention and placement."""
    name = model_id_of(base, row.name, placement).yaml_name()  # refuses a placement the task cannot take
    model = load_base(base)
    module, args = row.yaml_module, list(row.yaml_args)
    generated = add_attention(model, placement, module, args)
    stem = base_stem(base)
    scales = list(model.get("scales", {}))
    stock = stock_base(stem)
    scaled = [ModelId(stock[0], scale, task=stock[1]).model for scale in scales] if stock else []
    scale_hint = (
        f"the scale comes from the name as for the stock files: {scaled[0]}-... = scale "
        f"{scales[0]}, {scaled[-1]}-... = scale {scales[-1]}"
        if scaled
        else "scales as in the base YAML"
    )
    header = [
        f"{name}: {base_label(base)} with {module}{'' if not args else ' ' + flow(args)} "
        f"({row.label}) {PLACEMENTS[placement].description}.",
        "Generated by scsa-yolo; do not edit. Regenerate all with: scsa-yolo models make --all",
        f"This file alone: {make_command(base, row.name, placement)}",
        *_PLACEMENT_NOTES.get(placement, _PLACEMENT_NOTES[PLACEMENTS[placement].form]).format(module=module).split("\n"),
        *_task_note(stock[1] if stock else None, placement, generated.base_targets),
        f"Use it as model={name.replace(stem, scaled[0], 1) if scaled else name}; {scale_hint}.",
    ]
    form = PLACEMENTS[placement].form
    notes = {
        ins.new_index: (f"{module} inside the bottlenecks of base row {ins.base_index}" if form == "block"
                        else f"+ {module}{' (residual)' if form == 'residual' else ''} on base row {ins.base_index}")
        for ins in generated.inserted
    }
    rows = generated.model["backbone"] + generated.model["head"]
    head_row = len(rows) - 1
    if rows[head_row][2] not in notes.values():
        notes.setdefault(head_row, f"{rows[head_row][2]} head")
    return name, render_model_yaml(generated.model, header, notes)


def _task_note(task: str | None, placement: str, targets: tuple[int, ...]) -> list[str]:
    """A header line where the placement's description (P3/P4/P5 outputs) does not fit the task:
    a model without a neck (classification) feeds its head from the last backbone row only."""
    if task is None or TASKS[task].has_neck or PLACEMENTS[placement].form == "block":
        return []
    rows = ", ".join(map(str, targets))
    return [f"A {task} model has no neck and its head reads only the last backbone row, so the attention goes "
            f"on base row {rows} alone."]


def committed_placements(task: str) -> tuple[str, ...]:
    """The committed placements a model of ``task`` takes (classification: no neck ones)."""
    return tuple(p for p in COMMITTED_PLACEMENTS if TASKS[task].takes(PLACEMENTS[p]))


def committed_models(task: str | None = None) -> list[tuple[str, str, str, str]]:
    """Every committed file (of one task, when given) as ``(base, attn, placement, file_name)``."""
    return [
        (base, attn, placement, model_id_of(base, attn, placement).yaml_name())
        for base_task, bases in COMMITTED_TASK_BASES.items()
        if task is None or base_task == task
        for base in bases
        for attn in COMMITTED_ATTENTIONS
        for placement in committed_placements(base_task)
    ]


_PLACEMENT_NOTES = {
    "series": "Rows marked '+ {module}' are inserted; every row that read the attended block now reads the\n"
              "attention output (Concat skips and Detect inputs included), channel counts are inferred at build time.",
    "residual": "Rows marked '+ {module} (residual)' are inserted as [-1, 1, ResAttn, [{module}, ...]]: y = x + g*{module}(x)\n"
                "with g per channel starting at 0, so the model starts as the plain one; every row that read the\n"
                "attended block now reads this output. Channel counts are inferred at build time.",
    "block": "Rows [from, n, BlockAttn, [BLOCK, [block args], {module}, ...]] are the stock BLOCK row, built by\n"
             "Ultralytics' own rules, with {module} inside every shortcut bottleneck between its two convs.\n"
             "No row is inserted, so layer indices (and plain checkpoints' names) are unchanged.",
    "block-res": "Rows [from, n, BlockResAttn, [BLOCK, [block args], {module}, ...]] are the stock BLOCK row, built by\n"
                 "Ultralytics' own rules, with {module} inside every shortcut bottleneck between its two convs in gated\n"
                 "form h + g*({module}(h) - h), g per channel starting at 0, so the model starts as the plain one. No row\n"
                 "is inserted, so layer indices (and plain checkpoints' names) are unchanged.",
}
