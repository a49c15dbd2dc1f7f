"""Attention layers (one per module) and the registry that names them.

>>> from scsa_yolo.nn import create_attention
>>> layer = create_attention("scsa", 64)  # (B, 64, H, W) -> (B, 64, H, W)
"""

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
from .registry import (
    TABLE1_ROWS,
    AttentionSpec,
    UnknownAttentionError,
    attention_names,
    create_attention,
    get_attention,
    register_attention,
)
from .scsa import SCSA
from .shuffle_attn import SA
from .simam import SimAM
from .squeeze_excite import SE

__all__ = [
    "CA",
    "CAA",
    "CBAM",
    "CPCA",
    "ECA",
    "ELA",
    "EMA",
    "FCA",
    "LSKA",
    "MLCA",
    "SA",
    "SCSA",
    "SE",
    "SimAM",
    "TABLE1_ROWS",
    "AttentionSpec",
    "UnknownAttentionError",
    "attention_names",
    "create_attention",
    "get_attention",
    "register_attention",
]
