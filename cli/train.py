"""``scsa-yolo train``: train an Ultralytics YOLO model with an attention on a dataset.

With no arguments it trains ``yolov8n-scsa`` on the built-in synthetic dataset (generated
under the data root on first use) on the GPU when there is one, else on the CPU -- a few
minutes on 2 CPU cores. Everything else Ultralytics' trainer accepts passes through as
``key=value`` (``scsa-yolo train lr0=0.005 mosaic=0.5``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scsa_yolo.cli.command import Command
from scsa_yolo.cliutil import device_option, training_arguments
from scsa_yolo.identity import DEFAULT_PLACEMENT, PLACEMENTS, placement_names

DEFAULT_MODEL = "yolov8n"
DEFAULT_ATTN = "scsa"
DEFAULT_DATA = "synthetic"
DEFAULT_EPOCHS = 20
DEFAULT_IMGSZ = 128
DEFAULT_BATCH = 16

#: Ultralytics keys that have a dedicated option here (``key=value`` would be ambiguous).
_OWN_KEYS = {
    "model": "--model/--attn/--placement",
    "pretrained": "--pretrained",
    "data": "--data",
    "epochs": "--epochs",
    "imgsz": "--imgsz",
    "batch": "--batch",
    "device": "--device",
    "seed": "--seed",
    "project": "--project",
    "name": "--name",
}


def resolve_training_data(data: str, root: Path | None, echo=click.echo) -> Path:
    """Data YAML for ``--data``; a generated dataset (``synthetic``, ``synthetic-lowlight``,
    ...) is generated when missing."""
    from scsa_yolo.data.prepare import resolve_or_prepare

    return resolve_or_prepare(data, root, echo=echo)


def resolve_model(model: str, attn: str | None, placement: str | None, pretrained: bool = False):
    """The model to train (:class:`scsa_yolo.integration.specs.ResolvedModel`): a weights
    file or a YAML file as it is unless ``--attn`` is given, a suite name as it says, and a
    bare stock name with ``--attn`` (default scsa)."""
    from scsa_yolo.integration.specs import resolve_model as resolve

    return resolve(model, attn, placement, default_attn=DEFAULT_ATTN, pretrained=pretrained)


def transfer_pretrained(source: Path, resolved, run_dir: Path) -> Path:
    """``--pretrained``: the checkpoint mapped into the model, written into the run folder."""
    from scsa_yolo.integration.transfer import transfer_checkpoint

    target = run_dir / "pretrained.pt"
    report = transfer_checkpoint(source, resolved.argument, target)
    (run_dir / "transfer.txt").write_text(report.table() + "\n")
    click.echo(f"pretrained: {report.transferred} tensors transferred from {source}, {report.new} new, "
               f"{report.skipped} skipped (table: {run_dir / 'transfer.txt'})")
    return target


def _batch_size(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """A positive batch size, or -1 for Ultralytics' AutoBatch; 0 and other negatives are refused."""
    if value < 1 and value != -1:
        raise click.BadParameter(f"{value}: give a positive number of images per batch, or -1 for Ultralytics' "
                                 "AutoBatch (it picks the size that fits the GPU's memory)", param=param)
    return value


@click.command(
    name="train",
    cls=Command,
    context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]},
)
@click.option("--data", default=DEFAULT_DATA, show_default=True,
              help="Prepared dataset name (see `scsa-yolo data list`) or a data YAML path.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help="Stock model with scale (yolov8n, yolo11s, yolo26m, ...), a model YAML path, or a .pt file.")
@click.option("--attn", default=None,
              help=f"Attention registry name: none, se, eca, ca, fca, cbam, scsa, scsa-... [default with a stock "
                   f"--model: {DEFAULT_ATTN}; a YAML or .pt is trained as it is unless --attn is given].")
@click.option("--placement", type=click.Choice(placement_names()), default=None,
              help=f"Where the attention goes [default: {DEFAULT_PLACEMENT}]: "
                   + "; ".join(f"{p.name}: {p.description}" for p in PLACEMENTS.values()))
@click.option("--pretrained", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Start from this plain checkpoint (e.g. yolov8n.pt), transferred into the model first.")
@click.option("--epochs", type=click.IntRange(min=1), default=DEFAULT_EPOCHS, show_default=True, help="Training epochs.")
@click.option("--imgsz", type=click.IntRange(min=32), default=DEFAULT_IMGSZ, show_default=True,
              help="Training image size (pixels).")
@click.option("--batch", type=int, default=DEFAULT_BATCH, show_default=True, callback=_batch_size,
              help="Batch size (-1: Ultralytics AutoBatch on GPU).")
@click.option("--device", default=None, callback=device_option,
              help="cpu, 0, 0,1 (multi-GPU DDP), ... [default: first GPU if any, else cpu].")
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@click.option("--project", type=click.Path(file_okay=False), default="runs/scsa-yolo", show_default=True,
              help="Folder that receives the run folder.")
@click.option("--name", default=None, help="Run folder name [default: <model>-<attn>[-neck]-<data>].")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data root holding prepared datasets [default: $SCSA_YOLO_DATA or ./datasets].")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def train(data, model, attn, placement, pretrained, epochs, imgsz, batch, device, seed, project, name, root,
          overrides) -> None:
    """Train a YOLO model with an attention (default: yolov8n + SCSA on the synthetic set).

    Extra OVERRIDES are Ultralytics training arguments as key=value, e.g. lr0=0.005 workers=2.

    \b
    Examples:
      scsa-yolo train
      scsa-yolo train --data visdrone --model yolo11s --attn cbam --epochs 100 --device 0,1
      scsa-yolo train --attn scsa-no-pcsa --placement block patience=20
      scsa-yolo train --model yolov8n-scsa-block.yaml --pretrained yolov8n.pt
    """
    stray = [o for o in overrides if o.startswith("-")]  # ignore_unknown_options lets typos land here
    if stray:
        raise click.UsageError(f"unknown option(s): {' '.join(stray)} (see scsa-yolo train --help)")
    extra = training_arguments(overrides, reserved=_OWN_KEYS)
    # every argument is checked before the dataset may be generated (seconds of work)
    resolved = resolve_model(model, attn, placement, pretrained=pretrained is not None)
    data_yaml = resolve_training_data(data, root)
    run_name = name or _default_name(resolved, model, data)
    spec = resolved.argument

    from scsa_yolo.integration.checkpoints import load_yolo

    args: dict[str, Any] = {
        "data": str(data_yaml),
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "seed": seed,
        "project": str(Path(project).absolute()),
        "name": run_name,
        **extra,
    }
    if device is not None:
        args["device"] = device
    if pretrained is not None:
        run_dir = Path(args["project"]) / run_name
        run_dir.mkdir(parents=True, exist_ok=True)
        args["pretrained"] = str(transfer_pretrained(pretrained, resolved, run_dir))
        args["exist_ok"] = True
    click.echo(f"model {spec} | data {data_yaml} | {epochs} epochs at {imgsz} px, batch {batch}")
    from scsa_yolo.data.tasks import check_data_for_task
    from scsa_yolo.integration.progress import plain_ultralytics_bars

    trainer_model = load_yolo(spec)
    check_data_for_task(data_yaml, trainer_model.task)  # masks for segment, class folders for classify
    with plain_ultralytics_bars():  # one line per epoch in a pipe or a log
        trainer_model.train(**args)
    trainer = trainer_model.trainer
    best = Path(trainer.best) if trainer is not None else None
    if best is not None and best.is_file():
        click.echo(f"best weights: {best}")
        metrics = getattr(trainer, "metrics", None) or {}
        shown = {k: metrics[k] for k in ("metrics/mAP50(B)", "metrics/mAP50-95(B)") if k in metrics}
        if shown:
            click.echo("final " + ", ".join(f"{k.split('/')[1][:-3]} {v:.4f}" for k, v in shown.items()))
        click.echo(_evaluation_hint(trainer_model.task, best, data_yaml))


def _evaluation_hint(task: str, best: Path, data_yaml: Path) -> str:
    """How to evaluate the run, or that our evaluation does not cover its task (pose, OBB:
    Ultralytics' own validation above is all there is)."""
    from scsa_yolo.eval.evaluate import EVALUATED_TASKS

    if task not in EVALUATED_TASKS:
        return (f"evaluation skipped: scsa-yolo val and the bench evaluate {', '.join(EVALUATED_TASKS)} models, not "
                f"{task}; the figures above are Ultralytics' own {task} validation")
    scorer = "top-1/top-5" if task == "classify" else "pycocotools"
    return f"evaluate ({scorer}): scsa-yolo val --model {best} --data {data_yaml}"


def _default_name(resolved, model: str, data: str) -> str:
    """``<model id>-<data>``, e.g. ``yolov8n-scsa-block-synthetic``; a user file's stem."""
    stem = resolved.model_id.name if resolved.model_id is not None else Path(model).stem
    if resolved.model_id is not None and resolved.model_id.pretrained:
        stem += "-ft"
    from scsa_yolo.identity import DatasetRef

    return f"{stem}-{DatasetRef(data).key}"

