"""Write a model dict as a readable Ultralytics model YAML (one flow-style row per line).

PyYAML's block dumper would spread every row over many lines; the stock files keep one
``- [from, repeats, module, args] # index`` per line, so we emit that by hand and check the
result parses back to the same dict.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:  # PyYAML reads 1e-05 as a string
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
            return value
        return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} into a model YAML")


def flow(value: Any) -> str:
    """One-line YAML flow form of a scalar, list or mapping."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    return _scalar(value)


def render_model_yaml(
    model: dict,
    header_lines: list[str],
    row_notes: dict[int, str] | None = None,
    section_notes: dict[str, str] | None = None,
) -> str:
    """Text of a model YAML: header comment, top-level keys, then backbone and head rows.

    Args:
        model: dict with ``backbone`` and ``head`` row lists and any other top-level keys.
        header_lines: comment lines (without ``#``) at the top of the file.
        row_notes: extra comment per absolute row index (printed after the index).
        section_notes: a comment line under ``backbone:`` / ``head:``.

    Raises:
        AssertionError: the text does not parse back to ``model`` (a bug here, never input).
    """
    row_notes = row_notes or {}
    section_notes = section_notes or {}
    lines = [f"# {line}".rstrip() for line in header_lines]
    lines.append("")
    for key, value in model.items():
        if key in ("backbone", "head"):
            continue
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {_scalar(str(k))}: {flow(v)}" for k, v in value.items())
        else:
            lines.append(f"{key}: {flow(value)}")
    index = 0
    for section in ("backbone", "head"):
        lines.append("")
        lines.append(f"{section}:")
        lines.append(f"  # {section_notes[section]}" if section in section_notes else "  # [from, repeats, module, args]")
        for row in model[section]:
            note = f" {row_notes[index]}" if index in row_notes else ""
            lines.append(f"  - {flow(row)} # {index}{note}")
            index += 1
    text = "\n".join(lines) + "\n"
    parsed = yaml.safe_load(text)
    expected = {k: v for k, v in model.items()}
    assert parsed == expected, "model YAML writer lost information; please report this bug"
    return text


