"""One table of attention names, used by YAML rows, the CLI and the reports.

``get_attention("SCSA-no-pcsa")`` (case-insensitive; ``_`` and ``-`` are the same) returns
an :class:`AttentionSpec`: the canonical lowercase name, the layer class (None for
``none``), the constructor keywords the name implies, the table label, and the YAML module
name and row args that select the same layer in a model YAML. ``create_attention(name, C)``
builds it; unknown names raise :class:`UnknownAttentionError`, listing the known ones.

The ``scsa-*`` names are the ablations of the SCSA paper's Table 1; :data:`TABLE1_ROWS`
gives their table order and group (Macro Design, Ordering, Micro Design, Branch).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from scsa_yolo.identity import BLOCK_MODULES, RESIDUAL_MODULE, IdentityError

from .caa import CAA
from .cbam import CBAM
from .coord_attn import CA
from .cpca import CPCA
from .eca import ECA
from .ela import ELA
from .ema import EMA
from .fca import FCA
from .lska import LSKA
from .mlca import MLCA
from .scsa import SCSA
from .shuffle_attn import SA
from .simam import SimAM
from .squeeze_excite import SE

__all__ = [
    "AttentionSpec",
    "UnknownAttentionError",
    "TABLE1_ROWS",
    "attention_names",
    "create_attention",
    "get_attention",
    "register_attention",
    "yaml_module_names",
]


class UnknownAttentionError(IdentityError):
    """An attention name that is not in the registry."""


@dataclass(frozen=True)
class AttentionSpec:
    """What a registry name means.

    Attributes:
        name: canonical lowercase name (``scsa``, ``scsa-no-pcsa``, ...).
        cls: the ``nn.Module`` class, None for ``none`` (no attention).
        kwargs: constructor keywords the name implies (ablation switches).
        label: label in result tables (``-``, ``+SE``, ``+SCSA``, ``w/o PCSA``, ...).
        yaml_module: class name for a model-YAML row (None for ``none``).
        yaml_args: the YAML row's args after the channel count: ``[]``, or one mapping of
            keyword arguments (``[{"use_pcsa": False}]``).
    """

    name: str
    cls: type[nn.Module] | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    yaml_module: str | None = None
    yaml_args: list[Any] = field(default_factory=list)


_REGISTRY: dict[str, AttentionSpec] = {}


def _normalise(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def register_attention(name: str, cls: type[nn.Module] | None, label: str, **kwargs: Any) -> AttentionSpec:
    """Add a name to the table; its YAML row is ``[cls.__name__, [kwargs]]``."""
    key = _normalise(name)
    if key in _REGISTRY:
        raise ValueError(f"attention {key!r} is already registered")
    spec = AttentionSpec(
        name=key,
        cls=cls,
        kwargs=dict(kwargs),
        label=label,
        yaml_module=None if cls is None else cls.__name__,
        yaml_args=[dict(kwargs)] if kwargs else [],
    )
    _REGISTRY[key] = spec
    return spec


def attention_names() -> list[str]:
    """Every registered name, in table order."""
    return list(_REGISTRY)


def yaml_module_names() -> set[str]:
    """Every YAML module name of ours: the attention layers' and the placement forms'
    (:data:`~scsa_yolo.identity.RESIDUAL_MODULE`, :data:`~scsa_yolo.identity.BLOCK_MODULES`)."""
    forms = {RESIDUAL_MODULE, *BLOCK_MODULES}
    return {spec.yaml_module for spec in _REGISTRY.values() if spec.yaml_module} | forms


def get_attention(name: str) -> AttentionSpec:
    """The spec for ``name`` (case-insensitive); a copy, so callers may mutate it freely."""
    key = _normalise(name)
    if key not in _REGISTRY:
        raise UnknownAttentionError(f"unknown attention {name!r}; known names: {', '.join(_REGISTRY)}")
    return copy.deepcopy(_REGISTRY[key])


def create_attention(name: str, channels: int, **overrides: Any) -> nn.Module:
    """Build the layer ``name`` for ``channels`` channels; ``none`` gives ``nn.Identity``."""
    spec = get_attention(name)
    if spec.cls is None:
        return nn.Identity()
    return spec.cls(channels, **{**spec.kwargs, **overrides})


register_attention("none", None, "-")
register_attention("se", SE, "+SE")
register_attention("eca", ECA, "+ECA")
register_attention("ca", CA, "+CA")
register_attention("fca", FCA, "+FCA")
register_attention("cbam", CBAM, "+CBAM")
register_attention("scsa", SCSA, "+SCSA")
# The rest of the SCSA paper's Table 2 rivals (the SCSA authors' defaults).
register_attention("sa", SA, "+SA")
register_attention("ema", EMA, "+EMA")
register_attention("cpca", CPCA, "+CPCA")
register_attention("ela", ELA, "+ELA")
# Rivals YOLO users compare against today (issue 31), the authors' defaults.
register_attention("simam", SimAM, "+SimAM")
register_attention("lska", LSKA, "+LSKA")
register_attention("mlca", MLCA, "+MLCA")
register_attention("caa", CAA, "+CAA")

#: Table 1 of the SCSA paper: (group, registry name), in the paper's order.
TABLE1_ROWS: list[tuple[str, str]] = [("Baseline", "scsa")]
for _group, _name, _label, _kwargs in [
    ("Macro Design", "scsa-no-smsa", "w/o SMSA", {"use_smsa": False}),
    ("Macro Design", "scsa-no-pcsa", "w/o PCSA", {"use_pcsa": False}),
    ("Ordering", "scsa-pcsa-first", "PCSA Prior", {"order": "pcsa_first"}),
    ("Ordering", "scsa-norm-first", "GN Prior", {"norm_position": "before"}),
    ("Micro Design", "scsa-no-norm", "w/o Normalization in SMSA", {"norm": "none"}),
    ("Micro Design", "scsa-bn", "GN->BN", {"norm": "bn"}),
    ("Micro Design", "scsa-ln", "GN->LN", {"norm": "ln"}),
    ("Micro Design", "scsa-global-pool", "w/o PC", {"progressive": False}),
    ("Micro Design", "scsa-multihead", "w/ Multi-head + Shuffle", {"num_heads": 4, "channel_shuffle": True}),
    ("Micro Design", "scsa-unshared", "Shared->Unshared", {"shared": False}),
    ("Micro Design", "scsa-scale-tokens", "Scaled: sqrt(C)->sqrt(H*W)", {"scale_mode": "tokens"}),
    ("Branch", "scsa-g1-3", "G1(3)", {"kernel_sizes": [3]}),
    ("Branch", "scsa-g1-7", "G1(7)", {"kernel_sizes": [7]}),
    ("Branch", "scsa-g2-3-7", "G2(3,7)", {"kernel_sizes": [3, 7]}),
    ("Branch", "scsa-g4-3-5-7-9", "G4(3,5,7,9)", {"kernel_sizes": [3, 5, 7, 9]}),
]:
    register_attention(_name, SCSA, _label, **_kwargs)
    TABLE1_ROWS.append((_group, _name))
del _group, _name, _label, _kwargs
