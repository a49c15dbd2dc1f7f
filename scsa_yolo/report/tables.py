"""Paper-style tables from run rows: aggregation over seeds, layout, best/second marks.

A :class:`Table` is format-free (numbers, marks, labels); :mod:`scsa_yolo.report.render`
turns it into Markdown, LaTeX, HTML or CSV. Styles:

* ``table4``: blocks per dataset, one row per method (``-``, ``+SE``, ...), a column group
  per model with AP, AP50, AP75 (the paper's Table 4).
* ``table3``: blocks per dataset, rows per model and method; Params, GFLOPs, AP, AP50,
  AP75, APs, APm, APl (Table 3).
* ``table2``: rows per model and method; Params, GFLOPs, throughput, its ratio to the plain
  model, latency, AP (Table 2).
* ``ablation``: the SCSA variants of Table 1 in the paper's order, grouped as the paper
  groups them; throughput, AP, AP50 per model.

Marks: within each block (dataset, or dataset and model where rows of several models are
stacked) and column, the best displayed value is ``best`` and the next distinct value
``second``. Ranking uses the value as displayed, so values that print the same are marked
the same (ties). Columns without a direction (Params, GFLOPs) are not marked, nor is a
column with fewer than two values in the block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from scsa_yolo.report.load import COST, METRICS

STYLES = ("table4", "table3", "table2", "ablation")
MODEL_SCALES = "nsmlx"


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
}


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


@dataclass
class Row:
    block: str  # first row-header column (dataset), shown once per block
    labels: list[str]  # remaining row-header cells (e.g. model, method)
    cells: list[Cell]  # len(groups) * len(columns)
    ns: list[int]  # number of runs per column group
    rank_key: tuple = ()  # rows ranked together share block and rank_key


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


class ReportError(ValueError):
    """Rows that cannot make the requested table (the message says what is missing)."""


def _method_order() -> dict[str, int]:
    try:
        from scsa_yolo.nn.registry import attention_names

        return {name: i for i, name in enumerate(attention_names())}
    except ImportError:  # pragma: no cover
        return {"none": 0}


def _model_sort_key(model: str) -> tuple:
    scale = model[-1] if model and model[-1] in MODEL_SCALES else ""
    family = model[:-1] if scale else model
    return (family, MODEL_SCALES.index(scale) if scale else -1, model)


def _display_label(row: pd.Series) -> str:
    label = row["label"] or row["attn"]
    if row.get("placement") == "neck" and row["attn"] != "none":
        label += " (neck)"
    if row.get("source") == "ultralytics":
        label += "†"
    return label


def prepare_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a DataFrame with display labels; a dataset run with several schedules
    (epochs, image size) is split into one block per schedule."""
    if not rows:
        raise ReportError("no runs to report (no valid record or Ultralytics run found)")
    frame = pd.DataFrame(rows)
    frame["dataset"] = frame["dataset"].fillna("-")
    frame["model"] = frame["model"].fillna("?")
    frame["method"] = frame.apply(_display_label, axis=1)
    order = _method_order()
    frame["method_order"] = frame["attn"].map(lambda a: order.get(a, len(order)))
    frame["neck"] = frame["placement"].eq("neck")
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


def aggregate(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean, sample std (ddof=1; none for a single run) and count of every numeric column
    per group of ``keys``; seeds listed."""
    numeric = [c for c in (*METRICS, *COST) if c in frame]
    grouped = frame.groupby(keys, dropna=False, sort=False)
    data = grouped[numeric].mean()
    data.columns = [f"{c}_mean" for c in data.columns]
    std = grouped[numeric].std(ddof=1)
    for c in numeric:
        data[f"{c}_std"] = std[c]
    data["n"] = grouped.size()
    data["seeds"] = grouped["seed"].apply(lambda s: ",".join(str(int(v)) for v in sorted(s.dropna())))
    data["sources"] = grouped["source"].apply(lambda s: ",".join(sorted(set(s))))
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
    rows = []
    for key in keys:
        cells, ns = [], []
        for group in groups:
            rec = lookup.get((key, group))
            cells += [_cell(rec, column) for column in columns]
            ns.append(int(rec["n"]) if rec is not None else 0)
        rows.append(Row(block=str(key[0]), labels=labels_of(key), cells=cells, ns=ns, rank_key=rank_key_of(key)))
    return rows


# The paper's dataset order first (Table 3 COCO, Table 4 VOC, VisDrone, ExDark, FLIR), then the rest by name.
DATASET_ORDER = ("coco", "voc", "visdrone", "exdark", "flir", "synthetic")


def _block_order(frame: pd.DataFrame) -> dict[str, int]:
    known = {name: i for i, name in enumerate(DATASET_ORDER)}
    ordered = frame.assign(_known=frame["dataset"].map(lambda d: known.get(d, len(known))))
    ordered = ordered.sort_values(["_known", "dataset", "epochs", "imgsz"], na_position="first")
    return {b: i for i, b in enumerate(dict.fromkeys(ordered["block"]))}


def _notes(frame: pd.DataFrame, table_rows: list[Row], columns: list[Column]) -> list[str]:
    notes = []
    keys = {c.key for c in columns}
    if keys & set(METRICS) and frame[[k for k in METRICS if k in keys]].notna().any().any():
        splits = "val split"
        notes.append(f"AP columns: pycocotools COCO box AP in % on the {splits}; best per block and column in bold, second underlined (ties alike).")
    if any(n > 1 for row in table_rows for n in row.ns):
        notes.append("Cells with several runs show mean ± sample std over seeds; n = number of runs.")
    if (frame["source"] == "ultralytics").any():
        notes.append("† plain Ultralytics run (args.yaml + results.csv): Ultralytics' own mAP of its best epoch, not pycocotools; AP75 and size bands unavailable.")
    if keys & {"throughput", "latency_ms"}:
        profiled = frame.dropna(subset=["throughput"]) if "throughput" in frame else frame.iloc[0:0]
        for (device, batch, half, reduced), _ in profiled.groupby(
            ["device_name", "profile_batch", "profile_half", "profile_reduced"], dropna=False
        ):
            protocol = "reduced CPU protocol, not comparable with GPU figures" if reduced else "paper protocol"
            notes.append(
                f"Throughput: images/s at batch {_int(batch)}, {'fp16 autocast' if half else 'fp32'}, on {device} ({protocol}); latency at batch 1."
            )
    if keys & {"gflops"}:
        sizes = sorted({int(v) for v in frame["imgsz"].dropna()})
        notes.append(
            f"GFLOPs: one image at {', '.join(map(str, sizes)) or '?'} px, counted by torch FlopCounterMode (1 multiply-add = 2 FLOPs)."
        )
    return notes


def build_table(rows: list[dict], style: str = "table4") -> Table:
    """The table of ``style`` for these run rows.

    Raises:
        ReportError: unknown style, no rows, or no row with what the style needs.
    """
    if style not in STYLES:
        raise ReportError(f"unknown report style '{style}'; choose one of: {', '.join(STYLES)}")
    frame = prepare_frame(rows)
    block_order = _block_order(frame)
    models = sorted(frame["model"].unique(), key=_model_sort_key)
    model_rank = {m: i for i, m in enumerate(models)}
    if style in ("table4", "table3") and frame[list(METRICS)].isna().all().all():
        raise ReportError(f"style {style} needs accuracy metrics, but no row has any (profile-only records? try --style table2)")
    builder = {"table4": _table4, "table3": _table3, "table2": _table2, "ablation": _ablation}[style]
    table = builder(frame, models, model_rank, block_order)
    table.notes = _notes(frame, table.rows, table.columns) + table.notes
    return table


def _table4(frame, models, model_rank, block_order) -> Table:
    columns = [COLUMNS[k] for k in ("AP", "AP50", "AP75")]
    agg = aggregate(frame, ["block", "method", "method_order", "model"])
    rows = _grid_rows(
        agg, ["block", "method", "method_order"], "model", models, columns,
        labels_of=lambda key: [key[1]],
        order_of=lambda key: (block_order[key[0]], key[2], key[1]),
    )
    mark_best(rows, columns, models)
    return Table("table4", "Detection accuracy per dataset (Table 4 style)", ["Dataset", "Method"], models, columns,
                 rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg)


def _model_rows(agg, columns, model_rank, block_order) -> list:
    """One row per (dataset, model, method), best/second marked per dataset and model."""
    rows = _grid_rows(
        agg, ["block", "model", "method", "method_order"], None, [""], columns,
        labels_of=lambda key: [key[1], key[2]],
        rank_key_of=lambda key: (key[1],),
        order_of=lambda key: (block_order[key[0]], model_rank[key[1]], key[3], key[2]),
    )
    mark_best(rows, columns, [""])
    return rows


def _table3(frame, models, model_rank, block_order) -> Table:
    columns = [COLUMNS[k] for k in ("params", "gflops", "AP", "AP50", "AP75", "APs", "APm", "APl")]
    agg = aggregate(frame, ["block", "model", "method", "method_order"])
    rows = _model_rows(agg, columns, model_rank, block_order)
    return Table("table3", "Cost and accuracy per model (Table 3 style)", ["Dataset", "Model", "Method"], [""], columns,
                 rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg)


def _table2(frame, models, model_rank, block_order) -> Table:
    if frame["throughput"].isna().all() and frame["params"].isna().all():
        raise ReportError("style table2 needs profile figures (params, GFLOPs, throughput), but no row has any")
    columns = [COLUMNS[k] for k in ("params", "gflops", "throughput", "rel_throughput", "latency_ms", "AP")]
    agg = aggregate(frame, ["block", "model", "method", "method_order", "attn"])
    # Throughput relative to the plain model of the same block and model (the paper's 83%).
    plain = agg[agg["attn"] == "none"].set_index(["block", "model"])["throughput_mean"]
    agg["rel_throughput_mean"] = [
        (t / plain.get((b, m))) if plain.get((b, m)) else float("nan")
        for b, m, t in zip(agg["block"], agg["model"], agg["throughput_mean"])
    ]
    agg["rel_throughput_std"] = float("nan")
    rows = _model_rows(agg, columns, model_rank, block_order)
    table = Table("table2", "Cost: params, GFLOPs, throughput (Table 2 style)", ["Dataset", "Model", "Method"], [""],
                  columns, rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg)
    if agg["rel_throughput_mean"].notna().any():
        table.notes.append("Rel.: throughput relative to the plain model (-) of the same dataset and model.")
    return table


def _ablation(frame, models, model_rank, block_order) -> Table:
    try:
        from scsa_yolo.nn.registry import TABLE1_ROWS
    except ImportError:  # pragma: no cover
        TABLE1_ROWS = [("Baseline", "scsa")]
    groups = {name: (i, group) for i, (group, name) in enumerate(TABLE1_ROWS)}
    frame = frame.copy()

    def ablation_group(attn: str) -> tuple[int, str]:
        if attn == "none":
            return (-1, "No attention")
        return groups.get(attn, (len(groups), "Other"))

    frame["ablation_order"] = frame["attn"].map(lambda a: ablation_group(a)[0])
    frame["ablation_group"] = frame["attn"].map(lambda a: ablation_group(a)[1])
    columns = [COLUMNS[k] for k in ("throughput", "AP", "AP50")]
    agg = aggregate(frame, ["block", "ablation_group", "method", "ablation_order", "model"])
    rows = _grid_rows(
        agg, ["block", "ablation_group", "method", "ablation_order"], "model", models, columns,
        labels_of=lambda key: [key[1], key[2]],
        order_of=lambda key: (block_order[key[0]], key[3], key[2]),
    )
    mark_best(rows, columns, models)
    return Table("ablation", "SCSA ablations (Table 1 style)", ["Dataset", "Ablation", "Variant"], models, columns,
                 rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg)
