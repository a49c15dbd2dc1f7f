"""``scsa-yolo explain``: where a model looks, what its attention gates, how far it sees."""

from __future__ import annotations

from pathlib import Path

import click

from scsa_yolo.explain import PARTS


@click.command(name="explain")
@click.option("--model", "models", multiple=True, required=True,
              help="A checkpoint (.pt), a suite name (yolov8n, yolov8n-scsa-block) or a model YAML. Repeat to "
                   "compare models side by side, plain model first.")
@click.option("--images", "images", multiple=True, required=True, type=click.Path(path_type=Path),
              help="An image file or a folder of images (searched recursively). Repeatable.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder for the pictures, index.md and explain.json.")
@click.option("--layers", "layers", multiple=True,
              help="Attention layers to draw, by row/path as listed in index.md (e.g. 4/m.0.attn, 5/attn, 12) or "
                   "by module name (model.4.m.0.attn); commas or repeats for several. Default: every one.")
@click.option("--imgsz", type=click.IntRange(min=32), default=320, show_default=True,
              help="Square model input (pixels); images are letterboxed to it.")
@click.option("--device", default=None, help="cpu, 0, cuda:0 ... [default: first GPU if any, else cpu].")
@click.option("--conf", type=click.FloatRange(0, 1), default=0.25, show_default=True,
              help="Detection threshold for the CAM and the boxes drawn on it.")
@click.option("--max-images", type=click.IntRange(min=1), default=None,
              help="Use at most this many images (sorted by path).")
@click.option("--cam-images", type=click.IntRange(min=1), default=None,
              help="CAM panels for the first N images only (gates and ERFs still use every image). Default: all.")
@click.option("--gate-rows", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images drawn in each gate picture (the statistics use every image).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images per forward pass for gates and ERFs.")
@click.option("--skip", "skip", multiple=True, type=click.Choice(PARTS),
              help="Leave out a kind of picture (cam, gates, erf). Repeatable.")
@click.option("--note", default="", help="A paragraph for the top of index.md (e.g. where the checkpoints come from).")
def explain(models, images, out, layers, imgsz, device, conf, max_images, cam_images, gate_rows, batch, skip,
            note):
    """Class activation maps, attention gates and effective receptive fields of one or more models.

    \b
    Writes into OUT:
      cam/NNN-<image>.png    the image, then each model's LayerCAM with its detections
      gates/<model>/<layer>.png   per attention layer: spatial gate per group, channel gate
      erf/erf.png            ERF of P3/P4/P5 per model
      index.md, explain.json what each picture shows, and the numbers

    \b
    Example:
      scsa-yolo explain --model runs/plain/weights/best.pt --model runs/scsa-block/weights/best.pt \\
          --images datasets/synthetic/images/val --max-images 4 --out explain --device cpu
    """
    from scsa_yolo.explain import ExplainInputError, LayerSelectionError, explain as run_explain
    from scsa_yolo.integration.specs import ModelArgumentError

    parts = [p for p in PARTS if p not in skip]
    if not parts:
        raise click.UsageError("--skip leaves nothing to do; skip at most two of cam, gates, erf")
    try:
        run_explain(list(models), list(images), out, layers=list(layers), imgsz=imgsz, device=device, conf=conf,
                    max_images=max_images, cam_images=cam_images, gate_rows=gate_rows, batch=batch, parts=parts,
                    note=note, echo=lambda line: click.echo(line, err=True))
    except ExplainInputError as error:
        raise click.BadParameter(str(error), param_hint="--images") from None
    except LayerSelectionError as error:
        raise click.BadParameter(str(error), param_hint="--layers") from None
    except ModelArgumentError as error:
        raise click.BadParameter(str(error), param_hint="--model") from None
    click.echo(f"index: {out / 'index.md'}")
