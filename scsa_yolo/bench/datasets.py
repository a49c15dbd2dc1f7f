"""A grid's datasets, resolved once: ready (with the data YAML) or not (with the reason).

The grid resolves every dataset before anything trains (:func:`resolve_datasets`); each
run folder's ``spec.json`` then carries its dataset's resolution under :data:`RESOLVED_KEY`
(:meth:`DatasetStatus.to_json`), and the worker reads the data YAML from there
(:func:`data_yaml_of`) instead of looking the name up again. A Ray node that mounts the
data root elsewhere (its own ``SCSA_YOLO_DATA``) gets the same file under its root.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from scsa_yolo.identity import DatasetRef

if TYPE_CHECKING:
    from scsa_yolo.bench.grid import Grid

__all__ = ["RESOLVED_KEY", "DatasetStatus", "data_yaml_of", "resolve_datasets"]

#: The key of ``spec.json`` that holds the run's resolved dataset (not part of its identity).
RESOLVED_KEY = "resolved"

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DatasetStatus:
    """One dataset of a grid after resolution.

    Attributes:
        ref: the dataset as the grid names it.
        data_yaml: its Ultralytics data YAML (None: not ready).
        data_root: the data root a prepared dataset was found under (None for a data YAML
            given by path), so that a node with another root can find the same file.
        problem: why it is not ready and how to prepare it (None when ready, or in a dry
            run when a real run would generate it).
        note: in a dry run, what a real run will do (``will be generated``).
    """

    ref: DatasetRef
    data_yaml: Path | None = None
    data_root: Path | None = None
    problem: str | None = None
    note: str | None = None

    @property
    def ready(self) -> bool:
        return self.data_yaml is not None

    @property
    def shown(self) -> Path | str:
        """What ``--dry-run`` prints for it: the data YAML, or the sentence."""
        return self.data_yaml if self.data_yaml is not None else (self.note or f"NOT READY: {self.problem}")

    def to_json(self) -> dict:
        return {"data_yaml": None if self.data_yaml is None else str(self.data_yaml),
                "data_root": None if self.data_root is None else str(self.data_root)}


def data_yaml_of(resolved: dict | None, where: Path) -> Path:
    """The data YAML a ``spec.json``'s :data:`RESOLVED_KEY` names, on this machine.

    A prepared dataset lies under ``data_root``; where this process has another data root
    (``SCSA_YOLO_DATA`` on a Ray node) the file is taken from there.

    Raises:
        DatasetNotPrepared: no resolution in the spec (it was not written by ``scsa-yolo
            bench``), or the file is not there.
    """
    from scsa_yolo.data.layout.paths import DATA_ROOT_ENV, DatasetNotPrepared

    if not resolved or not resolved.get("data_yaml"):
        raise DatasetNotPrepared(f"{where} does not say which data YAML the run uses ('{RESOLVED_KEY}' is missing); "
                                 "start the run through `scsa-yolo bench`, which writes it")
    data_yaml = Path(resolved["data_yaml"])
    root, here = resolved.get("data_root"), os.environ.get(DATA_ROOT_ENV)
    if root and here and Path(here).expanduser().resolve() != Path(root) and data_yaml.is_relative_to(root):
        data_yaml = Path(here).expanduser().resolve() / data_yaml.relative_to(root)
    # a prepared classification dataset is its folder (train/<class>/, val/<class>/), as Ultralytics takes it
    if not (data_yaml.is_file() or data_yaml.is_dir()):
        raise DatasetNotPrepared(f"the data YAML (or classification folder) of {where} is not there: {data_yaml}")
    return data_yaml


def resolve_datasets(grid: "Grid", echo: Echo, dry_run: bool = False) -> dict[str, DatasetStatus]:
    """Every dataset of the grid, by name: prepared ones are found, generated ones
    (``synthetic`` and its scenarios) are generated when missing with the grid's
    ``synthetic:`` options.

    With ``dry_run`` nothing is generated: a dataset a real run would generate gets a
    :attr:`~DatasetStatus.note`, one that is missing a :attr:`~DatasetStatus.problem`.

    Raises:
        GridError: (not in dry-run) datasets that are neither prepared nor data YAMLs; the
            message lists each with the command that prepares it, and the known datasets.
            Even in a dry run: a name that is no dataset at all (a typo: the closest names
            are suggested), ``synthetic-X`` with an unknown scenario. When generating:
            ``synthetic:`` options the generator refuses.
    """
    from scsa_yolo.bench.grid import GridError
    from scsa_yolo.data.convert.recipes import RecipeOptionError, is_generated
    from scsa_yolo.data.layout.paths import DatasetNotPrepared, default_data_root, resolve_data
    from scsa_yolo.data.prepare import prepare_dataset

    statuses: dict[str, DatasetStatus] = {}
    errors: list[str] = []
    for ref in grid.dataset_refs:
        root = None if ref.is_yaml else default_data_root().resolve()
        try:
            generated = not ref.is_yaml and is_generated(ref.text)
        except RecipeOptionError as bad_name:  # synthetic-<typo>: refuse even a dry run
            raise GridError(f"datasets: {bad_name}") from None
        try:
            found = resolve_data(ref.text)
        except DatasetNotPrepared as error:
            if not generated:
                if not error.known:  # a typo or a missing file: refuse even a dry run
                    raise GridError(str(error)) from None
                errors.append(str(error))
                statuses[ref.text] = DatasetStatus(ref, problem=str(error))
                continue
            if dry_run:
                statuses[ref.text] = DatasetStatus(ref, note="will be generated")
                continue
        else:
            # A prepared synthetic set is used as it is unless the grid asks for options:
            # regenerating it with defaults would silently replace what the user prepared.
            if not generated or dry_run or not grid.synthetic:
                if generated and not dry_run:
                    echo(f"{ref} dataset: using the prepared one at {found}")
                statuses[ref.text] = DatasetStatus(ref, found, root)
                continue
        # Always called: it returns at once when the files on disk match the options.
        echo(f"{ref} dataset: checking / generating {grid.synthetic or '(default options)'}")
        try:
            data_yaml = prepare_dataset(ref.text, options=grid.synthetic, echo=echo).data_yaml
        except RecipeOptionError as error:
            raise GridError(f"synthetic: {error}") from None
        statuses[ref.text] = DatasetStatus(ref, Path(data_yaml), root)
    if errors and not dry_run:
        raise GridError("\n".join(errors))
    check_task_data(grid, statuses)
    return statuses


def check_task_data(grid: "Grid", statuses: dict[str, DatasetStatus]) -> None:
    """Before anything trains: every ready dataset has what the grid's task needs.

    A segmentation grid needs masks in the val split's ground truth (the one the
    evaluation will score) and polygon labels in train and val (what training reads,
    :func:`scsa_yolo.data.tasks.check_data_for_task`, the check ``scsa-yolo train`` makes
    too); a classification grid needs a dataset folder of ``train/<class>/`` and ``val/<class>/``.

    Raises:
        GridError: naming the dataset, the split and how to prepare it.
    """
    import tempfile

    from scsa_yolo.bench.grid import GridError
    from scsa_yolo.data.tasks import DatasetTaskError, check_data_for_task
    from scsa_yolo.eval.ground_truth import MissingMasks, check_masks, ground_truth_for

    tasks = set(grid.tasks)
    for name, status in statuses.items():
        if not status.ready or name not in grid.datasets:
            continue
        if "segment" in tasks:
            try:
                with tempfile.TemporaryDirectory(prefix="scsa-yolo-masks-") as tmp:  # what evaluation scores
                    check_masks(ground_truth_for(status.data_yaml, "val", tmp, masks=True), "val", status.data_yaml)
                check_data_for_task(status.data_yaml, "segment")  # what training reads
            except (MissingMasks, DatasetTaskError, ValueError, FileNotFoundError) as error:
                raise GridError(f"dataset {name} cannot train a segmentation model: {error}") from None
        if "classify" in tasks:
            from scsa_yolo.eval.classify import classification_folder

            try:  # a class-folder dataset may be named by a data YAML whose path holds the folders
                check_data_for_task(classification_folder(status.data_yaml), "classify")
            except (DatasetTaskError, FileNotFoundError) as error:
                raise GridError(f"dataset {name} cannot train a classification model: {error}") from None
