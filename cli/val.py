"""``scsa-yolo val``: evaluate a trained model (pycocotools boxes and masks, or top-1/top-5)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from scsa_yolo.cli.command import Command
from scsa_yolo.cliutil import device_option


@click.command(name="val", cls=Command)
@click.option("--model", "model", required=True, help="Run folder (its weights/best.pt is used) or a .pt checkpoint.")
@click.option("--data", default=None, help="Dataset name prepared under the data root, or a data YAML (a classifier: "
              "also a folder with val/<class>/). Default: the training data of the checkpoint.")
@click.option("--split", default="val", show_default=True, help="Split of the data YAML to evaluate.")
@click.option("--imgsz", type=click.IntRange(min=32), default=None, help="Inference image size. Default: the training size.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="Batch size.")
@click.option("--device", default=None, callback=device_option,
              help="cpu, 0, 0,1 ... Default: Ultralytics' choice (first GPU, else CPU).")
@click.option("--conf", type=click.FloatRange(0, 1), default=0.001, show_default=True, help="Confidence threshold before NMS.")
@click.option("--iou", type=click.FloatRange(0, 1), default=0.7, show_default=True, help="NMS IoU threshold.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Dataloader workers (Ultralytics default when unset).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the full result (metrics as fractions of 1, as in run records; per-class AP; settings) to "
                   "this JSON file; the detections go next to it.")
def val(model, data, split, imgsz, batch, device, conf, iou, workers, out):
    """Evaluate MODEL on a dataset split: AP, AP50, AP75, APs, APm, APl and AP per class (pycocotools).

    Ultralytics runs the model; its boxes are scored by pycocotools against the dataset's
    COCO ground truth (ignore regions honoured), or against one built from the YOLO labels
    when the dataset has none. Ultralytics' own mAP50-95 is printed for comparison.

    A segmentation model (yolov8n-seg...) is scored for its boxes and for its masks
    (pycocotools segm, the ground truth's polygons); a classification model
    (yolov8n-cls...) for top-1, top-5 and accuracy per class on the split's class folders.
    """
    from scsa_yolo.atomic import write_json_atomic
    from scsa_yolo.eval import evaluate
    from scsa_yolo.integration.progress import plain_ultralytics_bars

    out_dir = None
    if out is not None:
        out_dir = out.parent / f"{out.stem}_files"
    with plain_ultralytics_bars():
        result = evaluate(
            model, data, split=split, imgsz=imgsz, batch=batch, device=device, conf=conf, iou=iou,
            out_dir=out_dir, workers=workers,
        )
    click.echo(result.summary())
    # Only files that outlive the command are named; without --out nothing is kept.
    if out is not None:
        write_json_atomic(result.to_dict(), out)
        click.echo(f"result written to {out} (AP as fractions of 1, as in run records)")
        if result.detections_path:
            click.echo(f"detections written to {result.detections_path}")
    else:
        click.echo(json.dumps(result.percent()))  # the unit of the lines above
        click.echo("(nothing saved; pass --out FILE.json to keep the result and the detections)")
