"""The report styles of segmentation and classification records (issue 29).

* ``table6`` (the paper's Table 6, instance segmentation): blocks per dataset, rows per
  model and method; box AP, AP50, AP75 and mask AP, AP50, AP75, APs, APm, APl, with the
  same differences to the plain model, confidence intervals over seeds and notes as
  ``table4``.
* ``table2`` with classification records (the paper's Table 2 proper): Top-1 and Top-5
  beside params, GFLOPs and throughput (:func:`table2_accuracy_columns`).

Columns are keyed by the row keys of :mod:`scsa_yolo.report.load` (``mask_AP``, ``top1``);
:mod:`scsa_yolo.report.tables` builds, ranks and annotates them like any other column.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from scsa_yolo.report.load import CLASSIFY_METRICS, MASK_METRICS, METRICS

if TYPE_CHECKING:
    from scsa_yolo.report.tables import Column, Table

#: the box and mask columns of ``table6`` (row keys), in the table's order
TABLE6_KEYS = ("AP", "AP50", "AP75", "mask_AP", "mask_AP50", "mask_AP75", "mask_APs", "mask_APm", "mask_APl")


def _ap_column(key: str, kind: str) -> "Column":
    """``AP50`` of ``box``/``mask`` -> headers ``AP50 box``, ``AP$^{mask}_{50}$``, ``AP<sup>mask</sup><sub>50</sub>``."""
    from scsa_yolo.report.tables import Column

    name = key.removeprefix("mask_")
    sub = name[2:]  # "", "50", "75", "s", "m", "l"
    latex_sub = {"s": "S", "m": "M", "l": "L"}.get(sub, sub)
    latex = f"AP$^{{{kind}}}" + (f"_{{{latex_sub}}}$" if sub else "$")
    html = f"AP<sup>{kind}</sup>" + (f"<sub>{latex_sub}</sub>" if sub else "")
    return Column(key, f"{name} {kind}", latex, html)


def table6_columns() -> list["Column"]:
    return [_ap_column(key, "mask" if key.startswith("mask_") else "box") for key in TABLE6_KEYS]


def accuracy_columns() -> dict[str, "Column"]:
    """Top-1 and Top-5 (classification accuracy in %), ranked high-is-better."""
    from scsa_yolo.report.tables import Column

    return {"top1": Column("top1", "Top-1", "Top-1", "Top-1"), "top5": Column("top5", "Top-5", "Top-5", "Top-5")}


def table2_accuracy_columns(frame: pd.DataFrame) -> list["Column"]:
    """The accuracy columns of a ``table2``: AP where any row has it (detection records),
    Top-1 and Top-5 where any has them (classification records), both for a mixed set."""
    from scsa_yolo.report.tables import COLUMNS

    columns = []
    if frame[list(METRICS)].notna().any().any() or not frame[list(CLASSIFY_METRICS)].notna().any().any():
        columns.append(COLUMNS["AP"])
    if frame[list(CLASSIFY_METRICS)].notna().any().any():
        columns += list(accuracy_columns().values())
    return columns


def build_table6(frame: pd.DataFrame, models, model_rank, block_order) -> tuple["Table", object]:
    """Box and mask AP per dataset, model and method (see the module docstring)."""
    from scsa_yolo.report.tables import ReportError, Table, _IDENTITY, _model_layout, aggregate, mark_best

    if frame[list(MASK_METRICS)].isna().all().all():
        raise ReportError("style table6 needs segmentation records (mask AP), but no row has any: run a -seg model "
                          "(e.g. `scsa-yolo bench --grid table6-synthetic`, or a grid with 'task: segment')")
    columns = table6_columns()
    agg = aggregate(frame, ["block", "model", "method", "method_order", *_IDENTITY])
    layout = _model_layout(model_rank, block_order)
    rows = layout(agg, columns)
    mark_best(rows, columns, [""])
    table = Table("table6", "Instance segmentation: box and mask AP (Table 6 style)", ["Dataset", "Model", "Method"],
                  [""], columns, rows, show_n=any(n > 1 for r in rows for n in r.ns), data=agg)
    return table, layout


def accuracy_subject(keys: set[str]) -> str:
    """What the accuracy columns of a table are, for the first note: ``AP columns: pycocotools
    COCO box AP`` for a detection table (as before tasks existed), with the mask and top-k
    columns named where the table has them."""
    parts = []
    if keys & set(METRICS):
        parts.append("AP columns: pycocotools COCO box AP" if not keys & set(MASK_METRICS)
                     else "box columns: pycocotools COCO box AP (bbox)")
    if keys & set(MASK_METRICS):
        parts.append("mask columns: pycocotools COCO mask AP (segm, the model's masks at each image's resolution)")
    if keys & set(CLASSIFY_METRICS):
        parts.append("Top-1/Top-5: classification accuracy (Top-5 '-' for a model of five classes or fewer, "
                     "always 100 there)")
    return "; ".join(parts)


def difference_unit(metrics: list[str]) -> str:
    """The unit of the Δ columns: AP points (box or mask), accuracy points, or both."""
    ap = [m for m in metrics if m.removeprefix("mask_").startswith("AP")]
    if len(ap) == len(metrics):
        return "AP points"
    return "accuracy points" if not ap else "percentage points"
