"""See what the attention does: class activation maps, the gates each attention layer
applied, and effective receptive fields, for a plain YOLO beside its attention variants.

* :mod:`.layers` finds the attention layers and names them by row and path;
* :mod:`.gates` reads their gates with forward hooks;
* :mod:`.cam` uses Ultralytics' own LayerCAM and draws the detections on it;
* :mod:`.erf` measures the effective receptive field of P3/P4/P5;
* :mod:`.render` draws the pictures, :mod:`.index` writes ``index.md`` and ``explain.json``;
* :func:`explain` (in :mod:`.run`) does all of it; ``scsa-yolo explain`` is its command.

Importing this package is cheap (``scsa-yolo explain --help`` reads :data:`PARTS` without
torch); the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

#: The three kinds of pictures, in the order they are made.
PARTS: tuple[str, ...] = ("cam", "gates", "erf")

_HOMES = {
    "ExplainInputError": ".inputs",
    "AttentionLayer": ".layers",
    "LayerSelectionError": ".layers",
    "find_attention_layers": ".layers",
    "select_layers": ".layers",
    "explain": ".run",
}

__all__ = ["PARTS", *_HOMES]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)
