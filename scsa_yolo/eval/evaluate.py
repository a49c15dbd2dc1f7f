"""Evaluate a trained YOLO model: pycocotools for boxes and masks, top-k for classes.

Ultralytics runs the model (its letterboxing, NMS and box rescaling, unchanged); its
validator, changed only in :mod:`scsa_yolo.integration.validation`, hands us every
prediction together with the full path of its image; we map that path to the ground
truth's ``image_id`` through ``file_name`` and the class to ``category_id = class + 1``,
then let pycocotools score them. Ultralytics' own mAP of the same pass is kept alongside
for comparison (it interpolates precision differently and knows no ignore regions, so
the two differ slightly).

Per task (the checkpoint's own, as Ultralytics reads it):

* ``detect``: pycocotools ``bbox`` (:attr:`EvalResult.metrics`).
* ``segment``: ``bbox`` as for detection plus ``segm`` (:attr:`EvalResult.mask`) from the
  model's masks, RLE-encoded at each image's resolution; the ground truth must hold masks.
* ``classify``: top-1, top-5 and accuracy per class on the split's ``<class>/`` folders
  (:attr:`EvalResult.classification`); the data is the dataset's folder.

:meth:`EvalResult.record_metrics` lays the figures out for a run record (see
:mod:`scsa_yolo.records` for each task's fields).
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
from scsa_yolo.eval.classify import ClassificationMetrics, classification_folder, classification_metrics, split_images
from scsa_yolo.eval.coco import STAT_NAMES, CocoMetrics, coco_metrics
from scsa_yolo.eval.ground_truth import GroundTruth, check_masks, ground_truth_for
from scsa_yolo.integration.validation import (
    collecting_classification_validator,
    collecting_segmentation_validator,
    collecting_validator,
)
from scsa_yolo.records import METRIC_NAMES

#: The tasks :func:`evaluate` scores (Ultralytics' names).
EVALUATED_TASKS = ("detect", "segment", "classify")


class EvalError(ScsaYoloError, RuntimeError):
    """Evaluation cannot proceed; the message says which file or argument is wrong."""


@dataclass
class EvalResult:
    """Everything one evaluation produced.

    ``metrics`` holds the pycocotools box figures (None for a classifier), ``mask`` the
    mask figures of a segmentation model, ``classification`` a classifier's accuracy.
    """

    metrics: CocoMetrics | None
    ultralytics: dict[str, float]  # Ultralytics' own figures of the same pass (mAP50-95 ..., top1/top5)
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
    task: str = "detect"
    mask: CocoMetrics | None = None  # pycocotools segm of a segmentation model
    classification: ClassificationMetrics | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def percent(self) -> dict[str, Any]:
        """The main figures in percent (the unit of the summary and the reports) under
        ``unit: "%"``: the six box AP figures (and ``mask_AP`` ... ``mask_APl`` of a
        segmentation model), or a classifier's ``top1`` and ``top5``. ``metrics`` and
        :meth:`to_dict` keep fractions, as run records do."""
        if self.classification is not None:
            figures = {"top1": self.classification.top1, "top5": self.classification.top5}
        else:
            figures = {k: getattr(self.metrics, k) for k in METRIC_NAMES}
            if self.mask is not None:
                figures.update({f"mask_{k}": getattr(self.mask, k) for k in METRIC_NAMES})
        return {"unit": "%", **{k: None if v is None else round(100 * v, 4) for k, v in figures.items()}}

    def summary(self) -> str:
        """A few human-readable lines (figures in %): the six AP figures (boxes, and masks), or
        top-1 and top-5; Ultralytics' own figures; counts."""
        lines = []
        if self.classification is not None:
            c = self.classification
            lines += [
                f"classification accuracy in % ({self.split}, {c.n_images} images, {c.n_classes} classes):",
                f"  top1 {_pct(c.top1)}  top5 {_pct(c.top5)}"
                + ("" if c.top5 is not None else f" (undefined: {c.n_classes} classes are all in the top 5)"),
                f"  ultralytics top1 {_pct(self.ultralytics.get('top1'))}  top5 {_pct(self.ultralytics.get('top5'))}",
                "  per class top1: " + ", ".join(f"{k} {_pct(v)} ({c.per_class_images[k]})"
                                                 for k, v in c.per_class.items()),
            ]
        for kind, m, prefix in (("bbox", self.metrics, ""), ("segm", self.mask, "mask_")):
            if m is None:
                continue
            objects = "boxes" if kind == "bbox" else "masks"
            lines += [
                f"pycocotools {kind} AP in % ({self.split}, {m.n_images} images, {m.n_ground_truth} {objects}, "
                f"{m.n_ignore_regions} ignore regions, {m.n_detections} detections):",
                "  " + "  ".join(f"{k} {_pct(getattr(m, k))}" for k in METRIC_NAMES),
                f"  ultralytics mAP50-95 {_pct(self.ultralytics.get(f'{prefix}mAP50-95'))}  "
                f"mAP50 {_pct(self.ultralytics.get(f'{prefix}mAP50'))}",
            ]
            if m.per_class:
                lines.append("  per class AP: " + ", ".join(f"{k} {_pct(v)}" for k, v in m.per_class.items()))
        if self.n_images_not_loaded:
            lines.append(
                f"  warning: {self.n_images_not_loaded} ground-truth image(s) were not loaded by Ultralytics "
                f"(counted as missed), e.g. {self.not_loaded_examples[:3]}"
            )
        return "\n".join(lines)

    def record_metrics(self) -> dict[str, Any]:
        """The ``metrics`` section of a run record (the fields :mod:`scsa_yolo.records` lists per task)."""
        common = {"split": self.split, "ultralytics": self.ultralytics,
                  "n_images_not_loaded": self.n_images_not_loaded}
        if self.classification is not None:
            c = self.classification
            return {**common, "top1": c.top1, "top5": c.top5, "per_class": c.per_class,
                    "per_class_images": c.per_class_images, "n_images": c.n_images, "n_classes": c.n_classes,
                    "data_folder": self.ground_truth}
        m = self.metrics
        section = {
            **common,
            **{name: getattr(m, name) for name in STAT_NAMES},
            "per_class": m.per_class,
            "n_images": m.n_images,
            "n_ground_truth": m.n_ground_truth,
            "n_ignore_regions": m.n_ignore_regions,
            "n_detections": m.n_detections,
            "ground_truth": self.ground_truth,
            "ground_truth_built": self.ground_truth_built,
            "conf": self.conf,
            "iou": self.iou,
            "max_det": self.max_det,
        }
        if self.mask is not None:
            section["mask"] = {**{name: getattr(self.mask, name) for name in STAT_NAMES},
                               "per_class": self.mask.per_class, "n_ground_truth": self.mask.n_ground_truth,
                               "n_detections": self.mask.n_detections}
        return section


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


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
    """Validate a checkpoint with Ultralytics and score it: boxes (and masks) with
    pycocotools, or a classifier's top-1 and top-5.

    Args:
        weights_or_run: a ``.pt`` checkpoint or a run folder (``weights/best.pt`` is used).
        data: dataset name (prepared under the data root) or data YAML; for a classifier
            also the dataset's folder; default: the data the checkpoint was trained on.
        split: which split of the data to evaluate.
        imgsz: inference size; default: the training image size of the checkpoint.
        conf, iou, max_det: Ultralytics NMS settings (defaults are Ultralytics' val ones).
        out_dir: where the detections JSON (and a built ground truth) are kept; a temporary
            folder, deleted afterwards, when None.

    Raises:
        EvalError: missing weights, a task that is not evaluated here, or predictions that
            do not match the ground truth.
        MissingMasks: a segmentation model on a split whose ground truth has no masks.
        DatasetNotPrepared: ``data`` is neither a data YAML nor a prepared dataset.
    """
    started = time.perf_counter()
    weights = resolve_weights(weights_or_run)
    from scsa_yolo.integration.checkpoints import load_yolo

    model = load_yolo(weights)  # registers our layers before the checkpoint is unpickled
    task = str(model.task)
    if task not in EVALUATED_TASKS:
        raise EvalError(f"{weights} is a {task} model; evaluation scores {', '.join(EVALUATED_TASKS)} models "
                        f"(use Ultralytics' own `yolo {task} val model={weights}` for a {task} model)")
    train_args = dict(getattr(model, "ckpt", None) or {}).get("train_args") or {}
    if data is None:
        data = train_args.get("data")
        if not data:
            raise EvalError(f"{weights} does not record its training data; pass --data NAME|YAML")
    imgsz = int(imgsz or train_args.get("imgsz") or 640)
    settings = dict(split=split, imgsz=imgsz, batch=batch, conf=conf, iou=iou, max_det=max_det, device=device,
                    workers=workers)
    if task == "classify":
        result = _evaluate_classifier(model, weights, data, out_dir, settings)
    else:
        result = _evaluate_boxes(model, weights, data, out_dir, settings, masks=task == "segment")
    result.wall_time_s = round(time.perf_counter() - started, 3)
    return result


def _run_fields(model, weights: Path, data: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The :class:`EvalResult` fields that say what was evaluated how, for every task."""
    return dict(weights=str(weights), data=str(data), split=settings["split"], imgsz=settings["imgsz"],
                batch=settings["batch"], conf=settings["conf"], iou=settings["iou"], max_det=settings["max_det"],
                device=str(getattr(getattr(model, "device", None), "type", settings["device"])))


def _val_kwargs(settings: dict[str, Any], work: Path) -> dict[str, Any]:
    """``model.val`` arguments: the settings, no plots or files of Ultralytics' own."""
    kwargs = dict(split=settings["split"], imgsz=settings["imgsz"], batch=settings["batch"], plots=False,
                  verbose=False, project=str(work), name="ultralytics_val", exist_ok=True)
    for key in ("device", "workers"):
        if settings[key] is not None:
            kwargs[key] = settings[key]
    return kwargs


def _evaluate_boxes(model, weights: Path, data, out_dir, settings: dict[str, Any], masks: bool) -> EvalResult:
    """Detection (and, with ``masks``, segmentation): pycocotools bbox (and segm)."""
    from scsa_yolo.data.layout.paths import resolve_data

    data_yaml = resolve_data(data)  # DatasetNotPrepared: a usage error, the user's --data
    split = settings["split"]
    with tempfile.TemporaryDirectory(prefix="scsa-yolo-val-") as tmp:
        work = Path(out_dir) if out_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            gt = ground_truth_for(data_yaml, split, work, masks=masks)
        except (FileNotFoundError, ValueError) as error:
            raise EvalError(f"{data_yaml}: {error}") from None
        if masks:
            check_masks(gt, split, data_yaml)
        predictions: list[tuple] = []
        loaded: list[str] = []
        validator = (collecting_segmentation_validator if masks else collecting_validator)(predictions, loaded)
        ultra = model.val(validator=validator, data=str(data_yaml), conf=settings["conf"], iou=settings["iou"],
                          max_det=settings["max_det"], save_json=True, **_val_kwargs(settings, work))
        ground_truth = json.loads(gt.path.read_text())
        detections, not_loaded = _to_coco_detections(predictions, loaded, ground_truth, gt)
        metrics = coco_metrics(ground_truth, detections)
        mask_metrics = coco_metrics(ground_truth, detections, iou_type="segm") if masks else None
        detections_path = None
        if out_dir is not None:
            detections_path = str(write_json_atomic(detections, work / f"detections_{split}.json"))
            with contextlib.suppress(OSError):  # Ultralytics' save_dir: left empty, so not left behind
                (work / "ultralytics_val").rmdir()

    ultralytics = {"mAP50-95": float(ultra.box.map), "mAP50": float(ultra.box.map50), "mAP75": float(ultra.box.map75)}
    if masks:
        ultralytics.update({"mask_mAP50-95": float(ultra.seg.map), "mask_mAP50": float(ultra.seg.map50),
                            "mask_mAP75": float(ultra.seg.map75)})
    return EvalResult(
        metrics=metrics,
        ultralytics=ultralytics,
        **_run_fields(model, weights, data_yaml, settings),
        ground_truth=str(gt.path),
        ground_truth_built=gt.built,
        detections_path=detections_path,
        n_images_not_loaded=len(not_loaded),
        not_loaded_examples=not_loaded[:10],
        task="segment" if masks else "detect",
        mask=mask_metrics,
    )


def _evaluate_classifier(model, weights: Path, data, out_dir, settings: dict[str, Any]) -> EvalResult:
    """Classification: top-1, top-5 and per-class accuracy on the split's class folders."""
    try:
        folder = classification_folder(_classification_data(data))
        images = split_images(folder, settings["split"])
    except FileNotFoundError as error:
        raise EvalError(str(error)) from None
    if not images:
        raise EvalError(f"split '{settings['split']}' of {folder} holds no images in its <class>/ folders")
    store: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="scsa-yolo-val-") as tmp:
        work = Path(out_dir) if out_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ultra = model.val(validator=collecting_classification_validator(store), data=str(folder),
                          **_val_kwargs(settings, work))
        with contextlib.suppress(OSError):
            (work / "ultralytics_val").rmdir()
    if not len(store.get("targets", [])):
        raise EvalError(f"no image of split '{settings['split']}' of {folder} belongs to the model's classes "
                        f"({', '.join(map(str, model.names.values()))}); wrong --data?")
    metrics = classification_metrics(store["targets"], store["ranked"], model.names)
    not_loaded = sorted(str(p.relative_to(folder)) for p in set(images) - {Path(p) for p in store["images"]})
    return EvalResult(
        metrics=None,
        ultralytics={"top1": float(ultra.top1), "top5": float(ultra.top5)},
        **_run_fields(model, weights, folder, settings),
        ground_truth=str(folder / settings["split"]),
        ground_truth_built=False,
        n_images_not_loaded=len(not_loaded),
        not_loaded_examples=not_loaded[:10],
        task="classify",
        classification=metrics,
    )


def _classification_data(data: str | Path) -> Path:
    """A classifier's ``--data``: a folder or data YAML as given, else a prepared dataset's name."""
    from scsa_yolo.data.layout.paths import resolve_data

    path = Path(data).expanduser()
    return path if path.exists() else resolve_data(data)


def _to_coco_detections(
    predictions: list[tuple],
    loaded: list[str],
    ground_truth: dict,
    gt: GroundTruth,
) -> tuple[list[dict], list[str]]:
    """Map (image path, class, box, score[, mask RLE]) to COCO results using the GT's file names.

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
    for path, cls, box, score, *mask in predictions:
        category_id = category_id_for_class(cls)
        if category_id not in category_ids:
            raise EvalError(f"the model predicts class {cls}, which {gt.path} does not define; wrong --data?")
        detection = {"image_id": image_ids[path], "category_id": category_id, "bbox": box, "score": score}
        if mask:
            detection["segmentation"] = mask[0]
        detections.append(detection)
    seen = {relative(p) for p in loaded if Path(p).is_relative_to(gt.images_base)}
    not_loaded = sorted(ids_by_name.keys() - seen)
    return detections, not_loaded
