"""See what the attention does: class activation maps, the gates each attention layer
applied, and effective receptive fields, for a plain YOLO beside its attention variants.

* :mod:`.layers` finds the attention layers and names them by row and path;
* :mod:`.gates` reads their gates with forward hooks;
* :mod:`.cam` uses Ultralytics' own LayerCAM and draws the detections on it;
* :mod:`.erf` measures the effective receptive field of P3/P4/P5;
* :mod:`.render` draws the pictures, :mod:`.index` writes ``index.md`` and ``explain.json``;
* :func:`explain` (in :mod:`.run`) does all of it; ``scsa-yolo explain`` is its command.
"""

from .inputs import ExplainInputError
from .layers import AttentionLayer, LayerSelectionError, find_attention_layers, select_layers
from .run import PARTS, explain

__all__ = ["PARTS", "AttentionLayer", "ExplainInputError", "LayerSelectionError", "explain",
           "find_attention_layers", "select_layers"]
