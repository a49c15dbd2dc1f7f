"""``scsa-yolo models``: generate model YAMLs with attention rows, list and measure them."""

from __future__ import annotations

from pathlib import Path

import click

from scsa_yolo.cli.command import Group
from scsa_yolo.models.catalog import (
    COMMITTED_ATTENTIONS,
    STOCK_BASES,
    attention_row,
    cfg_models_dir,
    committed_models,
    make_model_text,
)
from scsa_yolo.identity import DEFAULT_PLACEMENT, PLACEMENTS
from scsa_yolo.atomic import write_text_atomic


@click.group(name="models", cls=Group)
def models() -> None:
    """Generate and inspect model YAMLs with attention rows."""


def write_committed_set(out_dir: Path, echo=click.echo) -> list[Path]:
    """Write every committed YAML into ``out_dir``; returns the paths written."""
    written = []
    rows = {}
    for base, attn, placement, _name in committed_models():
        row = rows.setdefault(attn, attention_row(attn))
        name, text = make_model_text(base, row, placement)
        written.append(write_text_atomic(out_dir / name, text))
        echo(f"wrote {out_dir / name}")
    return written


@models.command("make")
@click.option("--base", default="yolov8", show_default=True,
              help=f"Base model YAML: {', '.join(STOCK_BASES)} (from the installed ultralytics) or a path.")
@click.option("--attn", default="scsa", show_default=True,
              help="Attention registry name (se, eca, ca, fca, cbam, scsa, or an ablation such as scsa-...).")
@click.option("--placement", type=click.Choice(list(PLACEMENTS)), default=DEFAULT_PLACEMENT, show_default=True,
              help="; ".join(f"{p.name}: {p.description}" for p in PLACEMENTS.values()))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder [default: current folder; with --all, the package's cfg/models].")
@click.option("--all", "make_all", is_flag=True,
              help="Regenerate the committed set (every stock detect, segment and classify base x attention x the "
                   "placements its task takes) and its README tables.")
@click.option("--table/--no-table", default=True, show_default=True,
              help="With --all: also measure params/GFLOPs (builds every model at two scales, ~10 min on CPU) and "
                   "write README.md.")
def make(base: str, attn: str, placement: str, out_dir: Path | None, make_all: bool, table: bool) -> None:
    """Write a model YAML with attention rows inserted and every layer index remapped.

    \b
    Examples:
      scsa-yolo models make --base yolo11 --attn cbam --placement neck
      scsa-yolo models make --base my-yolo.yaml --attn scsa-no-pcsa --out cfg/
      scsa-yolo models make --all
    """
    if make_all:
        target = out_dir or cfg_models_dir()
        write_committed_set(target)
        if table:
            from scsa_yolo.models.table import measure_all, write_readme

            click.echo("measuring params and GFLOPs of every model at scales n and s ...")
            path = write_readme(target, measure_all(progress=click.echo))
            click.echo(f"wrote {path}")
        return
    name, text = make_model_text(base, attention_row(attn), placement)
    path = write_text_atomic((out_dir or Path.cwd()) / name, text)
    click.echo(f"wrote {path}")


@models.command("list")
def list_models() -> None:
    """List the committed model YAMLs (use them as model=<family><scale>[-seg|-cls]-<attn>[-<placement>].yaml)."""
    folder = cfg_models_dir()
    click.echo(f"# {folder}")
    for base, attn, placement, name in committed_models():
        state = "" if (folder / name).is_file() else "  (missing: run scsa-yolo models make --all)"
        click.echo(f"{name:<36} base={base:<10} attn={attn:<5} placement={placement}{state}")
    click.echo(f"# attentions: none, {', '.join(COMMITTED_ATTENTIONS)}; others via `scsa-yolo models make`")


@models.command("info")
@click.argument("model")
@click.option("--imgsz", default=640, show_default=True, help="Square input size for the GFLOPs count.")
def info(model: str, imgsz: int) -> None:
    """Params and GFLOPs of MODEL (e.g. yolov8n-scsa.yaml, yolo11s.yaml or a YAML path)."""
    from scsa_yolo.models.table import measure

    try:
        figures = measure(model, imgsz=imgsz)
    except FileNotFoundError as error:
        raise click.ClickException(f"{model}: {error}") from None
    click.echo(f"{model}: {figures.params:,} params, {figures.gflops:.2f} GFLOPs at {imgsz}x{imgsz}")


@models.command("transfer")
@click.option("--weights", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Plain Ultralytics checkpoint of any task (yolov8n.pt, yolov8n-seg.pt, yolo11n-cls.pt, a run's "
                   "best.pt) or a bare state dict.")
@click.option("--model", "model", required=True,
              help="Target model, as `scsa-yolo train --model` takes it: yolov8n (with --attn), "
                   "yolov8n-scsa-block, or a model YAML path.")
@click.option("--attn", default=None, help="Attention to put into a plain --model (se, eca, ..., scsa, scsa-...).")
@click.option("--placement", type=click.Choice(list(PLACEMENTS)), default=None,
              help=f"Where the attention goes [default: {DEFAULT_PLACEMENT}].")
@click.option("--nc", type=click.IntRange(min=1), default=None,
              help="Class count of the target [default: the checkpoint's]; other class outputs are reported as new.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where the attention checkpoint goes (an ordinary Ultralytics .pt).")
def transfer(weights: Path, model: str, attn: str | None, placement: str | None, nc: int | None, out: Path) -> None:
    """Map every tensor of a plain checkpoint into an attention model and save it.

    The two model definitions are aligned row by row (inserted attention rows, residual
    rows, blocks with attention inside, rewritten `from` indices, the Detect, Segment or
    Classify head); every shape is checked, and a per-layer table says what was
    transferred, what is new and what was skipped. Then: yolo train model=<the attention YAML> pretrained=OUT.pt.

    \b
    Examples:
      scsa-yolo models transfer --weights yolov8n.pt --model yolov8n --attn scsa --out yolov8n-scsa.pt
      scsa-yolo models transfer --weights best.pt --model yolov8n-scsa-block --nc 3 --out start.pt
      scsa-yolo models transfer --weights yolov8n-seg.pt --model yolov8n-seg --attn scsa --out seg-scsa.pt
    """
    from scsa_yolo.integration.specs import resolve_model
    from scsa_yolo.integration.transfer import transfer_checkpoint

    resolved = resolve_model(model, attn, placement)
    report = transfer_checkpoint(weights, resolved.argument, out, nc=nc)
    click.echo(report.table())
    click.echo(f"wrote {out}")
    # a suite name resolves from any folder (a generated YAML's cache path would not travel)
    named = resolved.model_id is not None and resolved.model_id.family is not None
    name = resolved.model_id.yaml_name(scaled=True) if named else resolved.argument
    click.echo(f"train from it: yolo train model={name} pretrained={out} data=...")
