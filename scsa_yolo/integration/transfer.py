"""Map a plain Ultralytics checkpoint into an attention model by aligning the two YAMLs.

Any task whose model is rows of a YAML transfers the same way: detection, segmentation
(``yolov8n-seg.pt`` into ``yolov8n-seg-scsa-backbone-res.yaml``: the Segment head's box,
class, mask-coefficient and prototype tensors all carry over), classification (the
Classify head's conv and linear layer), pose and OBB. Source and target must be of the
same task.

Ultralytics loads pretrained weights by state-dict name and shape (``model.<row>.<...>``).
Inserting attention rows shifts every later row index, so a stock ``yolov8n.pt`` loaded
into ``yolov8n-scsa-backbone-res.yaml`` transfers only the rows before the first attention,
and a later row that lands on a same-shaped index would load the wrong weights. Here the
two model definitions are aligned instead:

1. both row lists lose their attention rows (``SCSA``/``SE``/... and ``ResAttn``); a
   ``BlockAttn`` or ``BlockResAttn`` row counts as the stock block it wraps;
2. what remains must be the same model row for row (module, repeats, args); a source of
   another base or scale is refused with the first row that differs;
3. every source tensor ``model.<i>.<rest>`` goes to ``model.<j>.<rest>``, j the target
   index of base row i. Inside a ``block`` row the bottleneck keeps its ``cv1``/``cv2``
   names, so ``<rest>`` is unchanged; the attention's tensors (and the gate of
   ``block-res``, 0) are new, so ``block-res`` starts as the plain model, bit for bit.

Every tensor's shape is checked. The result is an ordinary Ultralytics checkpoint (a dict
with ``model``) in the source's precision (Ultralytics writes fp16), with the source's class
names and the training arguments Ultralytics keeps with a loaded model (image size, data,
task), usable as ``yolo train model=<attention YAML> pretrained=OUT.pt`` (every
item transfers) or ``YOLO("OUT.pt").train(...)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.identity import BLOCK_MODULES


class TransferError(ScsaYoloError, ValueError):
    """A checkpoint that cannot be mapped into the target model; says why and what to do."""


@dataclass
class LayerTransfer:
    """What happened to one target layer's tensors."""

    index: int
    module: str
    source_index: int | None
    transferred: int = 0
    new: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass
class TransferReport:
    """The outcome of :func:`transfer_checkpoint`, per layer and in total."""

    source: str
    target: str
    layers: list[LayerTransfer]
    unused_source: list[str]
    output_difference: dict[str, Any] | None = None
    names: str = ""  # what became of the source's class names

    @property
    def transferred(self) -> int:
        return sum(layer.transferred for layer in self.layers)

    @property
    def new(self) -> int:
        return sum(layer.new for layer in self.layers)

    @property
    def skipped(self) -> int:
        return sum(layer.skipped for layer in self.layers) + len(self.unused_source)

    def table(self) -> str:
        """A per-layer table, the totals and how close the start is to the plain model."""
        lines = [f"transfer {self.source} -> {self.target}",
                 f"{'layer':>5} {'from':>5}  {'module':<28}{'transferred':>12}{'new':>6}{'skipped':>9}  reason"]
        for layer in self.layers:
            source = "-" if layer.source_index is None else str(layer.source_index)
            reason = "; ".join(dict.fromkeys(layer.reasons))
            lines.append(f"{layer.index:>5} {source:>5}  {layer.module:<28}{layer.transferred:>12}{layer.new:>6}"
                         f"{layer.skipped:>9}  {reason}")
        lines.append(f"total: {self.transferred} tensors transferred, {self.new} new, {self.skipped} skipped")
        for key in self.unused_source[:10]:
            lines.append(f"  source tensor not in the target: {key}")
        if len(self.unused_source) > 10:
            lines.append(f"  ... and {len(self.unused_source) - 10} more")
        if self.names:
            lines.append(f"class names: {self.names}")
        if self.output_difference is not None:
            diff = self.output_difference
            lines.append(f"start vs the plain model on one input: max |diff| {diff['max_abs']:.3g}, "
                         f"relative {diff['relative']:.3g} ({diff['note']})")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- loading
@dataclass
class SourceCheckpoint:
    """What a transfer takes from its source file.

    Attributes:
        state: the weights, float32 (``model.<row>.<...>`` names).
        yaml: the source model's YAML dict; None for a bare state dict.
        model: the source model (float32, eval); None for a bare state dict.
        dtype: the floating dtype the file stores its weights in (Ultralytics saves fp16);
            the transferred checkpoint is written in it too.
        names: the source model's class names ``{index: name}``, or None.
        train_args: the ``train_args`` the file records (empty when none).
    """

    state: dict[str, torch.Tensor]
    yaml: dict | None
    model: Any
    dtype: torch.dtype
    names: dict[int, str] | None
    train_args: dict[str, Any]


def _stored_dtype(state: dict[str, torch.Tensor]) -> torch.dtype:
    return next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)


def load_source(weights: str | Path) -> SourceCheckpoint:
    """The weights and what goes with them, of a checkpoint: the release format or a
    training checkpoint (a dict with ``ema``/``model``), or a bare state dict.

    Raises:
        TransferError: unreadable file or no model inside.
    """
    from scsa_yolo.integration.checkpoints import CheckpointError, load_checkpoint, model_in

    path = Path(weights).expanduser()
    try:
        checkpoint = load_checkpoint(path, need_model=False)
    except CheckpointError as error:
        raise TransferError(str(error)) from None
    model = model_in(checkpoint)
    if model is None and isinstance(checkpoint, dict):
        state = checkpoint.get("model") if isinstance(checkpoint.get("model"), dict) else checkpoint
        if state and all(isinstance(v, torch.Tensor) for v in state.values()):
            return SourceCheckpoint({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                                    None, None, _stored_dtype(state), None, {})
    if model is None:
        raise TransferError(f"{path}: no model inside (expected an Ultralytics checkpoint or a state dict)")
    dtype = _stored_dtype(model.state_dict())
    model = model.float().eval()
    names = getattr(model, "names", None)
    train_args = checkpoint.get("train_args") if isinstance(checkpoint, dict) else None
    return SourceCheckpoint(model.state_dict(), copy.deepcopy(getattr(model, "yaml", None)), model, dtype,
                            dict(names) if isinstance(names, dict) else None, dict(train_args or {}))


# ---------------------------------------------------------------------------- alignment
def _attention_modules() -> set[str]:
    """YAML modules of the rows a plain model lacks (a block row of ours is its block)."""
    from scsa_yolo.nn.registry import yaml_module_names

    return yaml_module_names() - set(BLOCK_MODULES)


def base_rows(model_yaml: dict) -> list[tuple[int, list]]:
    """``(row index, stock row)`` of every row that is not an attention row; a
    ``BlockAttn``/``BlockResAttn`` row appears as the block row it wraps."""
    attention = _attention_modules()
    rows = list(model_yaml.get("backbone") or []) + list(model_yaml.get("head") or [])
    out = []
    for index, (f, n, module, args) in enumerate(rows):
        if module in attention:
            continue
        if module in BLOCK_MODULES:
            module, args = args[0], list(args[1])
        out.append((index, [n, module, args]))
    return out


def _task_of(model_yaml: dict) -> str | None:
    """The task a model definition's last row (its head) gives (``segment`` for ``Segment``)."""
    from scsa_yolo.integration.yolo import model_task

    return model_task(model_yaml) if model_yaml.get("head") else None


def align(source_yaml: dict, target_yaml: dict) -> dict[int, int]:
    """Source row index -> target row index, for two definitions of the same base model.

    Raises:
        TransferError: the tasks differ (a detection checkpoint into a segmentation model),
            the bases differ (names the first row that differs) or the scales do.
    """
    src_task, dst_task = _task_of(source_yaml), _task_of(target_yaml)
    if src_task and dst_task and src_task != dst_task:
        raise TransferError(f"the checkpoint is a {src_task} model ({_stem(source_yaml)}) and the target a {dst_task} "
                            f"model ({_stem(target_yaml)}); transfer a checkpoint of the target's task (a plain "
                            f"{dst_task} model of the same base and scale)")
    source, target = base_rows(source_yaml), base_rows(target_yaml)
    src_scale, dst_scale = source_yaml.get("scale"), target_yaml.get("scale")
    if src_scale and dst_scale and src_scale != dst_scale:
        raise TransferError(f"the checkpoint is scale {src_scale!r} and the target model scale {dst_scale!r}; "
                            f"transfer into the same scale (e.g. --model {_stem(source_yaml)})")
    if len(source) != len(target):
        raise TransferError(f"the checkpoint's model ({_stem(source_yaml)}, {len(source)} rows without attention) "
                            f"is not the target's base ({_stem(target_yaml)}, {len(target)} rows); "
                            "transfer a checkpoint of the same base model")
    for (i, src_row), (j, dst_row) in zip(source, target):
        if src_row != dst_row:
            raise TransferError(f"the checkpoint's row {i} {src_row} differs from the target's row {j} {dst_row}: "
                                f"{_stem(source_yaml)} is not the base of {_stem(target_yaml)}")
    return {i: j for (i, _), (j, _) in zip(source, target)}


def _stem(model_yaml: dict) -> str:
    name = Path(str(model_yaml.get("yaml_file") or "model")).stem
    scale = model_yaml.get("scale") or ""
    return name if not scale or scale in name else f"{name} (scale {scale})"


def _layer_of(key: str) -> tuple[int, str] | None:
    parts = key.split(".", 2)
    if len(parts) == 3 and parts[0] == "model" and parts[1].isdigit():
        return int(parts[1]), parts[2]
    return None


# ---------------------------------------------------------------------------- transfer
def build_target(argument: str, nc: int | None):
    """The target model (float32, eval) for a ``YOLO(...)`` argument: the ``DetectionModel``,
    ``SegmentationModel``, ``ClassificationModel``, ... its head asks for."""
    from scsa_yolo.integration.yolo import task_model

    return task_model(argument, nc=nc).float().eval()


def map_state(source_sd: dict[str, torch.Tensor], rows: dict[int, int],
              target_model) -> tuple[dict[str, torch.Tensor], TransferReport]:
    """The target's state dict filled from the source where names and shapes agree."""
    target_sd = target_model.state_dict()
    renamed: dict[str, str] = {}
    unused = []
    for key in source_sd:
        parsed = _layer_of(key)
        if parsed is None or parsed[0] not in rows:
            unused.append(key)
            continue
        renamed[f"model.{rows[parsed[0]]}.{parsed[1]}"] = key
    inverse = {j: i for i, j in rows.items()}
    layers = {
        i: LayerTransfer(i, type(module).__name__, inverse.get(i))
        for i, module in enumerate(target_model.model)
    }
    merged = {}
    for key, value in target_sd.items():
        parsed = _layer_of(key)
        layer = layers.get(parsed[0]) if parsed else None
        source_key = renamed.pop(key, None)
        if source_key is None:
            merged[key] = value
            if layer is not None:
                layer.new += 1
                layer.reasons.append("attention (new)" if _is_attention_key(parsed[1]) or layer.source_index is None
                                     else "not in the checkpoint (new)")
            continue
        source = source_sd[source_key]
        if source.shape != value.shape:
            merged[key] = value
            unused.append(source_key)
            if layer is not None:
                layer.new += 1
                layer.reasons.append(f"shape {tuple(source.shape)} -> {tuple(value.shape)} (new: class outputs)"
                                     if _is_class_output(target_model, parsed) else
                                     f"shape {tuple(source.shape)} -> {tuple(value.shape)} (new)")
            continue
        merged[key] = source.to(value.dtype)
        if layer is not None:
            layer.transferred += 1
    unused += list(renamed.values())
    return merged, TransferReport("", "", list(layers.values()), sorted(set(unused)))


def _is_attention_key(rest: str) -> bool:
    """An attention's tensor, or a gate of ours (``5.gate``; ``4.m.0.gate`` in block-res)."""
    return ".attn." in f".{rest}" or rest.startswith("attn.") or rest == "gate" or rest.endswith(".gate")


#: Tensor names of the head's class outputs, whose shape follows the class count: the
#: class branch ``cv3`` of Detect and the heads built on it (Segment, Pose, OBB; ``one2one_cv3``
#: of the end-to-end heads), the ``linear`` layer of Classify.
CLASS_OUTPUT_PARTS = ("cv3", "linear.")


def _is_class_output(model, parsed: tuple[int, str] | None) -> bool:
    return (parsed is not None and parsed[0] == len(model.model) - 1
            and any(part in parsed[1] for part in CLASS_OUTPUT_PARTS))


def output_difference(plain, target, imgsz: int = 64) -> dict[str, Any]:
    """How far ``target`` starts from ``plain`` on one fixed random input (eval, fp32, CPU),
    over every tensor the model returns: boxes and scores, a segmentation model's mask
    coefficients and prototypes, a classifier's probabilities and logits."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, imgsz, imgsz, generator=generator)
    with torch.no_grad():
        a, b = output_tensors(plain(x)), output_tensors(target(x))
    shapes_a, shapes_b = [tuple(t.shape) for t in a], [tuple(t.shape) for t in b]
    if shapes_a != shapes_b:
        return {"max_abs": float("nan"), "relative": float("nan"),
                "note": f"outputs differ in shape ({shapes_a} vs {shapes_b})"}
    max_abs = max(float((u - v).abs().max()) if u.numel() else 0.0 for u, v in zip(a, b))
    diff_norm = torch.stack([(u - v).float().norm() for u, v in zip(a, b)]).norm()
    norm = torch.stack([u.float().norm() for u in a]).norm()
    relative = float(diff_norm / norm.clamp_min(1e-12))
    return {"max_abs": max_abs, "relative": relative, "note": f"{imgsz}x{imgsz} input, {len(a)} output tensor(s)"}


def output_tensors(output: Any) -> list[torch.Tensor]:
    """Every tensor of a model's output (nested tuples, lists and dicts), in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in output_tensors(item)]
    return []


def transfer_checkpoint(weights: str | Path, argument: str, out: str | Path, nc: int | None = None,
                        compare: bool = True) -> TransferReport:
    """Map ``weights`` into the model ``argument`` (a ``YOLO(...)`` argument: a suite name,
    a YAML path) and save an Ultralytics checkpoint to ``out``, in the precision of
    ``weights``, with its class names (where the class count is kept) and the training
    arguments Ultralytics keeps with a model.

    Args:
        weights: plain (or attention) Ultralytics checkpoint, or a bare state dict.
        argument: the target model.
        out: where the checkpoint goes.
        nc: the target's class count (default: the checkpoint's). Class outputs of another
            count are reported as new, as Ultralytics' own loading treats them.
        compare: measure how far the start is from the source model's outputs.

    Raises:
        TransferError: unreadable source, or a source of another base model.
    """
    source = load_source(weights)
    if nc is None:
        nc = source.yaml.get("nc") if source.yaml else _nc_from_state(source.state)
    target = build_target(argument, nc)
    if source.yaml is None:  # a bare state dict: assume it is the target's plain base, shapes decide
        rows = {position: index for position, (index, _) in enumerate(base_rows(target.yaml))}
    else:
        try:
            rows = align(source.yaml, target.yaml)
        except TransferError as error:  # name the file too: a grid may transfer several
            raise error.at(f"{weights} -> {argument}") from None
    merged, report = map_state(source.state, rows, target)
    target.load_state_dict(merged)
    target.to(source.dtype).float()  # the new tensors rounded as they will be written: the report tells the file
    report.source, report.target = str(weights), str(argument)
    report.names = _carry_names(source.names, target)
    if compare and source.model is not None:
        report.output_difference = output_difference(source.model, target)
    save_checkpoint(target, out, argument, dtype=source.dtype, train_args=source.train_args)
    return report


def _carry_names(names: dict[int, str] | None, target) -> str:
    """Give ``target`` the source's class names where they fit; says what happened."""
    nc = int(target.yaml["nc"])
    if not names:
        return "none in the checkpoint (placeholders 0, 1, ...)"
    if sorted(names) != list(range(nc)):
        return f"the checkpoint's {len(names)} names do not fit {nc} classes (placeholders 0, 1, ...)"
    target.names = dict(names)
    shown = ", ".join(f"{i}: {name}" for i, name in sorted(names.items())[:8])
    return f"kept from the checkpoint ({shown}{', ...' if len(names) > 8 else ''})"


def _nc_from_state(state: dict[str, torch.Tensor]) -> int | None:
    """Class count of a bare state dict: the outputs of the head's last class conv (Detect
    and the heads built on it) or of its linear layer (Classify)."""
    heads = [k for k in state if ".cv3.0." in k and k.endswith(".weight")]
    if heads:
        return int(state[sorted(heads)[-1]].shape[0])
    linear = [k for k in state if k.endswith(".linear.weight") and _layer_of(k)]
    return int(state[max(linear, key=lambda k: _layer_of(k)[0])].shape[0]) if linear else None


def save_checkpoint(model, out: str | Path, argument: str, dtype: torch.dtype = torch.float32,
                    train_args: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as an Ultralytics checkpoint (the keys a release ``.pt`` has), its
    ``train_args`` naming the model's task so that ``YOLO(path)`` picks the right trainer.

    Args:
        model: the model; its ``names`` go with it.
        argument: the model's ``YOLO(...)`` argument, recorded as ``train_args["model"]``.
        dtype: the precision of the written weights (Ultralytics writes fp16).
        train_args: the source's training arguments; the ones Ultralytics itself carries
            with a loaded model (image size, data, task, single-class) are kept.
    """
    import ultralytics
    from ultralytics.engine.model import Model

    from scsa_yolo.integration.yolo import model_task

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = Model._reset_ckpt_args(dict(train_args or {}))  # what YOLO("x.pt") remembers of a checkpoint
    args = {**kept, "task": kept.get("task") or model_task(model), "model": str(argument)}
    written = copy.deepcopy(model).to(dtype)
    written.args = dict(args)  # as Ultralytics' final checkpoints carry them
    checkpoint = {
        "date": datetime.now(timezone.utc).isoformat(),
        "version": ultralytics.__version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "transferred by scsa-yolo models transfer",
        "epoch": -1,
        "best_fitness": None,
        "model": written,
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": args,
        "train_metrics": None,
        "train_results": None,
    }
    temporary = path.with_name(f".{path.name}.partial")
    torch.save(checkpoint, temporary)
    temporary.replace(path)
    return path
