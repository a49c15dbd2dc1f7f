"""Benchmark grids: datasets x models x attentions x seeds, from a grid file and options.

A grid file (``cfg/bench/*.yaml``) holds the same keys as the ``scsa-yolo bench`` options::

    datasets: [voc, visdrone]        # names prepared under the data root, or data YAML paths
    models: [yolov8n, yolov8s]       # stock model + scale, or a model YAML path
    task: segment                    # optional (default detect): yolov8n -> yolov8n-seg, ...
    attns: [none, se, eca, ca, fca, scsa]
    placement: [backbone-res, block] # one placement or a list (scsa_yolo.identity.PLACEMENTS)
    pretrained: runs/plain/best.pt   # optional: a checkpoint every run starts from, or
                                     # {yolov8n: a.pt, yolo11n: b.pt} per model
    pretrain: {data: synthetic, epochs: 20}  # or: a pretraining step the bench runs itself
    finetune: true                   # the grid fine-tunes: refused without one of the two
    seeds: [0]
    epochs: 100
    imgsz: 640
    batch: 16
    train_args: {}                   # any other Ultralytics train argument
    synthetic: {}                    # options for preparing the synthetic dataset
    report: table4                   # report style printed at the end

``task`` (``detect``, ``segment`` or ``classify``: the tasks the bench evaluates) rewrites
each stock model into that task's model at this edge, once (:attr:`Grid.model_ids`):
``task: segment`` with ``models: [yolov8n]`` trains ``yolov8n-seg``, and the task is then
part of every run name (``yolov8n-seg-scsa-block-s0``) and record (``spec.task``). A model
that names its task itself (``yolov8n-cls``) needs no ``task`` key, and one that names
another task than the key is refused; a classification grid takes only the placements in
the backbone (``backbone``, ``backbone-res``, ``block``).

Options given on the command line replace the file's values. Each grid point becomes a
:class:`RunSpec`, whose folder is ``OUT/DATASET/<ModelId.run_name>``
(``yolov8n-scsa-block-s0``; ``-ft-`` before the seed for a fine-tuned run). The plain model
runs once per seed, whatever the placements.

A fine-tuning grid names its start: a checkpoint (``pretrained``, or ``--pretrained``), or
a pretraining step (``pretrain``: ``data`` plus optional ``epochs``, ``imgsz``, ``batch``,
``seed``, ``train_args``; the rest as the grid's). The bench then trains the plain model of
each model once on that data (:meth:`Grid.pretrain_runs`, folders under
``OUT/pretrain/``, each with its own record, resumable and skipped when done) and every run
of the grid starts from its ``weights/last.pt`` (:meth:`Grid.with_pretraining`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.identity import (
    DEFAULT_PLACEMENT,
    DEFAULT_TASK,
    TASKS,
    DatasetRef,
    IdentityError,
    ModelId,
    RunSpec,
    attention,
    check_placement,
)

__all__ = ["BENCH_TASKS", "DEFAULT_GRID", "GRID_KEYS", "Grid", "GridError", "RunSpec", "grid_file", "load_grid", "shipped_grids"]

GRID_KEYS = (
    "datasets", "models", "task", "attns", "placement", "pretrained", "pretrain", "finetune", "seeds", "epochs",
    "imgsz", "batch", "train_args", "synthetic", "report", "description",
)
#: The tasks a grid runs: those :func:`scsa_yolo.eval.evaluate` scores.
BENCH_TASKS = ("detect", "segment", "classify")
PRETRAIN_KEYS = ("data", "epochs", "imgsz", "batch", "seed", "train_args")
#: Where the pretraining runs go, inside the grid's out folder.
PRETRAIN_FOLDER = "pretrain"
DEFAULT_GRID = "quick"
# Arguments the grid sets itself; train_args may not override them.
RESERVED_TRAIN_ARGS = {
    "data", "model", "epochs", "imgsz", "batch", "seed", "project", "name", "exist_ok", "resume", "device",
    "pretrained",  # a fine-tuned run must carry its start in its name and record: the grid's own key
}


class GridError(ScsaYoloError, ValueError):
    """A grid file or option that cannot be run; the message says which and how to fix it."""

    usage = True


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass
class Grid:
    """A benchmark grid before expansion."""

    datasets: list[str]
    models: list[str]
    attns: list[str]
    placement: str | list[str] = DEFAULT_PLACEMENT
    task: str | None = None  # None: detect, or the task each model names itself
    pretrained: str | dict | None = None
    pretrain: dict | None = None
    finetune: bool = False
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    train_args: dict = field(default_factory=dict)
    synthetic: dict = field(default_factory=dict)
    report: str = "table4"
    description: str = ""
    source: str = ""

    @property
    def placements(self) -> list[str]:
        return [str(p) for p in _as_list(self.placement)]

    def pretrained_for(self, model: str) -> str | None:
        """The checkpoint ``model`` starts from (None: from scratch)."""
        if isinstance(self.pretrained, dict):
            value = self.pretrained.get(model)
            return None if value is None else str(value)
        return None if self.pretrained is None else str(self.pretrained)

    @property
    def fine_tunes(self) -> bool:
        """Whether the grid's runs start from pretrained weights (a checkpoint or a pretraining step)."""
        return self.finetune or self.pretrained is not None or self.pretrain is not None

    def pretrain_runs(self) -> list[RunSpec]:
        """The pretraining step: the plain model of each model, once, on ``pretrain.data``."""
        if self.pretrain is None:
            return []
        step = self.pretrain
        return [RunSpec(DatasetRef(step["data"]), plain, int(step.get("seed", 0)), int(step.get("epochs", self.epochs)),
                        int(step.get("imgsz", self.imgsz)), int(step.get("batch", self.batch)),
                        {**self.train_args, **step.get("train_args", {})})
                for plain in self.model_ids]

    def with_pretraining(self, out: str | Path) -> "Grid":
        """A copy whose runs start from the pretraining runs' ``weights/last.pt`` under ``out``
        (the same grid when it has no pretraining step)."""
        if self.pretrain is None:
            return self
        starts = {model: str((run.run_dir(Path(out) / PRETRAIN_FOLDER) / "weights" / "last.pt").resolve())
                  for model, run in zip(self.models, self.pretrain_runs())}
        return replace(self, pretrained=starts, pretrain=None, finetune=True)

    @cached_property
    def model_ids(self) -> list[ModelId]:
        """One plain :class:`ModelId` per entry of ``models`` (validated by :meth:`validate`),
        in the grid's ``task``: the one place a grid's task reaches the models."""
        return [self._model_id(model) for model in self.models]

    def _model_id(self, model: str) -> ModelId:
        """``model`` as a plain :class:`ModelId` of the grid's task.

        Raises:
            IdentityError: not a model name; GridError: a model naming another task than
                ``task``, or a model YAML given a ``task``.
        """
        model_id = ModelId.create(model)
        if self.task is None or model_id.task == self.task:
            return model_id
        if model_id.family is None:
            raise GridError(f"'task: {self.task}' rewrites stock models (yolov8n -> yolov8n{TASKS[self.task].suffix}); "
                            f"the model YAML {model} keeps the task of its head: leave out 'task' or name stock models")
        if model_id.task != DEFAULT_TASK:
            raise GridError(f"model {model} is a {model_id.task} model but the grid's task is {self.task}; name the "
                            f"plain model ({model_id.family}{model_id.scale}) or leave out 'task'")
        return model_id.with_(task=self.task)

    @property
    def tasks(self) -> list[str]:
        """The tasks of the grid's models, without repeats."""
        return list(dict.fromkeys(m.task for m in self.model_ids))

    @cached_property
    def attentions(self) -> list[str]:
        """The canonical attention names, without repeats, in the grid's order."""
        return list(dict.fromkeys(attention(a).name for a in self.attns))

    @cached_property
    def dataset_refs(self) -> list[DatasetRef]:
        """The grid's datasets, and the pretraining step's (which may be one of them) last."""
        refs = [DatasetRef(dataset) for dataset in self.datasets]
        if self.pretrain is not None and self.pretrain["data"] not in self.datasets:
            refs.append(DatasetRef(self.pretrain["data"]))
        return refs

    def runs(self) -> list[RunSpec]:
        """Every grid point, ordered dataset, model, seed, attention (plain model first),
        placement; the plain model once per seed.

        Raises:
            GridError: a fine-tuning grid that names no start.
        """
        self._validate_start(f" in {self.source}" if self.source else "")
        points = []
        for dataset in self.dataset_refs[:len(self.datasets)]:
            for model, plain in zip(self.models, self.model_ids):
                pretrained = self.pretrained_for(model)
                for seed in self.seeds:
                    for attn in self.attentions:
                        for placement in ([None] if attn == "none" else self.placements):
                            model_id = plain.with_(attn=attn, placement=placement, pretrained=pretrained is not None)
                            points.append(RunSpec(dataset, model_id, seed, self.epochs, self.imgsz, self.batch,
                                                  dict(self.train_args), pretrained))
        return points

    def with_options(self, **options: Any) -> "Grid":
        """A copy with the given (non-None) values replaced, validated."""
        changes = {k: v for k, v in options.items() if v is not None}
        if "pretrained" in changes:  # a checkpoint from the command line replaces a pretraining step
            changes["pretrain"] = None
        if "train_args" in changes:
            changes["train_args"] = {**self.train_args, **changes["train_args"]}
        grid = replace(self, **changes)
        grid.validate()
        return grid

    def validate(self, start: bool = True) -> None:
        """Raise :class:`GridError` for anything that cannot run. ``start=False`` leaves out
        the check that a fine-tuning grid names its start (a file read before the command
        line's ``--pretrained`` is merged)."""
        where = f" in {self.source}" if self.source else ""
        for key in ("datasets", "models", "attns", "seeds"):
            if not getattr(self, key):
                raise GridError(f"'{key}' is empty{where}")
        if not self.placements:
            raise GridError(f"'placement' is empty{where}")
        for placement in self.placements:
            try:
                check_placement(placement)
            except IdentityError as error:
                raise GridError(f"{error}{where}") from None
        if self.task is not None and self.task not in BENCH_TASKS:
            raise GridError(f"'task' is {self.task!r}{where}; the bench runs (and evaluates) {', '.join(BENCH_TASKS)}")
        if self.pretrained is not None and not isinstance(self.pretrained, (str, dict)):
            raise GridError(f"'pretrained'{where} must be a checkpoint path or a mapping model -> path")
        self._validate_start(where, start)
        if isinstance(self.pretrained, dict):
            unknown = sorted(set(self.pretrained) - set(self.models))
            if unknown:
                raise GridError(f"'pretrained'{where} names models not in the grid: {unknown}; models: {self.models}")
        for model in self.models:
            try:
                model_id = self._model_id(model)
            except (IdentityError, GridError) as error:
                raise GridError(f"--models {model}{where}: {error}") from None
            if model_id.task not in BENCH_TASKS:
                raise GridError(f"--models {model}{where}: a {model_id.task} model; the bench runs (and evaluates) "
                                f"{', '.join(BENCH_TASKS)} models")
            refused = [p for p in self.placements if not TASKS[model_id.task].takes(check_placement(p))]
            if refused and any(attention(a).name != "none" for a in self.attns):
                raise GridError(f"--placement {', '.join(refused)}{where}: a {model_id.task} model ({model_id.model}) "
                                f"has no neck; choose among {', '.join(TASKS[model_id.task].placements())}")
        for dataset in self.datasets:
            try:
                DatasetRef(dataset)
            except IdentityError as error:
                raise GridError(f"{error}{where}") from None
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
                "(datasets, models, epochs, imgsz, batch, seeds, pretrained; --devices, --pretrained)"
            )
        for attn in self.attns:
            try:
                attention(attn)
            except IdentityError as error:
                raise GridError(f"{error}{where}") from None


    def _validate_start(self, where: str, required: bool = True) -> None:
        """A fine-tuning grid has exactly one start: a checkpoint or a pretraining step."""
        name = Path(self.source).stem if self.source else "this grid"
        if self.pretrained is not None and self.pretrain is not None:
            raise GridError(f"grid {name}{where} gives both 'pretrained' and 'pretrain'; keep one start")
        if required and self.finetune and self.pretrained is None and self.pretrain is None:
            raise GridError(
                f"grid {name}{where} fine-tunes (finetune: true) but names no start. Give one: a plain checkpoint "
                f"(--pretrained PATH, or 'pretrained: PATH' in the grid), or a pretraining step the bench runs "
                "itself ('pretrain: {data: synthetic, epochs: 20}' in the grid)")
        if self.pretrain is None:
            return
        if not isinstance(self.pretrain, dict) or "data" not in self.pretrain:
            raise GridError(f"'pretrain'{where} must be a mapping with at least 'data', e.g. "
                            "{data: synthetic, epochs: 20, imgsz: 160, batch: 32}")
        unknown = sorted(set(self.pretrain) - set(PRETRAIN_KEYS))
        if unknown:
            raise GridError(f"'pretrain'{where}: unknown key(s) {unknown}; known keys: {', '.join(PRETRAIN_KEYS)}")
        for key in ("epochs", "imgsz", "batch", "seed"):
            value = self.pretrain.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
                raise GridError(f"'pretrain.{key}'{where} must be a {'non-negative' if key == 'seed' else 'positive'} "
                                f"integer, got {value!r}")
        if not isinstance(self.pretrain.get("train_args", {}), dict):
            raise GridError(f"'pretrain.train_args'{where} must be a mapping")
        reserved = RESERVED_TRAIN_ARGS & set(self.pretrain.get("train_args", {}))
        if reserved:
            raise GridError(f"'pretrain.train_args'{where} may not set {sorted(reserved)}: use the step's own keys "
                            f"({', '.join(PRETRAIN_KEYS)})")


def grid_file(name_or_path: str | Path) -> Path:
    """A grid file path: an existing path as given, else ``NAME[.yaml]`` shipped in ``scsa_yolo.cfg/bench``."""
    if not str(name_or_path).strip():  # e.g. a shell substitution that failed: never a default grid
        raise GridError(f"the grid name is empty: give a grid file or a shipped grid ({', '.join(shipped_grids())})")
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
    if "finetune" in data and not isinstance(data["finetune"], bool):
        raise GridError(f"{path}: 'finetune' must be true or false")
    for key in ("datasets", "models", "attns"):
        if key in data:
            data[key] = [str(v) for v in data[key]]
    if "task" in data and not isinstance(data["task"], str):
        raise GridError(f"{path}: 'task' must be one of {', '.join(BENCH_TASKS)}, got {data['task']!r}")
    if isinstance(data.get("placement"), list):
        data["placement"] = [str(v) for v in data["placement"]]
    missing = {"datasets", "models", "attns"} - set(data)
    if missing:
        raise GridError(f"{path}: missing key(s) {sorted(missing)}")
    grid = Grid(**data, source=str(path))
    grid.validate(start=False)  # --pretrained may still give a fine-tuning grid its start
    return grid
