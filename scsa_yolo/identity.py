"""The run's identity: model family and scale, attention, placement, pretrained source.

Every stage names a model the same way, through :class:`ModelId`:

* the generator's file names: ``yolov8-scsa-block.yaml`` (scale-free, committed) and the
  unsuffixed alias ``yolov8-scsa.yaml`` for :data:`DEFAULT_PLACEMENT`;
* the names users type: ``yolov8n``, ``yolov8n-scsa``, ``yolov8n-scsa-neck-res.yaml``;
* run folders and ids: ``yolov8n-scsa-block-s0`` (``-ft`` before the seed when the run
  starts from pretrained weights);
* report labels: ``+SCSA``, with the placement in its own column and in the method label
  ``+SCSA (block)``.

Adding a dimension means adding a field here; parsing and formatting both live in this
module. It imports neither torch nor ultralytics; the attention registry (which imports
torch) is consulted only to canonicalise attention names.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "DEFAULT_PLACEMENT",
    "FAMILIES",
    "PLACEMENTS",
    "IdentityError",
    "ModelId",
    "Placement",
    "Pretrained",
    "placement_names",
]


class IdentityError(ValueError):
    """A model, attention or placement name that does not parse; the message lists choices."""


@dataclass(frozen=True)
class Placement:
    """Where an attention sits and in what form.

    Attributes:
        name: ``backbone``, ``neck``, ``backbone-res``, ``neck-res`` or ``block``.
        form: ``series`` (a row on the trunk, y = attn(x)), ``residual`` (a row on the
            trunk, y = x + g * attn(x), g per channel starting at 0) or ``block`` (inside
            the residual branch of every shortcut bottleneck, between its two convs).
        where: ``backbone`` (the P3/P4/P5 outputs, or the backbone's blocks for ``block``)
            or ``neck`` (every input of the detection head).
        identity_start: the model starts out computing exactly what the plain model does.
        description: one line for YAML headers, help texts and reports.
    """

    name: str
    form: str
    where: str
    identity_start: bool
    description: str


PLACEMENTS: dict[str, Placement] = {
    p.name: p
    for p in (
        Placement("backbone", "series", "backbone", False,
                  "in series after every backbone output the head consumes (last block of the P3, P4 and P5 stages)"),
        Placement("neck", "series", "neck", False,
                  "in series on every input of the detection head (the last block of each output scale)"),
        Placement("backbone-res", "residual", "backbone", True,
                  "after the P3/P4/P5 backbone outputs in residual form y = x + g*attn(x), g per channel starting at 0"),
        Placement("neck-res", "residual", "neck", True,
                  "on every detection-head input in residual form y = x + g*attn(x), g per channel starting at 0"),
        Placement("block", "block", "backbone", False,
                  "inside the residual branch of every shortcut bottleneck of the backbone, between its two convs "
                  "(where the SCSA paper puts it)"),
    )
}

#: The placement an unsuffixed name (``yolov8n-scsa``) means, and the default of
#: ``scsa-yolo train`` and ``scsa-yolo bench``. Chosen from the synthetic-gpu grid
#: (results/placement/): see the README's results section.
DEFAULT_PLACEMENT = "backbone-res"

#: Stock detection families and where their YAML sits inside ``ultralytics/cfg/models``.
FAMILIES: dict[str, str] = {
    "yolov8": "v8/yolov8.yaml",
    "yolo11": "11/yolo11.yaml",
    "yolo26": "26/yolo26.yaml",
}
SCALES = "nsmlx"
PRETRAINED_TAG = "ft"

_STOCK = re.compile(r"^(?P<family>yolov8|yolo11|yolo26)(?P<scale>[nsmlx])?$")


def placement_names() -> list[str]:
    """Every placement name, in table order."""
    return list(PLACEMENTS)


def check_placement(name: str) -> Placement:
    """The :class:`Placement` called ``name``.

    Raises:
        IdentityError: unknown name (the message lists the choices).
    """
    try:
        return PLACEMENTS[str(name).strip().lower()]
    except KeyError:
        raise IdentityError(f"unknown placement {name!r}; choose one of: {', '.join(PLACEMENTS)}") from None


def canonical_attention(name: str) -> tuple[str, str]:
    """``(canonical name, table label)`` of an attention registry name (case-insensitive).

    Raises:
        IdentityError: unknown attention (the message lists the known names).
    """
    from scsa_yolo.nn.registry import UnknownAttentionError, get_attention

    try:
        spec = get_attention(name)
    except UnknownAttentionError as error:
        raise IdentityError(str(error)) from None
    return spec.name, spec.label


def attention_slug(attn: str) -> str:
    """A file-name-safe form of a canonical attention name (``scsa-no-pcsa`` stays as is)."""
    return re.sub(r"[^a-z0-9]+", "-", attn.lower()).strip("-")


@dataclass(frozen=True)
class Pretrained:
    """The checkpoint a run starts from: its path as given and its sha256."""

    path: str
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> "Pretrained":
        """Hash ``path`` (streamed; checkpoints are tens of MB).

        Raises:
            IdentityError: the file does not exist.
        """
        source = Path(path).expanduser()
        if not source.is_file():
            raise IdentityError(f"pretrained checkpoint {path} not found; give the path of a .pt file")
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return cls(str(source), digest.hexdigest())

    def to_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class ModelId:
    """One model of the suite: base, scale, attention and placement.

    Attributes:
        family: ``yolov8``, ``yolo11`` or ``yolo26``; None for a custom base YAML.
        scale: ``n``..``x``; None when the base has no scales or the name gave none.
        attn: canonical attention registry name (``none`` for the plain model).
        placement: a :data:`PLACEMENTS` key; None for the plain model.
        base_yaml: path of a custom base model YAML (when ``family`` is None).
        pretrained: whether the run starts from pretrained weights (the checkpoint itself
            is a run setting, recorded with its sha256; see :class:`Pretrained`).
    """

    family: str | None
    scale: str | None
    attn: str = "none"
    placement: str | None = None
    base_yaml: str | None = field(default=None, compare=True)
    pretrained: bool = False

    def __post_init__(self) -> None:
        if self.family is None and self.base_yaml is None:
            raise IdentityError("a model needs a stock family (yolov8, yolo11, yolo26) or a base YAML")
        if self.family is not None and self.family not in FAMILIES:
            raise IdentityError(f"unknown model family {self.family!r}; choose one of: {', '.join(FAMILIES)}")
        if self.attn == "none" and self.placement is not None:
            object.__setattr__(self, "placement", None)
        if self.attn != "none":
            object.__setattr__(self, "placement", check_placement(self.placement or DEFAULT_PLACEMENT).name)

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, model: str, attn: str | None = None, placement: str | None = None,
               pretrained: bool = False) -> "ModelId":
        """From the separate options of ``train``/``bench``/``profile``.

        ``model`` is a stock name with scale (``yolov8n``, ``yolo11s.yaml``) or a custom
        base YAML path; ``attn`` and ``placement`` default to none and
        :data:`DEFAULT_PLACEMENT`.

        Raises:
            IdentityError: unknown model, attention or placement.
        """
        attn_name = canonical_attention(attn or "none")[0]
        text = str(model).strip()
        stem = text[:-5] if text.endswith(".yaml") else text
        match = _STOCK.match(stem)
        if match:
            if match.group("scale") is None:
                raise IdentityError(
                    f"model {model!r} has no scale; add one of {', '.join(SCALES)} (e.g. {stem}n)")
            return cls(match.group("family"), match.group("scale"), attn_name, placement, pretrained=pretrained)
        path = Path(text).expanduser()
        if path.suffix in (".yaml", ".yml"):
            return cls(None, None, attn_name, placement, base_yaml=str(path), pretrained=pretrained)
        raise IdentityError(
            f"model {model!r} is neither a stock model with a scale "
            f"({', '.join(f'{f}n' for f in FAMILIES)}, ... {', '.join(f'{f}x' for f in FAMILIES)}) "
            "nor a model YAML path")

    @classmethod
    def parse(cls, name: str) -> "ModelId":
        """A name as the suite writes it: ``yolov8n``, ``yolov8n-scsa``,
        ``yolov8n-scsa-no-pcsa-neck-res.yaml``, ``yolov8-se-block.yaml`` (no scale),
        with an optional ``-ft`` marking a fine-tuned run.

        The placement suffix is optional (no suffix: :data:`DEFAULT_PLACEMENT`); the part
        between the model and the placement is an attention registry name.

        Raises:
            IdentityError: not a name of this form (the message says which part failed).
        """
        stem = Path(str(name)).name
        for suffix in (".yaml", ".yml", ".pt"):
            stem = stem.removesuffix(suffix)
        pretrained = stem.endswith(f"-{PRETRAINED_TAG}")
        stem = stem.removesuffix(f"-{PRETRAINED_TAG}")
        head, _, rest = stem.partition("-")
        match = _STOCK.match(head)
        if not match:
            raise IdentityError(f"{name!r} does not start with a stock model ({', '.join(FAMILIES)}, with an optional scale)")
        placement = None
        for candidate in sorted(PLACEMENTS, key=len, reverse=True):
            if rest == candidate or rest.endswith(f"-{candidate}"):
                placement, rest = candidate, rest[: -len(candidate)].rstrip("-")
                break
        attn = canonical_attention(rest)[0] if rest else "none"
        if attn == "none" and placement is not None:
            raise IdentityError(f"{name!r} names a placement ({placement}) but no attention")
        return cls(match.group("family"), match.group("scale"), attn, placement, pretrained=pretrained)

    @classmethod
    def try_parse(cls, name: str) -> "ModelId | None":
        """:meth:`parse`, or None when ``name`` is not of the suite's form."""
        try:
            return cls.parse(name)
        except IdentityError:
            return None

    def with_(self, **changes) -> "ModelId":
        """A copy with fields replaced (``model_id.with_(attn="none")``)."""
        return replace(self, **changes)

    # ------------------------------------------------------------------ formatting
    @property
    def base(self) -> str:
        """The base's stem: ``yolov8`` or a custom YAML's stem."""
        return self.family if self.family is not None else Path(str(self.base_yaml)).stem

    @property
    def model(self) -> str:
        """The plain model: ``yolov8n`` (``yolov8`` without a scale, or the custom stem)."""
        return f"{self.base}{self.scale or ''}"

    @property
    def is_plain(self) -> bool:
        return self.attn == "none"

    def attention_part(self, alias_default: bool = False) -> str:
        """``-scsa-block``; ``""`` for the plain model. With ``alias_default`` the default
        placement is left out (``-scsa``), as in the short YAML names."""
        if self.is_plain:
            return ""
        suffix = "" if alias_default and self.placement == DEFAULT_PLACEMENT else f"-{self.placement}"
        return f"-{attention_slug(self.attn)}{suffix}"

    @property
    def name(self) -> str:
        """Canonical name with scale and explicit placement: ``yolov8n-scsa-block``."""
        return f"{self.model}{self.attention_part()}"

    def yaml_name(self, scaled: bool = False, alias_default: bool = False) -> str:
        """Model YAML file name: ``yolov8-scsa-block.yaml``, scaled ``yolov8n-scsa-block.yaml``."""
        stem = self.model if scaled else self.base
        return f"{stem}{self.attention_part(alias_default)}.yaml"

    def run_name(self, seed: int) -> str:
        """Run folder name: ``yolov8n-scsa-block-s0``, ``yolov8n-none-ft-s1``."""
        attn = self.attention_part() or "-none"
        tag = f"-{PRETRAINED_TAG}" if self.pretrained else ""
        return f"{self.model}{attn}{tag}-s{seed}"

    @property
    def label(self) -> str:
        """Table label of the attention: ``-``, ``+SCSA``, ``w/o PCSA``."""
        return canonical_attention(self.attn)[1]

    @property
    def method_label(self) -> str:
        """Label with the placement: ``+SCSA (block)``; ``-`` for the plain model."""
        return self.label if self.is_plain else f"{self.label} ({self.placement})"

    def to_json(self) -> dict:
        """The identity fields of a run record's ``spec``."""
        return {
            "model": self.model,
            "family": self.family,
            "scale": self.scale,
            "attn": self.attn,
            "attn_label": self.label,
            "placement": self.placement,
            "base_yaml": self.base_yaml,
            "pretrained_start": self.pretrained,
        }
