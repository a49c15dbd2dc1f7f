"""Is a schedule long enough? The same plain runs trained at several schedule lengths.

:mod:`scsa_yolo.bench.plateau` looks for the epoch where one run's val AP stops moving.
Under Ultralytics' recipe that epoch is always the last one: the learning rate falls
linearly to ``lrf`` over the whole run and mosaic is switched off for its last
``close_mosaic`` epochs, so val AP climbs to the end of any schedule, and a longer one only
moves the climb (``results/evidence/README.md``). Whether the plain model has stopped
improving is then a question across schedules:

    train the plain runs (same datasets, seeds and start) at two or more schedule lengths,
    each a bench ``--out`` folder of its own; a length E is long enough when, on every
    dataset, the longest schedule's final AP (the last epoch's val AP, mean over seeds)
    exceeds E's by at most ``tolerance`` AP points.

The answer, ``epochs: E``, is the shortest such length. When only the longest qualifies,
no length was shown to be long enough, and the check fails asking for a longer one.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from scsa_yolo.bench.plateau import AP_COLUMN, PlateauError, find_runs, read_finished_curves

__all__ = ["GAIN_TOLERANCE", "ScheduleCheck", "compare_schedules"]

#: AP points a longer schedule may still add: half the 1-AP difference the evidence grid is
#: built to detect (issue 30), so a shorter schedule cannot hide an effect of that size
GAIN_TOLERANCE = 0.5


@dataclass(frozen=True)
class ScheduleCheck:
    """Final APs per dataset and schedule length, and the shortest length long enough.

    Attributes:
        finals: ``{dataset: {epochs: [final AP of each seed's run]}}``, AP points.
        tolerance: AP points the longest schedule may add over a length that passes.
    """

    finals: dict[str, dict[int, list[float]]]
    tolerance: float = GAIN_TOLERANCE

    @property
    def lengths(self) -> list[int]:
        return sorted({epochs for by_length in self.finals.values() for epochs in by_length})

    def gain(self, dataset: str, epochs: int) -> float:
        """Mean final AP of the longest schedule minus that of ``epochs``, on ``dataset``."""
        by_length = self.finals[dataset]
        return statistics.fmean(by_length[max(by_length)]) - statistics.fmean(by_length[epochs])

    def epochs(self) -> int:
        """The shortest schedule length whose gain to the longest is within the tolerance on
        every dataset.

        Raises:
            PlateauError: only the longest length passes (no shorter one was long enough,
                so nothing shows that the longest is): the message gives the gains.
        """
        longest = self.lengths[-1]
        for epochs in self.lengths[:-1]:
            if all(self.gain(dataset, epochs) <= self.tolerance + 1e-9 for dataset in self.finals):
                return epochs
        gains = "; ".join(f"{dataset} +{self.gain(dataset, length):.2f} after {length}"
                          for dataset in self.finals for length in self.lengths[:-1])
        raise PlateauError(
            f"the {longest}-epoch schedule still adds more than {self.tolerance:g} AP points over every shorter one on "
            f"some dataset ({gains}): no schedule here is shown to be long enough. Train the same plain runs at a "
            f"longer schedule (e.g. --epochs {2 * longest}) in a new --out folder and compare again")

    def table(self) -> str:
        """Per dataset and length: runs, mean final AP +- sample std, gain of the longest
        schedule over it; then the rule and ``epochs: N`` when a length passes."""
        lines = [f"final val AP ({AP_COLUMN}, AP points, the last epoch of each run) by schedule length; a length is "
                 f"long enough when the longest schedule adds at most {self.tolerance:g} AP points on every dataset",
                 f"{'dataset':<20}  {'epochs':>6}  runs  {'mean':>6}  {'std':>5}  gain of the longest"]
        for dataset, by_length in self.finals.items():
            for epochs in sorted(by_length):
                values = by_length[epochs]
                std = statistics.stdev(values) if len(values) > 1 else math.nan
                gain = "-" if epochs == max(by_length) else f"{self.gain(dataset, epochs):+.2f}"
                lines.append(f"{dataset:<20}  {epochs:>6}  {len(values):>4}  {statistics.fmean(values):>6.2f}  "
                             f"{std:>5.2f}  {gain}")
        try:
            lines.append(f"epochs: {self.epochs()}")
        except PlateauError:
            pass
        return "\n".join(lines) + "\n"


def compare_schedules(paths: list[str | Path], tolerance: float = GAIN_TOLERANCE,
                      column: str = AP_COLUMN) -> ScheduleCheck:
    """The final AP of every run under ``paths`` (bench ``--out`` folders, run folders or
    ``results.csv`` files, found as :func:`scsa_yolo.bench.plateau.check_plateau` finds
    them), grouped by dataset (the run's folder above it) and schedule length (its epochs).

    Raises:
        PlateauError: fewer than two schedule lengths; a dataset missing from a length, or
            a run (dataset, name) trained at one length but not at another, so the lengths
            would compare different runs; unfinished or unreadable runs (each named).
    """
    if tolerance < 0:
        raise PlateauError(f"tolerance ({tolerance}) must be at least 0")
    curves = read_finished_curves(find_runs(paths), column, purpose="compared")
    by_run: dict[str, dict[int, float]] = {}
    for curve in curves:
        length = len(curve.ap)
        if length in by_run.setdefault(curve.name, {}):
            raise PlateauError(f"{curve.name} appears twice at {length} epochs ({curve.path}): give each schedule's "
                               "--out folder once")
        by_run[curve.name][length] = curve.ap[-1]
    lengths = sorted({length for finals in by_run.values() for length in finals})
    if len(lengths) < 2:
        raise PlateauError(f"all {len(curves)} run(s) have {lengths[0] if lengths else 0} epochs: give the --out "
                           "folders of the same plain runs trained at two or more schedule lengths")
    unmatched = [f"{name} ({', '.join(map(str, sorted(finals)))} epochs only)"
                 for name, finals in sorted(by_run.items()) if sorted(finals) != lengths]
    if unmatched:
        raise PlateauError(f"every run must be trained at every length ({', '.join(map(str, lengths))} epochs) so "
                           f"that the lengths compare the same runs; not so: {'; '.join(unmatched[:10])}")
    finals: dict[str, dict[int, list[float]]] = {}
    for name, by_length in sorted(by_run.items()):
        dataset = name.split("/")[0]
        for length, ap in by_length.items():
            finals.setdefault(dataset, {}).setdefault(length, []).append(ap)
    return ScheduleCheck(finals, tolerance)
