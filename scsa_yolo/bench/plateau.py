"""Is a schedule long enough? The epoch where each run's validation AP stopped moving.

A grid that compares fine-tuned models should train until the plain model has stopped
improving, or a difference may only say which model learns faster. The check reads the
per-epoch validation AP that Ultralytics writes to each run's ``results.csv`` (column
``metrics/mAP50-95(B)``, a fraction; here in AP points, x100) and applies one rule:

    the plateau epoch of a run is the first epoch e whose trailing ``window``-epoch moving
    mean of AP lies within ``tolerance`` AP points of the moving mean at every later epoch.

The moving mean keeps epoch-to-epoch noise from hiding a plateau (or faking one); the
tolerance says how much movement still counts as flat. A run whose first such epoch is
its last one has not plateaued: its schedule was too short to tell. The epochs a grid
needs are the largest plateau epoch over its runs, rounded up to a multiple of
``multiple`` (:meth:`PlateauCheck.epochs`).

``cfg/bench/table4-evidence-plateau.yaml`` is the grid this was written for
(``scsa-yolo plateau OUT --grid table4-evidence-plateau``).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from scsa_yolo.bench.grid import PRETRAIN_FOLDER
from scsa_yolo.errors import ScsaYoloError

__all__ = ["AP_COLUMN", "PlateauCheck", "PlateauError", "RunCurve", "check_finished", "check_plateau", "find_runs",
           "moving_means", "plateau_epoch", "read_curve", "read_finished_curves"]

AP_COLUMN = "metrics/mAP50-95(B)"
RESULTS_NAME = "results.csv"
WINDOW, TOLERANCE, MULTIPLE = 5, 0.2, 5
# files that mark a folder as a run folder of the bench (or a plain Ultralytics run)
RUN_MARKERS = (RESULTS_NAME, "spec.json", "record.json")


class PlateauError(ScsaYoloError, ValueError):
    """A plateau check that cannot be made or cannot conclude; the message says which
    file or run and what to do."""


@dataclass(frozen=True)
class RunCurve:
    """One run's validation AP per epoch.

    Attributes:
        name: the run as the table shows it (``synthetic-tiny/yolov8n-none-ft-s0``).
        path: its ``results.csv``.
        ap: AP points (0-100) of epochs 1..N, in order.
    """

    name: str
    path: Path
    ap: tuple[float, ...]


def read_curve(path: str | Path, name: str | None = None, column: str = AP_COLUMN) -> RunCurve:
    """The AP curve of one ``results.csv``.

    Epochs are taken from its ``epoch`` column when it has one: a resumed run may repeat an
    epoch (the row written before the interruption and the one after), and the later row
    counts.

    Raises:
        PlateauError: the file is missing, empty, lacks ``column`` (the message lists the
            columns it has), has a row whose value is not a number (naming the line), or
            skips an epoch.
    """
    path = Path(path)
    name = name or f"{path.parent.parent.name}/{path.parent.name}"
    if not path.is_file():
        raise PlateauError(f"{path} is missing: the run {name} has no per-epoch results (is it unfinished, or "
                           "were only its records copied?)")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise PlateauError(f"{path} is empty")
    header = [cell.strip() for cell in rows[0]]  # older Ultralytics pads its column names
    if column not in header:
        raise PlateauError(f"{path} has no column {column!r} (columns: {', '.join(header)}); the runs must "
                           "validate every epoch (train_args val: true), or name another column with --column")
    at, epoch_at = header.index(column), header.index("epoch") if "epoch" in header else None
    by_epoch: dict[int, float] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            value = float(row[at])
            epoch = int(float(row[epoch_at])) if epoch_at is not None else len(by_epoch) + 1
        except (IndexError, ValueError):
            raise PlateauError(f"{path}, line {line}: {column} is not a number ({row!r})") from None
        if not math.isfinite(value):
            raise PlateauError(f"{path}, line {line}: {column} is {row[at].strip()}; a run whose validation failed "
                               "cannot be checked")
        by_epoch[epoch] = value * 100
    if not by_epoch:
        raise PlateauError(f"{path} has a header but no epochs")
    expected = list(range(1, max(by_epoch) + 1))
    missing = sorted(set(expected) - set(by_epoch))
    if missing:
        raise PlateauError(f"{path} skips epoch(s) {', '.join(map(str, missing[:10]))}: not the results of one run")
    return RunCurve(name, path, tuple(by_epoch[e] for e in expected))


def moving_means(values: tuple[float, ...] | list[float], window: int) -> list[float]:
    """The trailing moving means: element i is the mean of ``values[i - window + 1 .. i]``,
    for i from ``window - 1`` on (so the list is ``window - 1`` shorter than ``values``)."""
    return [sum(values[i - window + 1:i + 1]) / window for i in range(window - 1, len(values))]


def plateau_epoch(ap: tuple[float, ...] | list[float], window: int = WINDOW,
                  tolerance: float = TOLERANCE) -> int | None:
    """The first epoch (1-based) whose moving mean of ``ap`` lies within ``tolerance`` of
    the moving mean at every later epoch; None when that is only the last epoch (the
    curve was still moving) or the run is shorter than ``window``."""
    means = moving_means(ap, window)
    for i, mean in enumerate(means[:-1]):
        if all(abs(later - mean) <= tolerance + 1e-9 for later in means[i + 1:]):
            return i + window
    return None


@dataclass(frozen=True)
class RunPlateau:
    """The check of one run: its curve and its plateau epoch (None: none before its last)."""

    curve: RunCurve
    epoch: int | None

    @property
    def epochs_run(self) -> int:
        return len(self.curve.ap)

    def mean_at(self, epoch: int, window: int) -> float:
        """The moving mean of AP at ``epoch`` (1-based, at least ``window``)."""
        return sum(self.curve.ap[epoch - window:epoch]) / window


@dataclass(frozen=True)
class PlateauCheck:
    """The plateau epoch of every run, and the epochs a grid needs."""

    runs: tuple[RunPlateau, ...]
    column: str = AP_COLUMN
    window: int = WINDOW
    tolerance: float = TOLERANCE
    multiple: int = MULTIPLE

    @property
    def still_moving(self) -> list[RunPlateau]:
        return [run for run in self.runs if run.epoch is None]

    def epochs(self) -> int:
        """The largest plateau epoch over the runs, rounded up to a multiple of ``multiple``.

        Raises:
            PlateauError: a run that has not plateaued before its last epoch (each is named,
                with a longer schedule to try).
        """
        if self.still_moving:
            longest = max(run.epochs_run for run in self.runs)
            names = ", ".join(f"{run.curve.name} ({run.epochs_run} epochs)" for run in self.still_moving)
            raise PlateauError(
                f"no plateau before the last epoch in {len(self.still_moving)} of {len(self.runs)} run(s): {names}. "
                f"Their AP was still moving by more than {self.tolerance:g} AP points at the end (or the run is "
                f"shorter than the {self.window}-epoch window), so this schedule is too short to set the epochs: run "
                f"the check grid again with a longer schedule (e.g. --epochs {2 * longest}) in a new --out folder")
        largest = max(run.epoch for run in self.runs)
        return math.ceil(largest / self.multiple) * self.multiple

    def table(self) -> str:
        """One line per run (epochs run, plateau epoch, moving mean there and at the end),
        the rule, and, when every run plateaued, the largest plateau and ``epochs: N``."""
        width = max([len(run.curve.name) for run in self.runs] + [3])
        lines = [f"plateau of {self.column} (AP points): the first epoch whose {self.window}-epoch moving mean stays "
                 f"within {self.tolerance:g} AP points of the moving mean at every later epoch",
                 f"{'run':<{width}}  epochs  plateau  mean there  mean at end"]
        late = False
        for run in self.runs:
            end = run.mean_at(run.epochs_run, self.window) if run.epochs_run >= self.window else math.nan
            if run.epoch is None:
                lines.append(f"{run.curve.name:<{width}}  {run.epochs_run:>6}  {'none':>7}  {'-':>10}  {end:>11.2f}")
                continue
            # settled within the last window: few later epochs vouch for it
            mark = " (*)" if run.epoch > run.epochs_run - self.window else ""
            late = late or bool(mark)
            lines.append(f"{run.curve.name:<{width}}  {run.epochs_run:>6}  {run.epoch:>7}  "
                         f"{run.mean_at(run.epoch, self.window):>10.2f}  {end:>11.2f}{mark}")
        if late:
            lines.append(f"(*) settled only within the last {self.window} epochs: few later epochs confirm it; a "
                         "longer schedule would")
        if not self.still_moving:
            last = max(self.runs, key=lambda run: run.epoch)
            lines.append(f"largest plateau: epoch {last.epoch} ({last.curve.name}), rounded up to a multiple of "
                         f"{self.multiple}")
            lines.append(f"epochs: {self.epochs()}")
        return "\n".join(lines) + "\n"


def check_plateau(paths: list[str | Path], grid: str | Path | None = None, column: str = AP_COLUMN,
                  window: int = WINDOW, tolerance: float = TOLERANCE, multiple: int = MULTIPLE) -> PlateauCheck:
    """The plateau epoch of every run under ``paths``.

    ``paths``: ``results.csv`` files, run folders, or bench ``--out`` folders (searched for
    run folders: those holding a ``results.csv``, ``spec.json`` or ``record.json``; the
    pretraining step's ``pretrain/`` folder is left out). With ``grid`` (a grid name or
    file) a single out folder is expected to hold every run of that grid, and one that is
    missing is an error rather than left out.

    Raises:
        PlateauError: no runs found; runs whose ``results.csv`` is missing, lacks the
            column, or holds fewer epochs than the run was started for (unfinished), or
            that did not validate every epoch. Every such run is named in one message.
    """
    if window < 1 or multiple < 1 or tolerance < 0:
        raise PlateauError(f"window ({window}) and multiple ({multiple}) must be at least 1 and tolerance "
                           f"({tolerance}) at least 0")
    found = _expected_runs(paths, grid) if grid is not None else find_runs(paths)
    runs = [RunPlateau(curve, plateau_epoch(curve.ap, window, tolerance))
            for curve in read_finished_curves(found, column)]
    return PlateauCheck(tuple(runs), column, window, tolerance, multiple)


def read_finished_curves(found: list[tuple[str, Path | None, Path]], column: str = AP_COLUMN,
                         purpose: str = "checked") -> list[RunCurve]:
    """The curve of every run in ``found`` (``(name, run folder or None, results.csv)``, as
    :func:`find_runs` lists them), each read and checked to be finished.

    Raises:
        PlateauError: every run that cannot be read or is unfinished, named in one message
            ("N of M run(s) cannot be ``purpose``").
    """
    curves, problems = [], []
    for name, folder, csv_path in found:
        try:
            curve = read_curve(csv_path, name, column)
            check_finished(folder, curve)
        except PlateauError as error:
            problems.append(str(error))
            continue
        curves.append(curve)
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise PlateauError(f"{len(problems)} of {len(found)} run(s) cannot be {purpose}:\n  " + "\n  ".join(shown))
    return curves


def check_finished(folder: Path | None, curve: RunCurve) -> None:
    """A run folder's ``spec.json`` says how many epochs the run was started for and
    whether it validated every epoch: an unfinished run, or one that validated only at its
    end, would give a plateau of a curve it does not have."""
    spec = None
    if folder is not None and (folder / "spec.json").is_file():
        try:
            spec = json.loads((folder / "spec.json").read_text())
        except (OSError, ValueError):
            raise PlateauError(f"{folder / 'spec.json'} is not readable JSON") from None
    if not isinstance(spec, dict):
        return
    if (spec.get("train_args") or {}).get("val") is False:
        raise PlateauError(f"{curve.name} did not validate every epoch (train_args val: false in "
                           f"{folder / 'spec.json'}): its AP column holds no curve")
    epochs = spec.get("epochs")
    if isinstance(epochs, int) and len(curve.ap) < epochs:
        raise PlateauError(f"{curve.path} holds {len(curve.ap)} of the {epochs} epochs the run was started for: "
                           "the run is unfinished (finish it, e.g. by running its bench again)")


def find_runs(paths: list[str | Path]) -> list[tuple[str, Path | None, Path]]:
    """(name, run folder or None, results.csv) of every run under ``paths``."""
    found: list[tuple[str, Path | None, Path]] = []
    for given in map(Path, paths):
        if given.is_file():
            if given.name != RESULTS_NAME:
                raise PlateauError(f"{given} is not a {RESULTS_NAME}; give results.csv files, run folders or the "
                                   "--out folder of a bench")
            found.append((f"{given.parent.parent.name}/{given.parent.name}", given.parent, given))
            continue
        if not given.is_dir():
            raise PlateauError(f"{given} does not exist; give results.csv files, run folders or a bench's --out folder")
        folders = [given] if _is_run_folder(given) else sorted(
            {marker.parent for name in RUN_MARKERS for marker in given.rglob(name)
             if marker.parent.relative_to(given).parts[:1] != (PRETRAIN_FOLDER,)})  # from scratch: not checked
        if not folders:
            raise PlateauError(f"no run folders under {given} (folders holding {', '.join(RUN_MARKERS)}); give the "
                               "--out folder of the bench that trained the runs")
        for folder in folders:
            name = (folder.relative_to(given).as_posix() if folder != given
                    else f"{folder.parent.name}/{folder.name}")
            found.append((name, folder, folder / RESULTS_NAME))
    return found


def _is_run_folder(folder: Path) -> bool:
    return any((folder / name).is_file() for name in RUN_MARKERS)


def _expected_runs(paths: list[str | Path], grid_name: str | Path) -> list[tuple[str, Path | None, Path]]:
    """(run id, run folder, results.csv) of every run of the grid in the one out folder."""
    from dataclasses import replace

    from scsa_yolo.bench.grid import GridError, load_grid

    if len(paths) != 1 or not Path(paths[0]).is_dir():
        raise PlateauError(f"with --grid, give the one --out folder the grid's bench wrote (got {len(paths)} "
                           f"path(s): {', '.join(map(str, paths)) or 'none'})")
    out = Path(paths[0])
    try:
        grid = load_grid(grid_name)
        if grid.fine_tunes and grid.pretrained is None and grid.pretrain is None:
            grid = replace(grid, pretrained="(the bench's --pretrained)")  # only the run names matter here
        runs = grid.with_pretraining(out).runs()
    except GridError as error:
        raise PlateauError(f"--grid {grid_name}: {error}") from None
    return [(spec.run_id, spec.run_dir(out), spec.run_dir(out) / RESULTS_NAME) for spec in runs]
