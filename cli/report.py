"""``scsa-yolo report``: paper-style tables from run records and Ultralytics run folders."""
from __future__ import annotations

from pathlib import Path

import click

from scsa_yolo.cli.command import Command
from scsa_yolo.report import FORMATS, STYLE_NAMES


@click.command(name="report", cls=Command)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--style", type=click.Choice(STYLE_NAMES), default="table4", show_default=True,
              help="table4 (AP/AP50/AP75 per dataset and model), table3 (params, GFLOPs, AP..APl), "
                   "table2 (params, GFLOPs, throughput, latency, AP; Top-1/Top-5 for classification runs), "
                   "ablation or table1 (SCSA Table 1 variants), table6 (box and mask AP of segmentation runs), "
                   "gates (learned gates g per attention layer of backbone-res, neck-res and block-res runs: "
                   "was the attention used or left switched off).")
@click.option("--format", "fmt", type=click.Choice([*FORMATS, "all"]), default="md", show_default=True,
              help="md, latex, html, csv, or all (all four files plus a PNG plot; needs --out).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output path without extension (results/table4 -> results/table4.md, ...); an existing folder gets report.*.")
@click.option("--plot/--no-plot", default=None, help="Write OUT.png (AP against throughput). Default: with --format all.")
@click.option("--detect", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="AP points: the notes say how many seeds each comparison would need to detect a true difference "
                   "of this size (95% confidence, 80% power, from its observed spread).")
def report(paths, style, fmt, out, plot, detect):
    """Tables from PATHS: record.json files, folders holding them (searched recursively),
    or plain Ultralytics run folders (args.yaml + results.csv). Default PATHS: runs/bench.

    Best value per dataset and column in bold, second underlined (ties alike); several
    seeds show mean ± std with n, and a second table gives each method's difference to the
    plain model with a 95% confidence interval over seeds, marking with (ns) those that
    cannot be told from noise, and its minimum detectable difference (MDD: 95% confidence,
    80% power); the notes say how many seeds would detect a difference of --detect AP
    points. Rows name the placement, and fine-tuned runs (ft) are kept apart from runs
    from scratch. Invalid records are listed with their path and skipped.
    """
    from scsa_yolo.report.build import write_report

    if fmt == "all" and out is None:
        raise click.UsageError("--format all writes several files: give --out PATH (e.g. --out results/table4)")
    paths = list(paths) or [Path("runs/bench")]
    missing = [p for p in paths if not p.exists()]
    if missing and len(missing) == len(paths):
        raise click.UsageError(
            f"nothing to report: {', '.join(map(str, missing))} does not exist; run `scsa-yolo bench --out "
            f"{missing[0]}` first, or give record.json files or folders that hold them"
        )
    formats = FORMATS if fmt == "all" else (fmt,)
    if out is not None and out.is_dir():
        out = out / "report"
    result, written, messages = write_report(
        paths, style=style, formats=formats, out=out, plot=(fmt == "all") if plot is None else plot, detect=detect
    )
    for problem in result.problems:
        click.echo(f"skipped {problem}", err=True)
    if out is None:
        click.echo(result.render(fmt), nl=False)
    else:
        click.echo(result.render("md"), nl=False)
        for message in messages:
            click.echo(message, err=True)
        click.echo("written: " + ", ".join(str(p) for p in written))
