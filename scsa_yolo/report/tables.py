"""Paper-style tables from run rows: aggregation over seeds, layout, best/second marks.

A :class:`Table` is format-free (numbers, marks, labels); :mod:`scsa_yolo.report.render`
turns it into Markdown, LaTeX, HTML or CSV. Styles:

* ``table4``: blocks per dataset, one row per method (``-``, ``+SE``, ...), a column group
  per model with AP, AP50, AP75 (the paper's Table 4).
* ``table3``: blocks per dataset, rows per model and method; Params, GFLOPs, AP, AP50,
  AP75, APs, APm, APl (Table 3).
* ``table2``: rows per model and method; Params, GFLOPs, throughput, its ratio to the plain
  model, latency, AP (Table 2); Top-1 and Top-5 for classification records.
* ``table6``: blocks per dataset, rows per model and method; box AP/AP50/AP75 and mask
  AP/AP50/AP75/APs/APm/APl of segmentation records (Table 6;
  :mod:`scsa_yolo.report.task_tables`).
* ``ablation``: the SCSA variants of Table 1 in the paper's order, grouped as the paper
  groups them; throughput, AP, AP50 per model. ``table1``, the paper's name for it, is
  accepted as well (:data:`STYLE_ALIASES`).
* ``gates``: the learned gates g of the runs that have them (``backbone-res``,
  ``neck-res``, ``block-res``), per attention layer: mean g, mean |g|, max |g| at the end
  of training, so a reader sees which attentions were used and which were left off.

Rows: the method label names the attention, its placement and the start of fine-tuned
runs (``-``, ``+SCSA (block)``, ``- (ft)``, ``+SCSA (block, ft)``); within a block, runs
from scratch come first, then fine-tuned ones, each with the plain model first and one
group of rows per placement. Runs of different starts are never averaged together. A row
that holds a run whose training was interrupted and resumed carries ``‡`` after its
method, and a note names those runs (a resumed run can score differently).

Marks: within each block (dataset, or dataset and model where rows of several models are
stacked), start and column, the best displayed value is ``best`` and the next distinct
value ``second``. Ranking uses the value as displayed, so values that print the same are
marked the same (ties). Columns without a direction (Params, GFLOPs) are not marked, nor
is a column with fewer than two values in the block, nor throughput or latency timed on a
CPU (noise on a small shared machine) or by a bench whose runs shared the GPU
(``profile.shared_device_slots`` above 1: the other runs' training was timed too).

Noise: :attr:`Table.diff` is a second table of every method's difference to the plain
model of the same block, model and start, per accuracy column, with a 95% confidence
interval over seeds (:mod:`scsa_yolo.report.stats`); an interval that holds 0 is marked
``(ns)``. Beside the intervals, MDD columns give each comparison's minimum detectable
difference (95% confidence, 80% power, from its observed spread and number of seeds), and a
note how many seeds each would need to detect a chosen difference (``detect``, default 1 AP
point). The notes say how many seeds the means are over, and when a report has only one
seed or a short schedule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.identity import PLACEMENTS
from scsa_yolo.report import STYLE_ALIASES, STYLE_NAMES, STYLES
from scsa_yolo.report.load import ACCURACY, COST, FINE_TUNED, METRICS, SCRATCH, TASK_METRICS, empty_row
from scsa_yolo.report.stats import POWER, Interval, difference
from scsa_yolo.report.task_tables import accuracy_subject, build_table6, difference_unit, table2_accuracy_columns

MODEL_SCALES = "nsmlx"
TIMING = ("throughput", "latency_ms")
#: Fewer epochs than Ultralytics' default schedule: a report says its ranks may not hold.
SHORT_SCHEDULE_EPOCHS = 100
CONFIDENCE = 0.95
#: The difference (in display units: AP points) the seeds-needed note is computed for.
DEFAULT_DETECT = 1.0
#: Key suffix of a minimum-detectable-difference column of the difference table.
MDD_SUFFIX = "_mdd"


@dataclass(frozen=True)
class Column:
    """A numeric column: row key, headers per format, display scale and direction."""

    key: str
    header: str  # plain text / Markdown
    latex: str
    html: str
    scale: float = 100.0
    decimals: int = 1
    better: str | None = "high"  # high | low | None (not ranked)
    show_std: bool = True  # False for figures that do not vary between seeds (params, FLOPs)


COLUMNS = {
    "AP": Column("AP", "AP", "AP", "AP"),
    "AP50": Column("AP50", "AP50", "AP$_{50}$", "AP<sub>50</sub>"),
    "AP75": Column("AP75", "AP75", "AP$_{75}$", "AP<sub>75</sub>"),
    "APs": Column("APs", "APs", "AP$_S$", "AP<sub>S</sub>"),
    "APm": Column("APm", "APm", "AP$_M$", "AP<sub>M</sub>"),
    "APl": Column("APl", "APl", "AP$_L$", "AP<sub>L</sub>"),
    "params": Column("params", "Params(M)", "Params(M)", "Params(M)", 1e-6, 3, None, False),
    "gflops": Column("gflops", "GFLOPs", "GFLOPs", "GFLOPs", 1.0, 3, None, False),
    "throughput": Column("throughput", "Throughput(img/s)", "Throughput(img/s)", "Throughput(img/s)", 1.0, 0, "high"),
    "rel_throughput": Column("rel_throughput", "Rel.", "Rel.", "Rel.", 1.0, 2, None, False),
    "latency_ms": Column("latency_ms", "Latency(ms)", "Latency(ms)", "Latency(ms)", 1.0, 2, "low"),
    # learned gates g (style gates): not ranked, more is not better; no "|" in a Markdown header
    "gate_mean": Column("gate_mean", "mean g", "mean $g$", "mean <i>g</i>", 1.0, 3, None),
    "gate_mean_abs": Column("gate_mean_abs", "mean abs(g)", "mean $|g|$", "mean |<i>g</i>|", 1.0, 3, None),
    "gate_max_abs": Column("gate_max_abs", "max abs(g)", "max $|g|$", "max |<i>g</i>|", 1.0, 3, None),
}
GATE_COLUMNS = ("gate_mean", "gate_mean_abs", "gate_max_abs")


@dataclass
class Cell:
    mean: float | None = None  # in display units
    std: float | None = None
    n: int = 0
    mark: str | None = None  # best | second | None
    decimals: int = 1

    @property
    def text(self) -> str:
        """The number as displayed, without markup; ``-`` when missing."""
        if self.mean is None:
            return "-"
        value = f"{self.mean:.{self.decimals}f}"
        if self.std is not None:
            value += f" ± {self.std:.{self.decimals}f}"
        return value

    @property
    def rank_value(self) -> float | None:
        return None if self.mean is None else round(self.mean, self.decimals)


#: Follows the method of a row that holds a resumed run (see :func:`_resumed_note`).
RESUMED_MARK = "‡"
NOT_SIGNIFICANT = "(ns)"
NO_INTERVAL = "(no CI)"


def _signed(value: float, decimals: int) -> str:
    """``+1.3``, ``-0.7``; a small negative stays ``-0.0`` so that an interval ending just
    below 0 does not print as one that reaches it."""
    return f"{value:+.{decimals}f}"


@dataclass
class DiffCell(Interval):
    """A difference to the plain model with its 95% interval, in display units.

    Text: ``+3.2 [+1.3, +5.1]``; :data:`NOT_SIGNIFICANT` follows an interval that holds 0,
    :data:`NO_INTERVAL` a difference without one. Never ranked.
    """

    diff: float | None = None
    low: float | None = None
    high: float | None = None
    decimals: int = 1
    mark: str | None = None  # always None: differences are not ranked

    @property
    def not_significant(self) -> bool:
        return self.contains_zero is True

    @property
    def text(self) -> str:
        if self.diff is None:
            return "-"
        d = self.decimals
        if not self.has_interval:
            return f"{_signed(self.diff, d)} {NO_INTERVAL}"
        text = f"{_signed(self.diff, d)} [{_signed(self.low, d)}, {_signed(self.high, d)}]"
        return f"{text} {NOT_SIGNIFICANT}" if self.not_significant else text

    @property
    def rank_value(self) -> None:
        return None


@dataclass
class Row:
    block: str  # first row-header column (dataset), shown once per block
    labels: list[str]  # remaining row-header cells (e.g. model, method)
    cells: list  # Cell (or DiffCell) per group and column: len(groups) * len(columns)
    ns: list[int]  # number of runs per column group
    rank_key: tuple = ()  # rows ranked together share block and rank_key
    cpu_timing: bool = False  # its throughput/latency was timed on a CPU (never ranked)
    shared_device_slots: int = 1  # most bench runs that shared the device of its timings (above 1: never ranked)

    @property
    def timing_not_comparable(self) -> bool:
        """Its throughput and latency are noise, not cost: timed on a CPU or beside other runs."""
        return self.cpu_timing or self.shared_device_slots > 1


@dataclass
class Table:
    style: str
    title: str
    row_headers: list[str]  # e.g. ["Dataset", "Method"]
    groups: list[str]  # column groups (models), [""] when none
    columns: list[Column]
    rows: list[Row]
    show_n: bool
    notes: list[str] = field(default_factory=list)
    data: pd.DataFrame | None = None  # the aggregated numbers (for CSV)
    diff: "Table | None" = None  # differences to the plain model, printed below this table


class ReportError(ScsaYoloError, ValueError):
    """Rows that cannot make the requested table (the message says what is missing)."""


def _attention_order() -> dict[str, int]:
    from scsa_yolo.nn.registry import attention_names  # imports torch: only when a table is built

    return {name: i for i, name in enumerate(attention_names())}


def _model_sort_key(model: str) -> tuple:
    scale = model[-1] if model and model[-1] in MODEL_SCALES else ""
    family = model[:-1] if scale else model
    return (family, MODEL_SCALES.index(scale) if scale else -1, model)


_START_STRIDE = 1_000_000


def start_rank(method_order: int) -> int:
    """0 for runs from scratch, 1 for fine-tuned runs, read from a :func:`method_order`.
    Rows of different starts are ranked (bold/underline) separately."""
    return int(method_order) // _START_STRIDE


def method_order(frame: pd.DataFrame) -> pd.Series:
    """Row order of the methods inside a block: runs from scratch before fine-tuned ones;
    within each, the plain model first, then one group per placement (in
    :data:`~scsa_yolo.identity.PLACEMENTS` order), the attentions in registry order."""
    attentions = _attention_order()
    placements = {name: i + 1 for i, name in enumerate(PLACEMENTS)}

    def order(row: pd.Series) -> int:
        start = 0 if row["start"] != FINE_TUNED else 1
        placement = 0 if row["attn"] == "none" else placements.get(row["placement"], len(placements) + 1)
        return start * _START_STRIDE + placement * 10_000 + attentions.get(row["attn"], len(attentions))

    return frame.apply(order, axis=1)


def prepare_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a DataFrame with display labels; a dataset run with several schedules
    (epochs, image size) is split into one block per schedule."""
    if not rows:
        raise ReportError("no runs to report (no valid record or Ultralytics run found)")
    frame = pd.DataFrame([{**empty_row(), **row} for row in rows])
    frame["dataset"] = frame["dataset"].fillna("-")
    frame["model"] = frame["model"].fillna("?")
    frame["start"] = frame["start"].fillna(SCRATCH)
    frame["method"] = frame["method"].fillna(frame["label"]).fillna(frame["attn"])
    frame["method_order"] = method_order(frame)
    schedules = frame.groupby("dataset")[["epochs", "imgsz"]].apply(lambda g: len(g.drop_duplicates()))

    def block(row: pd.Series) -> str:
        if schedules.get(row["dataset"], 1) > 1:
            return f"{row['dataset']} [{_int(row['epochs'])} ep, {_int(row['imgsz'])} px]"
        return row["dataset"]

    frame["block"] = frame.apply(block, axis=1)
    frame["rel_throughput"] = float("nan")
    return frame


def _int(value: Any) -> str:
    return "?" if value is None or (isinstance(value, float) and math.isnan(value)) else str(int(value))


def aggregate(frame: pd.DataFrame, keys: list[str], columns: tuple[str, ...] = (*METRICS, *COST)) -> pd.DataFrame:
    """Mean, sample std (ddof=1; none for a single run) and count of every numeric column
    (of ``columns``, and any task's accuracy columns where its runs have them) per group of
    ``keys``; seeds listed."""
    numeric = [c for c in columns if c in frame]
    numeric += [c for c in TASK_METRICS if c in frame and c not in numeric and frame[c].notna().any()]
    grouped = frame.groupby(keys, dropna=False, sort=False)
    data = grouped[numeric].mean()
    data.columns = [f"{c}_mean" for c in data.columns]
    std = grouped[numeric].std(ddof=1)
    for c in numeric:
        data[f"{c}_std"] = std[c]
    data["n"] = grouped.size()
    data["seeds"] = grouped["seed"].apply(lambda s: ",".join(str(int(v)) for v in sorted(s.dropna())))
    data["sources"] = grouped["source"].apply(lambda s: ",".join(sorted(set(s))))
    if "cpu_timing" in frame:
        data["cpu_timing"] = grouped["cpu_timing"].apply(lambda s: bool(s.fillna(False).astype(bool).any()))
    shared = _shared_slots(frame)
    if (shared > 1).any():  # a column only when it says something (older records have no count)
        by_group = frame.assign(shared_device_slots=shared).groupby(keys, dropna=False, sort=False)
        data["shared_device_slots"] = by_group["shared_device_slots"].max().astype(int).to_numpy()
    if "resumed" in frame and frame["resumed"].fillna(False).astype(bool).any():  # a column only when it says something
        data["resumed"] = grouped["resumed"].apply(lambda s: int(s.fillna(False).astype(bool).sum()))
    return data.reset_index()


def _cell(agg: pd.Series | None, column: Column) -> Cell:
    if agg is None:
        return Cell(decimals=column.decimals)
    mean = agg.get(f"{column.key}_mean")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return Cell(n=int(agg["n"]), decimals=column.decimals)
    std = agg.get(f"{column.key}_std")
    has_std = column.show_std and int(agg["n"]) > 1 and std is not None and not (isinstance(std, float) and math.isnan(std))
    return Cell(
        mean=float(mean) * column.scale,
        std=float(std) * column.scale if has_std else None,
        n=int(agg["n"]),
        decimals=column.decimals,
    )


def mark_best(rows: list[Row], columns: list[Column], groups: list[str]) -> None:
    """Set ``best``/``second`` marks per (block, rank_key) and column; ties marked alike."""
    by_key: dict[tuple, list[Row]] = {}
    for row in rows:
        by_key.setdefault((row.block, row.rank_key), []).append(row)
    width = len(columns)
    for members in by_key.values():
        for g in range(len(groups)):
            for c, column in enumerate(columns):
                if column.better is None:
                    continue
                if column.key in TIMING and any(row.timing_not_comparable for row in members):
                    continue  # timings on a CPU or a GPU shared with other runs are noise: no winner
                cells = [row.cells[g * width + c] for row in members]
                values = sorted({cell.rank_value for cell in cells if cell.rank_value is not None},
                                reverse=column.better == "high")
                if len(values) < 1 or sum(cell.rank_value is not None for cell in cells) < 2:
                    continue
                for cell in cells:
                    if cell.rank_value is None:
                        continue
                    if cell.rank_value == values[0]:
                        cell.mark = "best"
                    elif len(values) > 1 and cell.rank_value == values[1]:
                        cell.mark = "second"


def _grid_rows(
    agg: pd.DataFrame,
    row_keys: list[str],
    group_key: str | None,
    groups: list[str],
    columns: list[Column],
    labels_of,
    rank_key_of=lambda key: (),
    order_of=None,
    cell_of=None,
) -> list[Row]:
    """One Row per distinct ``row_keys`` value; cells per (group, column)."""
    lookup: dict[tuple, pd.Series] = {}
    for _, rec in agg.iterrows():
        key = tuple(rec[k] for k in row_keys)
        group = rec[group_key] if group_key else ""
        lookup[(key, group)] = rec
    keys = list(dict.fromkeys(tuple(rec[k] for k in row_keys) for _, rec in agg.iterrows()))
    if order_of is not None:
        keys.sort(key=order_of)
    cell_of = cell_of or _cell
    rows = []
    for key in keys:
        cells, ns, cpu, shared, resumed = [], [], False, 1, False
        for group in groups:
            rec = lookup.get((key, group))
            cells += [cell_of(rec, column) for column in columns]
            ns.append(int(rec["n"]) if rec is not None else 0)
            cpu = cpu or (rec is not None and _true(rec.get("cpu_timing")))
            shared = max(shared, _count(rec.get("shared_device_slots")) if rec is not None else 1)
            resumed = resumed or (rec is not None and _true(rec.get("resumed")))
        labels = labels_of(key)
        if resumed:  # the last label is the method's
            labels = [*labels[:-1], f"{labels[-1]} {RESUMED_MARK}"]
        rows.append(Row(block=str(key[0]), labels=labels, cells=cells, ns=ns, rank_key=rank_key_of(key),
                        cpu_timing=cpu, shared_device_slots=shared))
    return rows


# The paper's dataset order first (Table 3 COCO, Table 4 VOC, VisDrone, ExDark, FLIR), then the rest by name.
DATASET_ORDER = ("coco", "voc", "visdrone", "exdark", "flir", "synthetic")


def _block_order(frame: pd.DataFrame) -> dict[str, int]:
    known = {name: i for i, name in enumerate(DATASET_ORDER)}
    ordered = frame.assign(_known=frame["dataset"].map(lambda d: known.get(d, len(known))))
    ordered = ordered.sort_values(["_known", "dataset", "epochs", "imgsz"], na_position="first")
    return {b: i for i, b in enumerate(dict.fromkeys(ordered["block"]))}


def _shared_slots(frame: pd.DataFrame) -> pd.Series:
    """Per row, how many bench runs shared the device its timings were taken on; 1 where the
    record does not say (older records, no timings)."""
    if "shared_device_slots" not in frame:
        return pd.Series(1.0, index=frame.index)
    return pd.to_numeric(frame["shared_device_slots"], errors="coerce").fillna(1.0)


def _count(value: Any) -> int:
    """A slot count read from a frame: NaN and None are 1 (not known to be shared)."""
    return 1 if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def _true(value: Any) -> bool:
    """A flag read from a frame: NaN and None are False."""
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and bool(value)


# --------------------------------------------------------------------------- differences
def plain_differences(frame: pd.DataFrame, metrics: list[str], level: float = CONFIDENCE,
                      detect: float | None = DEFAULT_DETECT, scales: dict[str, float] | None = None) -> pd.DataFrame:
    """Per (block, model, method) of an attention and per metric: its mean minus the plain
    model's, with a ``level`` confidence interval over seeds (:func:`~scsa_yolo.report.stats.difference`).

    The plain model compared with is the one of the same block (dataset and schedule),
    model, start (scratch or fine-tuned) and source (records or plain Ultralytics runs).
    Columns per metric (in the records' units): ``M_diff``, ``M_diff_low``,
    ``M_diff_high`` (empty without an interval), ``M_diff_test`` (paired or welch),
    ``M_diff_ns`` (the interval holds 0), ``M_diff_mdd`` (the minimum detectable difference
    at ``level`` and :data:`~scsa_yolo.report.stats.POWER`) and ``M_diff_seeds_needed``
    (seeds that would detect a difference of ``detect`` display units; None without
    ``detect``).
    """
    entries = []
    for key, part in frame.groupby(["block", "model", "start", "source"], dropna=False, sort=False):
        plain = part[part["attn"] == "none"]
        if plain.empty:
            continue
        for method, runs in part[part["attn"] != "none"].groupby("method", sort=False):
            entry: dict[str, Any] = {"block": key[0], "model": key[1], "method": method}
            for metric in metrics:
                found = difference(_seed_values(runs, metric), _seed_values(plain, metric), level)
                if found is None:
                    continue
                scale = (scales or {}).get(metric) or COLUMNS[metric].scale  # a task's columns are the table's
                target = None if detect is None else detect / scale
                entry.update({
                    f"{metric}_diff": found.diff, f"{metric}_diff_low": found.low, f"{metric}_diff_high": found.high,
                    f"{metric}_diff_test": found.test, f"{metric}_diff_ns": found.contains_zero,
                    f"{metric}_diff_mdd": found.mdd,
                    f"{metric}_diff_seeds_needed": None if target is None else found.seeds_needed(target),
                })
            entries.append(entry)
    columns = ["block", "model", "method"] + [
        f"{m}_diff{suffix}" for m in metrics
        for suffix in ("", "_low", "_high", "_test", "_ns", "_mdd", "_seeds_needed")
    ]
    return pd.DataFrame(entries, columns=columns)


def _seed_values(runs: pd.DataFrame, metric: str) -> list[tuple[int | None, float]]:
    values = runs[["seed", metric]].dropna(subset=[metric])
    return [(None if pd.isna(seed) else int(seed), float(value)) for seed, value in zip(values["seed"], values[metric])]


def _diff_column(column: Column) -> Column:
    return Column(column.key, f"Δ{column.header}", rf"$\Delta${column.latex}", f"Δ{column.html}",
                  column.scale, column.decimals, None, False)


def _mdd_column(column: Column) -> Column:
    return Column(f"{column.key}{MDD_SUFFIX}", f"MDD {column.header}", f"MDD {column.latex}", f"MDD {column.html}",
                  column.scale, column.decimals, None, False)


def _mdd_cell(agg: pd.Series | None, column: Column) -> Cell:
    """A minimum detectable difference (unsigned, display units); '-' without an interval."""
    value = None if agg is None else agg.get(f"{column.key.removesuffix(MDD_SUFFIX)}_diff_mdd")
    if value is None or pd.isna(value):
        return Cell(decimals=column.decimals)
    return Cell(mean=float(value) * column.scale, decimals=column.decimals)


def _diff_cell(agg: pd.Series | None, column: Column) -> DiffCell | Cell:
    if column.key.endswith(MDD_SUFFIX):
        return _mdd_cell(agg, column)
    if agg is None:
        return DiffCell(decimals=column.decimals)
    diff = agg.get(f"{column.key}_diff")
    if diff is None or pd.isna(diff):
        return DiffCell(decimals=column.decimals)
    low, high = agg.get(f"{column.key}_diff_low"), agg.get(f"{column.key}_diff_high")
    has = low is not None and high is not None and not pd.isna(low) and not pd.isna(high)
    return DiffCell(float(diff) * column.scale, float(low) * column.scale if has else None,
                    float(high) * column.scale if has else None, column.decimals)


def _add_differences(table: Table, frame: pd.DataFrame, layout, detect: float | None = DEFAULT_DETECT) -> list[str]:
    """Attach the difference table (and its CSV columns) to ``table``; its notes.

    Its columns: per accuracy metric the difference with its interval (``ΔAP``), then per
    metric the minimum detectable difference (``MDD AP``), so that the Δ columns keep
    their places."""
    metrics = [c.key for c in table.columns if c.key in ACCURACY]
    if not metrics or table.data is None or frame[metrics].isna().all().all():
        return []
    plain_methods = set(frame.loc[frame["attn"] == "none", "method"])
    if not plain_methods:
        return ["No plain model (-) among these runs: no differences to it, no confidence intervals."]
    if not (frame["attn"] != "none").any():
        return []
    diffs = plain_differences(frame, metrics, detect=detect, scales={c.key: c.scale for c in table.columns})
    table.data = table.data.merge(diffs, on=["block", "model", "method"], how="left")
    columns = [_diff_column(c) for c in table.columns if c.key in ACCURACY]
    columns += [_mdd_column(c) for c in table.columns if c.key in ACCURACY]
    rows = layout(table.data[~table.data["method"].isin(plain_methods)], columns, _diff_cell)
    differences = [cell for row in rows for cell in row.cells if isinstance(cell, DiffCell)]
    cells = [cell for cell in differences if cell.diff is not None]
    if not any(cell.has_interval for cell in cells):
        return []  # single runs everywhere: the "1 seed" note says it, a table of bare differences would not
    unit = difference_unit(metrics)
    tests = set(diffs[[f"{m}_diff_test" for m in metrics]].stack().dropna())
    how = {
        frozenset({"paired"}): "paired t-interval of the per-seed differences (both ran the same seeds)",
        frozenset({"welch"}): "Welch's t-interval (the seeds differ)",
    }.get(frozenset(tests), "paired t-interval of the per-seed differences where both ran the same seeds, "
                            "else Welch's t-interval")
    table.diff = Table(table.style, f"Difference to the plain model (-), {CONFIDENCE:.0%} confidence interval over seeds",
                       table.row_headers, table.groups, columns, rows, show_n=False)
    notes = [f"Δ columns: the method's mean minus the plain model's (-) of the same dataset, model, schedule and "
             f"start, in {unit}, with its {CONFIDENCE:.0%} confidence interval over seeds: {how}."]
    if any(cell.not_significant for cell in cells):
        notes.append(f"{NOT_SIGNIFICANT}: the interval contains 0; that difference cannot be told from seed-to-seed noise.")
    if any(not cell.has_interval for cell in cells):
        notes.append(f"{NO_INTERVAL}: one run on a side, so no interval; that difference cannot be told from noise.")
    if any(cell.diff is None for cell in differences):
        notes.append("A Δ cell of '-': no plain run of the same dataset, model, schedule and start to compare with.")
    return notes + _precision_notes(table, frame, metrics, tests, unit, detect)


def _precision_notes(table: Table, frame: pd.DataFrame, metrics: list[str], tests: set, unit: str,
                     detect: float | None) -> list[str]:
    """The MDD columns' method, and the seeds each comparison would need to detect ``detect``."""
    level, power = f"{CONFIDENCE:.0%}", f"{POWER:.0%}"
    upper = 1 - (1 - CONFIDENCE) / 2
    formulas = []
    if "paired" in tests:
        formulas.append(f"paired: (t({upper:g}, n-1) + t({POWER:g}, n-1)) * s_d / sqrt(n), s_d the sample std of the "
                        "n per-seed differences")
    if "welch" in tests:
        formulas.append(f"Welch: (t({upper:g}, v) + t({POWER:g}, v)) * sqrt(s1^2/n1 + s2^2/n2), v Welch's degrees "
                        "of freedom")
    notes = [f"MDD columns: the minimum detectable difference, the smallest true difference to the plain model that "
             f"the comparison would have detected at {level} confidence with {power} power, from its observed spread "
             f"and number of seeds, in {unit} ({'; '.join(formulas)}; the usual t approximation of power). An (ns) "
             "difference rules out only true differences larger than its MDD; '-': no interval, no MDD."]
    metric = "AP" if "AP" in metrics else metrics[0]
    needed = table.data.dropna(subset=[f"{metric}_diff_seeds_needed"]) if detect is not None else table.data.iloc[0:0]
    if needed.empty:
        return notes
    order = _block_order(frame)
    several_models = frame["model"].nunique() > 1
    needed = needed.assign(_block=needed["block"].map(order)).sort_values(["_block", "model", "method_order"])
    parts = []
    for (block, model), group in needed.groupby(["block", "model"], sort=False):
        where = f"{block} {model}" if several_models else str(block)
        counts = ", ".join(f"{method} {int(n)}" for method, n in zip(group["method"], group[f"{metric}_diff_seeds_needed"]))
        parts.append(f"{where}: {counts}")
    sides = "seeds run by both models" if tests == {"paired"} else "paired: seeds run by both models, Welch: runs per side"
    points = f"{detect:g} point{'' if detect == 1 else 's'}"
    notes.append(
        f"Seeds for a {detect:g}-point {metric} difference: how many seeds each comparison would need to detect a true "
        f"{metric} difference of {points} at {level} confidence and {power} power if its observed spread held (the "
        f"smallest n with MDD(n) <= {detect:g}, iterating since t depends on n; {sides}; `scsa-yolo report --detect` "
        "sets the difference, and the CSV gives it for every metric in M_diff_seeds_needed): " + "; ".join(parts) + ".")
    return notes


# --------------------------------------------------------------------------- notes
def _seed_counts(table: Table) -> list[int]:
    """Runs behind every accuracy cell of the table."""
    keys = [c for c, column in enumerate(table.columns) if column.key in ACCURACY]
    width = len(table.columns)
    return [row.ns[g] for row in table.rows for g in range(len(table.groups))
            if any(row.cells[g * width + c].mean is not None for c in keys)]


def _notes(frame: pd.DataFrame, table: Table) -> list[str]:
    notes = []
    columns, table_rows = table.columns, table.rows
    keys = {c.key for c in columns}
    counts = _seed_counts(table)
    if keys & set(ACCURACY) and counts:
        if min(counts) == max(counts):
            over = "single runs" if counts[0] == 1 else f"means over {counts[0]} seeds"
        else:
            over = f"means over {min(counts)} to {max(counts)} seeds (n column)"
        notes.append(
            f"{accuracy_subject(keys)} in % on the val split; best per block and column in bold, second "
            f"underlined (ties alike): the paper's convention, on {over}, not a test of significance."
        )
        if max(counts) == 1:
            notes.append(
                "1 seed: differences cannot be told from noise (one run per method gives no confidence interval, and "
                "seed-to-seed spread alone can reorder methods); run several seeds, e.g. `seeds: [0, 1, 2]` in the grid."
            )
        epochs = sorted({int(e) for e in frame.loc[frame[[k for k in ACCURACY if k in keys]].notna().any(axis=1), "epochs"].dropna()})
        short = [e for e in epochs if e < SHORT_SCHEDULE_EPOCHS]
        if short:
            notes.append(
                f"Short schedule: {', '.join(map(str, short))} epoch{'' if short == [1] else 's'} "
                f"(Ultralytics' default is {SHORT_SCHEDULE_EPOCHS}); "
                "ranks after a short schedule need not hold for a full one."
            )
    if any(n > 1 for row in table_rows for n in row.ns):
        notes.append("Cells with several runs show mean ± sample std over seeds; n = number of runs.")
    placements = [p for p in PLACEMENTS if (frame["placement"] == p).any()]
    if placements:
        notes.append("Placement (in brackets after the attention): " + "; ".join(
            f"{name}: {PLACEMENTS[name].description}" for name in placements) + ".")
    if (frame["start"] == FINE_TUNED).any():
        notes.append(
            f"{FINE_TUNED}: fine-tuned from a pretrained checkpoint; fine-tuned and from-scratch runs are separate rows, "
            "never averaged together, ranked (bold/underline) separately, and each is compared with the plain model of "
            "its own start."
        )
    resumed_note = _resumed_note(frame)
    if resumed_note:
        notes.append(resumed_note)
    if (frame["source"] == "ultralytics").any():
        notes.append("† plain Ultralytics run (args.yaml + results.csv): Ultralytics' own mAP of its best epoch, not pycocotools; AP75 and size bands unavailable.")
    if keys & set(TIMING):
        profiled = frame.dropna(subset=["throughput"]) if "throughput" in frame else frame.iloc[0:0]
        for (device, batch, half, reduced), group in profiled.groupby(
            ["device_name", "profile_batch", "profile_half", "profile_reduced"], dropna=False
        ):
            on_cpu = "cpu_timing" in group and bool(group["cpu_timing"].fillna(False).astype(bool).any())
            if not reduced:
                protocol = "paper protocol"
            elif on_cpu:
                protocol = "reduced CPU protocol, not comparable with GPU figures"
            else:  # a GPU with other settings than the paper's (fewer timed passes, say): see the records' notes
                protocol = "reduced GPU protocol: settings differ from the paper's, as each record's note says"
            notes.append(
                f"Throughput: images/s at batch {_int(batch)}, {'fp16 autocast' if half else 'fp32'}, on {device} ({protocol}); latency at batch 1."
            )
        if any(row.cpu_timing for row in table_rows):
            notes.append(
                "CPU, not comparable: throughput and latency timed on a CPU are noise on a machine of a few shared cores "
                "(repeated runs of one model differ by up to 2x), so no best or second is marked in those columns; "
                "compare speed on a GPU (`scsa-yolo profile --device 0`)."
            )
        shared_note = _shared_gpu_note(frame, table_rows, rel="rel_throughput" in keys)
        if shared_note:
            notes.append(shared_note)
    if keys & {"gflops"}:
        sizes = sorted({int(v) for v in frame["imgsz"].dropna()})
        notes.append(
            f"GFLOPs: one image at {', '.join(map(str, sizes)) or '?'} px, counted by torch FlopCounterMode (1 multiply-add = 2 FLOPs)."
        )
    return notes


def _shared_gpu_note(frame: pd.DataFrame, rows: list[Row], rel: bool) -> str | None:
    """The note on timings a bench took while several of its runs trained on one GPU; None
    when no row of the table has such timings. ``rel``: the table shows Rel. (as noisy)."""
    if not any(row.shared_device_slots > 1 for row in rows):
        return None
    counts = sorted({int(n) for n in _shared_slots(frame) if n > 1})
    runs = str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    return (
        f"Shared GPU, not comparable: the bench timed throughput and latency while {runs} of its runs trained on the "
        f"same GPU, so they measure the other runs' load as much as the model{' (Rel. too)' if rel else ''}; no best "
        "or second is marked in those columns. Time cost with `scsa-yolo profile`, which times the models alone, in "
        "interleaved rounds."
    )


def resolve_style(name: str) -> str:
    """A style or the paper's name for one (``table1``) -> the style (``ablation``).

    Raises:
        ReportError: a name that is neither.
    """
    style = STYLE_ALIASES.get(name, name)
    if style not in STYLES:
        raise ReportError(f"unknown report style '{name}'; choose one of: {', '.join(STYLE_NAMES)}")
    return style


#: Resumed runs named in the note; more are counted.
RESUMED_LISTED = 8


def _resumed_note(frame: pd.DataFrame) -> str | None:
    """The note on rows marked :data:`RESUMED_MARK`, naming their resumed runs; None without any."""
    if "resumed" not in frame:
        return None
    runs = sorted(str(r) for r in frame.loc[frame["resumed"].fillna(False).astype(bool), "run_id"].fillna("?"))
    if not runs:
        return None
    listed = ", ".join(runs[:RESUMED_LISTED])
    if len(runs) > RESUMED_LISTED:
        listed += f" and {len(runs) - RESUMED_LISTED} more"
    count = f"{len(runs)} such run{'s' if len(runs) > 1 else ''}"
    return (
        f"{RESUMED_MARK}: the row holds a run whose training was interrupted and resumed from its last checkpoint "
        f"({count}: {listed}). Such a run continues from the checkpoint's EMA weights in fp16 with a new random state "
        "for data order and augmentation, so it can score differently from an uninterrupted one; for an exact "
        "comparison delete its folder and run the bench again."
    )


def build_table(rows: list[dict], style: str = "table4", detect: float | None = DEFAULT_DETECT) -> Table:
    """The table of ``style`` for these run rows, with the differences to the plain model
    (:attr:`Table.diff`) where there are seeds to compare.

    Args:
        detect: the difference (AP points) the seeds-needed note is for; None: no note.

    Raises:
        ReportError: unknown style, no rows, or no row with what the style needs.
    """
    style = resolve_style(style)
    if detect is not None and not detect > 0:
        raise ReportError(f"the difference to detect must be > 0 AP points, got {detect}")
    frame = prepare_frame(rows)
    if style == "gates":
        frame = gate_frame(frame)
    block_order = _block_order(frame)
    models = sorted(frame["model"].unique(), key=_model_sort_key)
    model_rank = {m: i for i, m in enumerate(models)}
    if style in ("table4", "table3") and frame[list(METRICS)].isna().all().all():
        raise ReportError(f"style {style} needs accuracy metrics, but no row has any (profile-only records? try --style table2)")
    builder = {"table4": _table4, "table3": _table3, "table2": _table2, "ablation": _ablation,
               "table6": build_table6, "gates": _gates}[style]
    table, layout = builder(frame, models, model_rank, block_order)
    diff_notes = _add_differences(table, frame, layout, detect)
    table.notes = _notes(frame, table) + diff_notes + table.notes
    return table


# Every aggregation keeps the run's start and placement as columns (for the CSV); the
# method label already holds both, so they never split a row.
_IDENTITY = ["start", "placement"]


def _table4(frame, models, model_rank, block_order):
    columns = [COLUMNS[k] for k in ("AP", "AP50", "AP75")]
    agg = aggregate(frame, ["block", "method", "method_order", "model", *_IDENTITY])

    def layout(agg, columns, cell_of=None):
        return _grid_rows(
            agg, ["block", "method", "method_order"], "model", models, columns,
            labels_of=lambda key: [key[1]],
            rank_key_of=lambda key: (start_rank(key[2]),),
            order_of=lambda key: (block_order[key[0]], key[2], key[1]),
            cell_of=cell_of,
        )

    rows = layout(agg, columns)
    mark_best(rows, columns, models)
    table = Table("table4", "Detection accuracy per dataset (Table 4 style)", ["Dataset", "Method"], models, columns,
                  rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg)
    return table, layout


def _model_layout(model_rank, block_order):
    """One row per (dataset, model, method), ranked per dataset, model and start."""
    def layout(agg, columns, cell_of=None):
        return _grid_rows(
            agg, ["block", "model", "method", "method_order"], None, [""], columns,
            labels_of=lambda key: [key[1], key[2]],
            rank_key_of=lambda key: (key[1], start_rank(key[3])),
            order_of=lambda key: (block_order[key[0]], model_rank[key[1]], key[3], key[2]),
            cell_of=cell_of,
        )

    return layout


def _table3(frame, models, model_rank, block_order):
    columns = [COLUMNS[k] for k in ("params", "gflops", "AP", "AP50", "AP75", "APs", "APm", "APl")]
    agg = aggregate(frame, ["block", "model", "method", "method_order", *_IDENTITY])
    layout = _model_layout(model_rank, block_order)
    rows = layout(agg, columns)
    mark_best(rows, columns, [""])
    return Table("table3", "Cost and accuracy per model (Table 3 style)", ["Dataset", "Model", "Method"], [""], columns,
                 rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg), layout


def _table2(frame, models, model_rank, block_order):
    if frame["throughput"].isna().all() and frame["params"].isna().all():
        raise ReportError("style table2 needs profile figures (params, GFLOPs, throughput), but no row has any")
    columns = [COLUMNS[k] for k in ("params", "gflops", "throughput", "rel_throughput", "latency_ms")]
    columns += table2_accuracy_columns(frame)  # AP, and Top-1/Top-5 for classification records
    agg = aggregate(frame, ["block", "model", "method", "method_order", "attn", *_IDENTITY])
    # Throughput relative to the plain model of the same block, model and start (the paper's 83%).
    plain = agg[agg["attn"] == "none"].set_index(["block", "model", "start"])["throughput_mean"]
    plain = plain[~plain.index.duplicated()]
    agg["rel_throughput_mean"] = [
        (t / plain.get((b, m, s))) if plain.get((b, m, s)) else float("nan")
        for b, m, s, t in zip(agg["block"], agg["model"], agg["start"], agg["throughput_mean"])
    ]
    agg["rel_throughput_std"] = float("nan")
    layout = _model_layout(model_rank, block_order)
    rows = layout(agg, columns)
    mark_best(rows, columns, [""])
    table = Table("table2", "Cost: params, GFLOPs, throughput (Table 2 style)", ["Dataset", "Model", "Method"], [""],
                  columns, rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg)
    if agg["rel_throughput_mean"].notna().any():
        table.notes.append("Rel.: throughput relative to the plain model (-) of the same dataset, model and start.")
    return table, layout


def _ablation(frame, models, model_rank, block_order):
    from scsa_yolo.nn.registry import TABLE1_ROWS
    groups = {name: (i, group) for i, (group, name) in enumerate(TABLE1_ROWS)}
    frame = frame.copy()

    def ablation_group(attn: str) -> tuple[int, str]:
        if attn == "none":
            return (-1, "No attention")
        return groups.get(attn, (len(groups), "Other"))

    frame["ablation_order"] = frame["attn"].map(lambda a: ablation_group(a)[0])
    frame["ablation_group"] = frame["attn"].map(lambda a: ablation_group(a)[1])
    columns = [COLUMNS[k] for k in ("throughput", "AP", "AP50")]
    agg = aggregate(frame, ["block", "ablation_group", "method", "ablation_order", "method_order", "model", *_IDENTITY])

    def layout(agg, columns, cell_of=None):
        return _grid_rows(
            agg, ["block", "ablation_group", "method", "ablation_order", "method_order"], "model", models, columns,
            labels_of=lambda key: [key[1], key[2]],
            rank_key_of=lambda key: (start_rank(key[4]),),
            order_of=lambda key: (block_order[key[0]], start_rank(key[4]), key[3], key[4], key[2]),
            cell_of=cell_of,
        )

    rows = layout(agg, columns)
    mark_best(rows, columns, models)
    return Table("ablation", "SCSA ablations (Table 1 style)", ["Dataset", "Ablation", "Variant"], models, columns,
                 rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg), layout


# --------------------------------------------------------------------------- learned gates
def _layer_name(key: str) -> str:
    """``4/m.1.attn`` -> ``row 4 / m.1.attn`` (the explain command's layer names)."""
    row, _, path = str(key).partition("/")
    return f"row {row} / {path}" if path else f"row {row}"


def gate_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, attention layer with a learned gate): the run's columns plus
    ``layer``, ``layer_order`` and :data:`GATE_COLUMNS`; ``gate_runs_skipped`` in ``attrs``
    counts the runs without gates.

    Raises:
        ReportError: no run carries learned gates.
    """
    rows = []
    for _, run in frame.iterrows():
        for order, layer in enumerate(run["gates"] if isinstance(run["gates"], list) else []):
            rows.append({**run.to_dict(), "layer": _layer_name(layer["key"]), "layer_order": order,
                         "gate_mean": layer["mean"], "gate_mean_abs": layer["mean_abs"], "gate_max_abs": layer["max_abs"]})
    if not rows:
        raise ReportError(
            "style gates needs learned gates, but no record carries any: runs of the placements with a gate "
            "(backbone-res, neck-res, block-res) record theirs at the end of training (`scsa-yolo bench`); "
            "plain, series and block runs have none")
    gates = pd.DataFrame(rows)
    gates.attrs["gate_runs_skipped"] = int(sum(not isinstance(g, list) or not g for g in frame["gates"]))
    return gates


def _gates(frame, models, model_rank, block_order):
    columns = [COLUMNS[k] for k in GATE_COLUMNS]
    agg = aggregate(frame, ["block", "method", "method_order", "layer_order", "layer", "model", *_IDENTITY],
                    GATE_COLUMNS)

    def layout(agg, columns, cell_of=None):
        return _grid_rows(
            agg, ["block", "method", "method_order", "layer_order", "layer"], "model", models, columns,
            labels_of=lambda key: [key[1], key[4]],
            order_of=lambda key: (block_order[key[0]], key[2], key[1], key[3]),
            cell_of=cell_of,
        )

    rows = layout(agg, columns)
    table = Table("gates", "Learned gates g at the end of training", ["Dataset", "Method", "Layer"], models, columns,
                  rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg)
    table.notes.append(
        "Learned gates: the per-channel g of y = x + g*attn(x) (backbone-res, neck-res) or of h + g*(attn(h) - h) "
        "inside each bottleneck (block-res), 0 at the start (the plain model), read from each run's weights/last.pt "
        "(Ultralytics' EMA weights) at the end of training; per attention layer the mean of g, of |g| and the "
        "largest |g| over its channels. A mean |g| near 0 means training left that attention switched off; in "
        "block-res, g = 1 would replace the map by the attention's output.")
    skipped = frame.attrs.get("gate_runs_skipped", 0)
    if skipped:
        table.notes.append(f"{skipped} run(s) without learned gates (plain model, series or block placement, or a "
                           "record written before gates were recorded) are not shown.")
    return table, layout
