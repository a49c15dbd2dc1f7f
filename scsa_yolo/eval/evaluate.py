"""Evaluate a trained YOLO model with pycocotools against the dataset's COCO ground truth.

Ultralytics runs the model (its letterboxing, NMS and box rescaling, unchanged); its
validator, changed only in :mod:`scsa_yolo.integration.validation`, hands us every
prediction together with the full path of its image; we map that path to the ground
truth's ``image_id`` through ``file_name`` and the class to ``category_id = class + 1``,
then let pycocotools score them. Ultralytics' own mAP of the same pass is kept alongside
for comparison (it interpolates precision differently and knows no ignore regions, so
the two differ slightly).
"""
from __future__ import annotations

import contextlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.atomic import write_json_atomic
from scsa_yolo.data.layout.ground_truth import category_id_for_class
from scsa_yolo.eval.coco import CocoMetrics, coco_metrics
from scsa_yolo.eval.ground_truth import GroundTruth, ground_truth_for
from scsa_yolo.integration.validation import collecting_validator
from scsa_yolo.records import METRIC_NAMES


class EvalError(ScsaYoloError, RuntimeError):
    """Evaluation cannot proceed; the message says which file or argument is wrong."""


@dataclass
class EvalResult:
    """Everything one evaluation produced; ``metrics`` holds the pycocotools figures."""

    metrics: CocoMetrics
    ultralytics: dict[str, float]  # Ultralytics' own mAP50-95 / mAP50 / mAP75 of the same pass
    weights: str
    data: str
    split: str
    imgsz: int
    batch: int
    conf: float
    iou: float
    max_det: int
    device: str
    ground_truth: str
    ground_truth_built: bool
    detections_path: str | None = None
    n_images_not_loaded: int = 0  # ground-truth images Ultralytics did not load (corrupt/missing)
    not_loaded_examples: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def percent(self) -> dict[str, Any]:
        """The six pycocotools AP figures in percent (the unit of the summary and the reports),
        under ``unit: "%"``; ``metrics`` and :meth:`to_dict` keep fractions, as run records do."""
        return {"unit": "%", **{k: None if getattr(self.metrics, k) is None else round(100 * getattr(self.metrics, k), 4)
                                for k in METRIC_NAMES}}

    def summary(self) -> str:
        """A few human-readable lines: the six AP figures, Ultralytics' mAP, counts (AP in %)."""
        m = self.metrics

        def pct(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:.1f}"

        lines = [
            f"pycocotools bbox AP in % ({self.split}, {m.n_images} images, {m.n_ground_truth} boxes, "
            f"{m.n_ignore_regions} ignore regions, {m.n_detections} detections):",
            "  " + "  ".join(f"{k} {pct(getattr(m, k))}" for k in METRIC_NAMES),
            f"  ultralytics mAP50-95 {pct(self.ultralytics.get('mAP50-95'))}  mAP50 {pct(self.ultralytics.get('mAP50'))}",
        ]
        if m.per_class:
            lines.append("  per class AP: " + ", ".join(f"{k} {pct(v)}" for k, v in m.per_class.items()))
        if self.n_images_not_loaded:
            lines.append(
                f"  warning: {self.n_images_not_loaded} ground-truth image(s) were not loaded by Ultralytics "
                f"(counted as missed), e.g. {self.not_loaded_examples[:3]}"
            )
        return "\n".join(lines)


def resolve_weights(weights_or_run: str | Path) -> Path:
    """A ``.pt`` file as given, or ``weights/best.pt`` (else ``last.pt``) of a run folder."""
    path = Path(weights_or_run).expanduser()
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / "weights" / name).is_file():
                return (path / "weights" / name).resolve()
        raise EvalError(f"{path} is a folder without weights/best.pt or weights/last.pt; pass a run folder or a .pt file")
    if path.is_file():
        if path.suffix != ".pt":
            raise EvalError(f"{path}: expected a trained checkpoint (.pt) or a run folder, got a '{path.suffix}' file")
        return path.resolve()
    raise EvalError(f"model not found: {path} (pass a run folder or a .pt checkpoint)")


def evaluate(
    weights_or_run: str | Path,
    data: str | Path | None = None,
    split: str = "val",
    imgsz: int | None = None,
    batch: int = 16,
    device: str | int | None = None,
    conf: float = 0.001,
    iou: float = 0.7,
    max_det: int = 300,
    out_dir: str | Path | None = None,
    workers: int | None = None,
) -> EvalResult:
    """Validate a checkpoint with Ultralytics and score its boxes with pycocotools.

    Args:
        weights_or_run: a ``.pt`` checkpoint or a run folder (``weights/best.pt`` is used).
        data: dataset name (prepared under the data root) or data YAML; default: the data
            the checkpoint was trained on.
        split: which split of the data YAML to evaluate.
        imgsz: inference size; default: the training image size of the checkpoint.
        conf, iou, max_det: Ultralytics NMS settings (defaults are Ultralytics' val ones).
        out_dir: where the detections JSON (and a built ground truth) are kept; a temporary
            folder, deleted afterwards, when None.

    Raises:
        EvalError: missing weights, or predictions that do not match the ground truth.
        DatasetNotPrepared: ``data`` is neither a data YAML nor a prepared dataset.
    """
    from scsa_yolo.data.layout.paths import resolve_data

    started = time.perf_counter()
    weights = resolve_weights(weights_or_run)
    from scsa_yolo.integration.checkpoints import load_yolo

    model = load_yolo(weights)  # registers our layers before the checkpoint is unpickled
    train_args = dict(getattr(model, "ckpt", None) or {}).get("train_args") or {}
    if data is None:
        data = train_args.get("data")
        if not data:
            raise EvalError(f"{weights} does not record its training data; pass --data NAME|YAML")
    data_yaml = resolve_data(data)  # DatasetNotPrepared: a usage error, the user's --data
    imgsz = int(imgsz or train_args.get("imgsz") or 640)

    with tempfile.TemporaryDirectory(prefix="scsa-yolo-val-") as tmp:
        work = Path(out_dir) if out_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            gt = ground_truth_for(data_yaml, split, work)
        except (FileNotFoundError, ValueError) as error:
            raise EvalError(f"{data_yaml}: {error}") from None
        predictions: list[tuple[str, int, list[float], float]] = []
        loaded: list[str] = []
        val_kwargs = dict(
            data=str(data_yaml), split=split, imgsz=imgsz, batch=batch, conf=conf, iou=iou, max_det=max_det,
            save_json=True, plots=False, verbose=False, project=str(work), name="ultralytics_val", exist_ok=True,
        )
        if device is not None:
            val_kwargs["device"] = device
        if workers is not None:
            val_kwargs["workers"] = workers
        ultra = model.val(validator=collecting_validator(predictions, loaded), **val_kwargs)
        ground_truth = json.loads(gt.path.read_text())
        detections, not_loaded = _to_coco_detections(predictions, loaded, ground_truth, gt)
        metrics = coco_metrics(ground_truth, detections)
        detections_path = None
        if out_dir is not None:
            detections_path = str(write_json_atomic(detections, work / f"detections_{split}.json"))
            with contextlib.suppress(OSError):  # Ultralytics' save_dir: left empty, so not left behind
                (work / "ultralytics_val").rmdir()

    return EvalResult(
        metrics=metrics,
        ultralytics={
            "mAP50-95": float(ultra.box.map),
            "mAP50": float(ultra.box.map50),
            "mAP75": float(ultra.box.map75),
        },
        weights=str(weights),
        data=str(data_yaml),
        split=split,
        imgsz=imgsz,
        batch=batch,
        conf=conf,
        iou=iou,
        max_det=max_det,
        device=str(getattr(getattr(model, "device", None), "type", device)),
        ground_truth=str(gt.path),
        ground_truth_built=gt.built,
        detections_path=detections_path,
        n_images_not_loaded=len(not_loaded),
        not_loaded_examples=not_loaded[:10],
        wall_time_s=round(time.perf_counter() - started, 3),
    )


def _to_coco_detections(
    predictions: list[tuple[str, int, list[float], float]],
    loaded: list[str],
    ground_truth: dict,
    gt: GroundTruth,
) -> tuple[list[dict], list[str]]:
    """Map (image path, class, box, score) to COCO results using the GT's file names.

    Returns the detections and the ground-truth file names Ultralytics never loaded.
    """
    ids_by_name = {image["file_name"]: image["id"] for image in ground_truth["images"]}
    category_ids = {c["id"] for c in ground_truth["categories"]}

    def relative(path: str) -> str:
        try:
            return Path(path).relative_to(gt.images_base).as_posix()
        except ValueError:
            raise EvalError(f"image {path} is outside the split folder {gt.images_base} of {gt.path}") from None

    image_ids = {}  # full path -> ground-truth image id, one lookup per image
    unmatched = []
    for path in {p for p, *_ in predictions}:
        name = relative(path)
        if name in ids_by_name:
            image_ids[path] = ids_by_name[name]
        else:
            unmatched.append(name)
    if unmatched:
        raise EvalError(
            f"{len(unmatched)} predicted image(s) have no entry in the ground truth {gt.path}, "
            f"e.g. {sorted(unmatched)[:3]}; is the ground truth stale? (file_name must be relative to {gt.images_base})"
        )
    detections = []
    for path, cls, box, score in predictions:
        category_id = category_id_for_class(cls)
        if category_id not in category_ids:
            raise EvalError(f"the model predicts class {cls}, which {gt.path} does not define; wrong --data?")
        detections.append({"image_id": image_ids[path], "category_id": category_id, "bbox": box, "score": score})
    seen = {relative(p) for p in loaded if Path(p).is_relative_to(gt.images_base)}
    not_loaded = sorted(ids_by_name.keys() - seen)
    return detections, not_loaded
