"""Run a benchmark grid: plan, skip what is done, resume what was interrupted, show progress.

Each grid point runs as ``python -m scsa_yolo.bench.worker RUN_DIR`` in a subprocess (its
output goes to ``RUN_DIR/worker.log``). Device slots decide the parallelism:

* no devices: one run at a time, Ultralytics picks the device;
* ``devices=["0", "1"]``: one run per GPU at a time, each worker sees only its GPU
  (``CUDA_VISIBLE_DEVICES``) and trains on ``device=0``; an id listed N times is N slots,
  N runs at once on that GPU (each record's ``profile.shared_device_slots`` says N, since
  the throughput a worker times then shares the GPU with the other runs);
* ``ddp=True``: one run at a time on all listed GPUs (``device=0,1``).

A run folder's ``spec.json`` records the settings it was started with; a re-run that asks
for different settings in the same folder is refused (it would silently mix results).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from scsa_yolo.bench.datasets import RESOLVED_KEY, DatasetStatus, resolve_datasets
from scsa_yolo.bench.grid import Grid, GridError, RunSpec
from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.records import RECORD_NAME, RecordError, load_record
from scsa_yolo.atomic import write_json_atomic
from scsa_yolo.child_process import python_command
from scsa_yolo.bench.worker import LOG_NAME, PROGRESS_NAME, SHARED_SLOTS_OPTION, SPEC_NAME, read_json
from scsa_yolo.integration.training import finished_epochs

Echo = Callable[[str], None]

DONE, RESUME, NEW, CONFLICT = "done", "resume", "new", "conflict"


@dataclass
class PlannedRun:
    """A grid point and what a run of the grid will do with it."""

    spec: RunSpec
    run_dir: Path
    state: str  # done | resume | new | conflict
    detail: str = ""
    dataset: DatasetStatus | None = None  # the resolved dataset, written into spec.json


@dataclass
class Retried:
    """A run that took more than one attempt (Ray backend): how and where each attempt before
    the last ended (``attempt 1 lost on node-2 (NodeDiedError)``), and the node the run
    finished on."""

    planned: PlannedRun
    earlier: list[str]
    finished_on: str | None  # None: every attempt failed (then ``earlier`` holds them all)
    attempts: int


@dataclass
class GridOutcome:
    """What a grid execution did."""

    planned: list[PlannedRun]
    completed: list[PlannedRun] = field(default_factory=list)
    skipped: list[PlannedRun] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str]] = field(default_factory=list)
    retried: list[Retried] = field(default_factory=list)
    wall_time_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)  # for the grid's time-left estimate

    @property
    def record_paths(self) -> list[Path]:
        return [p.run_dir / RECORD_NAME for p in self.planned if (p.run_dir / RECORD_NAME).is_file()]


def _settings_differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def plan_runs(runs: list[RunSpec], out: str | Path,
              datasets: dict[str, DatasetStatus] | None = None) -> list[PlannedRun]:
    """Decide, per run, whether it is done, resumable, new, or in conflict with its folder.
    ``datasets``: the grid's resolved datasets by name, for the runs' ``spec.json``."""
    planned = []
    for spec in runs:
        run_dir = spec.run_dir(out)
        dataset = (datasets or {}).get(spec.dataset.text)
        state, detail = _run_state(spec, run_dir)
        planned.append(PlannedRun(spec, run_dir, state, detail, dataset))
    return planned


def _run_state(spec: RunSpec, run_dir: Path) -> tuple[str, str]:
    previous = read_json(run_dir / SPEC_NAME)
    if previous is not None:
        previous = {k: v for k, v in previous.items() if k != RESOLVED_KEY}  # where, not what
        differences = _settings_differences(previous, spec.to_json())
        if differences:
            return CONFLICT, "; ".join(differences)
    record = run_dir / RECORD_NAME
    if record.is_file():
        try:
            load_record(record)
            return DONE, "record exists"
        except RecordError as error:
            return RESUME, f"record invalid, redoing: {'; '.join(error.problems)}"
    if (run_dir / "weights" / "last.pt").is_file():
        return RESUME, "from weights/last.pt"
    return NEW, ""


class RunFolderConflict(GridError):
    """Run folders that hold runs of other settings; the message lists them and the fix."""

    usage = False


def conflicts_message(planned: list[PlannedRun]) -> str | None:
    conflicts = [p for p in planned if p.state == CONFLICT]
    if not conflicts:
        return None
    lines = [f"{len(conflicts)} run folder(s) already hold a run with different settings:"]
    lines += [f"  {p.run_dir}: {p.detail}" for p in conflicts[:10]]
    lines.append("Use another --out folder, or delete those folders to start them again.")
    return "\n".join(lines)


def describe_plan(planned: list[PlannedRun]) -> list[str]:
    """One line per run (used by --dry-run and before a run): its state, schedule and start."""
    width = max((len(p.spec.run_id) for p in planned), default=10)
    starts: dict[str | None, str] = {}
    lines = []
    for i, p in enumerate(planned, 1):
        s = p.spec
        if s.pretrained not in starts:
            starts[s.pretrained] = describe_start(s.pretrained)
        what = f"{s.epochs} epochs, imgsz {s.imgsz}, batch {s.batch}, {starts[s.pretrained]}"
        lines.append(f"  [{i}/{len(planned)}] {s.run_id:<{width}}  {p.state:<8} {what}{'  (' + p.detail + ')' if p.detail and p.state != DONE else ''}")
    return lines


def describe_start(pretrained: str | None) -> str:
    """``from scratch``, ``fine-tuned from PATH (sha256 1a2b3c4d5e6f)``, or, for a checkpoint
    a pretraining step has yet to write, ``fine-tuned from the pretraining step's PATH``."""
    if pretrained is None:
        return "from scratch"
    from scsa_yolo.identity import Pretrained

    if not Path(pretrained).is_file():
        return f"fine-tuned from the pretraining step's {pretrained}"
    return f"fine-tuned from {pretrained} (sha256 {Pretrained.of(pretrained).sha256[:12]})"


def check_models(grid: Grid) -> None:
    """Before anything trains: build the model file of every (model, attention, placement)
    of the grid, and map every pretrained checkpoint into its plain model once, so that a
    checkpoint of another base or scale (or no checkpoint at all) is refused here, not in
    every run's worker.

    Raises:
        GridError: a combination the integration cannot build, or a checkpoint that cannot
            start its model (the message names the model, the checkpoint and the fix).
    """
    import tempfile

    from scsa_yolo.integration.specs import model_argument
    from scsa_yolo.integration.transfer import TransferError, transfer_checkpoint

    for model, plain in zip(grid.models, grid.model_ids):
        for attn in grid.attentions:
            for placement in [None] if attn == "none" else grid.placements:
                try:
                    model_argument(plain.with_(attn=attn, placement=placement))
                except ScsaYoloError as error:
                    raise error.at(f"--models {model} / --attns {attn} / --placement {placement}") from None
        source = grid.pretrained_for(model)
        if source is None:
            continue
        if not Path(source).expanduser().is_file():
            raise GridError(f"pretrained checkpoint for {model} not found: {source}")
        with tempfile.TemporaryDirectory(prefix="scsa-yolo-transfer-check-") as tmp:
            try:
                transfer_checkpoint(source, model_argument(plain).argument, Path(tmp) / "check.pt", compare=False)
            except TransferError as error:
                raise GridError(f"pretrained checkpoint for {model} cannot start it: {error}. Give a plain checkpoint "
                                f"of {model} (e.g. the last.pt of a {model} run), or leave out --pretrained") from None


# How a worker process starts: see scsa_yolo.child_process for why not `python -m`.
# The boot line also unblocks SIGINT and restores Python's handler for it: a process inherits its
# parent's blocked signals (Ray's worker processes block SIGINT) and ignored ones (a shell
# without job control starts background jobs with SIGINT ignored), and either way a worker
# could not be stopped gently (SIGINT, keeping its last epoch) and would be killed after the
# grace period instead.
WORKER_BOOT = (
    "import signal, sys; hasattr(signal, 'pthread_sigmask') and signal.pthread_sigmask(signal.SIG_UNBLOCK, "
    "{signal.SIGINT}); signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from scsa_yolo.bench.worker import main; sys.exit(main(sys.argv[1:]))"
)


def worker_command(run_dir: Path, device: str | None = None, shared_slots: int | None = None) -> list[str]:
    """The command that executes one run in its own process (every backend uses it).

    ``shared_slots``: how many runs of the bench the run's device holds at once (itself
    included); the worker writes it into the record's profile, whose timings it qualifies.
    None: the backend cannot tell.
    """
    command = python_command(WORKER_BOOT, str(run_dir))
    if device is not None:
        command += ["--device", device]
    if shared_slots is not None:
        command += [SHARED_SLOTS_OPTION, str(shared_slots)]
    return command


def prepare_run_dir(item: PlannedRun) -> None:
    """Create the run folder and record the settings the run starts with and its resolved
    dataset (``spec.json``)."""
    item.run_dir.mkdir(parents=True, exist_ok=True)
    resolved = {RESOLVED_KEY: item.dataset.to_json()} if item.dataset is not None else {}
    write_json_atomic({**item.spec.to_json(), **resolved}, item.run_dir / SPEC_NAME)


def prepare_datasets(grid: Grid, echo: Echo, dry_run: bool = False) -> dict[str, Path | str]:
    """What :func:`~scsa_yolo.bench.datasets.resolve_datasets` found, as ``--dry-run``
    shows it: each dataset's data YAML, or the sentence saying what a real run would do or
    need."""
    return {name: status.shown for name, status in resolve_datasets(grid, echo, dry_run).items()}


@dataclass
class _Active:
    planned: PlannedRun
    index: int
    process: subprocess.Popen
    slot: int
    log: object
    last_shown: tuple = ()


def _slots(devices: list[str] | None, ddp: bool) -> list[tuple[str | None, dict[str, str]]]:
    """(device argument, extra environment) per parallel slot."""
    if not devices:
        return [(None, {})]
    if ddp:
        return [(",".join(devices), {})]
    if len(devices) == 1:
        return [(devices[0], {})]
    if "cpu" in devices:
        raise GridError("--devices cpu cannot be combined with GPU ids")
    return [("0", {"CUDA_VISIBLE_DEVICES": d}) for d in devices]


def slots_per_device(slots: list[tuple[str | None, dict[str, str]]]) -> list[int]:
    """Per slot of :func:`_slots`, how many slots run on its device (itself included):
    ``--devices 0,0,1`` gives 2, 2, 1. Slots on one device are equal entries."""
    return [slots.count(slot) for slot in slots]


def execute(
    planned: list[PlannedRun],
    devices: list[str] | None = None,
    ddp: bool = False,
    echo: Echo = print,
    poll_s: float = 0.5,
) -> GridOutcome:
    """Run every planned run that is not done; returns what happened (never raises for a failed run)."""
    started = time.perf_counter()
    outcome, todo = begin_grid(planned, echo)
    total = len(planned)
    slots = _slots(devices, ddp)
    sharing = slots_per_device(slots)
    free = list(range(len(slots)))
    active: list[_Active] = []
    queue = list(todo)

    def start(index: int, item: PlannedRun, slot: int) -> _Active:
        prepare_run_dir(item)
        device, extra_env = slots[slot]
        command = worker_command(item.run_dir, device, sharing[slot])
        log = open(item.run_dir / LOG_NAME, "a")
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)} {extra_env or ''}\n")
        log.flush()
        env = {**os.environ, **extra_env, "SCSA_YOLO_PARENT_PID": str(os.getpid())}
        # CPU workers use every core; OpenMP threads that spin while waiting then collapse
        # (10-100x on attention layers' many small ops) as soon as anything else runs.
        # Measured on 2 cores: passive waiting costs ~7% alone and avoids the collapse.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        where = f" on {device}" if device is not None else ""
        if extra_env:
            where = f" on GPU {extra_env['CUDA_VISIBLE_DEVICES']}"
        echo(f"[{index}/{total}] {item.spec.run_id}: {'resuming' if item.state == RESUME else 'starting'}{where}")
        return _Active(item, index, process, slot, log)

    try:
        while queue or active:
            while queue and free:
                index, item = queue.pop(0)
                active.append(start(index, item, free.pop(0)))
            time.sleep(poll_s)
            for run in list(active):
                _show_progress(run, total, echo)
                code = run.process.poll()
                if code is None:
                    continue
                run.log.close()
                active.remove(run)
                free.append(run.slot)
                record = run.planned.run_dir / RECORD_NAME
                if code == 0 and record.is_file():
                    outcome.completed.append(run.planned)
                    echo(f"[{run.index}/{total}] {run.planned.spec.run_id}: done ({headline(record)}); "
                         f"{runs_complete(outcome, total)}")
                else:
                    tail = log_tail(run.planned.run_dir / LOG_NAME)
                    outcome.failed.append((run.planned, tail))
                    echo(f"[{run.index}/{total}] {run.planned.spec.run_id}: FAILED (exit code {code}); "
                         f"log: {run.planned.run_dir / LOG_NAME}\n{tail}")
    except KeyboardInterrupt:
        for run in active:
            stop_worker(run.process)
            run.log.close()
        echo("bench interrupted; run the same command again to resume (finished runs are kept)")
        raise
    outcome.wall_time_s = time.perf_counter() - started
    return outcome


@contextlib.contextmanager
def signal_as_interrupt(signum: int = signal.SIGTERM):
    """Within the block, signal ``signum`` raises KeyboardInterrupt, so it stops the bench as
    Ctrl-C does (workers stopped gently, the grid resumable).

    For SIGTERM, the default: a scheduler's time limit (Slurm), ``timeout`` or ``kill`` send
    it, and its default action would leave workers training on. For SIGINT in a Ray task: a
    process that ignores SIGINT never sees ``ray.cancel`` (see ``ray_backend.run_task``).
    Only the main thread can set a handler; elsewhere this does nothing. Libraries that set a
    handler of their own (Ray's driver does for SIGTERM, in ``ray.init``) need the block
    entered after them.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signum, signal.default_int_handler)  # raises KeyboardInterrupt
    try:
        yield
    finally:  # a handler set outside Python reads back as None: restore the default then
        signal.signal(signum, signal.SIG_DFL if previous is None else previous)


def begin_grid(planned: list[PlannedRun], echo: Echo) -> tuple[GridOutcome, list[tuple[int, PlannedRun]]]:
    """The start of a grid on any backend: refuse conflicting run folders, count what is
    done, say so; returns the outcome (finished runs as skipped) and the (index, run) pairs
    still to run.

    Raises:
        GridError: run folders holding runs of other settings.
    """
    message = conflicts_message(planned)
    if message:
        raise RunFolderConflict(message)
    outcome = GridOutcome(planned)
    todo = [(i, p) for i, p in enumerate(planned, 1) if p.state != DONE]
    outcome.skipped = [p for p in planned if p.state == DONE]
    echo(f"bench: {len(planned)} run(s): {len(outcome.skipped)} already done, {len(todo)} to run")
    return outcome, todo


def show_progress(index: int, total: int, planned: PlannedRun, last_shown, echo: Echo, pid: int | None = None):
    """Echo what is new in a run's progress file since ``last_shown``; returns what is now shown.

    One poll can find several steps to tell (a short run may start, train and finish between
    two polls): each is echoed in order.
    """
    for _ in range(4):  # started, last epoch, phase: at most three steps behind
        update = progress_update(planned.run_dir, last_shown, pid=pid)
        if update is None:
            break
        last_shown, label = update
        echo(f"[{index}/{total}] {planned.spec.run_id}: {label}")
    return last_shown


def retry_summary(outcomes: list[GridOutcome]) -> list[str]:
    """The final summary's lines on runs that needed more than one attempt: where each
    earlier attempt was lost and where the run finished (empty when none was retried)."""
    retried = [r for outcome in outcomes for r in outcome.retried]
    if not retried:
        return []
    lines = [f"{len(retried)} run(s) needed more than one attempt:"]
    for r in retried:
        end = (f"finished on {r.finished_on} (attempt {r.attempts})" if r.finished_on is not None
               else f"failed on every attempt ({r.attempts})")
        lines.append(f"  {r.planned.spec.run_id}: {'; '.join(r.earlier)}; {end}")
    return lines


def runs_complete(outcome: GridOutcome, total: int) -> str:
    """``3/10 runs complete, about 4:20 left for the grid``: the time left assumes the runs
    still to come take as long, at the same parallelism, as those finished in this session."""
    finished = len(outcome.completed) + len(outcome.skipped)
    text = f"{finished}/{total} runs complete"
    left = total - finished - len(outcome.failed)
    if outcome.completed and left > 0:
        seconds = int(round((time.perf_counter() - outcome.started) / len(outcome.completed) * left))
        text += f", about {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d} left for the grid"
    return text


def headline(record_path: Path) -> str:
    """The main figures and training time of a record, for the line that reports a finished
    run: AP and AP50 (and the mask AP of a segmentation run), or a classifier's top-1 and top-5."""
    try:
        record = json.loads(record_path.read_text())
        m = record["metrics"]
        if "top1" in m:
            figures = f"top1 {100 * m['top1']:.1f}, top5 " + ("-" if m.get("top5") is None else f"{100 * m['top5']:.1f}")
        else:
            figures = f"AP {100 * (m['AP'] or 0):.1f}, AP50 {100 * (m['AP50'] or 0):.1f}"
            if isinstance(m.get("mask"), dict):
                figures += f", mask AP {100 * (m['mask']['AP'] or 0):.1f}"
        return f"{figures}, train {record['wall_time_s'].get('train', 0):.0f}s"
    except (OSError, ValueError, KeyError, TypeError):
        return "record written"


def _show_progress(run: _Active, total: int, echo: Echo) -> None:
    run.last_shown = show_progress(run.index, total, run.planned, run.last_shown, echo, pid=run.process.pid)


def _epoch_detail(progress: dict, epoch: int | None) -> str:
    """``, loss 3.21, 4.2 s/epoch, 0:38 left`` from the worker's figures (when it wrote them
    for this very epoch; the DDP fallback counts rows and has none)."""
    if progress.get("epoch") != epoch or "epoch_s" not in progress:
        return ""
    parts = [f"loss {progress['loss']:.3f}"] if isinstance(progress.get("loss"), (int, float)) else []
    parts.append(f"{progress['epoch_s']:.1f} s/epoch")
    left = int(round(progress.get("eta_s") or 0))
    parts.append(f"{left // 60}:{left % 60:02d} left")
    return ", " + ", ".join(parts)


def progress_update(run_dir: Path, last_shown: tuple, pid: int | None = None) -> tuple[tuple, str] | None:
    """What a run's ``progress.json`` says now, if it changed since ``last_shown``.

    Returns ``(shown, label)``: ``shown`` (phase, epoch) to pass back next time, ``label``
    the text to print (``epoch 3/10``, ``evaluating (pycocotools)``...); None when there is
    nothing new. ``pid``: the worker's process id when the caller knows it; progress written
    by another process (an earlier session of the run) is then ignored.
    """
    progress = read_json(run_dir / PROGRESS_NAME) or {}
    if pid is not None and progress.get("pid") != pid and progress:
        # written by an earlier session of this run; wait for the new worker's first report
        progress = {}
    phase = progress.get("phase")
    epoch, epochs = progress.get("epoch"), progress.get("epochs")
    if progress.get("host") and not any(last_shown or ()) and phase != "started":
        # a Ray attempt says where it runs; the worker's first report can overwrite that
        # before the driver polls, but every report keeps the host
        return ("started", None), f"started on {progress['host']}"
    if phase == "train":
        # DDP ranks do not run our callback (the worker says so): count the rows Ultralytics
        # appends per epoch instead
        rows = finished_epochs(run_dir / "results.csv") if progress.get("ddp") else 0
        if rows and (epoch is None or rows > epoch):
            epoch = min(rows, epochs or rows)
    if phase in ("eval", "profile", "done") and isinstance(epoch, int) and epoch and (last_shown or (None, None))[1] != epoch:
        # training ended between two polls (a loaded machine, a 1-epoch run): its last epoch first
        return ("train", epoch), f"epoch {epoch}/{epochs}{_epoch_detail(progress, epoch)}"
    shown = (phase, epoch)
    if phase is None or shown == last_shown or (phase == "train" and not epoch):
        return None
    # the worker names its scorer: pycocotools (boxes, masks), or top-1/top-5 for a classifier
    label = {"train": f"epoch {epoch}/{epochs}{_epoch_detail(progress, epoch)}",
             "eval": f"evaluating ({progress.get('scorer') or 'pycocotools'})",
             "profile": "profiling", "done": "writing record",
             "started": f"started on {progress.get('host')}"}.get(phase, phase)
    return shown, label


def log_tail(path: Path, lines: int = 15) -> str:
    """The last non-empty lines of a log, indented, for the line that reports a failed run."""
    try:
        text = path.read_text(errors="replace").replace("\r", "\n")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"    {line}" for line in kept)


def stop_worker(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop a worker as Ctrl-C would (SIGINT: it keeps its last finished epoch), killing it after ``grace_s``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
