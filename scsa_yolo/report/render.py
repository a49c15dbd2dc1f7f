"""Render a :class:`~scsa_yolo.report.tables.Table` as Markdown, LaTeX (booktabs), HTML or CSV.

Marks: Markdown ``**best**`` and ``<u>second</u>``; LaTeX ``\\textbf{}`` and
``\\underline{}``; HTML ``<b>`` and ``<u>``. Missing cells print ``-``. The block name
(dataset) and the first row label (model) are printed once per run of equal values, as in
the paper.
"""
from __future__ import annotations

import html
import io

from scsa_yolo.report import FORMATS
from scsa_yolo.report.tables import Cell, DiffCell, Table

EXTENSIONS = {"md": "md", "latex": "tex", "html": "html", "csv": "csv"}


def _header_cells(table: Table) -> list[list[str]]:
    """Row-header cells per row with repeats blanked (block, then first label)."""
    shown, previous = [], None
    for row in table.rows:
        cells = [row.block, *row.labels]
        display = list(cells)
        if previous is not None and cells[0] == previous[0]:
            display[0] = ""
            if len(cells) > 2 and cells[1] == previous[1]:
                display[1] = ""
        shown.append(display)
        previous = cells
    return shown


def _value_columns(table: Table) -> list[tuple[int, int | None]]:
    """(group index, column index or None for the n column) in display order."""
    layout = []
    for g in range(len(table.groups)):
        layout += [(g, c) for c in range(len(table.columns))]
        if table.show_n:
            layout.append((g, None))
    return layout


def _cell_at(table: Table, row, g: int, c: int | None) -> Cell | DiffCell | int:
    if c is None:
        return row.ns[g]
    return row.cells[g * len(table.columns) + c]


def _grouped(table: Table) -> bool:
    return len(table.groups) > 1 or table.groups != [""]


# --------------------------------------------------------------------------- Markdown
# How each format marks the best and second-best cell, and escapes cell text.
_MARKS = {
    "md": ("**{}**", "<u>{}</u>", str),
    "latex": (r"\textbf{{{}}}", r"\underline{{{}}}", lambda t: latex_escape(t)),
    "html": ("<b>{}</b>", "<u>{}</u>", lambda t: html.escape(t)),
}


def _cell_value(cell: Cell | DiffCell | int, fmt: str) -> str:
    """A value cell as text of ``fmt``: an int is a run count (0 shows as '-')."""
    if isinstance(cell, int):
        return str(cell) if cell else "-"
    best, second, escape = _MARKS[fmt]
    text = escape(cell.text)
    if cell.mark == "best":
        return best.format(text)
    if cell.mark == "second":
        return second.format(text)
    return text


def _markdown_table(table: Table) -> list[str]:
    """The pipe table itself (header, rule, body), padded so that it also reads well in a terminal."""
    layout = _value_columns(table)
    headers = list(table.row_headers)
    for g, c in layout:
        name = "n" if c is None else table.columns[c].header
        headers.append(f"{table.groups[g]} {name}".strip() if _grouped(table) and len(table.groups) > 1 else name)
    body = [
        shown + [_cell_value(_cell_at(table, row, g, c), "md") for g, c in layout]
        for row, shown in zip(table.rows, _header_cells(table))
    ]
    widths = [max(len(str(r[i])) for r in [headers, *body]) for i in range(len(headers))]
    n_labels = len(table.row_headers)

    def line(cells: list[str]) -> str:
        padded = [str(v).ljust(w) if i < n_labels else str(v).rjust(w) for i, (v, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i >= n_labels else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return [line(headers), rule, *(line(r) for r in body)]


def to_markdown(table: Table) -> str:
    """GitHub pipe tables: the paper-style table, the differences to the plain model when
    there are any, then the notes."""
    out = [f"**{table.title}**", ""]
    if len(table.groups) == 1 and table.groups[0]:
        out += [f"Model: {table.groups[0]}", ""]
    out += _markdown_table(table)
    if table.diff is not None:
        out += ["", f"**{table.diff.title}**", "", *_markdown_table(table.diff)]
    if table.notes:
        out += [""] + [f"- {note}" for note in table.notes]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- LaTeX
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    out = out.replace("±", r"$\pm$").replace("†", r"$^\dagger$").replace("‡", r"$^\ddagger$")
    out = out.replace("->", r"$\rightarrow$")
    return out.replace("Δ", r"$\Delta$")


def _latex_tabular(table: Table) -> list[str]:
    layout = _value_columns(table)
    n_labels = len(table.row_headers)
    spec = "l" * n_labels + "c" * len(layout)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    per_group = len(table.columns) + (1 if table.show_n else 0)
    if _grouped(table) and table.groups != [""]:
        head = [""] * n_labels
        rules = []
        for g, name in enumerate(table.groups):
            first = n_labels + g * per_group + 1
            head.append(rf"\multicolumn{{{per_group}}}{{c}}{{{latex_escape(name)}}}")
            rules.append(rf"\cmidrule(lr){{{first}-{first + per_group - 1}}}")
        lines.append(" & ".join(head) + r" \\")
        lines.append(" ".join(rules))
    header = [latex_escape(h) for h in table.row_headers]
    header += ["$n$" if c is None else table.columns[c].latex for _, c in layout]
    lines.append(" & ".join(header) + r" \\")
    lines.append(r"\midrule")
    previous_block = None
    for row, shown in zip(table.rows, _header_cells(table)):
        if previous_block is not None and row.block != previous_block:
            lines.append(r"\midrule")
        previous_block = row.block
        cells = [latex_escape(v) for v in shown] + [_cell_value(_cell_at(table, row, g, c), "latex") for g, c in layout]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return lines


def to_latex(table: Table) -> str:
    """Booktabs tabulars (needs ``\\usepackage{booktabs}``) inside one table float: the
    paper-style table, then the differences to the plain model when there are any."""
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.title)}}}"]
    lines += _latex_tabular(table)
    if table.diff is not None:
        lines += [r"\par\medskip", rf"{{\small {latex_escape(table.diff.title)}}}\par\smallskip"]
        lines += _latex_tabular(table.diff)
    if table.notes:
        lines.append(r"\par\smallskip\footnotesize " + r" \\ ".join(latex_escape(n) for n in table.notes))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- HTML
def _html_table(table: Table) -> list[str]:
    layout = _value_columns(table)
    per_group = len(table.columns) + (1 if table.show_n else 0)
    out = ['<table class="scsa-yolo-report">', f"<caption>{html.escape(table.title)}</caption>", "<thead>"]
    if _grouped(table) and table.groups != [""]:
        out.append(
            "<tr>" + f'<th colspan="{len(table.row_headers)}"></th>'
            + "".join(f'<th colspan="{per_group}">{html.escape(g)}</th>' for g in table.groups) + "</tr>"
        )
    out.append(
        "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.row_headers)
        + "".join(f"<th>{'n' if c is None else table.columns[c].html}</th>" for _, c in layout) + "</tr>"
    )
    out += ["</thead>", "<tbody>"]
    for row, shown in zip(table.rows, _header_cells(table)):
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in shown)
        cells += "".join(f'<td align="right">{_cell_value(_cell_at(table, row, g, c), "html")}</td>' for g, c in layout)
        out.append(f"<tr>{cells}</tr>")
    out += ["</tbody>", "</table>"]
    return out


def to_html(table: Table) -> str:
    """Standalone ``<table>``s with captions and grouped headers (the paper-style table,
    then the differences to the plain model when there are any), then the notes."""
    out = _html_table(table)
    if table.diff is not None:
        out += _html_table(table.diff)
    if table.notes:
        out.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in table.notes) + "</ul>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- CSV
def to_csv(table: Table) -> str:
    """The aggregated numbers behind the table, one line per (dataset, model, method):
    start and placement, means and sample stds in the records' units (AP as fractions,
    params as counts), n and seeds, and per accuracy metric the difference to the plain
    model with its interval (``AP_diff``, ``AP_diff_low``, ``AP_diff_high``,
    ``AP_diff_test``, ``AP_diff_ns``). The notes go beside it (:func:`notes_text`)."""
    if table.data is None:
        return ""
    data = table.data.drop(columns=[c for c in table.data.columns if c.endswith("_order")], errors="ignore")
    buffer = io.StringIO()
    data.to_csv(buffer, index=False, float_format="%.10g")
    return buffer.getvalue()


def notes_text(table: Table) -> str:
    """The table's notes as plain text, one per line: what a CSV reader needs beside the CSV."""
    return "".join(f"- {note}\n" for note in table.notes)


RENDERERS = {"md": to_markdown, "latex": to_latex, "html": to_html, "csv": to_csv}


def render(table: Table, fmt: str) -> str:
    if fmt not in RENDERERS:
        raise ValueError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}, all")
    return RENDERERS[fmt](table)
