"""The progress bar of long work (downloads, extraction, conversion): Ultralytics' own.

Ultralytics' ``TQDM`` looks like the bars of its training and validation, so a command
that prepares data and then trains shows one style. It imports torch, hence the import
inside :func:`progress_bar`.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(desc: str, total: int | float | None, unit: str, *, enabled: bool = True, initial: int = 0) -> Any:
    """A bar on stderr with ``update(n=1)`` and ``close()``.

    Args:
        desc: the text before the bar (``"converting val"``).
        total: the count at 100%; None when unknown (the bar then counts up).
        unit: what is counted (``"images"``, ``"files"``, ``"B"``).
        enabled: False gives a bar that prints nothing.
        initial: the count already done (a resumed download).
    """
    from ultralytics.utils.tqdm import TQDM

    return TQDM(desc=desc, total=total, initial=initial, unit=unit, disable=not enabled, file=sys.stderr)
