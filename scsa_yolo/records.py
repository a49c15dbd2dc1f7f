"""Run records: one JSON file per run, the only thing reports read.

A record says what was run (``spec``), where (``env``), what it scored (``metrics``,
pycocotools), what it costs (``profile``), how long it took (``wall_time_s``) and where
Ultralytics left its files (``run_dir``). ``schema_version`` changes whenever a field
changes meaning; readers refuse versions they do not know instead of guessing.

Two kinds exist: ``train`` (a benchmark run: spec, metrics and profile) and ``profile``
(cost figures only, from ``scsa-yolo profile --records``).

``metrics`` depends on the model's task (``spec.task``; records without one are detection):

* ``detect``: pycocotools box figures ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl``
  (and the ARs), ``per_class`` AP, counts and Ultralytics' own mAP.
* ``segment``: the same box figures at the top level (a segmentation run is also a
  detection run: Table 4 reads it as one), plus ``mask``: pycocotools ``segm`` with the
  same names (``mask.AP`` ... ``mask.APl``, ``mask.per_class``, ``mask.n_detections``);
  ``ultralytics`` gains ``mask_mAP50-95``, ``mask_mAP50``, ``mask_mAP75``.
* ``classify``: ``top1`` and ``top5`` (fractions; ``top5`` null for five classes or fewer),
  ``per_class`` top-1 accuracy per class name, ``per_class_images``, ``n_images``,
  ``n_classes``; ``ultralytics`` holds its own ``top1``/``top5``. No AP fields. Both are made by
:func:`make_record`, whose ``spec`` starts from the run's
:class:`scsa_yolo.identity.ModelId`; ``spec.pretrained`` names the checkpoint a fine-tuned
run started from (path and sha256), None for a run from scratch.

Optional: ``profile.shared_device_slots`` (bench runs): how many runs of the bench held the
device at once while this one ran, itself included (1: alone; null: the backend could not
tell); above 1 its throughput and latency were timed beside other training runs.

Optional: ``learned_gates`` (a run whose attention has a learned gate g, the placements
``backbone-res``, ``neck-res`` and ``block-res``): ``{"weights": "weights/last.pt",
"layers": [{"key", "label", "kind", "form", "channels", "mean", "mean_abs", "max_abs",
"min", "max"}, ...]}``, g at the end of training per attention layer; ``scsa-yolo report
--style gates`` tabulates it.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.atomic import write_json_atomic

if TYPE_CHECKING:
    from scsa_yolo.identity import ModelId, Pretrained

SCHEMA_VERSION = 1
RECORD_NAME = "record.json"
KINDS = ("train", "profile")

_NUMBER = (int, float)
_OPT_NUMBER = (int, float, type(None))
_OPT_STR = (str, type(None))
_OPT_INT = (int, type(None))

# Field -> accepted types, per section. Extra fields are allowed (forward-compatible
# additions within a version); missing or mistyped ones are errors.
_TOP_FIELDS = {
    "schema_version": (int,),
    "kind": (str,),
    "run_id": (str,),
    "created_at": (str,),
    "spec": (dict,),
    "env": (dict,),
    "metrics": (dict, type(None)),
    "profile": (dict, type(None)),
    "wall_time_s": (dict,),
    "run_dir": _OPT_STR,
}
_SPEC_FIELDS = {
    "dataset": _OPT_STR,
    "model": (str,),
    "family": _OPT_STR,
    "scale": _OPT_STR,
    "attn": (str,),
    "attn_label": (str,),
    "attn_kwargs": (dict,),
    "placement": _OPT_STR,
    "model_yaml": _OPT_STR,
    "seed": _OPT_INT,
    "epochs": _OPT_INT,
    "imgsz": (int,),
    "batch": _OPT_INT,
    "train_args": (dict,),
}
_ENV_FIELDS = {
    "python": (str,),
    "platform": (str,),
    "scsa_yolo": _OPT_STR,
    "ultralytics": _OPT_STR,
    "torch": _OPT_STR,
    "cuda": _OPT_STR,
    "device_name": (str,),
    "git_commit": _OPT_STR,
}
#: pycocotools' six AP figures (``COCOeval.stats[0:6]``): a record's metrics, the reports' columns
METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")
_METRICS_FIELDS = {
    **{name: _OPT_NUMBER for name in METRIC_NAMES},
    "split": (str,),
    "per_class": (dict,),
    "ultralytics": (dict,),
    "n_images": (int,),
}
#: A classifier's accuracy (``COCO``'s AP has no meaning there): a record's metrics, the reports' columns
CLASSIFY_METRIC_NAMES = ("top1", "top5")
_CLASSIFY_METRICS_FIELDS = {
    "top1": _NUMBER,
    "top5": _OPT_NUMBER,
    "split": (str,),
    "per_class": (dict,),
    "ultralytics": (dict,),
    "n_images": (int,),
}
_MASK_FIELDS = {**{name: _OPT_NUMBER for name in METRIC_NAMES}, "per_class": (dict,)}
_PROFILE_FIELDS = {
    "params": (int,),
    "gflops": _NUMBER,
    "imgsz": (int,),
    "throughput": _OPT_NUMBER,
    "latency_ms": _OPT_NUMBER,
    "batch": (int,),
    "half": (bool,),
    "device_name": (str,),
    "reduced": (bool,),
}


class RecordError(ScsaYoloError, ValueError):
    """A record file that cannot be used; ``path`` names it, ``problems`` say why."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = Path(path)
        self.problems = problems
        super().__init__(f"{path}: invalid run record: " + "; ".join(problems))


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _check_fields(section: dict, fields: dict, where: str) -> list[str]:
    problems = []
    for name, types in fields.items():
        if name not in section:
            problems.append(f"missing '{where}{name}'")
        elif isinstance(section[name], bool) and bool not in types:
            problems.append(f"'{where}{name}' must be {_type_names(types)}, got bool")
        elif not isinstance(section[name], types):
            problems.append(f"'{where}{name}' must be {_type_names(types)}, got {type(section[name]).__name__}")
    return problems


def validate_record(record: Any) -> list[str]:
    """Problems of a record (empty when valid): missing fields, wrong types, bad ranges."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    version = record.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        return [f"schema_version {version} is newer than this scsa-yolo understands ({SCHEMA_VERSION}); upgrade scsa-yolo"]
    if version != SCHEMA_VERSION:
        return [f"schema_version must be {SCHEMA_VERSION}, got {version!r}"]
    problems = _check_fields(record, _TOP_FIELDS, "")
    if problems:
        return problems
    if record["kind"] not in KINDS:
        problems.append(f"'kind' must be one of {list(KINDS)}, got {record['kind']!r}")
    problems += _check_fields(record["spec"], _SPEC_FIELDS, "spec.")
    problems += _check_fields(record["env"], _ENV_FIELDS, "env.")
    if record["kind"] == "train":
        if record["metrics"] is None:
            problems.append("a 'train' record needs 'metrics'")
        if record["spec"].get("dataset") is None:
            problems.append("a 'train' record needs 'spec.dataset'")
    if record["kind"] == "profile" and record["profile"] is None:
        problems.append("a 'profile' record needs 'profile'")
    if record["metrics"] is not None:
        problems += _metrics_problems(record["metrics"], record["spec"].get("task") or "detect")
    if record["profile"] is not None:
        problems += _check_fields(record["profile"], _PROFILE_FIELDS, "profile.")
        shared = record["profile"].get("shared_device_slots")
        if shared is not None and (isinstance(shared, bool) or not isinstance(shared, int) or shared < 1):
            problems.append(f"'profile.shared_device_slots' must be a number of runs (1 or more) or null, got {shared!r}")
    if "learned_gates" in record:
        problems += _gate_problems(record["learned_gates"])
    return problems


_GATE_LAYER_FIELDS = {"key": (str,), "label": (str,), "mean": _NUMBER, "mean_abs": _NUMBER, "max_abs": _NUMBER}


def _gate_problems(gates: Any) -> list[str]:
    """Problems of an optional ``learned_gates`` section (the report's gates style reads it)."""
    if not isinstance(gates, dict) or not isinstance(gates.get("layers"), list):
        return ["'learned_gates' must be an object with a 'layers' list"]
    problems = []
    for i, layer in enumerate(gates["layers"]):
        if not isinstance(layer, dict):
            problems.append(f"'learned_gates.layers[{i}]' must be an object, got {type(layer).__name__}")
        else:
            problems += _check_fields(layer, _GATE_LAYER_FIELDS, f"learned_gates.layers[{i}].")
    return problems


def _fractions(section: dict, names: tuple[str, ...], where: str) -> list[str]:
    return [f"'{where}{name}' must be a fraction in [0, 1], got {section[name]}" for name in names
            if isinstance(section.get(name), _NUMBER) and not isinstance(section.get(name), bool)
            and not 0.0 <= section[name] <= 1.0]


def _metrics_problems(metrics: dict, task: str) -> list[str]:
    """Problems of a ``metrics`` section for a model of ``task`` (see the module docstring)."""
    if task == "classify":
        return (_check_fields(metrics, _CLASSIFY_METRICS_FIELDS, "metrics.")
                + _fractions(metrics, CLASSIFY_METRIC_NAMES, "metrics."))
    problems = _check_fields(metrics, _METRICS_FIELDS, "metrics.") + _fractions(metrics, METRIC_NAMES, "metrics.")
    if task == "segment":
        mask = metrics.get("mask")
        if not isinstance(mask, dict):
            problems.append("a segmentation record needs 'metrics.mask' (pycocotools segm figures)")
        else:
            problems += _check_fields(mask, _MASK_FIELDS, "metrics.mask.") + _fractions(mask, METRIC_NAMES,
                                                                                        "metrics.mask.")
    return problems


def make_record(
    kind: str,
    run_id: str,
    model_id: "ModelId",
    *,
    model_yaml: str | None,
    imgsz: int,
    env: dict[str, Any],
    dataset: str | None = None,
    seed: int | None = None,
    epochs: int | None = None,
    batch: int | None = None,
    train_args: dict | None = None,
    pretrained: "Pretrained | None" = None,
    metrics: dict | None = None,
    profile: dict | None = None,
    wall_time_s: dict | None = None,
    run_dir: str | None = None,
    **extra_spec: Any,
) -> dict:
    """A record of the current schema: the one place its fields are laid out.

    ``extra_spec`` adds run settings beside the schema's (``data_yaml``, ``device``, ...).
    """
    from scsa_yolo.nn.registry import get_attention

    spec = {
        "dataset": dataset,
        **model_id.to_json(),
        "attn_kwargs": dict(get_attention(model_id.attn).kwargs or {}),
        "model_yaml": model_yaml,
        "seed": seed,
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "train_args": dict(train_args or {}),
        "pretrained": pretrained.to_json() if pretrained is not None else None,
        **extra_spec,
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "run_id": run_id,
        "created_at": now_iso(),
        "spec": spec,
        "env": env,
        "metrics": metrics,
        "profile": profile,
        "wall_time_s": dict(wall_time_s or {}),
        "run_dir": run_dir,
    }


def load_record(path: str | Path) -> dict:
    """Read and validate one record.

    Raises:
        RecordError: unreadable JSON or an invalid record (the message names the file).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise RecordError(path, [f"cannot read: {error}"]) from None
    except json.JSONDecodeError as error:
        raise RecordError(path, [f"not valid JSON ({error})"]) from None
    problems = validate_record(data)
    if problems:
        raise RecordError(path, problems)
    return data


def write_record(record: dict, path: str | Path) -> Path:
    """Validate, then write atomically (temporary file + rename) with stable formatting."""
    path = Path(path)
    problems = validate_record(record)
    if problems:
        raise RecordError(path, problems)
    return write_json_atomic(record, path, indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@dataclass
class RecordProblem:
    """A record skipped by a reader, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def try_load_record(path: str | Path) -> tuple[dict | None, RecordProblem | None]:
    """One record with its ``_path`` set, or the problem that makes it unusable."""
    try:
        record = load_record(path)
    except RecordError as error:
        return None, RecordProblem(error.path, "; ".join(error.problems))
    record["_path"] = str(path)
    return record, None


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


#: Packages besides torch and ultralytics whose versions can change a run's figures
#: (a quick-start table once moved with nothing but the environment changed).
RESULT_PACKAGES = ("torchvision", "numpy", "opencv-python", "pillow", "pycocotools")


def collect_env(device: str | None = None) -> dict[str, Any]:
    """Where a run happened: package versions, device, and the project's git commit."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "scsa_yolo": _version("scsa-yolo"),
        "ultralytics": _version("ultralytics"),
        "torch": None,
        "cuda": None,
        "cudnn": None,
        "gpu_count": 0,
        "device": device,
        "device_name": "unknown",
        "cpu": None,
        "git_commit": git_commit(),
        # what else decides a run's numbers: image decoding (opencv, pillow), arrays, evaluation
        "packages": {name: _version(name) for name in RESULT_PACKAGES},
    }
    try:
        import torch

        from scsa_yolo.device import cpu_name, device_name, resolve_device

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["cudnn"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
        env["gpu_count"] = torch.cuda.device_count()
        env["cpu"] = cpu_name()
        env["device_name"] = device_name(resolve_device(_first_device(device)))
        from scsa_yolo.nn.scsa_warmup import triton_cache_dir

        # where compiled fused-SCSA kernels were read and written: a cold folder costs seconds per kernel
        env["kernel_cache"] = str(triton_cache_dir())
    except Exception as error:  # the record is still useful without these
        env["device_name"] = f"unknown ({error})"
    return env


def _first_device(device: str | None) -> str | None:
    if device is None:
        return None
    return str(device).split(",")[0].strip() or None


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The project's commit (``+dirty`` when the tree has changes), or None outside git.

    ``SCSA_YOLO_GIT_COMMIT`` wins when set: a wheel installed from a checkout on another
    machine has no ``.git`` beside it, but the caller knows which commit it built.
    """
    if os.environ.get("SCSA_YOLO_GIT_COMMIT"):
        return os.environ["SCSA_YOLO_GIT_COMMIT"]
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit

