"""What to pass to ``YOLO(...)`` for a (model, attention, placement) triple."""

from __future__ import annotations

import os
from pathlib import Path

from scsa_yolo.models.catalog import (
    COMMITTED_ATTENTIONS,
    STOCK_BASES,
    attention_row,
    cfg_models_dir,
    file_slug,
    make_model_text,
    model_file_name,
    scaled_stock_name,
)
from scsa_yolo.models.generate import PLACEMENTS
from scsa_yolo.atomic import write_text_atomic

CACHE_ENV = "SCSA_YOLO_CACHE"


def cache_dir() -> Path:
    """Where generated (non-committed) model YAMLs go: ``$SCSA_YOLO_CACHE/models``, else
    ``$XDG_CACHE_HOME/scsa-yolo/models``, else ``~/.cache/scsa-yolo/models``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "models"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "scsa-yolo" / "models"


def _write_if_changed(path: Path, text: str) -> Path:
    """Atomic write, skipped when the file already holds ``text`` (DDP ranks may race)."""
    if path.is_file() and path.read_text() == text:
        return path
    return write_text_atomic(path, text)


def model_spec(model: str = "yolov8n", attn: str = "scsa", placement: str = "backbone") -> str:
    """The model argument for ``YOLO(...)`` / ``yolo train model=...``.

    Args:
        model: a stock detection model with its scale (``yolov8n``, ``yolo11s``,
            ``yolo26m``; a trailing ``.yaml`` is accepted) or a path to a model YAML.
        attn: an attention registry name (``none``, ``se``, ..., ``scsa``, ablations
            ``scsa-...``), case-insensitive.
        placement: ``backbone`` or ``neck`` (ignored for ``none``).

    Returns:
        ``yolov8n.yaml`` for ``none`` (the stock file), ``yolov8n-scsa.yaml`` (or
        ``...-neck.yaml``) for a committed combination -- a name resolved by the
        integration from any working directory -- or the path of a YAML generated into
        :func:`cache_dir` for anything else (e.g. ablations or a custom base). Generated
        names keep the scale letter (``yolov8n-scsa-no-pcsa.yaml``) so ultralytics picks the
        scale from the name.

    Raises:
        ValueError: unknown model, attention or placement (the message lists the choices).
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; choose one of: {', '.join(PLACEMENTS)}")
    from scsa_yolo.nn.registry import get_attention

    spec = get_attention(attn)
    model = str(model)
    stock = scaled_stock_name(model[:-5] if model.endswith(".yaml") else model)
    if stock is None:
        path = Path(model).expanduser()
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            raise ValueError(
                f"model {model!r} is neither a stock model with a scale "
                f"({', '.join(f'{b}n' for b in STOCK_BASES)}, ... {', '.join(f'{b}x' for b in STOCK_BASES)}) "
                "nor an existing model YAML file"
            )
        if not spec.yaml_module:
            return str(path)
        row = attention_row(spec.name)
        name, text = make_model_text(path, row, placement)
        return str(_write_if_changed(cache_dir() / name, text))

    base, scale = stock
    if not spec.yaml_module:
        return f"{base}{scale}.yaml"
    committed = model_file_name(base, spec.name, placement)
    if spec.name in COMMITTED_ATTENTIONS and (cfg_models_dir() / committed).is_file():
        return model_file_name(f"{base}{scale}", spec.name, placement)
    row = attention_row(spec.name)
    _, text = make_model_text(base, row, placement)
    scaled_name = model_file_name(f"{base}{scale}", file_slug(spec.name), placement)
    return str(_write_if_changed(cache_dir() / scaled_name, text))
