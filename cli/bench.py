"""``scsa-yolo bench``: train and evaluate a grid of datasets x models x attentions x seeds."""
from __future__ import annotations

import time
from pathlib import Path

import click

from scsa_yolo.cliutil import split_list, training_arguments

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
    from scsa_yolo.bench.grid import GridError
    from scsa_yolo.bench.ray_backend import check_client, check_resources, import_ray

    try:
        check_resources(cpus_per_run, gpus_per_run)
        import_ray()
        check_client(address)
    except GridError as error:
        raise click.UsageError(str(error)) from None


def _check_command_line_choices(attns: list[str] | None, placements: list[str] | None) -> None:
    """Unknown --attns / --placement values, named as options (after merging with the grid
    file, the grid's own check would name the file)."""
    from scsa_yolo.bench.grid import GridError, attention_info
    from scsa_yolo.identity import PLACEMENTS

    for attn in attns or []:
        try:
            attention_info(attn)
        except GridError as error:
            raise click.BadParameter(str(error), param_hint="--attns") from None
    for placement in placements or []:
        if placement not in PLACEMENTS:
            raise click.BadParameter(f"unknown placement '{placement}'; choose one of: {', '.join(PLACEMENTS)}",
                                     param_hint="--placement")


@click.command(name="bench", context_settings={"ignore_unknown_options": False})
@click.option("--grid", "grid_name", default=None,
              help="Grid file: a path, or the name of a shipped grid (quick, synthetic-gpu, table2, table3, table4, "
                   "ablation, ...; an unknown name lists them all). Default: quick.")
@click.option("--data", default=None, help="Comma-separated datasets (prepared names or data YAMLs), e.g. voc,visdrone.")
@click.option("--models", default=None, help="Comma-separated models with scale, e.g. yolov8n,yolov8s.")
@click.option("--attns", default=None, help="Comma-separated attention names: none, se, eca, ca, fca, cbam, sa, ema, cpca, ela, scsa, or an SCSA "
                   "ablation (scsa-no-pcsa, ...).")
@click.option("--placement", default=None,
              help="Comma-separated placements (backbone, neck, backbone-res, neck-res, block) [default: the grid's].")
@click.option("--pretrained", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A plain checkpoint every run starts from (transferred into each model first).")
@click.option("--seeds", default=None, help="Comma-separated seeds, e.g. 0,1,2 (deterministic training per seed).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs per run.")
@click.option("--imgsz", type=click.IntRange(min=32), default=None, help="Training and evaluation image size.")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Batch size.")
@click.option("--devices", default=None,
              help="cpu, or comma-separated GPU ids: one run per GPU at a time (with --ddp: every run on all of them).")
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
    from scsa_yolo.bench.grid import GridError, load_grid
    from scsa_yolo.bench.runner import (
        check_models,
        conflicts_message,
        describe_plan,
        execute,
        plan_runs,
        prepare_datasets,
        signal_as_interrupt,
    )

    _check_backend_options(backend, address, gpus_per_run, cpus_per_run, devices, ddp)
    try:
        _check_command_line_choices(split_list(attns), split_list(placement))
        grid = load_grid(grid_name or "quick")
        grid = grid.with_options(
            datasets=split_list(data), models=split_list(models), attns=split_list(attns),
            placement=split_list(placement), pretrained=pretrained,
            seeds=split_list(seeds, int, param_hint="--seeds"), epochs=epochs, imgsz=imgsz, batch=batch,
            train_args=training_arguments(train_args, reserved=BENCH_OPTIONS) or None,
        )
        device_list = split_list(devices)
        if ddp and (not device_list or len(device_list) < 2 or "cpu" in device_list):
            raise click.UsageError("--ddp needs at least two GPU ids in --devices, e.g. --devices 0,1 --ddp")
        check_models(grid)
        datasets = prepare_datasets(grid, click.echo, dry_run=dry_run)
        runs = grid.runs()
        planned = plan_runs(runs, out)
    except GridError as error:
        raise click.UsageError(str(error)) from None

    source = grid.source if grid_name else f"{grid.source} (default grid)"
    click.echo(f"grid: {source}")
    click.echo(f"out:  {out.resolve()}")
    if dry_run:
        for name, yaml_path in datasets.items():
            click.echo(f"dataset {name}: {yaml_path}")
        click.echo("\n".join(describe_plan(planned)))
        problems = [str(v)[len("NOT READY: "):] for v in datasets.values() if str(v).startswith("NOT READY: ")]
        message = conflicts_message(planned)
        if message:
            problems.append(message)
        if problems:
            raise click.ClickException("this grid cannot run yet:\n" + "\n".join(problems))
        return
    started = time.perf_counter()
    try:
        with signal_as_interrupt():  # SIGTERM
            if backend == "ray":
                from scsa_yolo.bench.ray_backend import execute_on_ray

                outcome = execute_on_ray(planned, out, address=address, gpus_per_run=gpus_per_run,
                                         cpus_per_run=1.0 if cpus_per_run is None else cpus_per_run, echo=click.echo)
            else:
                outcome = execute(planned, devices=device_list, ddp=ddp, echo=click.echo)
    except GridError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        raise click.Abort() from None
    elapsed = time.perf_counter() - started
    click.echo(
        f"bench finished in {elapsed:.0f} s: {len(outcome.completed)} run(s) completed, "
        f"{len(outcome.skipped)} already done, {len(outcome.failed)} failed"
    )
    if report and outcome.record_paths:
        from scsa_yolo.report.build import ReportError, write_report
        from scsa_yolo.report.render import FORMATS

        try:
            report_, written, messages = write_report(
                outcome.record_paths, style=grid.report, formats=FORMATS, out=out / "report", plot=True
            )
        except ReportError as error:
            raise click.ClickException(str(error)) from None
        click.echo("")
        click.echo(report_.render("md"))
        for message in messages:
            click.echo(message)
        click.echo("report files: " + ", ".join(str(p) for p in written))
    if outcome.failed:
        raise click.ClickException(
            f"{len(outcome.failed)} run(s) failed: " + ", ".join(p.spec.run_id for p, _ in outcome.failed)
            + ". Their logs are in RUN/worker.log; re-run the same command to retry them."
        )
