"""Run a benchmark grid on Ray (``scsa-yolo bench --backend ray``): one Ray task per run.

The planner of :mod:`scsa_yolo.bench.runner` decides what runs (new and resumable runs; the
run folders stay the single source of truth), and each run executes the same worker command
as with the local pool, in its own process, inside a Ray task that asks for the run's
resources (CPUs, and whole or fractional GPUs: Ray sets ``CUDA_VISIBLE_DEVICES`` for it).
So a crash costs one run, and re-running the command after a lost driver, node or task
resumes from the run folders as it does locally.

The out folder (and the data root) must be one folder that the driver and every node read
and write, e.g. an NFS mount. Before the first run a probe task on every node reads a file
the driver wrote there and writes one the driver then reads; a node that does not share the
folder stops the grid before anything trains. On a node that mounts the shared folders at
other paths, ``SCSA_YOLO_BENCH_OUT`` and ``SCSA_YOLO_DATA`` in the environment Ray starts
with give the paths there.

A run whose task fails (a non-zero exit, a lost worker or node) is submitted again, up to
``retries`` times, and resumes from its ``last.pt``; after that it is reported as failed
with its log, and the other runs go on. Every progress report of a run names its node, so
that the summary can say where each attempt of a retried run ended and where it finished.

A driver that dies (even by SIGKILL) takes its runs with it: Ray ends the dead driver's job,
whose Ray workers exit and kill their child processes, each run's worker among them (about a
second after the driver's death, on CPU nodes of one machine), and a worker whose Ray worker
died without that stops itself (:func:`scsa_yolo.bench.worker.watch_parent`). Nothing of the
dead driver writes into the run folders after that, and the same command resumes the runs.
(A multi-GPU run's DDP processes are children of its worker, not of the Ray worker: they are
not covered by this.)

Ctrl-C cancels the submitted tasks; their workers stop the way a Ctrl-C stops a local
worker, keeping the last finished epoch. Ray interrupts a cancelled task only where Python
handles SIGINT, so the task installs that handler itself (a Ray started by a process that
ignores SIGINT passes that on to its workers), and a task still running after a grace period
is ended by force, its worker with it.

Ray is optional (``pip install "scsa-yolo[ray]"``); this module imports it only when used.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scsa_yolo.bench.grid import GridError
from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.bench.runner import (
    RESUME,
    Echo,
    GridOutcome,
    PlannedRun,
    Retried,
    begin_grid,
    headline,
    log_tail,
    prepare_run_dir,
    runs_complete,
    show_progress,
    signal_as_interrupt,
    stop_worker,
    worker_command,
)
from scsa_yolo.bench.worker import HOST_ENV, LOG_NAME, PROGRESS_NAME, read_json, report_progress
from scsa_yolo.data.layout.paths import DATA_ROOT_ENV, default_data_root, resolve_data
from scsa_yolo.records import RECORD_NAME

INSTALL_HINT = 'pip install "scsa-yolo[ray]"'


class ClusterError(ScsaYoloError, RuntimeError):
    """The cluster cannot run the grid as it is (unreachable, no node big enough, folders it
    does not share); the message says what to change."""
OUT_ENV = "SCSA_YOLO_BENCH_OUT"  # the out folder as a node mounts it, when not at the driver's path
PROBE_FOLDER = ".scsa-yolo-probe"
#: Where a run keeps Triton's compiled kernels when its node does not set TRITON_CACHE_DIR: under
#: the out folder, which every node mounts (the probe checks it), so a cluster compiles each
#: fused-SCSA kernel once rather than once per node (a fresh node pays about 20 s before its
#: first SCSA training step: results/perf/COLD_START.md). Triton keys its cache by GPU
#: architecture and versions, so mixed nodes share the folder safely.
KERNEL_CACHE_FOLDER = ".triton-cache"
RETRIES = 2
PROBE_TIMEOUT_S = 300.0
CANCEL_GRACE_S = 30.0  # a cancelled task stops its worker within runner.stop_worker's 10 s grace


def import_ray():
    """The ``ray`` module, or a GridError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise GridError(f"--backend ray needs Ray, which is not installed here. Install it with: {INSTALL_HINT}") \
            from None
    return ray


def check_resources(cpus: float | None, gpus: float | None) -> None:
    """CPUs above 0; GPUs a fraction of one (several runs share it) or a whole number (DDP per run)."""
    if cpus is not None and cpus <= 0:
        raise GridError(f"--cpus-per-run must be more than 0, not {cpus:g}")
    if gpus is None:
        return
    if gpus < 0:
        raise GridError(f"--gpus-per-run must be 0 or more, not {gpus:g}")
    if gpus > 1 and gpus != int(gpus):
        raise GridError(f"--gpus-per-run {gpus:g}: above 1 it must be a whole number of GPUs "
                        "(each run trains with DDP on them)")


def device_for(gpus: float) -> str:
    """The worker's ``--device`` for a task with ``gpus`` GPUs (Ray renumbers them from 0)."""
    if gpus == 0:
        return "cpu"
    return ",".join(str(i) for i in range(max(1, int(gpus))))


def runs_per_gpu(gpus: float) -> int | None:
    """How many runs of the grid one device holds at once (the record's
    ``profile.shared_device_slots``) for tasks of ``gpus`` GPUs each: a fraction packs
    ``1 // gpus`` tasks onto a GPU (0.25: 4), whole GPUs are a task's alone (1).

    None on CPU (``gpus`` 0): Ray runs as many tasks on a node as its CPUs hold over
    ``--cpus-per-run``, which differs per node and is settled only when a task is placed,
    so the driver cannot know it (those timings are CPU ones, which reports never rank).
    """
    if gpus == 0:
        return None
    if gpus >= 1:
        return 1
    return int(1 / gpus + 1e-9)  # a quotient a rounding error under a whole number still counts as it


def node_labels(nodes: list[dict]) -> dict[str, str]:
    """How messages name each node of ``ray.nodes()`` (dead ones included), by node id.

    A node's name from ``ray start --node-name`` where one was given (Ray's default name
    is the node's IP address), else its host name; where several nodes would read the same
    (several Ray nodes on one host) the first 8 hex digits of the node id follow a slash.
    """
    def base(node: dict) -> str:
        name = node.get("NodeName")
        if name and name != node.get("NodeManagerAddress"):
            return name
        return node.get("NodeManagerHostname") or node.get("NodeManagerAddress") or node["NodeID"][:8]

    names = {node["NodeID"]: base(node) for node in nodes}
    counts = Counter(names.values())
    return {node_id: f"{name}/{node_id[:8]}" if counts[name] > 1 else name for node_id, name in names.items()}


# ---------------------------------------------------------------- on the Ray nodes

def _node_paths(out: str, data_root: str, cwd: str) -> tuple[Path, Path, Path]:
    """The out folder, data root and working folder on this node: the node's
    ``SCSA_YOLO_BENCH_OUT`` / ``SCSA_YOLO_DATA`` where set, else the driver's paths."""
    node_out = Path(os.environ.get(OUT_ENV) or out).expanduser()
    node_cwd = Path(cwd) if Path(cwd).is_dir() else node_out
    node_data = Path(os.environ.get(DATA_ROOT_ENV) or data_root).expanduser()
    return node_out, node_cwd / node_data, node_cwd


def probe_task(out: str, data_root: str, cwd: str, token: str, datasets: list[str], files: list[str]) -> dict[str, Any]:
    """Run on one node: read the driver's probe, write this node's, check the grid's inputs."""
    node_out, node_data, node_cwd = _node_paths(out, data_root, cwd)
    folder = node_out / PROBE_FOLDER
    host = socket.gethostname()
    result: dict[str, Any] = {"host": host, "out": str(node_out), "read": False, "wrote": None, "problems": []}
    try:
        result["read"] = (folder / f"{token}.driver").read_text() == token
    except OSError:
        pass
    name = f"{token}.{host}.{os.getpid()}.node"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(token)
        result["wrote"] = name
    except OSError as error:
        result["problems"].append(f"cannot write in {folder}: {error}")
    for dataset in datasets:
        candidate = Path(dataset).expanduser()
        try:
            if candidate.suffix in (".yaml", ".yml"):
                resolve_data(candidate if candidate.is_absolute() else node_cwd / candidate)
            else:
                resolve_data(dataset, node_data)
        except FileNotFoundError as error:
            result["problems"].append(f"dataset {dataset}: {error}")
    for file in files:
        path = Path(file).expanduser()
        if not (path if path.is_absolute() else node_cwd / path).is_file():
            result["problems"].append(f"file not found: {file} (working folder {node_cwd})")
    return result


def run_task(out: str, relative: str, data_root: str, cwd: str, device: str, attempt: int,
             shared_slots: int | None = None) -> dict[str, Any]:
    """Run on one node: one grid point in its own worker process; returns its exit code.

    A ``ray.cancel`` arrives as KeyboardInterrupt: the worker gets SIGINT, as on Ctrl-C. Ray
    cancels a running task with ``_thread.interrupt_main()``, which does nothing while the
    process ignores SIGINT, and a Ray worker ignores it when whatever started Ray did (a
    background job of a shell without job control: ``nohup``, ``... &`` in a script, CI), so
    Python's own handler is set for the task's duration.
    """
    with signal_as_interrupt(signal.SIGINT):
        return _run_worker(out, relative, data_root, cwd, device, attempt, _this_node(), shared_slots)


def _this_node() -> str:
    """This task's node as the driver's messages name it (:func:`node_labels`)."""
    import ray

    try:
        return node_labels(ray.nodes())[ray.get_runtime_context().get_node_id()]
    except Exception:  # the name only labels messages: never fail a run for it
        return socket.gethostname()


def _run_worker(out: str, relative: str, data_root: str, cwd: str, device: str, attempt: int,
                host: str, shared_slots: int | None = None) -> dict[str, Any]:
    node_out, node_data, node_cwd = _node_paths(out, data_root, cwd)
    run_dir = node_out / relative
    command = worker_command(run_dir, device, shared_slots)
    # the worker stops itself if this Ray worker dies (a forced cancel, a lost node); its
    # progress names this node, so that an attempt lost with its node can be placed
    env = {**os.environ, DATA_ROOT_ENV: str(node_data), "SCSA_YOLO_PARENT_PID": str(os.getpid()), HOST_ENV: host}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the local pool does (see runner.execute)
    env.setdefault("TRITON_CACHE_DIR", str(node_out / KERNEL_CACHE_FOLDER))
    report_progress(run_dir, "started", host=host, attempt=attempt)
    with open(run_dir / LOG_NAME, "a") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} Ray task on {host}, attempt {attempt}: "
                  f"{' '.join(command)}\n")
        log.flush()
        process = None
        try:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=node_cwd)
            while True:
                try:
                    code = process.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    continue
        except KeyboardInterrupt:
            if process is not None:
                stop_worker(process)
            raise
    return {"code": code, "host": host}


# ---------------------------------------------------------------- on the driver

@dataclass
class _Submitted:
    planned: PlannedRun
    index: int
    attempt: int
    last_shown: tuple = ()
    earlier: list[str] = field(default_factory=list)  # how the earlier attempts ended, and where


def connect(ray, address: str | None, echo: Echo) -> bool:
    """Connect to the Ray cluster at ``address``, or start a local Ray when None; returns
    whether this call initialised Ray (then the caller shuts it down). A Ray that this
    process already initialised is used as it is."""
    if ray.is_initialized():
        echo("ray: using the Ray this process is already connected to")
        return False
    if address is not None:
        check_client(address)
        check_reachable(address)
    try:
        if address is None:
            # "local": a new Ray, even where `ray start` left one (or its stale address file)
            ray.init(address="local", include_dashboard=False)
        else:
            ray.init(address=address)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = "start a local Ray" if address is None else f"connect to the Ray cluster at {address}"
        hint = ("Start one with `ray start --head` on the head node (and `ray start --address HEAD:6379` on the "
                "others), or leave out --address to start a local Ray.") if address is not None else ""
        reason = str(error).strip().rstrip(".")  # Ray's messages end with a full stop of their own
        raise ClusterError(f"cannot {where}: {reason}. {hint}".strip()) from None
    return True


def check_client(address: str | None) -> None:
    """Refuse a ``ray://`` address at once where Ray's client is missing: plain ``pip install
    ray`` leaves out the gRPC package that it needs (the ``ray[client]`` extra)."""
    if address is None or not address.startswith("ray://"):
        return
    try:
        import grpc  # noqa: F401  -- what Ray's client needs beyond plain Ray
    except ImportError:
        raise GridError(
            f"--address {address}: ray:// addresses need the Ray client, which is not installed here. "
            f'Install it with: {INSTALL_HINT} (or pip install "ray[client]"), or give the head\'s HEAD:6379 '
            "address instead."
        ) from None


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Refuse a HOST:PORT where nothing listens (Ray itself would keep retrying for minutes)."""
    host, sep, port = address.rpartition(":")
    if address == "auto" or address.startswith("ray://") or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ClusterError(f"--address {address}: nothing answers there ({error}). Is the Ray head running? "
                        "`ray start --head` prints the address to use (HOST:6379 by default).") from None


def _alive_nodes(ray) -> list[dict]:
    return [n for n in ray.nodes() if n.get("Alive")]


def describe_cluster(nodes: list[dict]) -> str:
    cpus = sum(n["Resources"].get("CPU", 0) for n in nodes)
    gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
    return f"{len(nodes)} node(s), {cpus:g} CPU(s), {gpus:g} GPU(s)"


def check_fits(nodes: list[dict], cpus: float, gpus: float) -> None:
    """Refuse resources no node has (Ray would wait for them forever); the message names
    the largest nodes: the one with the most CPUs and the one with the most GPUs."""
    def has(node: dict, resource: str) -> float:
        return node["Resources"].get(resource, 0)

    if any(has(n, "CPU") >= cpus and has(n, "GPU") >= gpus for n in nodes):
        return
    labels = node_labels(nodes)
    largest = [max(nodes, key=lambda n: (has(n, "CPU"), has(n, "GPU"))),
               max(nodes, key=lambda n: (has(n, "GPU"), has(n, "CPU")))]
    have = "; ".join(dict.fromkeys(f"{labels[n['NodeID']]}: {has(n, 'CPU'):g} CPU, {has(n, 'GPU'):g} GPU"
                                   for n in largest))
    raise ClusterError(f"no node of the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s) for one run; the largest "
                    f"of its {len(nodes)} node(s): {have}. Lower --cpus-per-run / --gpus-per-run, or add such a node.")


def check_shared_out(ray, out: Path, data_root: Path, cwd: Path, planned: list[PlannedRun], echo: Echo) -> None:
    """Prove, on every node, that the out folder is the driver's (a probe each way) and that
    the grid's datasets and checkpoints are there.

    Raises:
        GridError: a node that cannot see the driver's probe, whose probe the driver cannot
            see, or that misses an input; the message names the node and the paths.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    folder = out / PROBE_FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{token}.driver").write_text(token)
    except OSError as error:
        raise ClusterError(f"cannot write in the out folder {out}: {error}") from None
    datasets = sorted({p.spec.dataset.text for p in planned})
    files = sorted({p.spec.pretrained for p in planned if p.spec.pretrained})
    probe = ray.remote(probe_task)
    nodes = _alive_nodes(ray)
    labels = node_labels(ray.nodes())
    refs = {
        probe.options(num_cpus=0, max_retries=0,
                      scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
        .remote(str(out), str(data_root), str(cwd), token, datasets, files): node
        for node in nodes
    }
    problems = []
    written = []
    try:
        ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        for ref in late:
            ray.cancel(ref, force=True)
            problems.append(f"node {labels[refs[ref]['NodeID']]}: the probe task did not run within "
                            f"{PROBE_TIMEOUT_S:.0f} s")
        for ref in ready:
            name = labels[refs[ref]["NodeID"]]
            try:
                seen = ray.get(ref)
            except ray.exceptions.RayError as error:
                first = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
                problems.append(f"node {name}: the probe task failed ({first}); is scsa-yolo installed in the "
                                "Python environment of the Ray workers there?")
                continue
            where = f"node {name} (host {seen['host']})" if seen["host"] != name else f"node {name}"
            if not seen["read"]:
                problems.append(f"{where}: cannot read the probe this driver wrote in {folder} "
                                f"(the node looked in {seen['out']}/{PROBE_FOLDER})")
            if seen["wrote"]:
                path = folder / seen["wrote"]
                written.append(path)
                if not path.is_file():
                    problems.append(f"{where}: wrote {seen['out']}/{PROBE_FOLDER}/{seen['wrote']}, "
                                    f"which is not in {folder} here")
            problems += [f"{where}: {problem}" for problem in seen["problems"]]
    finally:
        for path in [folder / f"{token}.driver", *written]:
            path.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass  # another grid's probe, or a node's file that never showed up here
    if problems:
        raise ClusterError(
            "the Ray workers do not share this grid's folders:\n" + "\n".join(f"  {p}" for p in problems) +
            f"\n--backend ray needs the out folder ({out}) and the data root ({data_root}) on storage every node "
            f"mounts (NFS or similar), at the same path or at the paths in {OUT_ENV} and {DATA_ROOT_ENV} set on "
            "the nodes before `ray start`."
        )
    echo(f"ray: out folder and inputs checked on {len(nodes)} node(s)")


def execute_on_ray(
    planned: list[PlannedRun],
    out: Path,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float | None = None,
    retries: int = RETRIES,
    echo: Echo = print,
    poll_s: float = 0.5,
) -> GridOutcome:
    """Run every planned run that is not done as a Ray task; returns what happened.

    ``gpus_per_run`` None: 1 when the cluster has GPUs, else 0 (CPU training). A failed run
    is submitted again up to ``retries`` times, then reported in ``GridOutcome.failed``.

    Raises:
        GridError: runs in conflict with their folders, Ray missing or unreachable,
            resources no node has, or folders the nodes do not share.
        KeyboardInterrupt: after cancelling the submitted tasks (state stays resumable).
    """
    started = time.perf_counter()
    check_resources(cpus_per_run, gpus_per_run)
    ray = import_ray()
    outcome, todo = begin_grid(planned, echo)
    total = len(planned)
    if not todo:
        outcome.wall_time_s = time.perf_counter() - started
        return outcome

    out = Path(out).resolve()
    data_root, cwd = default_data_root().resolve(), Path.cwd()
    started_here = connect(ray, address, echo)
    try:
        nodes = _alive_nodes(ray)
        gpus = gpus_per_run
        if gpus is None:
            gpus = 1.0 if any(n["Resources"].get("GPU", 0) > 0 for n in nodes) else 0.0
        check_fits(nodes, cpus_per_run, gpus)
        device = device_for(gpus)
        echo(f"ray: {describe_cluster(nodes)}; per run: {cpus_per_run:g} CPU(s), {gpus:g} GPU(s) (device {device})")
        check_shared_out(ray, out, data_root, cwd, [p for _, p in todo], echo)
        task = ray.remote(run_task)
        pending: dict[Any, _Submitted] = {}

        def submit(item: _Submitted) -> None:
            prepare_run_dir(item.planned)
            try:  # an earlier session's progress would show as this one's
                (item.planned.run_dir / PROGRESS_NAME).unlink(missing_ok=True)
            except OSError:
                pass
            relative = str(item.planned.spec.run_dir(""))
            ref = task.options(num_cpus=cpus_per_run, num_gpus=gpus, max_retries=0,
                               name=f"scsa-yolo {item.planned.spec.run_id}").remote(
                str(out), relative, str(data_root), str(cwd), device, item.attempt, runs_per_gpu(gpus))
            pending[ref] = item
            what = "resuming" if item.planned.state == RESUME else "new"
            if item.attempt > 1:
                what = f"attempt {item.attempt} of {retries + 1}"
            echo(f"[{item.index}/{total}] {item.planned.spec.run_id}: submitted ({what})")

        try:
            with signal_as_interrupt():  # SIGTERM; entered after ray.init, which sets a SIGTERM handler of its own
                for index, item in todo:
                    submit(_Submitted(item, index, 1))
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=poll_s)
                    for item in pending.values():
                        item.last_shown = show_progress(item.index, total, item.planned, item.last_shown, echo)
                    for ref in ready:
                        item = pending.pop(ref)
                        _finish(ray, ref, item, outcome, total, retries, submit, echo)
        except KeyboardInterrupt:
            refs = list(pending)
            forced = cancel_tasks(ray, refs)
            late = f" ({forced} did not stop within {CANCEL_GRACE_S:.0f} s and were ended by force)" if forced else ""
            echo(f"bench interrupted: cancelled {len(refs)} Ray task(s){late}; run the same command again to resume "
                 "(finished runs are kept)")
            raise
    finally:
        if started_here:
            ray.shutdown()
    outcome.wall_time_s = time.perf_counter() - started
    return outcome


def cancel_tasks(ray, refs: list, grace_s: float = CANCEL_GRACE_S) -> int:
    """Cancel the tasks of ``refs``; returns how many had to be ended by force.

    A running task stops its worker with SIGINT (the worker keeps its last finished epoch) and
    returns. One still running after ``grace_s`` is cancelled with ``force``: Ray ends its Ray
    worker and kills that worker's child processes, the run's worker among them (which would
    otherwise stop itself within a second of its parent's death:
    :func:`scsa_yolo.bench.worker.watch_parent`); the run then resumes from its last
    checkpoint like a killed one.
    """
    if not refs:
        return 0
    for ref in refs:
        ray.cancel(ref)
    _, running = ray.wait(refs, num_returns=len(refs), timeout=grace_s)
    for ref in running:
        ray.cancel(ref, force=True)
    if running:
        ray.wait(running, num_returns=len(running), timeout=10)
    return len(running)


def _finish(ray, ref, item: _Submitted, outcome: GridOutcome, total: int, retries: int, submit, echo: Echo) -> None:
    """Book a finished task: completed, submitted again, or failed for good; a run that took
    more than one attempt goes into ``outcome.retried`` with where each attempt ended."""
    run = item.planned
    label = f"[{item.index}/{total}] {run.spec.run_id}"
    record = run.run_dir / RECORD_NAME
    try:
        result = ray.get(ref)
        code, host = result["code"], result["host"]
        short, ended = f"exit code {code}", "failed"
        why = f"{short} on {host}"
    except ray.exceptions.RayError as error:
        # the task never returned (its node or Ray worker died): the attempt's last progress
        # report says where it ran; none when it died before its first
        code, text = None, str(error).strip()
        host = (read_json(run.run_dir / PROGRESS_NAME) or {}).get("host") or "a node it never reported from"
        short, ended = type(error).__name__, "lost"
        why = f"{short} on {host}: {text.splitlines()[-1] if text else ''}".rstrip(": ")
    if code == 0 and record.is_file():
        outcome.completed.append(run)
        if item.earlier:
            outcome.retried.append(Retried(run, item.earlier, host, item.attempt))
        echo(f"{label}: done ({headline(record)}); {runs_complete(outcome, total)}")
        return
    if code == 0:
        why = f"the worker finished on {host} but {record} is not here"
        short = "no record"
    earlier = [*item.earlier, f"attempt {item.attempt} {ended} on {host} ({short})"]
    log = run.run_dir / LOG_NAME
    if item.attempt <= retries:
        echo(f"{label}: attempt {item.attempt} failed ({why}); log: {log}; submitting it again")
        submit(_Submitted(run, item.index, item.attempt + 1, earlier=earlier))
        return
    tail = log_tail(log)
    outcome.failed.append((run, tail))
    if item.attempt > 1:
        outcome.retried.append(Retried(run, earlier, None, item.attempt))
    echo(f"{label}: FAILED after {item.attempt} attempt(s) ({why}); log: {log}\n{tail}")
