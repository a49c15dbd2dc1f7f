"""Insert attention rows into an Ultralytics model YAML and remap every layer reference.

An Ultralytics model YAML is a list of rows ``[from, repeats, module, args]`` (backbone rows
first, then head rows); a row's index is its position in that list, and ``from`` names its
input(s) either relatively (``-1``: the row before) or by absolute index. Inserting a row
shifts every later index, so every ``from`` -- the Concat skips and the Detect inputs
included -- has to be rewritten. This module does that on plain dicts (no torch).

Placements (see :data:`scsa_yolo.identity.PLACEMENTS`), three forms:

* ``series`` (``backbone``, ``neck``): ``[-1, 1, SCSA, args]`` inserted after each target;
  every consumer of a target (the next row, a Concat skip, Detect) then reads the
  attended map. ``backbone`` targets the backbone rows the head consumes (for
  YOLOv8/YOLO11/YOLO26 the last block of the P3, P4 and P5 stages); ``neck`` targets the
  inputs of the detection head.
* ``residual`` (``backbone-res``, ``neck-res``): the same targets, the row
  ``[-1, 1, ResAttn, [SCSA, args...]]``: y = x + g * attn(x), g per channel starting at 0.
* ``block``: no row is inserted; each backbone row of a block with shortcut bottlenecks
  (C2f with ``shortcut=True``, C3k2, C3) becomes
  ``[from, n, BlockAttn, [C2f, [block args], SCSA, args...]]``: the stock block, built by
  Ultralytics' own rules (width, depth, C3k2's scale switches), with the attention inside
  every shortcut bottleneck between its two convolutions. Layer indices do not move.
  A block placement with an identity start (``block-res``) writes the module
  ``BlockResAttn`` instead (same arguments): the attention in the gated form
  h + g * (attn(h) - h), g per channel starting at 0.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.identity import (  # the module names are the identity's; imported here for the generator's callers
    BLOCK_MODULE,
    BLOCK_MODULES,  # noqa: F401
    BLOCK_RES_MODULE,
    PLACEMENTS,
    RESIDUAL_MODULE,
    IdentityError,
    check_placement,
)

#: Stock blocks with shortcut bottlenecks: module -> (index of ``shortcut`` in the row's
#: args, its default). The ``block`` placement targets backbone rows of these.
SHORTCUT_BLOCKS: dict[str, tuple[int, bool]] = {"C2f": (1, False), "C3k2": (5, True), "C3": (1, True)}

#: Head modules whose ``from`` list is the set of output feature maps.
HEAD_MODULES = frozenset(
    {"Detect", "Segment", "Segment26", "Pose", "Pose26", "OBB", "OBB26", "v10Detect", "WorldDetect", "YOLOEDetect"}
)


class ModelYamlError(ScsaYoloError, ValueError):
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


def _has_shortcut(row: list) -> bool:
    index, default = SHORTCUT_BLOCKS[row[2]]
    args = row[3] if isinstance(row[3], list) else []
    positional = [a for a in args if not isinstance(a, dict)]
    return bool(positional[index]) if len(positional) > index else default


def placement_targets(model: dict, placement: str) -> list[int]:
    """Base row indices a placement attends (ascending): the rows after which series and
    residual rows go, or the block rows that ``block`` rewrites.

    Raises:
        ModelYamlError: unknown placement or a YAML without the expected structure.
    """
    try:
        info = check_placement(placement)
    except IdentityError as error:
        raise ModelYamlError(str(error)) from None
    backbone, head = _rows(model)
    num_backbone = len(backbone)
    rows = backbone + head
    if info.form == "block":
        targets = [i for i, row in enumerate(backbone) if row[2] in SHORTCUT_BLOCKS and _has_shortcut(row)]
        if not targets:
            raise ModelYamlError(
                f"placement {info.name!r} needs backbone blocks with shortcut bottlenecks "
                f"({', '.join(SHORTCUT_BLOCKS)}; C2f with shortcut=True), and this model has none; "
                "use placement backbone-res or neck-res instead")
        return targets
    if info.where == "backbone":
        consumed = {num_backbone - 1}  # the first head row reads the last backbone row
        for index in range(num_backbone, len(rows)):
            consumed.update(r for r in _absolute_refs(rows[index][0], index) if r < num_backbone)
        return sorted(consumed)
    if info.where == "neck":
        head_rows = [i for i in range(num_backbone, len(rows)) if rows[i][2] in HEAD_MODULES]
        if not head_rows:
            raise ModelYamlError(
                f"no detection head row ({', '.join(sorted(HEAD_MODULES))}) found for placement {placement!r}"
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


def wrap_blocks(model: dict, targets: list[int], module: str, args: list[Any],
                block_module: str = BLOCK_MODULE) -> Generated:
    """Return a copy of ``model`` whose target block rows carry the attention inside
    (``[f, n, BlockAttn, [C2f, [block args], module, args...]]``, or ``BlockResAttn``
    for the gated form); no index moves."""
    backbone, head = _rows(model)
    out = copy.deepcopy(backbone)
    for index in targets:
        f, repeats, block, block_args = out[index]
        out[index] = [f, repeats, block_module, [block, copy.deepcopy(block_args), module, *copy.deepcopy(list(args))]]
    result = {k: copy.deepcopy(v) for k, v in model.items() if k not in ("backbone", "head")}
    result["backbone"] = out
    result["head"] = copy.deepcopy(head)
    return Generated(result, tuple(Inserted(i, i, "backbone") for i in targets), tuple(targets))


def add_attention(model: dict, placement: str, module: str, args: list[Any]) -> Generated:
    """Put ``module`` (with its YAML ``args``) at ``placement`` (see :data:`PLACEMENTS`)."""
    targets = placement_targets(model, placement)
    form = PLACEMENTS[placement].form
    if form == "block":
        gated = PLACEMENTS[placement].identity_start
        return wrap_blocks(model, targets, module, args, BLOCK_RES_MODULE if gated else BLOCK_MODULE)
    if form == "residual":
        return insert_attention(model, targets, RESIDUAL_MODULE, [module, *args])
    return insert_attention(model, targets, module, args)
