"""Plain text for people: tables and sizes. The ground floor: no click, no torch, so the
data layer and the commands share it.

* :func:`format_table` -- a plain-text table with a rule under the header;
* :func:`human_bytes` -- sizes for people (``1.5 KiB``).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["format_table", "human_bytes"]


def format_table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Iterable[int] = ()) -> str:
    """Columns two spaces apart, a rule of dashes under the header; ``right``: the indices of
    right-aligned columns (numbers), the others left-aligned."""
    lines = [[str(cell) for cell in header]] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = set(right)

    def join(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([join(lines[0]), join(["-" * w for w in widths])] + [join(line) for line in lines[1:]])


def human_bytes(n: float | None) -> str:
    """``1536`` -> ``'1.5 KiB'``; None -> ``'?'``."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
