"""Ultralytics internals that model building relies on (supported: ultralytics >=8.4,<8.5).

Every import of Ultralytics lives in :mod:`scsa_yolo.integration`: model building here,
training arguments, checkpoints, run folders and the epoch's loss in :mod:`.training`, the
validator in :mod:`.validation`, ``YOLO`` objects in :mod:`.yolo`, data YAMLs in
:mod:`.datasets`, image helpers in :mod:`.inference`, the progress bar in :mod:`.progress`,
the trainer callbacks that compile a job's fused SCSA kernels ahead in :mod:`.job_kernels`
(``tests/test_boundaries.py`` checks that no other package imports it). Touch points of this module, each covered by
``tests/test_integration_ultralytics.py``:

1. **Module names** -- ``parse_model`` resolves a YAML row's module column with
   ``globals()[name]`` inside ``ultralytics.nn.tasks``. :func:`register` puts one *builder*
   class per registered attention (``SCSA``, ``SE``, ``ECA``, ``CA``, ``FCA``, ``CBAM``,
   ``SA``, ``EMA``, ``CPCA``, ``ELA``, ``SimAM``, ``LSKA``, ``MLCA``, ``CAA``) and one for the residual row ``ResAttn`` into that
   namespace. A name Ultralytics already defines is never overwritten.
2. **Channel inference** -- for a module it does not know, ``parse_model`` calls
   ``m(*args)`` without the input channel count (its ``else: c2 = ch[f]`` branch, which
   also keeps the output width equal to the input width, as attention does). The builder's
   ``__new__`` therefore reads ``ch``, ``f`` and ``i`` from the calling ``parse_model``
   frame, builds the real layer as ``Layer(ch[f], *args, **kwargs)`` and returns it, so the
   model holds plain ``scsa_yolo.nn`` layers (pickles, exports and reloads like any
   module). A bad argument raises :class:`YamlRowError` naming the row.
3. **Model YAML names** -- ``tasks.yaml_model_load`` (re-exported by ``ultralytics.nn``
   and imported by ``ultralytics.engine.model``) is wrapped so our ``cfg/models`` YAMLs
   resolve by name from any directory, the scale taken from the name with Ultralytics'
   own ``guess_model_scale`` (``yolov8n-scsa.yaml`` -> ``yolov8-scsa.yaml`` at scale n).
   A file that exists at the given path always wins.
4. **Restricted loading** (``ULTRALYTICS_SAFE_LOAD=1``) -- Ultralytics allow-lists only
   its own and torch's classes for ``torch.load(weights_only=True)``; our layer classes
   are added with ``torch.serialization.add_safe_globals``.
5. **Block rows** -- ``tasks.parse_model`` is wrapped (:func:`install_row_check`): a
   ``BlockAttn`` row is rewritten to its stock block row, built by the original
   ``parse_model`` with Ultralytics' own width, depth and block switches, and the attention
   is then put inside every shortcut bottleneck of the built block (``placement`` module);
   a ``BlockResAttn`` row the same, with the attention in gated form (identity start).
   The wrapper also checks every row first (its shape, a module ``parse_model`` knows, with
   the closest names for one it does not, the attention rows' arguments) and puts the
   YAML file in front of every :class:`YamlRowError`, so each command that builds a model
   from a YAML (train, profile, explain, models transfer) gives the same one message.
6. **Image opening** -- importing ultralytics wraps ``PIL.Image.open`` (the wrapper may
   pip-install a HEIF plugin on an unidentified file); :func:`pil_image_open` returns the
   original the wrapper keeps in ``ultralytics.utils.patches._image_open``, for the dataset
   converters' image probe.

Multi-GPU training: Ultralytics' DDP writes a small script and starts it with
``python -m torch.distributed.run``; each worker is a fresh interpreter, so the autoload
hook (``scsa_yolo-autoload.pth``) registers there too, and the worker's trainer resolves
``model=yolov8n-scsa.yaml`` through touch point 3 again. Nothing here is DDP-specific.

Outside the supported version range nothing is patched except placeholders: using one of
our YAML names or model files then raises :class:`UnsupportedUltralyticsError` with the
fix, while everything else in Ultralytics keeps working. Set
``SCSA_YOLO_ALLOW_UNSUPPORTED_ULTRALYTICS=1`` to try anyway.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Callable

SUPPORTED_RANGE = ">=8.4,<8.5"
_SUPPORTED_MIN = (8, 4)
_SUPPORTED_BELOW = (8, 5)
ALLOW_UNSUPPORTED_ENV = "SCSA_YOLO_ALLOW_UNSUPPORTED_ULTRALYTICS"
TASKS_MODULE = "ultralytics.nn.tasks"
#: modules that bind ``yaml_model_load`` from the tasks module at import time.
_YAML_LOAD_IMPORTERS = ("ultralytics.nn", "ultralytics.engine.model")

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.identity import BLOCK_MODULE, BLOCK_MODULES, BLOCK_RES_MODULE, RESIDUAL_MODULE
from scsa_yolo.models.generate import SHORTCUT_BLOCKS

_registered: dict[int, str] = {}  # id(tasks module) -> "ok" | "unsupported"


class UnsupportedUltralyticsError(ScsaYoloError, RuntimeError):
    """The installed ultralytics is outside the range this scsa-yolo supports."""


class YamlRowError(ScsaYoloError, ValueError):
    """A row of a model YAML could not be built; the message names the file (when the model
    came from one) and the row."""

    def __init__(self, message: str, file: str | None = None) -> None:
        super().__init__(f"{file}: {message}" if file else message)
        self.file = file

    def in_file(self, file: str | None) -> YamlRowError:
        """This error with ``file`` named in front (itself when it already names one)."""
        if self.file or not file:
            return self
        return YamlRowError(str(self), file)


# ---------------------------------------------------------------------------- version
def parse_version(version: str) -> tuple[int, ...]:
    """Leading numeric release parts: ``'8.4.190'`` -> ``(8, 4, 190)``, ``'8.5.0rc1'`` -> ``(8, 5, 0)``."""
    parts = []
    for piece in str(version).split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
        if match.end() != len(piece):
            break
    if not parts:
        raise ValueError(f"cannot read a version number from {version!r}")
    return tuple(parts)


def check_version(version: str) -> None:
    """Raise :class:`UnsupportedUltralyticsError` unless ``version`` is in :data:`SUPPORTED_RANGE`."""
    release = parse_version(version)
    if not (_SUPPORTED_MIN <= release[:2] < _SUPPORTED_BELOW):
        raise UnsupportedUltralyticsError(
            f"scsa-yolo supports ultralytics{SUPPORTED_RANGE}, but ultralytics {version} is installed. "
            f"Install a supported version: pip install 'ultralytics{SUPPORTED_RANGE}' "
            f"(or set {ALLOW_UNSUPPORTED_ENV}=1 to try this version at your own risk)."
        )


def _installed_version(tasks: ModuleType) -> str:
    package = sys.modules.get(tasks.__name__.split(".")[0])
    return str(getattr(package, "__version__", "unknown"))


# ---------------------------------------------------------------------------- layers
def layer_classes() -> dict[str, type]:
    """YAML module name -> layer class, from the attention registry (``none`` excluded)."""
    from scsa_yolo.nn.registry import attention_names, get_attention

    classes: dict[str, type] = {}
    for name in attention_names():
        spec = get_attention(name)
        if spec.yaml_module and spec.cls is not None:
            known = classes.setdefault(spec.yaml_module, spec.cls)
            if known is not spec.cls:
                raise RuntimeError(f"registry maps YAML module {spec.yaml_module!r} to two classes")
    return classes


def safe_globals_classes(classes: dict[str, type] | None = None) -> list[type]:
    """Classes a checkpoint of a model with our layers may reference: the layer classes and
    every ``nn.Module`` subclass defined in a loaded ``scsa_yolo.nn`` module."""
    from torch import nn

    import scsa_yolo.nn.placement  # noqa: F401 (wrapper classes live in checkpoints too)

    found: dict[str, type] = {}
    for cls in (classes or layer_classes()).values():
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "scsa_yolo.nn" or module_name.startswith("scsa_yolo.nn.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == module_name:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


def split_yaml_args(args: list | tuple) -> tuple[list, dict]:
    """A YAML row's args: positional values, optionally ending with one keyword mapping."""
    args = list(args)
    if args and isinstance(args[-1], dict):
        keywords = args.pop()
        bad = [k for k in keywords if not isinstance(k, str)]
        if bad:
            raise TypeError(f"keyword argument names must be strings, got {bad!r}")
        return args, dict(keywords)
    return args, {}


def _parse_model_frame(tasks_globals: dict) -> FrameType | None:
    """The nearest ``tasks.parse_model`` frame on the call stack (generator frames between)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "parse_model" and frame.f_globals is tasks_globals:
            return frame
        frame = frame.f_back
    return None


def _row_text(frame_locals: dict, index: int, yaml_name: str) -> str:
    try:
        model = frame_locals["d"]
        row = (model["backbone"] + model["head"])[index]
        return "[" + ", ".join(map(str, row)) + "]"
    except (KeyError, IndexError, TypeError):
        return f"[..., {yaml_name}, ...]"


def _parse_frame_row(yaml_name: str, layer_cls: type, tasks_globals: dict) -> tuple[str, int]:
    """``(where, input channels)`` of the row ``parse_model`` is parsing right now."""
    frame = _parse_model_frame(tasks_globals)
    if frame is None:
        raise TypeError(
            f"{yaml_name} in ultralytics.nn.tasks is a model-YAML row builder and works only while a model "
            f"YAML is parsed; build the layer directly with {layer_cls.__module__}.{layer_cls.__name__}(channels, ...)"
        )
    frame_locals = frame.f_locals
    try:
        index, source, channels = frame_locals["i"], frame_locals["f"], frame_locals["ch"]
    except KeyError as missing:  # parse_model changed shape: say so instead of building wrong layers
        raise UnsupportedUltralyticsError(
            f"ultralytics.nn.tasks.parse_model has no local {missing.args[0]!r}; this ultralytics version is "
            f"not supported by scsa-yolo (supported: ultralytics{SUPPORTED_RANGE})"
        ) from None
    finally:
        del frame
    where = f"model YAML row {index} {_row_text(frame_locals, index, yaml_name)}"
    if not isinstance(source, int):
        raise YamlRowError(f"{where}: {yaml_name} takes one input; 'from' must be one layer index, got {source!r}")
    return where, channels[source]


def construct_attention(layer_cls: type, channels: int, args: list | tuple, where: str) -> Any:
    """``layer_cls(channels, *args)`` (args may end with a keyword mapping); a bad argument
    raises :class:`YamlRowError` naming ``where``, the attention and the width."""
    try:
        positional, keywords = split_yaml_args(args)
        return layer_cls(channels, *positional, **keywords)
    except (TypeError, ValueError, AssertionError) as error:
        raise YamlRowError(
            f"{where}: {layer_cls.__name__} at width {channels}: {error} (input channels {channels}; "
            "channels are inferred from the layer before, so the row's args are the attention's own options)"
        ) from error
    except Exception as error:
        error.add_note(f"while building {where}")
        raise


def build_layer(yaml_name: str, layer_cls: type, args: tuple, tasks_globals: dict) -> Any:
    """Build ``layer_cls(ch[f], *args)`` for the row ``parse_model`` is parsing right now."""
    where, channels = _parse_frame_row(yaml_name, layer_cls, tasks_globals)
    return construct_attention(layer_cls, channels, args, where)


def attention_class(yaml_name: Any, where: str, classes: dict[str, type]) -> type:
    """The layer class a wrapper row names as its attention (``SCSA`` in ``[SCSA, {...}]``)."""
    if yaml_name not in classes:
        raise YamlRowError(
            f"{where}: the attention must be one of {', '.join(classes)}, got {yaml_name!r}")
    return classes[yaml_name]


def build_residual(args: tuple, classes: dict[str, type], tasks_globals: dict) -> Any:
    """``[-1, 1, ResAttn, [SCSA, {...}]]`` -> ``ResidualAttention(C, SCSA(C, ...))``."""
    from scsa_yolo.nn.placement import ResidualAttention

    where, channels = _parse_frame_row(RESIDUAL_MODULE, ResidualAttention, tasks_globals)
    if not args:
        raise YamlRowError(f"{where}: {RESIDUAL_MODULE} needs the attention as its first argument, e.g. [SCSA]")
    layer_cls = attention_class(args[0], where, classes)
    return ResidualAttention(channels, construct_attention(layer_cls, channels, args[1:], where))


def _make_builder(yaml_name: str, layer_cls: type, tasks_globals: dict) -> type:
    """An ``nn.Module`` subclass whose construction returns a ``layer_cls`` instance.

    It subclasses ``nn.Module`` so Ultralytics' restricted-load check (module must be an
    ``nn.Module`` type) passes; ``__new__`` returns a different type, so Python skips
    ``__init__``. Its module and qualname are the layer's, so Ultralytics prints the real
    class in the model summary.
    """
    from torch import nn

    def __new__(cls, *args, **kwargs):  # noqa: N807 - parse_model calls m(*args)
        if kwargs:
            raise TypeError(f"{yaml_name} row builder takes YAML args only, got keywords {sorted(kwargs)}")
        return build_layer(yaml_name, layer_cls, args, tasks_globals)

    namespace = {
        "__new__": __new__,
        "__doc__": f"Model-YAML row builder for {layer_cls.__module__}.{layer_cls.__qualname__} (scsa-yolo).",
        "__module__": layer_cls.__module__,
        "__qualname__": layer_cls.__qualname__,
        "scsa_yolo_layer": layer_cls,
    }
    return type(yaml_name, (nn.Module,), namespace)


def _make_residual_builder(classes: dict[str, type], tasks_globals: dict) -> type:
    """Like :func:`_make_builder`, for the residual wrapper row ``ResAttn``."""
    from torch import nn

    from scsa_yolo.nn.placement import ResidualAttention

    def __new__(cls, *args, **kwargs):  # noqa: N807
        if kwargs:
            raise TypeError(f"{RESIDUAL_MODULE} row builder takes YAML args only, got keywords {sorted(kwargs)}")
        return build_residual(args, classes, tasks_globals)

    namespace = {
        "__new__": __new__,
        "__doc__": "Model-YAML row builder for scsa_yolo.nn.placement.ResidualAttention (scsa-yolo).",
        "__module__": ResidualAttention.__module__,
        "__qualname__": ResidualAttention.__qualname__,
        "scsa_yolo_layer": ResidualAttention,
    }
    return type(RESIDUAL_MODULE, (nn.Module,), namespace)


def _make_refusing_builder(yaml_name: str, error: UnsupportedUltralyticsError) -> type:
    from torch import nn

    def __new__(cls, *args, **kwargs):  # noqa: N807
        raise UnsupportedUltralyticsError(f"cannot build {yaml_name}: {error}")

    return type(yaml_name, (nn.Module,), {"__new__": __new__, "scsa_yolo_layer": None})


def _is_ours(value: object) -> bool:
    return isinstance(value, type) and "scsa_yolo_layer" in vars(value)


def install_builders(tasks: ModuleType, classes: dict[str, type]) -> list[str]:
    """Touch point 1+2: put a builder for each YAML name into the tasks namespace.

    Returns the names installed. A name Ultralytics itself defines is left alone and
    reported (``RuntimeError``), so we never change the meaning of a stock YAML.
    """
    namespace = vars(tasks)
    clashes = [name for name in classes if name in namespace and not _is_ours(namespace[name])]
    if clashes:
        raise RuntimeError(
            f"ultralytics.nn.tasks already defines {', '.join(clashes)}; scsa-yolo will not shadow it"
        )
    for name, cls in classes.items():
        namespace[name] = _make_builder(name, cls, namespace)
    namespace[RESIDUAL_MODULE] = _make_residual_builder(classes, namespace)
    return [*classes, RESIDUAL_MODULE]


def _row_where(index: int, row: Any) -> str:
    return f"model YAML row {index} [{', '.join(map(str, row))}]"


def check_attention_rows(model: dict, names: set[str]) -> None:
    """Raise :class:`YamlRowError` for a malformed row of ours: an attention or ``ResAttn``
    row whose ``from`` is not one index, a ``ResAttn``, ``BlockAttn`` or ``BlockResAttn``
    row that does not name an attention or a block with shortcut bottlenecks."""
    rows = list(model.get("backbone") or []) + list(model.get("head") or [])
    for index, row in enumerate(rows):
        if not (isinstance(row, (list, tuple)) and len(row) == 4):
            continue
        module, args = row[2], row[3] if isinstance(row[3], list) else []
        if module in names or module == RESIDUAL_MODULE:
            source = row[0]
            if not isinstance(source, int) or isinstance(source, bool):
                raise YamlRowError(
                    f"{_row_where(index, row)}: {module} takes one input; 'from' must be one layer index, got {source!r}"
                )
        if module == RESIDUAL_MODULE and (not args or args[0] not in names):
            raise YamlRowError(
                f"{_row_where(index, row)}: {RESIDUAL_MODULE} needs an attention first, one of {', '.join(sorted(names))} "
                "(e.g. [-1, 1, ResAttn, [SCSA]])")
        if module in BLOCK_MODULES:
            if len(args) < 3 or args[0] not in SHORTCUT_BLOCKS or not isinstance(args[1], list) or args[2] not in names:
                raise YamlRowError(
                    f"{_row_where(index, row)}: {module} takes [BLOCK, [block args], ATTENTION, {{options}}] with "
                    f"BLOCK one of {', '.join(SHORTCUT_BLOCKS)} and ATTENTION one of {', '.join(sorted(names))} "
                    f"(e.g. [-1, 3, {module}, [C2f, [128, True], SCSA]])")


def _module_known(module: str, namespace: dict) -> bool:
    """Whether ``parse_model`` can resolve a row's module column (its three lookups)."""
    if module.startswith("nn."):
        import torch

        return hasattr(torch.nn, module[3:])
    if module.startswith("torchvision.ops."):
        import torchvision

        return hasattr(torchvision.ops, module[16:])
    return module in namespace or module in BLOCK_MODULES


def known_module_names(namespace: dict, prefix: str = "") -> list[str]:
    """Module names a model YAML row may use: unprefixed, every ``nn.Module`` class in the
    tasks namespace (Ultralytics' modules and our row builders) and ``BlockAttn``; with
    ``prefix="nn."``, torch's layers."""
    from torch import nn

    def modules(space: dict) -> set[str]:
        return {name for name, value in space.items()
                if isinstance(value, type) and issubclass(value, nn.Module) and not name.startswith("_")}

    if prefix == "nn.":
        return sorted(f"nn.{name}" for name in modules(vars(nn)))
    return sorted(modules(namespace) | set(BLOCK_MODULES))


def check_module_names(model: dict, namespace: dict, ours: set[str]) -> None:
    """Raise :class:`YamlRowError` for a row that is not ``[from, repeats, module, args]``
    or whose module ``parse_model`` would not find (its ``KeyError``), with the closest
    known names."""
    import difflib

    rows = list(model.get("backbone") or []) + list(model.get("head") or [])
    for index, row in enumerate(rows):
        if not (isinstance(row, (list, tuple)) and len(row) == 4):
            raise YamlRowError(f"model YAML row {index} {row!r}: a row is [from, repeats, module, args], "
                               "e.g. [-1, 1, Conv, [64, 3, 2]]")
        module = row[2]
        if isinstance(module, str) and _module_known(module, namespace):
            continue
        known = known_module_names(namespace, "nn." if str(module).startswith("nn.") else "")
        close = difflib.get_close_matches(str(module), known, n=3, cutoff=0.6)
        hint = f"the closest known names: {', '.join(close)}" if close else "no known module has a similar name"
        raise YamlRowError(
            f"{_row_where(index, row)}: unknown module {module!r} ({hint}). A row's module is an Ultralytics module "
            f"(Conv, C2f, SPPF, Detect, ...), a torch layer as nn.<Name>, or an attention row of scsa-yolo "
            f"({', '.join(sorted(ours | {RESIDUAL_MODULE, *BLOCK_MODULES}))})")


def _yaml_file(model: dict) -> str | None:
    """The file a model dict was read from, as the user can open it (our names resolved)."""
    name = model.get("yaml_file")
    if not name:
        return None
    resolved = resolve_model_yaml(name)
    return str(resolved if resolved is not None else name)


def split_block_rows(model: dict) -> tuple[dict, dict[int, tuple[str, list, bool]]]:
    """A copy of ``model`` whose ``BlockAttn``/``BlockResAttn`` rows are the stock block
    rows they wrap, and ``{row index: (attention YAML name, attention args, gated)}`` for
    those rows."""
    import copy

    stock = copy.deepcopy(model)
    attended: dict[int, tuple[str, list, bool]] = {}
    offset = 0
    for section in ("backbone", "head"):
        rows = stock.get(section) or []
        for position, row in enumerate(rows):
            if isinstance(row, list) and len(row) == 4 and row[2] in BLOCK_MODULES:
                block, block_args, attention, *attention_args = row[3]
                rows[position] = [row[0], row[1], block, list(block_args)]
                attended[offset + position] = (attention, list(attention_args), row[2] == BLOCK_RES_MODULE)
        offset += len(rows)
    return stock, attended


def attend_bottlenecks(layer: Any, layer_cls: type, args: list, where: str, gated: bool = False) -> int:
    """Put ``layer_cls`` inside every shortcut bottleneck of ``layer`` (in place; ``gated``:
    in the form h + g * (attn(h) - h), g at 0); returns how many. Raises
    :class:`YamlRowError` when the block has none."""
    from ultralytics.nn.modules.block import Bottleneck

    from scsa_yolo.nn.placement import AttendedBottleneck, hidden_channels

    targets = [
        (parent, name, child)
        for parent in layer.modules()
        for name, child in parent.named_children()
        if type(child) is Bottleneck and child.add
    ]
    if not targets:
        raise YamlRowError(
            f"{where}: this {type(layer).__name__} has no shortcut bottleneck to put {layer_cls.__name__} in "
            "(shortcut=False, or input and output widths differ); use the stock row or another placement")
    for parent, name, child in targets:
        attention = construct_attention(layer_cls, hidden_channels(child), args, where)
        setattr(parent, name, AttendedBottleneck.wrap(child, attention, gated))
    return len(targets)


def install_row_check(tasks: ModuleType, names: set[str], classes: dict[str, type] | None = None) -> None:
    """Wrap ``tasks.parse_model``: our rows are checked first, ``BlockAttn`` and
    ``BlockResAttn`` rows are built as the stock block by Ultralytics' own rules and then
    get their attentions."""
    current = tasks.parse_model
    original = getattr(current, "scsa_yolo_original", current)
    classes = classes if classes is not None else {}

    @functools.wraps(original)
    def parse_model_checked(d, ch, verbose=True):
        try:
            return build_checked(d, ch, verbose)
        except YamlRowError as error:  # one place names the file, for every row error
            raise error.in_file(_yaml_file(d)) from error.__cause__

    def build_checked(d, ch, verbose):
        check_module_names(d, vars(tasks), names)
        check_attention_rows(d, names)
        stock, attended = split_block_rows(d)
        layers, save = original(stock if attended else d, ch, verbose)
        rows = list(d.get("backbone") or []) + list(d.get("head") or [])
        for index, (attention, args, gated) in attended.items():
            where = _row_where(index, rows[index])
            layer_cls = attention_class(attention, where, classes)
            count = attend_bottlenecks(layers[index], layer_cls, args, where, gated)
            layers[index].np = sum(p.numel() for p in layers[index].parameters())
            if verbose:
                form = f"{BLOCK_RES_MODULE}: gated" if gated else f"{BLOCK_MODULE}:"
                tasks.LOGGER.info(f"{index:>3} {form} {layer_cls.__name__} inside {count} bottleneck(s), "
                                  f"{layers[index].np:,} params with it")
        return layers, save

    parse_model_checked.scsa_yolo_original = original
    tasks.parse_model = parse_model_checked
    parent = sys.modules.get("ultralytics.nn")
    if parent is not None and getattr(parent, "parse_model", None) in (original, current):
        parent.parse_model = parse_model_checked


# ---------------------------------------------------------------------------- model YAMLs
def resolve_model_yaml(path: str | Path) -> Path | None:
    """Our YAML for a bare model name, or None when the name is not ours.

    ``yolov8-scsa-block.yaml`` and ``yolov8n-scsa-block.yaml`` both give
    ``cfg/models/yolov8-scsa-block.yaml``; ``yolov8n-scsa.yaml`` (no placement) gives the
    default placement's file. A suite name with no committed file (an ablation, another
    task's base: ``yolov8n-pose-scsa-block.yaml``) is generated into the model cache, so the
    stock ``yolo`` command takes every name the suite can build. A path that exists, or one
    with a directory part, is never ours.
    """
    from scsa_yolo.identity import ModelId
    from scsa_yolo.integration.specs import model_argument, resolved_file
    from scsa_yolo.models.catalog import cfg_models_dir

    requested = Path(str(path))
    if requested.suffix not in (".yaml", ".yml") or requested.name != str(path) or requested.exists():
        return None
    known = resolved_file(requested.name)  # resolved by this process from its identity
    if known is not None:
        return known
    model_id = ModelId.try_parse(requested.name)  # a name from outside: `yolo train model=...`
    if model_id is None or model_id.is_plain:
        return None
    candidate = cfg_models_dir() / model_id.yaml_name()
    if candidate.is_file():
        return candidate
    if model_id.scale is None:  # the generator writes scaled names only
        model_id = model_id.with_(scale="n")
    return Path(model_argument(model_id).argument)


def _wrap_yaml_model_load(tasks: ModuleType, original: Callable, refuse: UnsupportedUltralyticsError | None):
    @functools.wraps(original)
    def yaml_model_load(path):
        resolved = resolve_model_yaml(path)
        if resolved is None:
            return original(path)
        if refuse is not None:
            raise UnsupportedUltralyticsError(f"cannot load {path}: {refuse}")
        model = original(resolved)
        model["scale"] = tasks.guess_model_scale(Path(str(path)))
        model["yaml_file"] = str(path)
        return model

    yaml_model_load.scsa_yolo_original = original
    return yaml_model_load


def install_yaml_resolver(tasks: ModuleType, refuse: UnsupportedUltralyticsError | None = None) -> None:
    """Touch point 3: wrap ``tasks.yaml_model_load`` (and rebind it where it was imported)."""
    current = tasks.yaml_model_load
    original = getattr(current, "scsa_yolo_original", current)
    wrapper = _wrap_yaml_model_load(tasks, original, refuse)
    tasks.yaml_model_load = wrapper
    for module_name in _YAML_LOAD_IMPORTERS:
        module = sys.modules.get(module_name)
        if module is not None and getattr(module, "yaml_model_load", None) in (original, current):
            module.yaml_model_load = wrapper


# ---------------------------------------------------------------------------- safe load
def install_safe_globals(classes: dict[str, type]) -> list[type]:
    """Touch point 4: allow our classes in ``torch.load(weights_only=True)``."""
    import torch

    allowed = safe_globals_classes(classes)
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:  # torch < 2.4 has no restricted loading to allow-list for
        add(allowed)
    return allowed


# ---------------------------------------------------------------------------- entry point
def pil_image_open() -> Callable:
    """``PIL.Image.open`` as Pillow defines it (touch point: ``ultralytics.utils.patches``).

    Importing ultralytics replaces ``PIL.Image.open`` with a wrapper that, on an image it
    cannot identify, tries to pip-install a HEIF plugin and then raises
    ``ModuleNotFoundError``. The dataset converters must report and skip a corrupt image,
    never trigger an install, so they open images through the wrapper's saved original.
    """
    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", None) or Image.open


def register(tasks: ModuleType | None = None) -> str:
    """Register our layers and model YAMLs with Ultralytics; idempotent.

    Args:
        tasks: the ``ultralytics.nn.tasks`` module (the autoload hook passes it right after
            it executed); imported when None.

    Returns:
        ``"ok"``, or ``"unsupported"`` when the installed ultralytics is outside
        :data:`SUPPORTED_RANGE` (placeholders raise :class:`UnsupportedUltralyticsError`
        when our names are used).
    """
    if tasks is None:
        import importlib

        tasks = importlib.import_module(TASKS_MODULE)
    if id(tasks) in _registered:
        return _registered[id(tasks)]
    classes = layer_classes()
    refuse = None
    if not os.environ.get(ALLOW_UNSUPPORTED_ENV):
        try:
            check_version(_installed_version(tasks))
        except (UnsupportedUltralyticsError, ValueError) as error:
            refuse = error if isinstance(error, UnsupportedUltralyticsError) else UnsupportedUltralyticsError(str(error))
    if refuse is not None:
        namespace = vars(tasks)
        for name in [*classes, RESIDUAL_MODULE, *BLOCK_MODULES]:
            if name not in namespace or _is_ours(namespace[name]):
                namespace[name] = _make_refusing_builder(name, refuse)
        install_yaml_resolver(tasks, refuse)
        _registered[id(tasks)] = "unsupported"
        return "unsupported"
    install_builders(tasks, classes)
    install_row_check(tasks, set(classes), classes)
    install_yaml_resolver(tasks)
    install_safe_globals(classes)
    from .job_kernels import install_job_kernel_callbacks

    install_job_kernel_callbacks()
    _registered[id(tasks)] = "ok"
    return "ok"
