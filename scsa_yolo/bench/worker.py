"""One benchmark run, executed in its own process: train, evaluate, profile, write the record.

``python -m scsa_yolo.bench.worker RUN_DIR`` reads ``RUN_DIR/spec.json`` (written by the
runner) and leaves ``RUN_DIR/record.json`` when everything succeeded. Running each grid
point in a separate process means a crash, an out-of-memory kill or a Ctrl-C costs one
run, not the grid.

Restart rules, so that re-running a killed grid continues where it stopped:

* ``weights/last.pt`` of an unfinished training -> Ultralytics ``resume=True``;
* ``weights/last.pt`` of a finished training
  (:func:`scsa_yolo.integration.training.checkpoint_state`) -> straight to evaluation;
* no ``last.pt`` -> the run starts from scratch (stale Ultralytics files are removed first,
  because Ultralytics appends to an existing ``results.csv``).

Progress goes to ``RUN_DIR/progress.json`` (phase, epoch) for the runner to display.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from scsa_yolo.atomic import write_json_atomic
from scsa_yolo.bench.grid import RunSpec
from scsa_yolo.integration.training import checkpoint_state, epoch_loss, use_all_cpu_cores
from scsa_yolo.records import RECORD_NAME, collect_env, make_record, write_record

SPEC_NAME = "spec.json"
PROGRESS_NAME = "progress.json"
TIMING_NAME = "timing.json"
LOG_NAME = "worker.log"
#: The worker's option for how many bench runs share its device (the runner's slots on it):
#: the one source of ``profile.shared_device_slots`` in the record.
SHARED_SLOTS_OPTION = "--shared-device-slots"


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


#: Where this worker runs, as the grid names the place (set by the Ray task: the node); every
#: progress report carries it, so that the driver can say where an attempt that never
#: returned (a lost node) was running.
HOST_ENV = "SCSA_YOLO_HOST"


#: What the phases after training keep from this worker's last epoch report: a driver that
#: polled too late to see the epoch (a 1-epoch run on a fast machine) still shows it, figures included.
CARRIED_EPOCH_KEYS = ("epoch", "epochs", "loss", "epoch_s", "eta_s")


def report_progress(run_dir: Path, phase: str, **extra: Any) -> None:
    where = {"host": os.environ[HOST_ENV]} if os.environ.get(HOST_ENV) else {}
    earlier = read_json(run_dir / PROGRESS_NAME) or {}
    carried = ({k: earlier[k] for k in CARRIED_EPOCH_KEYS if k in earlier}
               if phase != "train" and earlier.get("pid") == os.getpid() else {})
    write_json_atomic({"phase": phase, "time": time.time(), "pid": os.getpid(), **where, **carried, **extra},
                      run_dir / PROGRESS_NAME)


TRANSFERRED_NAME = "pretrained.pt"


def transferred_weights(spec: RunSpec, argument: str, run_dir: Path) -> Path | None:
    """The grid's pretrained checkpoint mapped into this run's model (``argument``, what
    ``YOLO(...)`` builds), in the run folder (made once; every variant of a grid starts
    from the same plain weights)."""
    if spec.pretrained is None:
        return None
    target = run_dir / TRANSFERRED_NAME
    if not target.is_file():
        from scsa_yolo.integration.transfer import transfer_checkpoint

        report = transfer_checkpoint(spec.pretrained, argument, target)
        (run_dir / "transfer.txt").write_text(report.table() + "\n")
    return target


def watch_parent() -> None:
    """Stop this worker when the grid process that started it dies (even by SIGKILL).

    The checkpoint of the last finished epoch stays; the next grid run resumes from it.
    """
    import threading

    expected = os.environ.get("SCSA_YOLO_PARENT_PID")
    if not expected:
        return

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if str(os.getppid()) != expected:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="scsa-yolo-parent-watch", daemon=True).start()


def epoch_figures(trainer, epoch_ends: list[float], started: float, epochs_left: int) -> dict[str, Any]:
    """Training loss, seconds per epoch and the estimated time left, for the progress file."""
    figures: dict[str, Any] = {}
    loss = epoch_loss(trainer)
    if loss is not None:
        figures["loss"] = round(loss, 4)
    per_epoch = (epoch_ends[-1] - started) / len(epoch_ends)
    figures["epoch_s"] = round(per_epoch, 2)
    figures["eta_s"] = round(per_epoch * max(epochs_left, 0), 1)
    return figures


def training_data(argument: str, data_yaml: Path) -> Path:
    """What Ultralytics' trainer takes as ``data`` for the model ``argument``: the data YAML,
    or for a classifier the dataset's folder (``train/<class>/``, ``val/<class>/``)."""
    from scsa_yolo.integration.yolo import model_task

    if model_task(argument) != "classify":
        return data_yaml
    from scsa_yolo.eval.classify import classification_folder

    return classification_folder(data_yaml)


def train(spec: RunSpec, argument: str, run_dir: Path, data_yaml: Path, device: str | None) -> dict[str, Any]:
    """Train the model ``argument`` (or resume, or skip a finished training); returns how it went."""
    from scsa_yolo.integration.checkpoints import load_yolo

    data = training_data(argument, data_yaml)
    last = run_dir / "weights" / "last.pt"
    timing = read_json(run_dir / TIMING_NAME, {}) or {}
    previous = float(timing.get("train_s", 0.0))
    state = checkpoint_state(last) if last.is_file() else "none"
    # A training once resumed stays "resumed" in the record, even when a later session only
    # evaluates it: a resumed run can score differently, and the report marks it.
    resumed = bool(timing.get("resumed"))
    if state == "finished":
        return {"mode": "resumed" if resumed else "already-trained", "train_s": previous}

    if state == "partial":
        model, mode, resumed = load_yolo(last), "resumed", True
        # the folders as they are now: the grid or the data root may have moved since
        kwargs: dict[str, Any] = {"resume": True, "save_dir": str(run_dir), "data": str(data)}
        if device is not None:
            kwargs["device"] = device
    else:
        for stale in ("weights", "results.csv", "args.yaml"):
            target = run_dir / stale
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        previous, resumed = 0.0, False
        start_weights = transferred_weights(spec, argument, run_dir)
        model, mode = load_yolo(argument), "fresh"
        kwargs = {
            "plots": False,  # Ultralytics' plots fetch a font from the internet
            **spec.train_args,
            "data": str(data),
            "epochs": spec.epochs,
            "imgsz": spec.imgsz,
            "batch": spec.batch,
            "seed": spec.seed,
            "deterministic": True,
            "project": str(run_dir.parent.resolve()),
            "name": run_dir.name,
            "exist_ok": True,
        }
        if start_weights is not None:
            kwargs["pretrained"] = str(start_weights)
        if device is not None:
            kwargs["device"] = device

    started = time.perf_counter()

    session_epochs: list[float] = []  # epoch end times of this session (a resume starts anew)

    def on_epoch_end(trainer) -> None:
        now = time.perf_counter()
        elapsed = previous + now - started
        write_json_atomic({"train_s": elapsed, "resumed": resumed}, run_dir / TIMING_NAME)
        # Ultralytics also fires this after its final validation, past the last epoch
        epoch = min(trainer.epoch + 1, trainer.epochs)
        session_epochs.append(now)
        report_progress(run_dir, "train", epoch=epoch, epochs=trainer.epochs,
                        **epoch_figures(trainer, session_epochs, started, trainer.epochs - epoch))

    model.add_callback("on_fit_epoch_end", on_epoch_end)
    model.add_callback("on_train_start", use_all_cpu_cores)
    # Ultralytics trains several GPUs in subprocesses that do not run our callbacks: the
    # runner then counts the rows of results.csv instead
    report_progress(run_dir, "train", epoch=0, epochs=spec.epochs, ddp="," in str(device or ""))
    model.train(**kwargs)
    total = previous + time.perf_counter() - started
    write_json_atomic({"train_s": total, "resumed": resumed}, run_dir / TIMING_NAME)
    return {"mode": mode, "train_s": total}


def run(run_dir: Path, device: str | None = None, shared_slots: int | None = None) -> Path:
    """Execute the run described by ``run_dir/spec.json``; returns the record path.

    ``shared_slots``: how many bench runs held the device while this one ran (its profile
    was timed beside them); None when whoever started the worker did not say."""
    from scsa_yolo.bench.datasets import RESOLVED_KEY, data_yaml_of
    from scsa_yolo.bench.profile import profile_model
    from scsa_yolo.eval import evaluate
    from scsa_yolo.integration.specs import model_argument

    run_dir = run_dir.resolve()
    stored = json.loads((run_dir / SPEC_NAME).read_text())
    spec = RunSpec.from_json(stored)
    started = time.perf_counter()
    data_yaml = data_yaml_of(stored.get(RESOLVED_KEY), run_dir / SPEC_NAME)
    argument = model_argument(spec.model_id).argument

    training = train(spec, argument, run_dir, data_yaml, device)

    # the last epoch rides along: a grid that polled too late to see it still shows it
    scorer = "top-1/top-5" if spec.model_id.task == "classify" else "pycocotools"
    report_progress(run_dir, "eval", epoch=spec.epochs, epochs=spec.epochs, scorer=scorer)
    eval_started = time.perf_counter()
    eval_device = None if device is None else str(device).split(",")[0]
    result = evaluate(run_dir, data_yaml, split="val", imgsz=spec.imgsz, batch=spec.batch, device=eval_device,
                      out_dir=run_dir / "eval", workers=spec.train_args.get("workers"))
    eval_s = time.perf_counter() - eval_started

    report_progress(run_dir, "profile")
    profile_started = time.perf_counter()
    use_all_cpu_cores()  # Ultralytics' validation lowered the thread count; profile as training ran
    profile = profile_model(run_dir, imgsz=spec.imgsz, device=eval_device)
    profile.model = Path(argument).name
    profile_s = time.perf_counter() - profile_started

    record = build_record(spec, argument, run_dir, data_yaml, result, profile, device, shared_slots)
    record["wall_time_s"] = {
        "train": round(training["train_s"], 2),
        "eval": round(eval_s, 2),
        "profile": round(profile_s, 2),
        "total": round(training["train_s"] + eval_s + profile_s, 2),
        "this_session": round(time.perf_counter() - started, 2),
    }
    record["train_mode"] = training["mode"]
    path = write_record(record, run_dir / RECORD_NAME)
    report_progress(run_dir, "done")
    return path


GATES_WEIGHTS = Path("weights") / "last.pt"


def learned_gates(run_dir: Path) -> dict | None:
    """The learned gates g at the end of training (``weights/last.pt``) of a run whose
    attention has them (placements ``backbone-res``, ``neck-res``, ``block-res``), per layer
    (:func:`scsa_yolo.explain.gates.learned_gate_stats`); None for a model without gates.

    Returns:
        ``{"weights": "weights/last.pt", "layers": [{key, label, kind, form, channels,
        mean, mean_abs, max_abs, min, max}, ...]}``.
    """
    last = run_dir / GATES_WEIGHTS
    if not last.is_file():
        return None
    from scsa_yolo.explain.gates import learned_gate_stats
    from scsa_yolo.explain.layers import find_attention_layers
    from scsa_yolo.integration.checkpoints import load_yolo

    layers = learned_gate_stats(find_attention_layers(load_yolo(last, verbose=False).model))
    return {"weights": GATES_WEIGHTS.as_posix(), "layers": layers} if layers else None


def build_record(spec: RunSpec, argument: str, run_dir: Path, data_yaml: Path, result, profile,
                 device: str | None, shared_slots: int | None = None) -> dict:
    """The record of a finished run of the model ``argument`` (see :mod:`scsa_yolo.records`
    for the schema); runs with learned gates carry them (:func:`learned_gates`). The profile
    says how many bench runs shared the device it was timed on (``shared_slots``)."""
    import yaml

    from scsa_yolo.device import cpu_threads
    from scsa_yolo.identity import Pretrained

    args = yaml.safe_load((run_dir / "args.yaml").read_text()) if (run_dir / "args.yaml").is_file() else {}
    record = make_record(
        "train", spec.run_id, spec.model_id,
        dataset=spec.dataset_key,
        model_yaml=str(args.get("model") or argument),
        seed=spec.seed, epochs=spec.epochs, imgsz=spec.imgsz, batch=spec.batch,
        train_args={k: (str(v) if isinstance(v, Path) else v) for k, v in args.items()},
        pretrained=Pretrained.of(spec.pretrained) if spec.pretrained else None,
        env={**collect_env(device), "cpu_threads": cpu_threads()},
        metrics=result.record_metrics(),  # per task: boxes, boxes and masks, or top-1/top-5
        profile={**profile.to_dict(), "shared_device_slots": shared_slots},
        run_dir=str(run_dir),
        data_yaml=str(data_yaml),
        device=device,
        grid_train_args=spec.train_args,
    )
    gates = None if spec.model_id.is_plain else learned_gates(run_dir)
    if gates is not None:
        record["learned_gates"] = gates
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one scsa-yolo benchmark grid point (used by `scsa-yolo bench`).")
    parser.add_argument("run_dir", type=Path, help="folder holding spec.json; the record is written there")
    parser.add_argument("--device", default=None, help="Ultralytics device string (cpu, 0, 0,1)")
    parser.add_argument(SHARED_SLOTS_OPTION, dest="shared_slots", type=int, default=None,
                        help="how many bench runs share the device at once, this one included (for the record)")
    args = parser.parse_args(argv)
    watch_parent()
    from scsa_yolo.integration.progress import plain_ultralytics_bars

    try:
        with plain_ultralytics_bars():  # stdout is worker.log: one line per bar, no redraw codes
            path = run(args.run_dir, args.device, args.shared_slots)
    except KeyboardInterrupt:
        print("worker interrupted; re-run the grid to resume from the last checkpoint", file=sys.stderr)
        return 130
    print(f"record written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
