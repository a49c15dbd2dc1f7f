"""From record paths to report files: load, build the table, render, write atomically."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from scsa_yolo.atomic import write_text_atomic
from scsa_yolo.records import RecordProblem
from scsa_yolo.report.load import load_rows
from scsa_yolo.report.plot import plot_ap_vs_throughput
from scsa_yolo.report.render import EXTENSIONS, FORMATS, notes_text, render
from scsa_yolo.report.tables import DEFAULT_DETECT, ReportError, Table, build_table

__all__ = ["Report", "ReportError", "make_report", "write_report"]


@dataclass
class Report:
    table: Table
    rows: list[dict]
    problems: list[RecordProblem] = field(default_factory=list)

    def render(self, fmt: str) -> str:
        text = render(self.table, fmt)
        if fmt == "md" and self.problems:
            text += f"\n- {len(self.problems)} record(s) or run(s) skipped (each listed on stderr with its reason).\n"
        return text


def make_report(paths: Iterable[str | Path], style: str = "table4", notes: Sequence[str] = (),
                detect: float | None = DEFAULT_DETECT) -> Report:
    """Load every record/run under ``paths`` and build the ``style`` table; ``notes`` are
    added to the table's own; ``detect``: the difference (AP points) the seeds-needed
    note is for.

    Raises:
        ReportError: unknown style, or nothing valid to report.
    """
    paths = [Path(p) for p in paths]
    rows, problems = load_rows(paths)
    if not rows:
        raise ReportError(_nothing_found(paths, problems))
    table = build_table(rows, style, detect)
    table.notes.extend(notes)
    return Report(table, rows, problems)


def _nothing_found(paths: list[Path], problems: list[RecordProblem]) -> str:
    """What to tell a user whose paths hold no run: which paths, and what to run first."""
    named = ", ".join(str(p) for p in paths) or "(no path)"
    if problems:
        return (f"no valid run records or Ultralytics runs in {named} ({len(problems)} skipped, "
                f"the first: {problems[0]})")
    folder = next((p for p in paths if p.is_dir()), paths[0] if paths else Path("runs/bench"))
    return (
        f"nothing to report in {named}: no record.json (from `scsa-yolo bench` or `scsa-yolo profile --records`) "
        "and no Ultralytics run folder (args.yaml + results.csv) under it. "
        f"Run a benchmark into it first (`scsa-yolo bench --out {folder}`, the quick grid by default), "
        "or name a folder that holds run records."
    )




def write_report(
    paths: Iterable[str | Path],
    style: str = "table4",
    formats: Sequence[str] = ("md",),
    out: str | Path | None = None,
    plot: bool = False,
    notes: Sequence[str] = (),
    detect: float | None = DEFAULT_DETECT,
) -> tuple[Report, list[Path], list[str]]:
    """Build a report; write ``out.<ext>`` per format (and ``out.png`` when ``plot``).
    ``notes``: lines added to the table's notes (e.g. the bench's pretraining step);
    ``detect``: see :func:`make_report`.

    Returns the report, the files written, and messages about what was not written.
    """
    report = make_report(paths, style, notes, detect)
    written: list[Path] = []
    messages: list[str] = []
    if out is not None:
        out = Path(out)
        for fmt in formats:
            if fmt not in FORMATS:
                raise ReportError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}, all")
            written.append(write_text_atomic(out.with_name(f"{out.name}.{EXTENSIONS[fmt]}"), report.render(fmt)))
            if fmt == "csv" and report.table.notes:  # a CSV cannot hold them: a text file beside it
                written.append(write_text_atomic(out.with_name(f"{out.name}.notes.txt"), notes_text(report.table)))
        if plot:
            try:
                written.append(plot_ap_vs_throughput(report.rows, out.with_name(f"{out.name}.png")))
            except ReportError as error:
                messages.append(f"no plot: {error}")
    return report, written, messages
