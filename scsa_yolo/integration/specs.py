"""What to pass to ``YOLO(...)`` for a model argument, the same in every command.

A model argument is one of:

* a weights file (``runs/x/weights/best.pt``): trained as it is;
* a model YAML file (``my.yaml``, ``cfg/models/yolov8-scsa-block.yaml``): trained as it
  is, unless an attention is asked for explicitly (then it is the base the attention is
  put into, and a YAML that already holds attention rows is refused);
* a name of the suite (:class:`scsa_yolo.identity.ModelId`): ``yolov8n``,
  ``yolov8n-scsa``, ``yolov8n-scsa-block.yaml``. A stock name takes ``attn`` and
  ``placement``; a name that already names an attention refuses a different ``attn``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scsa_yolo.atomic import write_text_atomic
from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.identity import IdentityError, ModelId, check_placement
from scsa_yolo.models.catalog import COMMITTED_ATTENTIONS, COMMITTED_BASES, cfg_models_dir, make_model_text

CACHE_ENV = "SCSA_YOLO_CACHE"


class ModelArgumentError(ScsaYoloError, ValueError):
    """A model/attention/placement combination that cannot be trained; says how to fix it."""

    usage = True


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


@dataclass(frozen=True)
class ResolvedModel:
    """A model argument made concrete.

    Attributes:
        argument: what ``YOLO(...)`` takes (a name our YAML resolver knows, or a path).
        model_id: the suite's identity of the model; None for a user's YAML or weights
            trained as they are.
        kind: ``weights``, ``yaml`` (a user's file as is), ``stock``, ``committed`` or
            ``generated`` (written into :func:`cache_dir`).
    """

    argument: str
    model_id: ModelId | None
    kind: str


def model_argument(model_id: ModelId) -> ResolvedModel:
    """The ``YOLO(...)`` argument of a suite model: the stock YAML, a committed YAML by
    name (resolved from any folder), or a YAML generated into :func:`cache_dir`.

    Raises:
        ModelArgumentError: a custom base YAML that already holds attention rows (it would
            get a second set), or one that cannot be read.
        ModelYamlError: a base the placement cannot be applied to (the message says why).
    """
    if model_id.is_plain:
        if model_id.base_yaml is not None:
            return ResolvedModel(str(model_id.base_yaml), model_id, "yaml")
        return ResolvedModel(f"{model_id.model}.yaml", model_id, "stock")
    if (model_id.base in COMMITTED_BASES and model_id.attn in COMMITTED_ATTENTIONS
            and (cfg_models_dir() / model_id.yaml_name()).is_file()):
        return remember(ResolvedModel(model_id.yaml_name(scaled=True), model_id, "committed"),
                        cfg_models_dir() / model_id.yaml_name())
    if model_id.base_yaml is not None:
        rows = attention_rows_in(Path(model_id.base_yaml))
        if rows:
            raise ModelArgumentError(
                f"{model_id.base_yaml} already holds attention rows (rows {', '.join(map(str, rows))}); train it as "
                f"it is (leave out --attn) or give a base YAML without attention rows")
    base = model_id.base if model_id.family is not None else Path(str(model_id.base_yaml))
    _, text = make_model_text(base, model_id.attention, str(model_id.placement))
    path = _write_if_changed(cache_dir() / model_id.yaml_name(scaled=True), text)
    return ResolvedModel(str(path), model_id, "generated")


#: Suite model names this process has resolved, by the name passed to ``YOLO(...)``: the
#: YAML hook (:func:`scsa_yolo.integration.ultralytics.resolve_model_yaml`) finds them here
#: instead of parsing the name back; it parses only names from outside (``yolo train model=...``).
_RESOLVED_NAMES: dict[str, Path] = {}


def remember(resolved: ResolvedModel, path: Path) -> ResolvedModel:
    _RESOLVED_NAMES[resolved.argument] = path
    return resolved


def resolved_file(name: str) -> Path | None:
    """The committed YAML behind a name :func:`model_argument` returned in this process."""
    return _RESOLVED_NAMES.get(name)


def attention_rows_in(path: Path) -> list[int]:
    """Row indices of a model YAML that are attention rows of ours (any placement form)."""
    import yaml

    from scsa_yolo.nn.registry import yaml_module_names

    modules = yaml_module_names()
    try:
        model = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ModelArgumentError(f"cannot read model YAML {path}: {error}") from None
    rows = list(model.get("backbone") or []) + list(model.get("head") or []) if isinstance(model, dict) else []
    return [i for i, row in enumerate(rows) if isinstance(row, list) and len(row) == 4 and row[2] in modules]


def resolve_model(model: str, attn: str | None = None, placement: str | None = None,
                  default_attn: str | None = None, pretrained: bool = False) -> ResolvedModel:
    """Make a model argument concrete (see the module docstring for the forms).

    Args:
        model: weights file, model YAML path, or a suite name.
        attn: the attention asked for explicitly, or None.
        placement: the placement asked for explicitly, or None (default placement).
        default_attn: the attention a bare stock name gets when ``attn`` is None
            (``scsa-yolo train`` uses ``scsa``; None keeps the plain model).
        pretrained: the run starts from pretrained weights (part of the identity).

    Raises:
        ModelArgumentError: an impossible combination; the message says what to change.
    """
    text = str(model).strip()
    if placement is not None:  # also for weights and YAMLs trained as they are
        check_placement(placement)
    if text.endswith(".pt"):
        if attn is not None and attn != "none":
            raise ModelArgumentError(
                f"--attn {attn} cannot be applied to weights {text}; train from a model name or YAML "
                f"(e.g. --model yolov8n --attn {attn}), or transfer the weights first with "
                f"`scsa-yolo models transfer --weights {text} --model yolov8n --attn {attn}`")
        weights = Path(text).expanduser()
        if not weights.is_file():
            raise ModelArgumentError(f"weights file {text} not found")
        return ResolvedModel(str(weights), None, "weights")

    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") and (path.is_file() or len(path.parts) > 1):
        if not path.is_file():
            raise ModelArgumentError(f"model YAML {text} not found")
        if attn is None:
            return ResolvedModel(str(path), ModelId.try_parse(path.name) if _is_ours(path) else None, "yaml")
        return model_argument(ModelId.create(str(path), attn, placement, pretrained))

    try:
        named = ModelId.parse(text)
    except IdentityError as error:
        if path.suffix in (".yaml", ".yml"):  # a file name that is no suite name: the file is missing
            raise ModelArgumentError(
                f"model YAML {text} not found (no such file in {Path.cwd()}), and {error}. Give the path of an "
                "existing model YAML, or a suite name (yolov8n-scsa.yaml, yolo11s-cbam-block.yaml)") from None
        raise ModelArgumentError(
            f"model {text!r}: {error}. Give a stock model with a scale (yolov8n, yolo11s, yolo26m), "
            "a suite name (yolov8n-scsa, yolov8n-scsa-block.yaml), a model YAML path or a .pt file") from None
    if named.scale is None and not text.endswith((".yaml", ".yml")):
        raise ModelArgumentError(f"model {text!r} has no scale; add one of n, s, m, l, x (e.g. {named.base}n)")
    if not named.is_plain:
        if attn is not None and attn != named.attn:
            raise ModelArgumentError(
                f"model {text!r} already names the attention {named.attn}; leave out --attn {attn} "
                f"or start from the plain model (--model {named.model} --attn {attn})")
        if placement is not None and placement != named.placement:
            raise ModelArgumentError(
                f"model {text!r} is the {named.placement} placement; leave out --placement {placement} "
                f"or name the model without it (--model {named.model} --attn {named.attn} --placement {placement})")
        return model_argument(named.with_(pretrained=pretrained))
    chosen = attn if attn is not None else default_attn
    return model_argument(ModelId.create(named.model, chosen, placement, pretrained))


def _is_ours(path: Path) -> bool:
    """A YAML from our committed folder or our cache (its name is a suite name)."""
    try:
        folder = path.resolve().parent
        return folder in (cfg_models_dir().resolve(), cache_dir().resolve())
    except OSError:
        return False


def model_spec(model: str = "yolov8n", attn: str = "scsa", placement: str | None = None) -> str:
    """The ``YOLO(...)`` argument for (model, attention, placement); see :func:`resolve_model`.

    Raises:
        ValueError: unknown model, attention or placement (the message lists the choices).
    """
    return resolve_model(model, attn, placement).argument
