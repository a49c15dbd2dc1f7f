"""``scsa-yolo bench``: train and evaluate a grid of datasets x models x attentions x seeds."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import click

from scsa_yolo.cli.command import Command

from scsa_yolo.cliutil import checked_devices, split_list, training_arguments
from scsa_yolo.identity import placement_names

# Ultralytics arguments that `bench` sets through its own options: KEY=VALUE for them is
# refused, naming the option (the grid file's own check names the file instead).
BENCH_OPTIONS = {
    "data": "--data", "model": "--models", "epochs": "--epochs", "imgsz": "--imgsz", "batch": "--batch",
    "seed": "--seeds", "device": "--devices", "pretrained": "--pretrained", "project": "--out", "name": "--out",
}


def _check_backend_options(backend, address, gpus_per_run, cpus_per_run, devices, ddp) -> None:
    """Options of one backend given to the other, bad resource numbers, Ray (or for a ray://
    address its client) not installed."""
    if backend == "local":
        given = [name for name, value in (("--address", address), ("--gpus-per-run", gpus_per_run),
                                          ("--cpus-per-run", cpus_per_run)) if value is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise click.UsageError(f"{', '.join(given)} {verb} only to --backend ray")
        return
    if devices is not None or ddp:
        raise click.UsageError("--devices and --ddp are for --backend local; with --backend ray, Ray assigns the "
                               "GPUs: use --gpus-per-run (e.g. 0.5 for two runs per GPU)")
    from scsa_yolo.bench.ray_backend import check_client, check_resources, import_ray

    check_resources(cpus_per_run, gpus_per_run)
    import_ray()
    check_client(address)


def _check_command_line_choices(attns: list[str] | None, placements: list[str] | None) -> None:
    """Unknown --attns / --placement values, named as options (after merging with the grid
    file, the grid's own check would name the file)."""
    from scsa_yolo.identity import IdentityError, attention, check_placement

    for values, parse, hint in ((attns, attention, "--attns"), (placements, check_placement, "--placement")):
        for value in values or []:
            try:
                parse(value)
            except IdentityError as error:
                raise error.for_option(hint) from None


@click.command(name="bench", cls=Command, context_settings={"ignore_unknown_options": False})
@click.option("--grid", "grid_name", default=None,
              help="Grid file: a path, or the name of a shipped grid (quick, synthetic-gpu, table2, table3, table4, "
                   "ablation, ...; an unknown name lists them all). Default: quick.")
@click.option("--data", default=None, help="Comma-separated datasets (prepared names or data YAMLs), e.g. voc,visdrone.")
@click.option("--models", default=None, help="Comma-separated models with scale, e.g. yolov8n,yolov8s.")
@click.option("--attns", default=None, help="Comma-separated attention names: none, se, eca, ca, fca, cbam, sa, ema, cpca, ela, scsa, simam, lska, mlca, caa, or an SCSA "
                   "ablation (scsa-no-pcsa, ...).")
@click.option("--placement", default=None,
              help=f"Comma-separated placements ({', '.join(placement_names())}) [default: the grid's].")
@click.option("--pretrained", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A plain checkpoint every run starts from (transferred into each model first).")
@click.option("--seeds", default=None, help="Comma-separated seeds, e.g. 0,1,2 (deterministic training per seed).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs per run.")
@click.option("--imgsz", type=click.IntRange(min=32), default=None, help="Training and evaluation image size.")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Batch size.")
@click.option("--devices", default=None,
              help="cpu, or comma-separated GPU ids: one run per GPU at a time; an id given N times runs N at once "
                   "there (the report then ranks no throughput). With --ddp: every run on all of them.")
@click.option("--ddp", is_flag=True, help="Train each run on all --devices with DDP instead of one run per GPU.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a process pool on this machine (--devices). ray: one Ray task per run, on a local Ray "
                   "or a cluster (--address); needs pip install \"scsa-yolo[ray]\".")
@click.option("--address", default=None,
              help="With --backend ray: the cluster, as auto (the one this machine belongs to), HOST:PORT, or "
                   "ray://HOST:10001 (Ray client). Default: start a local Ray on this machine.")
@click.option("--gpus-per-run", type=float, default=None,
              help="With --backend ray: GPUs per run; a fraction (0.5, 0.25) lets several runs share one GPU, a "
                   "whole number above 1 trains each run with DDP. Default: 1 if the cluster has GPUs, else 0 (CPU).")
@click.option("--cpus-per-run", type=float, default=None,
              help="With --backend ray: CPUs per run (what Ray reserves for the run's task) [default: 1].")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/bench"),
              show_default=True, help="Folder of the runs (OUT/DATASET/RUN) and of the final report.")
@click.option("--dry-run", is_flag=True, help="Print the plan (what is done, resumed, new) and exit.")
@click.option("--report/--no-report", default=True, show_default=True, help="Print and write the report at the end.")
@click.argument("train_args", nargs=-1)
def bench(grid_name, data, models, attns, placement, pretrained, seeds, epochs, imgsz, batch, devices, ddp, backend,
          address, gpus_per_run, cpus_per_run, out, dry_run, report, train_args):
    """Train, evaluate (pycocotools) and profile every run of a grid, then print the report.

    With no options this is the quick benchmark: the synthetic dataset (generated when
    missing), YOLOv8n plain and with SE, ECA, CA, FCA and SCSA, a short CPU-sized schedule,
    and a Table 4-style report. Every run leaves OUT/DATASET/RUN/record.json. Re-running the
    same command skips finished runs and resumes an interrupted one from its last.pt.

    Extra KEY=VALUE arguments are passed to Ultralytics' train (e.g. workers=4 lr0=0.02).

    With --backend ray every run is a Ray task; OUT (and the data root) must be on storage
    that every node of the cluster mounts, which is checked before the first run.
    """
    _check_backend_options(backend, address, gpus_per_run, cpus_per_run, devices, ddp)
    device_list = split_list(devices)
    if ddp and (not device_list or len(device_list) < 2 or "cpu" in device_list):
        raise click.UsageError("--ddp needs at least two GPU ids in --devices, e.g. --devices 0,1 --ddp")
    checked_devices(devices, "--devices", ids_only=True)  # before any dataset is prepared
    grid = _grid_from_options(grid_name, data, models, attns, placement, pretrained, seeds, epochs, imgsz, batch,
                              train_args)
    phases = _plan(grid, out, dry_run)
    source = grid.source if grid_name is not None else f"{grid.source} (default grid)"
    click.echo(f"grid: {source}")
    click.echo(f"out:  {out.resolve()}")
    if dry_run:
        _show_plan(phases)
        return
    started = time.perf_counter()
    outcomes = [_execute(planned, out, backend, address, gpus_per_run, cpus_per_run, device_list, ddp)
                for planned in phases.steps]
    elapsed = time.perf_counter() - started
    outcome = outcomes[-1]
    click.echo(
        f"bench finished in {elapsed:.0f} s: {len(outcome.completed)} run(s) completed, "
        f"{len(outcome.skipped)} already done, {len(outcome.failed)} failed"
    )
    from scsa_yolo.bench.runner import retry_summary

    for line in retry_summary(outcomes):
        click.echo(line)
    if report and outcome.record_paths:
        _write_report(outcome.record_paths, grid.report, out, pretraining=outcomes[0] if phases.pretrain else None)
    if outcome.failed:
        raise click.ClickException(
            f"{len(outcome.failed)} run(s) failed: " + ", ".join(p.spec.run_id for p, _ in outcome.failed)
            + ". Their logs are in RUN/worker.log; re-run the same command to retry them."
        )


@dataclass
class _Phases:
    """What a bench will run: the pretraining step (may be empty), then the grid."""

    datasets: dict
    pretrain: list
    grid: list

    @property
    def steps(self) -> list[list]:
        return [self.pretrain, self.grid] if self.pretrain else [self.grid]


def _grid_from_options(grid_name, data, models, attns, placement, pretrained, seeds, epochs, imgsz, batch, train_args):
    """The grid file with the command line's values put in, validated."""
    from scsa_yolo.bench.grid import load_grid

    _check_command_line_choices(split_list(attns), split_list(placement))
    return load_grid("quick" if grid_name is None else grid_name).with_options(
        datasets=split_list(data), models=split_list(models), attns=split_list(attns),
        placement=split_list(placement), pretrained=pretrained,
        seeds=split_list(seeds, int, param_hint="--seeds"), epochs=epochs, imgsz=imgsz, batch=batch,
        train_args=training_arguments(train_args, reserved=BENCH_OPTIONS) or None,
    )


def _plan(grid, out: Path, dry_run: bool) -> _Phases:
    """Models built and checkpoints checked, datasets resolved (generated unless a dry run),
    every run's state decided: the pretraining step's runs under OUT/pretrain, then the grid's."""
    from scsa_yolo.bench.grid import PRETRAIN_FOLDER
    from scsa_yolo.bench.runner import check_models, plan_runs, resolve_datasets

    check_models(grid)  # a pretraining step's checkpoints are checked when it has run (by each worker)
    datasets = resolve_datasets(grid, click.echo, dry_run=dry_run)
    pretrain = plan_runs(grid.pretrain_runs(), out / PRETRAIN_FOLDER, datasets)
    planned = plan_runs(grid.with_pretraining(out).runs(), out, datasets)
    return _Phases(datasets, pretrain, planned)


def _show_plan(phases: _Phases) -> None:
    """``--dry-run``: the datasets, then each step's runs with their start; refuses a grid
    that cannot run yet."""
    from scsa_yolo.bench.runner import conflicts_message, describe_plan

    for name, status in phases.datasets.items():
        click.echo(f"dataset {name}: {status.shown}")
    if phases.pretrain:
        click.echo("pretraining step (the plain model, once per model; every run below starts from its last.pt):")
        click.echo("\n".join(describe_plan(phases.pretrain)))
        click.echo("grid:")
    click.echo("\n".join(describe_plan(phases.grid)))
    problems = [status.problem for status in phases.datasets.values() if status.problem]
    message = conflicts_message(phases.pretrain + phases.grid)
    if message:
        problems.append(message)
    if problems:
        raise click.ClickException("this grid cannot run yet:\n" + "\n".join(problems))


def _execute(planned, out: Path, backend, address, gpus_per_run, cpus_per_run, device_list, ddp):
    """One step's runs on the chosen backend; Ctrl-C or SIGTERM stops it resumably."""
    from scsa_yolo.bench.runner import execute, signal_as_interrupt

    try:
        with signal_as_interrupt():  # SIGTERM
            if backend == "ray":
                from scsa_yolo.bench.ray_backend import execute_on_ray

                return execute_on_ray(planned, out, address=address, gpus_per_run=gpus_per_run,
                                      cpus_per_run=1.0 if cpus_per_run is None else cpus_per_run, echo=click.echo)
            return execute(planned, devices=device_list, ddp=ddp, echo=click.echo)
    except KeyboardInterrupt:
        raise click.Abort() from None


def _write_report(record_paths, style: str, out: Path, pretraining=None) -> None:
    """The grid's report, printed and written as OUT/report.{md,tex,html,csv,png}; a
    pretraining step's runs are named in its notes with their own AP, never in its rows."""
    from scsa_yolo.bench.runner import headline
    from scsa_yolo.report.build import write_report
    from scsa_yolo.report.render import FORMATS

    notes = []
    if pretraining is not None:
        notes = [f"Every run is fine-tuned from the pretraining run {p.spec.run_id} of the bench "
                 f"({headline(p.run_dir / 'record.json')}; {p.run_dir})." for p in pretraining.planned]
    report_, written, messages = write_report(record_paths, style=style, formats=FORMATS, out=out / "report",
                                              plot=True, notes=notes)
    click.echo("")
    click.echo(report_.render("md"))
    for message in messages:
        click.echo(message)
    click.echo("report files: " + ", ".join(str(p) for p in written))
