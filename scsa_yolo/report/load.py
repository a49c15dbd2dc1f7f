"""Turn run records (and plain Ultralytics run folders) into one flat row per run.

Inputs may be record files, folders searched for ``record.json``, or folders of runs made
with the stock ``yolo train`` (``args.yaml`` + ``results.csv``; no record). For the latter
the accuracy is Ultralytics' own mAP of the best epoch (what ``best.pt`` holds), so such
rows are flagged ``source = "ultralytics"`` and reports mark them; AP75 and the size-band
APs do not exist there and stay missing.

Every row carries the run's identity as :class:`~scsa_yolo.identity.ModelId` gives it:
``placement`` (None for the plain model; ``backbone`` for records written before
placements existed), ``start`` (``scratch``, or ``ft`` for a run fine-tuned from a
pretrained checkpoint) and ``method``, the row label (``+SCSA (block)``, ``- (ft)``).
``cpu_timing`` says whether its throughput was timed on a CPU, ``shared_device_slots`` how
many bench runs shared the device while it was timed (None: not recorded); ``resumed`` whether its
training was interrupted and resumed (the record's ``train_mode``); ``gates`` holds the
record's learned gates per layer (``learned_gates.layers``; None for a run without).

Beside the box AP columns, a segmentation record gives ``mask_AP`` ... ``mask_APl`` (its
``metrics.mask``) and a classification record ``top1`` and ``top5``; ``task`` names the
model's task (``detect`` for records written before tasks existed).

Invalid records are never fatal: each one is returned as a problem naming the file.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterable

from scsa_yolo.identity import PRETRAINED_TAG, DatasetRef, IdentityError, ModelId
from scsa_yolo.records import CLASSIFY_METRIC_NAMES as CLASSIFY_METRICS
from scsa_yolo.records import METRIC_NAMES as METRICS
from scsa_yolo.records import RECORD_NAME, RecordError, RecordProblem, try_load_record

COST = ("params", "gflops", "throughput", "latency_ms")
#: a segmentation run's pycocotools segm figures, as row keys (``mask_AP`` ... ``mask_APl``)
MASK_METRICS = tuple(f"mask_{name}" for name in METRICS)
#: the accuracy columns beside the box APs, one set per task (segment, classify)
TASK_METRICS = (*MASK_METRICS, *CLASSIFY_METRICS)
#: every accuracy a row may carry: box AP, mask AP, top-1/top-5
ACCURACY = (*METRICS, *TASK_METRICS)


SCRATCH, FINE_TUNED = "scratch", PRETRAINED_TAG
#: A record's ``train_mode`` when its training was interrupted and continued from ``last.pt``.
RESUMED = "resumed"


def empty_row() -> dict[str, Any]:
    return {
        "dataset": None, "model": None, "family": None, "scale": None, "attn": "none", "label": "-", "method": None,
        "placement": None, "start": SCRATCH, "pretrained": None, "seed": None, "epochs": None, "imgsz": None,
        "task": "detect", **{m: None for m in ACCURACY}, **{c: None for c in COST},
        "device_name": None, "profile_device": None, "cpu_timing": None, "shared_device_slots": None,
        "profile_reduced": None, "profile_batch": None, "profile_half": None,
        "kind": "train", "source": "record", "path": None, "run_id": None, "created_at": None, "resumed": None, "gates": None,
    }


def method_label(model_id: ModelId, fallback_label: str | None = None, mark: str = "") -> str:
    """Row label of a run: ``+SCSA (block)``, ``- (ft)``, ``+SCSA (block, ft)``.

    The placement comes from :attr:`ModelId.method_label`; a fine-tuned run adds
    :data:`~scsa_yolo.identity.PRETRAINED_TAG`. ``mark`` (e.g. a dagger for a plain
    Ultralytics run) follows the attention's name. ``fallback_label`` stands in for an
    attention this installation's registry does not know (a record from another version).
    """
    try:
        label = model_id.label
    except IdentityError:
        label = fallback_label or model_id.attn
    parts = [] if model_id.is_plain else [model_id.placement]
    if model_id.pretrained:
        parts.append(PRETRAINED_TAG)
    return f"{label}{mark} ({', '.join(parts)})" if parts else f"{label}{mark}"


def _model_id_of_spec(spec: dict) -> ModelId | None:
    """The run's identity from a record's spec (None: names this installation does not know)."""
    try:
        return ModelId.from_json(spec)
    except IdentityError:
        return None


def _is_cpu_timing(profile: dict) -> bool | None:
    """Whether a profile's throughput was timed on a CPU (None: no throughput)."""
    if profile.get("throughput") is None and profile.get("latency_ms") is None:
        return None
    if profile.get("device"):
        return str(profile["device"]).lower().startswith("cpu")
    if profile.get("timing"):
        return profile["timing"] != "cuda-events"
    return bool(profile.get("reduced"))


def _shared_device_slots(profile: dict) -> int | None:
    """How many bench runs shared the device while the profile's timings were taken (None:
    no timings, or a record that does not say)."""
    if profile.get("throughput") is None and profile.get("latency_ms") is None:
        return None
    return profile.get("shared_device_slots")


def row_from_record(record: dict) -> dict[str, Any]:
    """One flat row (metrics as fractions, params as a count) from a validated record."""
    spec, metrics, profile = record["spec"], record.get("metrics") or {}, record.get("profile") or {}
    model_id = _model_id_of_spec(spec)
    row = empty_row()
    pretrained = spec.get("pretrained") if isinstance(spec.get("pretrained"), dict) else None
    row.update(
        dataset=spec.get("dataset"), model=spec.get("model"), family=spec.get("family"), scale=spec.get("scale"),
        attn=spec["attn"], label=spec["attn_label"],
        placement=model_id.placement if model_id else spec.get("placement"),
        start=FINE_TUNED if model_id and model_id.pretrained else SCRATCH,
        pretrained=pretrained.get("sha256") if pretrained else None,
        method=method_label(model_id, spec["attn_label"]) if model_id else spec["attn_label"],
        seed=spec.get("seed"),
        epochs=spec.get("epochs"), imgsz=profile.get("imgsz") if record["kind"] == "profile" else spec.get("imgsz"),
        kind=record["kind"], source="record", path=record.get("_path"), run_id=record.get("run_id"),
        created_at=record.get("created_at"), resumed=record.get("train_mode") == RESUMED,
        gates=(record.get("learned_gates") or {}).get("layers") or None,
    )
    for name in (*METRICS, *CLASSIFY_METRICS):
        row[name] = metrics.get(name)
    mask = metrics.get("mask") if isinstance(metrics.get("mask"), dict) else {}
    for name in METRICS:
        row[f"mask_{name}"] = mask.get(name)
    row["task"] = spec.get("task") or "detect"
    if profile:
        row.update(
            params=profile.get("params"), gflops=profile.get("gflops"), throughput=profile.get("throughput"),
            latency_ms=profile.get("latency_ms"), device_name=profile.get("device_name"),
            profile_device=profile.get("device"), cpu_timing=_is_cpu_timing(profile),
            shared_device_slots=_shared_device_slots(profile),
            profile_reduced=profile.get("reduced"), profile_batch=profile.get("batch"), profile_half=profile.get("half"),
        )
    return row


def row_from_ultralytics_run(run_dir: Path) -> dict[str, Any]:
    """A row from a plain Ultralytics run folder: ``args.yaml`` and ``results.csv``.

    The best epoch is the one with the highest Ultralytics fitness, the epoch ``best.pt``
    keeps (:func:`_best_epoch`): its box mAP, a segmentation run's mask mAP too, or a
    classification run's top-1 and top-5.

    Raises:
        RecordError: unreadable files or no metrics in ``results.csv``.
    """
    import yaml

    try:
        args = yaml.safe_load((run_dir / "args.yaml").read_text()) or {}
        with open(run_dir / "results.csv", newline="") as handle:
            rows = [{k.strip(): v for k, v in r.items() if k} for r in csv.DictReader(handle)]
    except (OSError, yaml.YAMLError, csv.Error) as error:
        raise RecordError(run_dir, [f"cannot read the Ultralytics run: {error}"]) from None
    figures = _best_epoch(rows, run_dir)

    model_text = str(args.get("model") or "")
    pretrained = model_text.endswith(".pt") or isinstance(args.get("pretrained"), str)
    model_id = ModelId.try_parse(model_text)
    row = empty_row()
    if model_id is not None:
        model_id = model_id.with_(pretrained=model_id.pretrained or pretrained)
        row.update(
            model=model_id.model, family=model_id.family, scale=model_id.scale, attn=model_id.attn,
            label=model_id.label, placement=model_id.placement, method=method_label(model_id, mark="†"),
            start=FINE_TUNED if model_id.pretrained else SCRATCH,
        )
    else:  # a name outside the suite's scheme: the stem is the model, with no attention known
        stem = Path(model_text).name
        for suffix in (".yaml", ".yml", ".pt"):
            stem = stem.removesuffix(suffix)
        start = FINE_TUNED if pretrained else SCRATCH
        row.update(model=stem or None, method="-†" + (f" ({PRETRAINED_TAG})" if pretrained else ""), start=start)
    row.update(
        dataset=DatasetRef(str(args.get("data") or "unknown")).key,
        seed=args.get("seed"), epochs=args.get("epochs"), imgsz=args.get("imgsz"),
        **figures, source="ultralytics", path=str(run_dir), run_id=run_dir.name,
    )
    return row


#: results.csv columns -> row keys, per task; a run is of the first task whose columns it has
_ULTRALYTICS_COLUMNS = (
    ("classify", {"top1": "metrics/accuracy_top1", "top5": "metrics/accuracy_top5"}),
    ("segment", {"AP": "metrics/mAP50-95(B)", "AP50": "metrics/mAP50(B)",
                 "mask_AP": "metrics/mAP50-95(M)", "mask_AP50": "metrics/mAP50(M)"}),
    ("detect", {"AP": "metrics/mAP50-95(B)", "AP50": "metrics/mAP50(B)"}),
)


def _fitness(task: str, v: dict[str, float]) -> float:
    """Ultralytics' fitness of an epoch: 0.1 mAP50 + 0.9 mAP50-95 (boxes; plus the same of the
    masks for segmentation), the mean of top-1 and top-5 for classification."""
    if task == "classify":
        return (v["top1"] + v["top5"]) / 2
    box = 0.1 * v["AP50"] + 0.9 * v["AP"]
    return box + (0.1 * v["mask_AP50"] + 0.9 * v["mask_AP"] if task == "segment" else 0.0)


def _best_epoch(rows: list[dict], run_dir: Path) -> dict[str, Any]:
    """The row keys (``AP``, ``AP50``, ``mask_AP``, ``top1``, ...) and ``task`` of the
    epoch of highest fitness.

    Raises:
        RecordError: no column of any task, or no epoch with numbers in them.
    """
    header = set(rows[0]) if rows else set()
    for task, columns in _ULTRALYTICS_COLUMNS:
        if set(columns.values()) <= header:
            break
    else:
        raise RecordError(run_dir / "results.csv", ["no 'metrics/mAP50-95(B)' or 'metrics/accuracy_top1' values "
                                                    "(not a detection, segmentation or classification run, or no "
                                                    "epoch finished)"])
    scored = []
    for r in rows:
        try:
            values = {key: float(r[column]) for key, column in columns.items()}
        except (KeyError, TypeError, ValueError):
            continue
        scored.append((_fitness(task, values), values))
    if not scored:
        raise RecordError(run_dir / "results.csv", [f"no '{next(iter(columns.values()))}' values (no epoch finished)"])
    return {**max(scored, key=lambda item: item[0])[1], "task": task}


def _is_ultralytics_run(folder: Path) -> bool:
    return (folder / "args.yaml").is_file() and (folder / "results.csv").is_file() and not (folder / RECORD_NAME).is_file()


def _is_unfinished_bench_run(folder: Path) -> bool:
    """A `scsa-yolo bench` run folder (it has spec.json) whose record is not written yet."""
    return (folder / "spec.json").is_file() and not (folder / RECORD_NAME).is_file()


def load_rows(paths: Iterable[str | Path]) -> tuple[list[dict], list[RecordProblem]]:
    """Rows of every record and plain Ultralytics run under ``paths``, and what was skipped.

    The same file reached twice (e.g. a folder and a file inside it) counts once.
    """
    rows: list[dict] = []
    problems: list[RecordProblem] = []
    seen: set[Path] = set()

    def add_record(path: Path) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        record, problem = try_load_record(path)
        if problem is not None:
            problems.append(problem)
            return
        rows.append(row_from_record(record))

    def add_run(folder: Path) -> None:
        key = folder.resolve()
        if key in seen:
            return
        seen.add(key)
        if _is_unfinished_bench_run(folder):
            problems.append(RecordProblem(folder, "unfinished bench run (no record.json yet); re-run `scsa-yolo bench` to finish it"))
            return
        try:
            rows.append(row_from_ultralytics_run(folder))
        except RecordError as error:
            problems.append(RecordProblem(error.path, "; ".join(error.problems)))

    for entry in map(Path, paths):
        if entry.is_dir():
            if _is_ultralytics_run(entry):
                add_run(entry)
                continue
            for path in sorted(entry.rglob(RECORD_NAME)):
                add_record(path)
            for args in sorted(entry.rglob("args.yaml")):
                if _is_ultralytics_run(args.parent):
                    add_run(args.parent)
            for spec in sorted(entry.rglob("spec.json")):
                if _is_unfinished_bench_run(spec.parent):
                    add_run(spec.parent)
        elif entry.is_file():
            add_record(entry)
        else:
            problems.append(RecordProblem(entry, "no such file or folder"))
    return rows, problems
