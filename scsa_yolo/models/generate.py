"""Insert attention rows into an Ultralytics model YAML and remap every layer reference.

An Ultralytics model YAML is a list of rows ``[from, repeats, module, args]`` (backbone rows
first, then head rows); a row's index is its position in that list, and ``from`` names its
input(s) either relatively (``-1``: the row before) or by absolute index. Inserting a row
shifts every later index, so every ``from`` -- the Concat skips and the Detect inputs
included -- has to be rewritten. This module does that on plain dicts (no torch).

Rule: an attention row is inserted right after each *target* row, and **every** consumer
of a target (the next row, a Concat skip, Detect) then reads the attended map, i.e. the
attention becomes part of the network at that point, as if the target block ended with it.

Placements (see :data:`PLACEMENTS`):

* ``backbone``: the targets are the backbone rows whose output the head consumes -- for
  YOLOv8/YOLO11/YOLO26 the last block of the P3, P4 and P5 stages (rows 4, 6 and the last
  backbone row: SPPF in YOLOv8, C2PSA in YOLO11/YOLO26).
* ``neck``: the targets are the inputs of the detection head (the last block of each
  output scale), so Detect reads attended maps.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

PLACEMENTS: dict[str, str] = {
    "backbone": "after every backbone output the head consumes (last block of the P3, P4 and P5 stages)",
    "neck": "on every input of the detection head (the last block of each output scale)",
}

#: Head modules whose ``from`` list is the set of output feature maps.
HEAD_MODULES = frozenset(
    {"Detect", "Segment", "Segment26", "Pose", "Pose26", "OBB", "OBB26", "v10Detect", "WorldDetect", "YOLOEDetect"}
)


class ModelYamlError(ValueError):
    """A base model YAML this generator cannot work with (the message says why)."""


@dataclass(frozen=True)
class Inserted:
    """Where one attention row went: its new row index and the base row it attends."""

    new_index: int
    base_index: int
    section: str  # "backbone" or "head"


@dataclass(frozen=True)
class Generated:
    """A model dict with attention rows plus a record of what was inserted."""

    model: dict
    inserted: tuple[Inserted, ...]
    base_targets: tuple[int, ...]


def _rows(model: dict) -> tuple[list, list]:
    try:
        backbone, head = model["backbone"], model["head"]
    except KeyError as missing:
        raise ModelYamlError(f"model YAML has no {missing.args[0]!r} section") from None
    for section, rows in (("backbone", backbone), ("head", head)):
        if not isinstance(rows, list) or not rows:
            raise ModelYamlError(f"model YAML section {section!r} must be a non-empty list of rows")
        for row in rows:
            if not (isinstance(row, list) and len(row) == 4 and isinstance(row[2], str)):
                raise ModelYamlError(f"{section} row {row!r} is not [from, repeats, module, args]")
    return backbone, head


def _absolute_refs(f: int | list, index: int) -> list[int]:
    """Absolute input indices of row ``index`` whose ``from`` is ``f``."""
    refs = f if isinstance(f, list) else [f]
    out = []
    for ref in refs:
        if not isinstance(ref, int) or isinstance(ref, bool):
            raise ModelYamlError(f"row {index}: 'from' entry {ref!r} is not an int")
        absolute = index + ref if ref < 0 else ref
        if not 0 <= absolute < index:
            raise ModelYamlError(f"row {index}: 'from' entry {ref} does not point at an earlier row")
        out.append(absolute)
    return out


def placement_targets(model: dict, placement: str) -> list[int]:
    """Base row indices after which a placement inserts attention (ascending).

    Raises:
        ModelYamlError: unknown placement or a YAML without the expected structure.
    """
    backbone, head = _rows(model)
    num_backbone = len(backbone)
    rows = backbone + head
    if placement == "backbone":
        consumed = {num_backbone - 1}  # the first head row reads the last backbone row
        for index in range(num_backbone, len(rows)):
            consumed.update(r for r in _absolute_refs(rows[index][0], index) if r < num_backbone)
        return sorted(consumed)
    if placement == "neck":
        head_rows = [i for i in range(num_backbone, len(rows)) if rows[i][2] in HEAD_MODULES]
        if not head_rows:
            raise ModelYamlError(
                f"no detection head row ({', '.join(sorted(HEAD_MODULES))}) found for placement 'neck'"
            )
        last = head_rows[-1]
        return sorted(set(_absolute_refs(rows[last][0], last)))
    raise ModelYamlError(f"unknown placement {placement!r}; choose one of: {', '.join(PLACEMENTS)}")


def insert_attention(model: dict, targets: list[int], module: str, args: list[Any]) -> Generated:
    """Return a copy of ``model`` with ``[-1, 1, module, args]`` after every target row.

    Every reference to a target row (relative or absolute, in any later row) is redirected
    to its attention row; every other reference is shifted to the row's new index. A
    relative reference stays ``-1`` when it still points at the row just before and
    becomes an absolute index otherwise; absolute references stay absolute.
    """
    backbone, head = _rows(model)
    rows = backbone + head
    num_backbone = len(backbone)
    target_set = set(targets)
    if not target_set or not all(isinstance(t, int) and 0 <= t < len(rows) for t in target_set):
        raise ModelYamlError(f"attention targets {targets!r} are not row indices of the model (0..{len(rows) - 1})")

    new_index: dict[int, int] = {}
    attended: dict[int, int] = {}
    position = 0
    for old in range(len(rows)):
        new_index[old] = position
        position += 1
        if old in target_set:
            attended[old] = position
            position += 1

    def redirect(old: int) -> int:
        return attended.get(old, new_index[old])

    def encode(f: int | list, refs: list[int], at: int) -> int | list[int]:
        originals = f if isinstance(f, list) else [f]
        encoded = [-1 if (orig < 0 and ref == at - 1) else ref for orig, ref in zip(originals, refs)]
        return encoded if isinstance(f, list) else encoded[0]

    out_backbone: list[list] = []
    out_head: list[list] = []
    inserted: list[Inserted] = []
    for old, (f, repeats, name, row_args) in enumerate(rows):
        section = out_backbone if old < num_backbone else out_head
        at = new_index[old]
        refs = [redirect(r) for r in _absolute_refs(f, old)] if old > 0 else None
        new_from = encode(f, refs, at) if refs is not None else f
        section.append([new_from, repeats, name, copy.deepcopy(row_args)])
        if old in target_set:
            section.append([-1, 1, module, copy.deepcopy(list(args))])
            inserted.append(Inserted(attended[old], old, "backbone" if old < num_backbone else "head"))

    result = {k: copy.deepcopy(v) for k, v in model.items() if k not in ("backbone", "head")}
    result["backbone"] = out_backbone
    result["head"] = out_head
    return Generated(result, tuple(inserted), tuple(sorted(target_set)))


def add_attention(model: dict, placement: str, module: str, args: list[Any]) -> Generated:
    """Insert ``module`` rows at ``placement`` (see :data:`PLACEMENTS`)."""
    return insert_attention(model, placement_targets(model, placement), module, args)
