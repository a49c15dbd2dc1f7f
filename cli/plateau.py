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
@click.option("--across-schedules", "across", is_flag=True,
              help="Compare the same plain runs trained at several schedule lengths (one --out folder each) "
                   "instead of epochs within a run: the shortest length the longest one beats by at most "
                   "--gain-tolerance on every dataset.")
@click.option("--gain-tolerance", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="With --across-schedules: AP points the longest schedule may still add over a length that passes.")
def plateau(paths, grid, column, window, tolerance, multiple, across, gain_tolerance):
    """The plateau epoch of every run under PATHS and the epochs a grid needs.

    PATHS: results.csv files, run folders, or a bench's --out folder (searched for run
    folders; its pretrain/ folder is left out). The runs must have validated every epoch
    (train_args val: true), as the grid table4-evidence-plateau does.

    A run's plateau epoch is the first epoch whose moving mean of AP (--window epochs)
    stays within --tolerance AP points of the moving mean at every later epoch. The last
    line, `epochs: N`, is the largest plateau epoch rounded up to a multiple of --multiple.
    A run that only settles at its last epoch has not plateaued: the command says so and
    fails, and the check needs a longer schedule.

    Under Ultralytics' schedule (the learning rate decays over the whole run, mosaic stops
    for its last epochs) AP climbs to the last epoch of any length. --across-schedules
    then answers from the same plain runs trained at two or more lengths (PATHS: one --out
    folder per length): a length is long enough when the longest schedule's final AP (mean
    over seeds) beats it by at most --gain-tolerance AP points on every dataset; the last
    line is the shortest such length.
    """
    if across:
        from scsa_yolo.bench.schedules import compare_schedules

        if grid is not None:
            raise click.UsageError("--grid checks one --out folder; --across-schedules takes one per schedule length")
        check = compare_schedules(list(paths), tolerance=gain_tolerance, column=column)
        click.echo(check.table(), nl=False)
        check.epochs()  # raises (exit 1) when no length is shown long enough, after its table is shown
        return
    from scsa_yolo.bench.plateau import check_plateau

    check = check_plateau(list(paths), grid=grid, column=column, window=window, tolerance=tolerance,
                          multiple=multiple)
    click.echo(check.table(), nl=False)
    check.epochs()  # raises (exit 1) when a run is still moving, after its table is shown
