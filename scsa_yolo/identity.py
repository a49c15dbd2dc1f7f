"""The run's identity, parsed and formatted here and nowhere else.

Three values travel from the command line to the report:

* :class:`ModelId`: base (stock family or a YAML), scale, attention (a registry name, whose
  keyword arguments the registry holds), placement and pretrained start;
* :class:`DatasetRef`: a prepared dataset's name or a data YAML path, with its folder key;
* :class:`RunSpec`: one run, model x dataset x seed x schedule (and the checkpoint it
  starts from), whose JSON form is a run folder's ``spec.json``.

Each has one text form and one JSON form. User text becomes these values once, at the edge
(the CLI, the grid loader, the stock ``yolo`` command's model name) or one
:class:`IdentityError`; everything behind the edge takes the values.

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
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scsa_yolo.errors import ScsaYoloError

if TYPE_CHECKING:
    from scsa_yolo.nn.registry import AttentionSpec

__all__ = [
    "BLOCK_MODULE",
    "BLOCK_MODULES",
    "BLOCK_RES_MODULE",
    "DEFAULT_PLACEMENT",
    "FAMILIES",
    "PLACEMENTS",
    "RESIDUAL_MODULE",
    "DatasetRef",
    "IdentityError",
    "ModelId",
    "Placement",
    "Pretrained",
    "RunSpec",
    "TASKS",
    "Task",
    "attention",
    "check_placement",
    "placement_names",
]


class IdentityError(ScsaYoloError, ValueError):
    """A model, attention, placement or dataset name that does not parse; the message lists choices."""

    usage = True


@dataclass(frozen=True)
class Placement:
    """Where an attention sits and in what form.

    Attributes:
        name: ``backbone``, ``neck``, ``backbone-res``, ``neck-res``, ``block`` or ``block-res``.
        form: ``series`` (a row on the trunk, y = attn(x)), ``residual`` (a row on the
            trunk, y = x + g * attn(x), g per channel starting at 0) or ``block`` (inside
            the residual branch of every shortcut bottleneck, between its two convs; with
            ``identity_start`` in the gated form h + g * (attn(h) - h), g per channel at 0).
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
        Placement("block-res", "block", "backbone", True,
                  "inside the residual branch of every shortcut bottleneck of the backbone, between its two convs, "
                  "in gated form h + g*(attn(h) - h), g per channel starting at 0 (the paper's slot, starting as "
                  "the plain model)"),
    )
}

#: YAML module of a residual attention row: ``[-1, 1, ResAttn, [SCSA, {kwargs}]]``.
RESIDUAL_MODULE = "ResAttn"
#: YAML module of a block with attention: ``[-1, 3, BlockAttn, [C2f, [128, True], SCSA]]``.
BLOCK_MODULE = "BlockAttn"
#: YAML module of a block with the attention in gated form (placement ``block-res``):
#: ``[-1, 3, BlockResAttn, [C2f, [128, True], SCSA]]``, the arguments of ``BlockAttn``.
BLOCK_RES_MODULE = "BlockResAttn"
#: Both block modules: each stands for the stock block it wraps.
BLOCK_MODULES = (BLOCK_MODULE, BLOCK_RES_MODULE)

#: The placement an unsuffixed name (``yolov8n-scsa``) means, and the default of
#: ``scsa-yolo train`` and ``scsa-yolo bench``. Chosen from the synthetic-gpu grid
#: (results/placement/): see the README's results section.
DEFAULT_PLACEMENT = "backbone-res"

#: Stock families and the folder of their YAMLs inside ``ultralytics/cfg/models``.
FAMILY_FOLDERS: dict[str, str] = {"yolov8": "v8", "yolo11": "11", "yolo26": "26"}


@dataclass(frozen=True)
class Task:
    """What a model predicts, as Ultralytics names its model files.

    Attributes:
        name: Ultralytics' task name (``detect``, ``segment``, ``classify``, ``pose``, ``obb``).
        suffix: the file-name part after the scale (``yolov8n-seg.yaml``); empty for detect.
        has_neck: whether the model has a neck feeding a multi-scale head. A classification
            model (backbone + Classify head) has none, so only the placements in its
            backbone apply to it.
    """

    name: str
    suffix: str
    has_neck: bool = True

    def takes(self, placement: "Placement") -> bool:
        return self.has_neck or placement.where == "backbone"

    def placements(self) -> list[str]:
        """The placements a model of this task can take, in table order."""
        return [p.name for p in PLACEMENTS.values() if self.takes(p)]


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("detect", ""),
        Task("segment", "-seg"),
        Task("classify", "-cls", has_neck=False),
        Task("pose", "-pose"),
        Task("obb", "-obb"),
    )
}
DEFAULT_TASK = "detect"


def family_yaml(family: str, task: str = DEFAULT_TASK) -> str:
    """Where the stock YAML of a family and task sits inside ``ultralytics/cfg/models``
    (``v8/yolov8-seg.yaml``); whether the installed Ultralytics ships it is checked when it is read."""
    return f"{FAMILY_FOLDERS[family]}/{family}{TASKS[task].suffix}.yaml"


#: Stock detection families and where their YAML sits inside ``ultralytics/cfg/models``.
FAMILIES: dict[str, str] = {family: family_yaml(family) for family in FAMILY_FOLDERS}
SCALES = "nsmlx"
PRETRAINED_TAG = "ft"
#: Records written before placements existed hold runs with their rows after the P3/P4/P5
#: backbone stages (their model_yaml says so).
LEGACY_PLACEMENT = "backbone"

_TASK_SUFFIXES = "|".join(t.suffix[1:] for t in TASKS.values() if t.suffix)
_STOCK = re.compile(rf"^(?P<family>yolov8|yolo11|yolo26)(?P<scale>[nsmlx])?(?:-(?P<task>{_TASK_SUFFIXES}))?$")
_TASK_BY_SUFFIX = {t.suffix[1:]: t.name for t in TASKS.values() if t.suffix}


def _task_of(match: re.Match) -> str:
    return _TASK_BY_SUFFIX.get(match.group("task") or "", DEFAULT_TASK)


def stock_base(stem: str) -> tuple[str, str] | None:
    """``(family, task)`` of a scale-free stock base stem (``yolov8``, ``yolo11-seg``), else None."""
    match = _STOCK.match(stem)
    if not match or match.group("scale") is not None:
        return None
    return match.group("family"), _task_of(match)


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


def attention(name: str) -> "AttentionSpec":
    """The attention registry's record for ``name`` (case-insensitive): canonical name,
    layer class, keyword arguments, table label and YAML row.

    Raises:
        IdentityError: unknown attention (the message lists the known names).
    """
    from scsa_yolo.nn.registry import get_attention

    return get_attention(name)


def canonical_attention(name: str) -> tuple[str, str]:
    """``(canonical name, table label)`` of an attention registry name (case-insensitive).

    Raises:
        IdentityError: unknown attention (the message lists the known names).
    """
    spec = attention(name)
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
        task: a :data:`TASKS` key (``detect``, ``segment``, ``classify``, ``pose``, ``obb``).
    """

    family: str | None
    scale: str | None
    attn: str = "none"
    placement: str | None = None
    base_yaml: str | None = field(default=None, compare=True)
    pretrained: bool = False
    task: str = DEFAULT_TASK

    def __post_init__(self) -> None:
        if self.family is None and self.base_yaml is None:
            raise IdentityError("a model needs a stock family (yolov8, yolo11, yolo26) or a base YAML")
        if self.family is not None and self.family not in FAMILIES:
            raise IdentityError(f"unknown model family {self.family!r}; choose one of: {', '.join(FAMILIES)}")
        if self.task not in TASKS:
            raise IdentityError(f"unknown task {self.task!r}; choose one of: {', '.join(TASKS)}")
        if self.attn == "none" and self.placement is not None:
            object.__setattr__(self, "placement", None)
        if self.attn != "none":
            placement = check_placement(self.placement or DEFAULT_PLACEMENT)
            task = TASKS[self.task]
            if not task.takes(placement):
                raise IdentityError(
                    f"placement {placement.name!r} needs a neck, and a {task.name} model ({self.model}) has only a "
                    f"backbone and its head; choose one of: {', '.join(task.placements())}")
            object.__setattr__(self, "placement", placement.name)

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
                example = f"{match.group('family')}n{TASKS[_task_of(match)].suffix}"
                raise IdentityError(f"model {model!r} has no scale; add one of {', '.join(SCALES)} (e.g. {example})")
            return cls(match.group("family"), match.group("scale"), attn_name, placement, pretrained=pretrained,
                       task=_task_of(match))
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
        ``yolo11s-seg-cbam-block.yaml`` (a task after the scale, as Ultralytics names its
        files), with an optional ``-ft`` marking a fine-tuned run.

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
        task_part, _, after_task = rest.partition("-")
        if task_part in _TASK_BY_SUFFIX:
            head, rest = f"{head}-{task_part}", after_task
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
        return cls(match.group("family"), match.group("scale"), attn, placement, pretrained=pretrained,
                   task=_task_of(match))

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
        """The base's stem: ``yolov8``, ``yolov8-seg`` or a custom YAML's stem."""
        if self.family is None:
            return Path(str(self.base_yaml)).stem
        return f"{self.family}{TASKS[self.task].suffix}"

    @property
    def model(self) -> str:
        """The plain model: ``yolov8n``, ``yolov8n-seg`` (``yolov8`` without a scale, or the custom stem)."""
        if self.family is None:
            return f"{self.base}{self.scale or ''}"
        return f"{self.family}{self.scale or ''}{TASKS[self.task].suffix}"

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
        """Model YAML file name: ``yolov8-scsa-block.yaml``, scaled ``yolov8n-scsa-block.yaml``,
        ``yolov8n-seg-scsa-block.yaml`` for a segmentation model."""
        stem = self.model if scaled else self.base
        return f"{stem}{self.attention_part(alias_default)}.yaml"

    def run_name(self, seed: int) -> str:
        """Run folder name: ``yolov8n-scsa-block-s0``, ``yolov8n-none-ft-s1``."""
        attn = self.attention_part() or "-none"
        tag = f"-{PRETRAINED_TAG}" if self.pretrained else ""
        return f"{self.model}{attn}{tag}-s{seed}"

    @cached_property
    def attention(self) -> "AttentionSpec":
        """The registry's record of the attention (keyword arguments, label, YAML row)."""
        return attention(self.attn)

    @property
    def label(self) -> str:
        """Table label of the attention: ``-``, ``+SCSA``, ``w/o PCSA``."""
        return self.attention.label

    @property
    def model_arg(self) -> str:
        """The model as :meth:`create` takes it: ``yolov8n``, or the custom base YAML's path."""
        return self.model if self.family is not None else str(self.base_yaml)

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
            "task": self.task,
        }

    @classmethod
    def from_json(cls, spec: dict) -> "ModelId":
        """The identity a record's ``spec`` holds (:meth:`to_json`'s fields). Records from
        before placements get :data:`LEGACY_PLACEMENT`; records from before fine-tuning
        started from scratch; before ``base_yaml`` a custom base was named by ``model_yaml``.

        Raises:
            IdentityError: a family, attention or placement this installation does not know.
        """
        attn = spec.get("attn") or "none"
        placement = spec.get("placement") or (None if attn == "none" else LEGACY_PLACEMENT)
        pretrained = bool(spec.get("pretrained") or spec.get("pretrained_start"))
        base_yaml = spec.get("base_yaml")
        if spec.get("family") is None and base_yaml is None:
            base_yaml = spec.get("model_yaml") or spec.get("model")
        return cls(spec.get("family"), spec.get("scale"), attn, placement, base_yaml=base_yaml, pretrained=pretrained,
                   task=spec.get("task") or DEFAULT_TASK)


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as a user names it: a prepared dataset's name (``voc``, ``synthetic-tiny``)
    or the path of an Ultralytics data YAML. Text and JSON form: the text as given."""

    text: str

    def __post_init__(self) -> None:
        if not str(self.text).strip():
            raise IdentityError("a dataset name or data YAML path is empty")
        object.__setattr__(self, "text", str(self.text).strip())

    @property
    def is_yaml(self) -> bool:
        return Path(self.text).suffix in (".yaml", ".yml")

    @property
    def key(self) -> str:
        """Folder-safe name, used for run folders and report rows: the prepared name, the
        YAML's stem (its folder's name for ``.../NAME/data.yaml``), or a dataset folder's
        name (a classification set given as ``datasets/synthetic-cls``)."""
        path = Path(self.text)
        if not self.is_yaml:
            return path.name if len(path.parts) > 1 else self.text
        return path.parent.name if path.stem == "data" else path.stem

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class RunSpec:
    """One run: a model on a dataset with a seed and a schedule, maybe from a checkpoint.

    Its JSON form (:meth:`to_json`, a run folder's ``spec.json``) is flat:
    ``dataset, model, attn, placement, seed, epochs, imgsz, batch, train_args, pretrained``.
    The text form is :attr:`run_id`, ``DATASET_KEY/RUN_NAME`` (``synthetic/yolov8n-scsa-block-s0``).
    """

    dataset: DatasetRef
    model_id: ModelId
    seed: int
    epochs: int
    imgsz: int
    batch: int
    train_args: dict = field(default_factory=dict, hash=False)
    pretrained: str | None = None  # checkpoint the run starts from (transferred first)

    def __post_init__(self) -> None:
        if self.model_id.pretrained != (self.pretrained is not None):
            object.__setattr__(self, "model_id", self.model_id.with_(pretrained=self.pretrained is not None))

    @classmethod
    def create(cls, dataset: str, model: str, attn: str | None, placement: str | None, seed: int, epochs: int,
               imgsz: int, batch: int, train_args: dict | None = None, pretrained: str | None = None) -> "RunSpec":
        """From user text (the grid's values): see :meth:`ModelId.create` and :class:`DatasetRef`.

        Raises:
            IdentityError: unknown model, attention, placement, or an empty dataset.
        """
        model_id = ModelId.create(model, attn, placement, pretrained=pretrained is not None)
        return cls(DatasetRef(dataset), model_id, seed, epochs, imgsz, batch, dict(train_args or {}), pretrained)

    # the JSON fields, which name the model by its parts
    @property
    def model(self) -> str:
        return self.model_id.model_arg

    @property
    def attn(self) -> str:
        return self.model_id.attn

    @property
    def placement(self) -> str | None:
        return self.model_id.placement

    @property
    def dataset_key(self) -> str:
        return self.dataset.key

    @property
    def run_name(self) -> str:
        return self.model_id.run_name(self.seed)

    @property
    def run_id(self) -> str:
        return f"{self.dataset_key}/{self.run_name}"

    def run_dir(self, out: str | Path) -> Path:
        return Path(out) / self.dataset_key / self.run_name

    def to_json(self) -> dict[str, Any]:
        """Everything that changes the result (two runs in one folder must agree on it)."""
        return {
            "dataset": self.dataset.text, "model": self.model, "attn": self.attn, "placement": self.placement,
            "seed": self.seed, "epochs": self.epochs, "imgsz": self.imgsz, "batch": self.batch,
            "train_args": dict(self.train_args), "pretrained": self.pretrained,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunSpec":
        """The run a :meth:`to_json` mapping describes (extra keys, such as the resolved
        dataset a ``spec.json`` also carries, are not part of the identity).

        Raises:
            IdentityError: a field missing, or a name this installation does not know.
        """
        try:
            return cls.create(data["dataset"], data["model"], data["attn"], data["placement"], data["seed"],
                              data["epochs"], data["imgsz"], data["batch"], data.get("train_args"),
                              data.get("pretrained"))
        except KeyError as missing:
            raise IdentityError(f"a run spec has no {missing.args[0]!r}") from None
