"""``scsa-yolo profile``: params, GFLOPs, throughput and latency of models or of one layer."""
from __future__ import annotations

from pathlib import Path

import click

from scsa_yolo.cli.command import Command
from scsa_yolo.cliutil import device_option, split_list
from scsa_yolo.identity import DEFAULT_PLACEMENT, placement_names


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise click.BadParameter(f"expected C,H,W as three positive integers (e.g. 256,40,40), got {text!r}", param_hint="--shape")
    return values  # type: ignore[return-value]


@click.command(name="profile", cls=Command)
@click.option("--model", "models", default=None,
              help="Model(s), comma-separated: a model YAML (yolov8n-scsa.yaml), a .pt checkpoint or run folder, "
                   "or a stock model with scale (yolov8n) combined with --attns.")
@click.option("--attns", default=None, help="With stock models: attentions to insert, comma-separated registry names "
                   "(none, se, eca, ca, fca, cbam, sa, ema, cpca, ela, scsa, simam, lska, mlca, caa, scsa-*).")
@click.option("--placement", type=click.Choice(placement_names()), default=None,
              help=f"With --attns: where the attention goes [default: {DEFAULT_PLACEMENT}].")
@click.option("--layer", default=None, help="Profile one attention layer instead (e.g. scsa) on --shape.")
@click.option("--shape", default=None, help="Layer input C,H,W (with --layer), e.g. 256,40,40.")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default=None,
              help="Layer mode: precision (autocast for fp16/bf16). Default: fp16 on GPU, fp32 on CPU.")
@click.option("--no-backward", is_flag=True, help="Layer mode: time the forward pass only.")
@click.option("--imgsz", type=click.IntRange(min=32), default=640, show_default=True, help="Square input size (use the training size).")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Throughput batch. Default: 32 on GPU, 2 on CPU.")
@click.option("--reps", type=click.IntRange(min=0), default=None, help="Timed repetitions (0: params and GFLOPs only). Default: 100 on GPU, 10 on CPU.")
@click.option("--warmup", type=click.IntRange(min=0), default=None, help="Untimed warm-up passes. Default: 10 on GPU, 2 on CPU.")
@click.option("--device", default=None, callback=device_option, help="cpu or a GPU id (default: first GPU, else CPU).")
@click.option("--half/--no-half", default=None, help="fp16 autocast (GPU only). Default: on for GPU.")
@click.option("--records", "records_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write one profile record per model under this folder (for `scsa-yolo report --style table2`).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write all results to this JSON file.")
def profile(models, attns, placement, layer, shape, dtype, no_backward, imgsz, batch, reps, warmup, device, half, records_dir, out):
    """Params, GFLOPs (aten-level FLOP counter, 1 MAC = 2 FLOPs), throughput (images/s) and
    batch-1 latency, following the SCSA paper's protocol on a GPU (batch 32, warm-up, 100
    timed passes, fp16 autocast, CUDA events; the figure is the median of 10 rounds of 10
    passes, so one stall does not move it). Several models are timed side by side in
    interleaved rounds, so host drift does not enter their ratios. On a CPU the same code
    runs with smaller settings and says so.

    \b
    Examples:
      scsa-yolo profile --model yolov8n-scsa.yaml
      scsa-yolo profile --model yolov8n,yolov8s --attns none,se,eca,ca,fca,cbam,scsa --records results/throughput
      scsa-yolo profile --layer scsa --shape 256,40,40
    """
    from scsa_yolo.atomic import write_json_atomic
    from scsa_yolo.bench.profile import profile_layer, profile_models, resolve_device

    if layer is not None:
        if models:
            raise click.UsageError("give either --model or --layer, not both")
        if shape is None:
            raise click.UsageError("--layer needs --shape C,H,W (e.g. --shape 256,40,40)")
        _check_attention(layer, "--layer")
        dev = resolve_device(device)
        chosen = dtype or ("fp16" if dev.type == "cuda" else "fp32")
        result = profile_layer(layer, _parse_shape(shape), batch=batch or (32 if dev.type == "cuda" else 2),
                               reps=reps, warmup=warmup, device=dev, dtype=chosen, backward=not no_backward)
        click.echo(result.summary())
        if out is not None:
            write_json_atomic(result.to_dict(), out)
        return

    targets = _targets(split_list(models) or ["yolov8n-scsa.yaml"], split_list(attns) or [], placement)
    if records_dir is not None:  # before any timing: a record names its model by suite identity
        for _, argument, identity in targets:
            if identity is None:
                raise click.UsageError(f"--records needs a suite model (e.g. yolov8n --attns scsa), not {argument}")
    try:  # all models are timed side by side, in interleaved rounds
        profiled = profile_models([argument for _, argument, _ in targets], imgsz=imgsz, batch=batch, reps=reps,
                                  warmup=warmup, device=device, half=half)
    except FileNotFoundError as error:  # Ultralytics' own, for a model file it cannot find
        raise click.ClickException(str(error)) from None
    results = []
    for (label, argument, identity), result in zip(targets, profiled):
        result.model = label
        click.echo(result.summary())
        results.append(result.to_dict())
        if records_dir is not None:
            path = _write_profile_record(records_dir, identity, argument, result)
            click.echo(f"  record: {path}")
    if out is not None:
        write_json_atomic(results, out)
        click.echo(f"results written to {out}")


def _check_attention(name: str, option: str) -> None:
    from scsa_yolo.identity import IdentityError, attention

    try:
        attention(name)
    except IdentityError as error:
        raise error.for_option(option) from None


def _targets(models: list[str], attns: list[str], placement: str | None) -> list[tuple[str, str, object]]:
    """(display label, argument for YOLO(), ModelId or None) per model to profile."""
    from scsa_yolo.integration.specs import resolve_model

    targets = []
    for attn in attns:
        _check_attention(attn, "--attns")
    for model in models:
        for attn in attns or [None]:
            resolved = resolve_model(model, attn, placement if attn not in (None, "none") else None)
            label = resolved.model_id.name if resolved.model_id is not None else Path(model).stem
            targets.append((label, resolved.argument, resolved.model_id))
    return targets


def _write_profile_record(folder: Path, model_id, argument: str, result) -> Path:
    from scsa_yolo.records import collect_env, make_record, write_record

    name = f"{model_id.name}-{result.imgsz}"
    record = make_record("profile", f"profile/{name}", model_id, model_yaml=str(argument), imgsz=result.imgsz,
                         env=collect_env(result.device), profile=result.to_dict())
    return write_record(record, folder / name / "record.json")


