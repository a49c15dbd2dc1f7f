"""``scsa-yolo plateau``: how many epochs a grid needs, from runs that validated every epoch."""
from __future__ import annotations

from pathlib import Path

import click

from scsa_yolo.cli.command import Command


@click.command(name="plateau", cls=Command)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--grid", "grid", default=None,
              help="The grid (name or file) whose bench wrote the one folder given: every run of it must be there "
                   "(a missing one is an error, not left out).")
@click.option("--column", default="metrics/mAP50-95(B)", show_default=True,
              help="The results.csv column to check (a fraction; shown and compared in points, x100).")
@click.option("--window", type=click.IntRange(min=1), default=5, show_default=True,
              help="Epochs in the trailing moving mean.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.2, show_default=True,
              help="AP points the moving mean may still move after the plateau epoch.")
@click.option("--multiple", type=click.IntRange(min=1), default=5, show_default=True,
              help="Round the largest plateau epoch up to a multiple of this.")
def plateau(paths, grid, column, window, tolerance, multiple):
    """The plateau epoch of every run under PATHS and the epochs a grid needs.

    PATHS: results.csv files, run folders, or a bench's --out folder (searched for run
    folders; its pretrain/ folder is left out). The runs must have validated every epoch
    (train_args val: true), as the grid table4-evidence-plateau does.

    A run's plateau epoch is the first epoch whose moving mean of AP (--window epochs)
    stays within --tolerance AP points of the moving mean at every later epoch. The last
    line, `epochs: N`, is the largest plateau epoch rounded up to a multiple of --multiple.
    A run that only settles at its last epoch has not plateaued: the command says so and
    fails, and the check needs a longer schedule.
    """
    from scsa_yolo.bench.plateau import check_plateau

    check = check_plateau(list(paths), grid=grid, column=column, window=window, tolerance=tolerance,
                          multiple=multiple)
    click.echo(check.table(), nl=False)
    check.epochs()  # raises (exit 1) when a run is still moving, after its table is shown
