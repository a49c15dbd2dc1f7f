"""``scsa-yolo warmup``: compile the fused SCSA kernels for a model's shapes before a long job."""
from __future__ import annotations

import json
import os
import subprocess
import time

import click

from scsa_yolo.child_process import cli_command
from scsa_yolo.cli.command import Command


@click.command(name="warmup", cls=Command)
@click.option("--model", "model", required=True,
              help="A model YAML (yolov8n-scsa.yaml), a .pt checkpoint or a run folder: the model to train or run.")
@click.option("--imgsz", type=click.IntRange(min=32), default=640, show_default=True, help="The training image size.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True,
              help="The training batch (validation batches are twice this, as in Ultralytics' trainer).")
@click.option("--device", default=None, help="GPU id (default: the first GPU).")
@click.option("--amp/--no-amp", default=True, show_default=True,
              help="Warm the shapes of mixed-precision training (fp16 autocast, half-precision validation).")
@click.option("--rect/--no-rect", default=True, show_default=True,
              help="Also every rectangular validation batch shape Ultralytics can form at this size.")
@click.option("--predict", is_flag=True, help="Also `yolo predict` (single letterboxed images, fp32).")
@click.option("--channels-last/--no-channels-last", "channels_last", default=None,
              help="The job's `channels_last` training argument (default: unset, as Ultralytics' default, which "
                   "trains in channels-last memory on a GPU outside Windows). The kernels differ per layout.")
@click.option("--jobs", type=click.IntRange(min=1), default=min(8, os.cpu_count() or 1), show_default=True,
              help="Processes that compile in parallel (each on the same GPU, into the same cache folder).")
@click.option("--shard", default=None, hidden=True)
def warmup(model, imgsz, batch, device, amp, rect, predict, channels_last, jobs, shard):
    """Compile the fused SCSA kernels MODEL will need, into Triton's cache folder, so the
    job itself starts without compiling.

    A fresh machine otherwise compiles them during the first training step and the first
    validation (about a second per kernel, dozens of kernels). Triton keeps them in
    TRITON_CACHE_DIR (default ~/.triton/cache): warm once per machine, or once for a
    cluster with TRITON_CACHE_DIR on shared storage, with the settings the job will use.

    \b
    Examples:
      scsa-yolo warmup --model yolov8n-scsa.yaml --imgsz 640 --batch 16
      TRITON_CACHE_DIR=/shared/triton-cache scsa-yolo warmup --model runs/exp/weights/best.pt --predict
    """
    if shard is not None:
        _run_shard(model, imgsz, batch, device, amp, rect, predict, channels_last, shard)
        return
    from scsa_yolo.nn.scsa_warmup import our_cached_kernels, triton_cache_dir

    cache = triton_cache_dir()
    before = our_cached_kernels(cache)
    start = time.perf_counter()
    # One process per shard, this command itself staying free of torch: each loads the
    # model and compiles its share of the shapes; Triton writes each kernel atomically.
    base = cli_command("warmup", "--model", model, "--imgsz", str(imgsz), "--batch", str(batch),
                       "--amp" if amp else "--no-amp", "--rect" if rect else "--no-rect")
    base += (["--device", device] if device is not None else []) + (["--predict"] if predict else [])
    if channels_last is not None:
        base.append("--channels-last" if channels_last else "--no-channels-last")
    procs = [subprocess.Popen(base + ["--shard", f"{k}/{jobs}"], stdout=subprocess.PIPE, text=True)
             for k in range(jobs)]
    reports, failed = [], []
    for k, proc in enumerate(procs):
        out, _ = proc.communicate()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            failed.append(k)
            continue
        reports.append(json.loads(lines[-1]))
    if failed and not reports:
        raise click.ClickException("warm-up failed (see the messages above)")
    seconds = time.perf_counter() - start
    first = reports[0]
    if first["scsa_layers"] == 0:
        click.echo(f"{model}: no SCSA layers, nothing to warm")
        return
    click.echo(f"{model}: {first['scsa_layers']} SCSA layer(s), {first['fused_layers']} on the fused path, "
               f"on {first['device']}, imgsz {imgsz}, batch {batch}")
    for report in reports:
        for step in report["steps"]:
            click.echo(f"  [{report['shard']}] {step['step']}: {len(step['shapes'])} shape(s), {step['seconds']:.1f} s")
    after = our_cached_kernels(cache)
    variants = sum(r["variants"] for r in reports)  # summed over processes: shared ones count once per process
    compiling = sum(r["first_launch_s"] for r in reports)
    click.echo(f"kernel variants launched: {variants} (first launches {compiling:.1f} s: compiling, or loading "
               f"from the cache); fused SCSA kernels in {cache}: {after} ({after - before:+d}); "
               f"{seconds:.1f} s in {jobs} process(es)")
    if failed:
        raise click.ClickException(f"warm-up process(es) {failed} failed; the others' kernels are cached")


def _run_shard(model, imgsz, batch, device, amp, rect, predict, channels_last, shard) -> None:
    """One warm-up process: prints its report as one JSON line."""
    from scsa_yolo.bench.profile import load_detection_model
    from scsa_yolo.device import device_name, resolve_device
    from scsa_yolo.integration.training import autobackend_channels_last, trains_channels_last
    from scsa_yolo.integration.validation import count_flops
    from scsa_yolo.nn import scsa_fast
    from scsa_yolo.nn.scsa_warmup import warm_up

    k, n = (int(v) for v in shard.split("/"))
    dev = resolve_device(device)
    if dev.type != "cuda" and not scsa_fast._interpret_requested():
        raise click.UsageError("warmup compiles GPU kernels: it needs a CUDA device (none found, or --device cpu)")
    try:
        net, _ = load_detection_model(model)
    except FileNotFoundError as error:
        raise click.BadParameter(str(error), param_hint="--model") from None
    log = (lambda line: click.echo(f"  [{k}] {line}", err=True)) if n > 1 else None
    report = warm_up(net, imgsz=imgsz, batch=batch, device=dev, amp=amp, rect=rect, predict=predict, shard=(k, n),
                     log=log, count_flops=count_flops, channels_last=trains_channels_last(dev, channels_last),
                     final_channels_last=autobackend_channels_last(dev, channels_last))
    click.echo(json.dumps({**report.to_dict(), "shard": k, "device": device_name(dev)}))
