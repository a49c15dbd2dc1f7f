"""Benchmark grids: datasets x models x attentions x seeds, from a grid file and options.

A grid file (``cfg/bench/*.yaml``) holds the same keys as the ``scsa-yolo bench`` options::

    datasets: [voc, visdrone]        # names prepared under the data root, or data YAML paths
    models: [yolov8n, yolov8s]       # stock model + scale, or a model YAML path
    attns: [none, se, eca, ca, fca, scsa]
    placement: backbone              # or neck
    seeds: [0]
    epochs: 100
    imgsz: 640
    batch: 16
    train_args: {}                   # any other Ultralytics train argument
    synthetic: {}                    # options for preparing the synthetic dataset
    report: table4                   # report style printed at the end

Options given on the command line replace the file's values. Each grid point becomes a
:class:`RunSpec`, whose folder is ``OUT/DATASET/MODEL-ATTN[-PLACEMENT]-sSEED``.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

GRID_KEYS = (
    "datasets", "models", "attns", "placement", "seeds", "epochs", "imgsz", "batch",
    "train_args", "synthetic", "report", "description",
)
DEFAULT_GRID = "quick"
PLACEMENTS = ("backbone", "neck")
# Arguments the grid sets itself; train_args may not override them.
RESERVED_TRAIN_ARGS = {"data", "model", "epochs", "imgsz", "batch", "seed", "project", "name", "exist_ok", "resume", "device"}
_STOCK_MODEL = re.compile(r"^(yolov\d+|yolo\d+)([nsmlx])$")


class GridError(ValueError):
    """A grid file or option that cannot be run; the message says which and how to fix it."""


@dataclass(frozen=True)
class Attention:
    """An attention as the grid needs it: canonical name, table label, constructor kwargs."""

    name: str
    label: str
    kwargs: dict = field(default_factory=dict, hash=False, compare=False)


def attention_info(name: str) -> Attention:
    """Look ``name`` up in the attention registry (case-insensitive).

    Raises:
        GridError: unknown name; the message lists every known attention.
    """
    from scsa_yolo.nn.registry import UnknownAttentionError, get_attention

    try:
        spec = get_attention(name)
    except UnknownAttentionError as error:
        raise GridError(str(error)) from None
    return Attention(spec.name, spec.label, dict(spec.kwargs or {}))


def parse_model_name(model: str) -> tuple[str | None, str | None]:
    """``yolov8n`` -> (``yolov8``, ``n``); a YAML path or other name -> (None, None)."""
    match = _STOCK_MODEL.match(Path(model).name.removesuffix(".yaml"))
    return (match.group(1), match.group(2)) if match else (None, None)


@dataclass(frozen=True)
class RunSpec:
    """One training run of a grid."""

    dataset: str  # name as given (prepared dataset) or data YAML path
    model: str  # yolov8n, yolo11s, or a model YAML path
    attn: str  # canonical registry name
    placement: str
    seed: int
    epochs: int
    imgsz: int
    batch: int
    train_args: dict = field(default_factory=dict, hash=False)

    @property
    def dataset_key(self) -> str:
        """Folder-safe dataset name: the prepared name, or the YAML's stem (its folder for data.yaml)."""
        path = Path(self.dataset)
        if path.suffix in (".yaml", ".yml"):
            return path.parent.name if path.stem == "data" else path.stem
        return self.dataset

    @property
    def model_key(self) -> str:
        return Path(self.model).name.removesuffix(".yaml")

    @property
    def run_name(self) -> str:
        placement = f"-{self.placement}" if self.attn != "none" and self.placement != "backbone" else ""
        return f"{self.model_key}-{self.attn}{placement}-s{self.seed}"

    @property
    def run_id(self) -> str:
        return f"{self.dataset_key}/{self.run_name}"

    def run_dir(self, out: str | Path) -> Path:
        return Path(out) / self.dataset_key / self.run_name

    def settings(self) -> dict[str, Any]:
        """Everything that changes the result; two runs in one folder must agree on it."""
        return asdict(self)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunSpec":
        return cls(**data)


@dataclass
class Grid:
    """A benchmark grid before expansion."""

    datasets: list[str]
    models: list[str]
    attns: list[str]
    placement: str = "backbone"
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    train_args: dict = field(default_factory=dict)
    synthetic: dict = field(default_factory=dict)
    report: str = "table4"
    description: str = ""
    source: str = ""

    def runs(self) -> list[RunSpec]:
        """Every grid point, ordered dataset, model, seed, attention (plain model first)."""
        attentions = [attention_info(a).name for a in self.attns]
        return [
            RunSpec(dataset, model, attn, self.placement, seed, self.epochs, self.imgsz, self.batch, dict(self.train_args))
            for dataset in self.datasets
            for model in self.models
            for seed in self.seeds
            for attn in attentions
        ]

    def with_options(self, **options: Any) -> "Grid":
        """A copy with the given (non-None) values replaced, validated."""
        changes = {k: v for k, v in options.items() if v is not None}
        if "train_args" in changes:
            changes["train_args"] = {**self.train_args, **changes["train_args"]}
        grid = replace(self, **changes)
        grid.validate()
        return grid

    def validate(self) -> None:
        where = f" in {self.source}" if self.source else ""
        for key in ("datasets", "models", "attns", "seeds"):
            if not getattr(self, key):
                raise GridError(f"'{key}' is empty{where}")
        if self.placement not in PLACEMENTS:
            raise GridError(f"unknown placement '{self.placement}'{where}; choose one of: {', '.join(PLACEMENTS)}")
        for key in ("epochs", "imgsz", "batch"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GridError(f"'{key}' must be a positive integer{where}, got {value!r}")
        if any(not isinstance(s, int) or isinstance(s, bool) for s in self.seeds):
            raise GridError(f"'seeds' must be integers{where}, got {self.seeds!r}")
        reserved = RESERVED_TRAIN_ARGS & set(self.train_args)
        if reserved:
            raise GridError(
                f"train_args{where} may not set {sorted(reserved)}: use the grid's own keys "
                "(datasets, models, epochs, imgsz, batch, seeds, --devices)"
            )
        for attn in self.attns:
            attention_info(attn)


def grid_file(name_or_path: str | Path) -> Path:
    """A grid file path: an existing path as given, else ``NAME[.yaml]`` shipped in ``scsa_yolo.cfg/bench``."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    shipped = resources.files("scsa_yolo.cfg").joinpath("bench", name)
    if shipped.is_file():
        return Path(str(shipped))
    raise GridError(f"grid file not found: {name_or_path}; shipped grids: {', '.join(shipped_grids())}")


def shipped_grids() -> list[str]:
    folder = resources.files("scsa_yolo.cfg").joinpath("bench")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_grid(name_or_path: str | Path = DEFAULT_GRID) -> Grid:
    """Read and validate a grid file.

    Raises:
        GridError: unknown keys, wrong types, unknown attentions (naming the file).
    """
    path = grid_file(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise GridError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise GridError(f"{path}: expected a mapping of grid keys ({', '.join(GRID_KEYS)})")
    unknown = set(data) - set(GRID_KEYS)
    if unknown:
        raise GridError(f"{path}: unknown key(s) {sorted(unknown)}; known keys: {', '.join(GRID_KEYS)}")
    for key in ("datasets", "models", "attns", "seeds"):
        if key in data and not isinstance(data[key], list):
            data[key] = [data[key]]
    for key in ("train_args", "synthetic"):
        if key in data and not isinstance(data[key], dict):
            raise GridError(f"{path}: '{key}' must be a mapping")
    for key in ("datasets", "models", "attns"):
        if key in data:
            data[key] = [str(v) for v in data[key]]
    missing = {"datasets", "models", "attns"} - set(data)
    if missing:
        raise GridError(f"{path}: missing key(s) {sorted(missing)}")
    grid = Grid(**data, source=str(path))
    grid.validate()
    return grid


def split_list(text: str | None, kind: type = str) -> list | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (``None`` stays None); ints when ``kind`` is int."""
    if text is None:
        return None
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    if kind is int:
        try:
            return [int(item) for item in items]
        except ValueError:
            raise GridError(f"expected comma-separated integers, got {text!r}") from None
    return items
