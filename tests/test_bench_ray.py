"""`scsa-yolo bench --backend ray` on a real Ray: the same records and report as the local pool,
a killed worker retried and resumed, a run that keeps failing reported without stopping the
others, Ctrl-C then a re-run, the shared-folder refusal, and the install hint without Ray.
Then on several nodes (Ray's multi-node test cluster, every node a set of Ray processes on
this machine): a grid spread over three nodes, a node that does not share the folders, runs
that need more than some nodes have, the driver killed mid-grid, a node lost while it
trains a run; and the Slurm script with stand-in srun/scontrol, stopped at its time limit.

One Ray cluster serves the module (started here; its head node has 2 CPUs, and the tests
that need more nodes add them); each bench runs as its own driver process that connects to
it with --address, as on a cluster.
"""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from scsa_yolo.cli.main import main
from scsa_yolo.records import load_record

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402  (after the skip: Ray is optional)

GRID = """\
datasets: [synthetic]
models: {models}
attns: {attns}
placement: [backbone]
seeds: [0]
epochs: {epochs}
imgsz: 64
batch: 4
train_args: {{workers: 0, val: false}}
synthetic: {{num_train: 16, num_val: 4, imgsz: 64}}
report: table4
"""
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
           "per_class", "ultralytics", "n_images", "n_ground_truth", "n_detections")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """Ray's multi-node test cluster, with its head node (2 CPUs, named ``head``) only; this
    process is connected to it. Its nodes see the module's data root (as `ray start` would
    pass the environment it was started with). Yields (root folder, Cluster).

    Its nodes are started with SIGINT ignored, whatever runs pytest: as a Ray started by a
    background job of a shell without job control (`nohup`, `... &` in a script, CI) is. Its
    workers then ignore SIGINT too, which made Ray's cancel a no-op for them (issue 16)."""
    root = tmp_path_factory.mktemp("ray")
    saved = {k: os.environ.get(k) for k in ("SCSA_YOLO_DATA", "YOLO_OFFLINE")}
    os.environ.update(SCSA_YOLO_DATA=str(root / "data"), YOLO_OFFLINE="1")
    with _sigint_ignored():
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False,
                                                              "node_name": "head"})
        ray.init(address=nodes.address, log_to_driver=False)

    def sigint_disposition():  # nested: Ray ships it by value (the workers cannot import this module)
        return signal.getsignal(signal.SIGINT)

    try:
        disposition = ray.get(ray.remote(sigint_disposition).options(num_cpus=0).remote())
        assert disposition == signal.SIG_IGN, f"the Ray workers handle SIGINT ({disposition})"
        yield root, nodes
    finally:
        ray.shutdown()
        nodes.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    """(root folder, address) of the module's Ray cluster."""
    root, nodes = ray_cluster
    return root, nodes.address


class _sigint_ignored:
    """Start Ray processes with SIGINT ignored (see ``ray_cluster``)."""

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


def _add_node(nodes: Cluster, name: str, env: dict | None = None, **resources):
    """A Ray node named ``name`` in the test cluster; ``env``: its own environment variables
    (its Ray processes, and so its tasks, start with them, as a node's `ray start` would)."""
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    try:
        with _sigint_ignored():
            return nodes.add_node(node_name=name, include_dashboard=False, **resources)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _grid(folder: Path, name: str, models="[yolov8n]", attns="[none]", epochs=1, pretrained=None) -> Path:
    path = folder / f"{name}.yaml"
    text = GRID.format(models=models, attns=attns, epochs=epochs)
    path.write_text(text + (f"pretrained: {pretrained}\n" if pretrained else ""))
    return path


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "scsa_yolo.cli.main", "bench", *map(str, args)]


def _bench(*args) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), capture_output=True, text=True, timeout=600)


def _progress(run: Path) -> dict:
    try:
        return json.loads((run / "progress.json").read_text())
    except (OSError, ValueError):
        return {}


def _wait_for_epoch(run: Path, process: subprocess.Popen, timeout: float = 300) -> dict:
    """progress.json of the worker once it reports a finished epoch (its last.pt is saved)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        progress = _progress(run)
        if progress.get("phase") == "train" and progress.get("epoch", 0) >= 1:
            return progress
        time.sleep(0.02)
    raise AssertionError(f"no epoch finished in {run} (bench exit code {process.poll()})")


def _epochs_logged(run: Path) -> list[int]:
    rows = (run / "results.csv").read_text().strip().splitlines()[1:]
    return [int(float(row.split(",")[0])) for row in rows]


@pytest.fixture(scope="module")
def both_backends(cluster):
    """The same 2-run grid through the local pool and through Ray (without --address: a Ray
    of its own on this machine, beside the module's)."""
    root, address = cluster
    grid = _grid(root, "pair", attns="[none, scsa]")
    local = _bench("--grid", grid, "--out", root / "local")
    assert local.returncode == 0, local.stdout + local.stderr
    started = time.perf_counter()
    on_ray = _bench("--grid", grid, "--out", root / "ray", "--backend", "ray")
    assert on_ray.returncode == 0, on_ray.stdout + on_ray.stderr
    return root, grid, address, on_ray.stdout, time.perf_counter() - started


@pytest.mark.slow
def test_ray_runs_share_one_kernel_cache_in_the_out_folder(both_backends):
    """Issue 28 item 2: a node compiles the fused-SCSA kernels into the out folder every node
    mounts (unless it sets TRITON_CACHE_DIR), so a cluster pays the compile once; each record
    says which folder its run used."""
    import os

    root = both_backends[0]
    from scsa_yolo.bench.ray_backend import KERNEL_CACHE_FOLDER

    expected = os.environ.get("TRITON_CACHE_DIR") or str(root / "ray" / KERNEL_CACHE_FOLDER)
    for name in ("yolov8n-none-s0", "yolov8n-scsa-backbone-s0"):
        assert load_record(root / "ray" / "synthetic" / name / "record.json")["env"]["kernel_cache"] == expected
        local = load_record(root / "local" / "synthetic" / name / "record.json")["env"]["kernel_cache"]
        assert local and (local != expected or "TRITON_CACHE_DIR" in os.environ)  # the local pool keeps the machine's own


def test_ray_backend_gives_the_records_and_report_of_the_local_pool(both_backends):
    root, _, _, output, _ = both_backends
    names = sorted(p.name for p in (root / "local" / "synthetic").iterdir())
    assert names == ["yolov8n-none-s0", "yolov8n-scsa-backbone-s0"]
    assert sorted(p.name for p in (root / "ray" / "synthetic").iterdir()) == names
    for name in names:
        local = load_record(root / "local" / "synthetic" / name / "record.json")
        on_ray = load_record(root / "ray" / "synthetic" / name / "record.json")
        assert on_ray["train_mode"] == local["train_mode"] == "fresh"
        assert on_ray["spec"]["attn"] == local["spec"]["attn"]
        for key in METRICS:
            assert on_ray["metrics"][key] == local["metrics"][key], (name, key)
        assert on_ray["profile"]["params"] == local["profile"]["params"]
        # the local pool ran one run at a time; Ray packs CPU tasks by the node's CPUs: it cannot say
        assert (local["profile"]["shared_device_slots"], on_ray["profile"]["shared_device_slots"]) == (1, None)
    # the Table 4 report (the CSV also holds the measured throughput, which differs run to run)
    assert (root / "ray" / "report.md").read_text() == (root / "local" / "report.md").read_text()
    # the plan, the cluster, the probe, then per-run progress as with the local pool
    assert "bench: 2 run(s): 0 already done, 2 to run" in output
    assert "ray: 1 node(s), " in output and "; per run: 1 CPU(s), 0 GPU(s) (device cpu)" in output
    assert "ray: out folder and inputs checked on 1 node(s)" in output
    for line in ("[1/2] synthetic/yolov8n-none-s0: submitted (new)", "[1/2] synthetic/yolov8n-none-s0: started on ",
                 "[1/2] synthetic/yolov8n-none-s0: epoch 1/1", "[2/2] synthetic/yolov8n-scsa-backbone-s0: epoch 1/1",
                 "[2/2] synthetic/yolov8n-scsa-backbone-s0: done (AP "):
        assert line in output
    assert "Detection accuracy per dataset (Table 4 style)" in output
    assert not (root / "ray" / ".scsa-yolo-probe").exists()


@pytest.mark.slow
def test_rerun_on_ray_skips_finished_runs_without_touching_them(both_backends):
    root, grid, address, _, _ = both_backends
    records = sorted((root / "ray").rglob("record.json"))
    before = [p.stat().st_mtime_ns for p in records]
    result = _bench("--grid", grid, "--out", root / "ray", "--backend", "ray", "--address", address, "--no-report")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 already done, 0 to run" in result.stdout
    assert "submitted" not in result.stdout
    assert [p.stat().st_mtime_ns for p in records] == before


@pytest.mark.slow
def test_killed_worker_is_retried_and_resumes_while_a_broken_run_fails_alone(cluster):
    """SIGKILL of one run's worker costs that attempt only: the task is submitted again and
    resumes from last.pt. Beside it, a run whose model cannot be built fails on every attempt
    and is reported with its log after 3, without stopping the other. (The bench refuses a
    broken pretrained checkpoint before any run, so the broken run is a model YAML with a
    row Ultralytics cannot build, which only the worker's build meets.)"""
    root, address = cluster
    broken = root / "yolo11n-broken.yaml"
    broken.write_text("nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [-1, 1, NoSuchModule, []]\n")
    grid = _grid(root, "kill", models=f"[yolov8n, {broken}]", epochs=4)
    out = root / "kill"
    run = out / "synthetic" / "yolov8n-none-s0"
    process = subprocess.Popen(_command("--grid", grid, "--out", out, "--backend", "ray", "--address", address,
                                        "--no-report"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        progress = _wait_for_epoch(run, process)
        os.kill(progress["pid"], signal.SIGKILL)
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, output
    assert "[1/2] synthetic/yolov8n-none-s0: attempt 1 failed (exit code -9 on " in output
    assert "[1/2] synthetic/yolov8n-none-s0: submitted (attempt 2 of 3)" in output
    assert "[1/2] synthetic/yolov8n-none-s0: done (AP " in output
    record = load_record(run / "record.json")
    assert record["train_mode"] == "resumed"
    assert _epochs_logged(run) == [1, 2, 3, 4]  # each epoch once: continued, not restarted

    [failing] = [p for p in (out / "synthetic").iterdir() if p.name.startswith("yolo11n")]
    assert not (failing / "record.json").exists()
    assert f"synthetic/{failing.name}: FAILED after 3 attempt(s) (exit code 1 on " in output
    assert f"log: {failing / 'worker.log'}" in output
    assert (failing / "worker.log").read_text().count("Ray task on ") == 3
    assert "1 run(s) completed, 0 already done, 1 failed" in output
    assert f"1 run(s) failed: synthetic/{failing.name}" in output
    # the summary: where each attempt of the retried runs ended
    assert "2 run(s) needed more than one attempt:" in output
    assert ("  synthetic/yolov8n-none-s0: attempt 1 failed on head (exit code -9); finished on head (attempt 2)"
            in output)
    assert (f"  synthetic/{failing.name}: attempt 1 failed on head (exit code 1); attempt 2 failed on head "
            "(exit code 1); attempt 3 failed on head (exit code 1); failed on every attempt (3)") in output


@pytest.mark.slow
def test_ctrl_c_cancels_the_tasks_and_the_same_command_resumes(cluster):
    """Ctrl-C on the driver cancels the task, which stops its worker with SIGINT (the worker
    says so in its log) although the Ray workers ignore SIGINT (see the fixture); the same
    command then resumes from the last checkpoint."""
    root, address = cluster
    # 0.4-1 s an epoch alone, several seconds on a loaded 2-core machine; the cancel reaches
    # the worker within a second or two, long before the run could finish
    epochs = 20
    grid = _grid(root, "interrupt", epochs=epochs)
    out = root / "interrupt"
    run = out / "synthetic" / "yolov8n-none-s0"
    args = ("--grid", grid, "--out", out, "--backend", "ray", "--address", address, "--no-report")
    # a shell without job control starts background jobs with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt: give the bench the default disposition, as a terminal would
    process = subprocess.Popen(_command(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        worker = _wait_for_epoch(run, process)["pid"]
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, output
    # not "ended by force": the cancel reached the task, which stopped its worker gently
    assert "bench interrupted: cancelled 1 Ray task(s); run the same command again to resume" in output
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the cancelled task stopped its worker
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"worker {worker} still runs after the cancel")
    assert not (run / "record.json").exists(), "the run finished before it could be interrupted"
    log = (run / "worker.log").read_text()
    assert "worker interrupted; re-run the grid to resume from the last checkpoint" in log, log[-2000:]
    # epochs the checkpoint holds (Ultralytics counts from 0); an interrupt between the
    # results.csv row and the checkpoint of an epoch leaves that row, and the epoch is redone
    kept = torch.load(run / "weights" / "last.pt", map_location="cpu", weights_only=False)["epoch"] + 1
    assert 1 <= kept < epochs

    result = _bench(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 already done, 1 to run" in result.stdout
    assert "[1/1] synthetic/yolov8n-none-s0: submitted (resuming)" in result.stdout
    assert load_record(run / "record.json")["train_mode"] == "resumed"
    logged = _epochs_logged(run)
    assert logged[-(epochs - kept):] == list(range(kept + 1, epochs + 1))  # continued from the checkpoint
    assert sorted(set(logged)) == list(range(1, epochs + 1)) and len(logged) <= epochs + 1


@pytest.mark.slow
def test_refuses_an_out_folder_the_workers_do_not_share(cluster, tmp_path):
    """The tasks of this driver's job see the out folder at another path (SCSA_YOLO_BENCH_OUT
    in their environment, as a node that mounts something else there would): the probe each
    way fails and nothing is started."""
    root, address = cluster
    grid = _grid(root, "pair", attns="[none, scsa]")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    script = textwrap.dedent(f"""
        import ray
        from scsa_yolo.cli.main import main
        ray.init(address={address!r}, runtime_env={{"env_vars": {{"SCSA_YOLO_BENCH_OUT": {str(elsewhere)!r}}}}})
        main(["bench", "--grid", {str(grid)!r}, "--out", {str(out)!r}, "--backend", "ray"])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ray: using the Ray this process is already connected to" in result.stdout
    message = " ".join(result.stderr.split())
    assert "the Ray workers do not share this grid's folders" in message
    assert f"cannot read the probe this driver wrote in {out}/.scsa-yolo-probe" in message
    assert f"(the node looked in {elsewhere}/.scsa-yolo-probe)" in message
    assert f"which is not in {out}/.scsa-yolo-probe here" in message
    assert "SCSA_YOLO_BENCH_OUT" in message and "Traceback" not in result.stderr
    assert [p.suffix for p in (elsewhere / ".scsa-yolo-probe").iterdir()] == [".node"]  # the task's probe
    assert sorted(p.name for p in out.iterdir()) == []  # no run started, the driver's probe removed


def test_resources_no_node_has_are_refused(cluster):
    """Ray would queue such a task forever; the bench says which node has what."""
    root, _ = cluster
    grid = _grid(root, "pair", attns="[none, scsa]")
    result = CliRunner().invoke(main, ["bench", "--grid", str(grid), "--out", str(root / "none"), "--backend", "ray",
                                       "--gpus-per-run", "0.5"])
    assert result.exit_code == 1, result.output
    assert "no node of the Ray cluster has 1 CPU(s) and 0.5 GPU(s) for one run" in result.output
    assert "2 CPU, 0 GPU" in result.output and "Traceback" not in result.output


def test_an_address_where_nothing_listens_is_refused_at_once(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    grid = _grid(tmp_path, "pair")
    started = time.monotonic()
    # its own process: this one may be connected to the module's Ray already
    result = subprocess.run(_command("--grid", grid, "--out", tmp_path / "out", "--backend", "ray",
                                     "--address", f"127.0.0.1:{port}"), capture_output=True, text=True, timeout=300,
                            env={**os.environ, "SCSA_YOLO_DATA": str(tmp_path / "data"), "YOLO_OFFLINE": "1"})
    assert result.returncode == 1, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"--address 127.0.0.1:{port}: nothing answers there" in message
    assert "Is the Ray head running?" in message and time.monotonic() - started < 120


@pytest.mark.parametrize("args, message", [
    (["--address", "auto"], "--address applies only to --backend ray"),
    (["--gpus-per-run", "1", "--cpus-per-run", "2"], "--gpus-per-run, --cpus-per-run apply only to --backend ray"),
    (["--backend", "ray", "--devices", "0,1"], "--devices and --ddp are for --backend local"),
    (["--backend", "ray", "--gpus-per-run", "1.5"], "above 1 it must be a whole number of GPUs"),
    (["--backend", "ray", "--gpus-per-run", "-1"], "--gpus-per-run must be 0 or more"),
    (["--backend", "ray", "--cpus-per-run", "0"], "--cpus-per-run must be more than 0"),
])
def test_backend_option_errors(args, message):
    result = CliRunner().invoke(main, ["bench", *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_backend_ray_without_ray_says_how_to_install_it():
    script = ("import sys; sys.modules['ray'] = None\n"
              "from scsa_yolo.cli.main import main\n"
              "main(['bench', '--backend', 'ray', '--dry-run'])")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'needs Ray, which is not installed here. Install it with: pip install "scsa-yolo[ray]"' in result.stderr
    assert "Traceback" not in result.stderr
    # the local backend needs no Ray
    local = subprocess.run([sys.executable, "-c", script.replace("'--backend', 'ray', ", "").replace(
        "'--dry-run'", "'--help'")], capture_output=True, text=True, timeout=120)
    assert local.returncode == 0 and "--backend [local|ray]" in local.stdout


def test_a_ray_client_address_without_the_client_says_how_to_install_it(tmp_path):
    """Issue 26: `--address ray://...` needs `ray[client]` (gRPC), which plain Ray lacks; the
    bench said so in Ray's words with a double full stop, after preparing the data. Now the
    command refuses at once, names the extra that brings the client, and that extra does."""
    script = ("import sys; sys.modules['grpc'] = None  # Ray without its client extra\n"
              "from scsa_yolo.cli.main import main\n"
              "main(['bench', '--backend', 'ray', '--address', 'ray://127.0.0.1:10001', '--out', sys.argv[1]])")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env={**os.environ, "SCSA_YOLO_DATA": str(tmp_path / "data")})
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stdout + result.stderr
    assert ("--address ray://127.0.0.1:10001: ray:// addresses need the Ray client, which is not installed here. "
            'Install it with: pip install "scsa-yolo[ray]" (or pip install "ray[client]")') in message
    error = message.split("Error: ", 1)[1]
    assert ".." not in error and "Traceback" not in message
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()  # refused before any work

    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    extra = [Requirement(r) for r in pyproject["project"]["optional-dependencies"]["ray"]]
    assert any(r.name == "ray" and "client" in r.extras for r in extra), extra


# ---------------------------------------------------------------- several nodes

def test_nodes_are_named_by_their_node_name_else_their_host_and_told_apart_on_one_host():
    from scsa_yolo.bench.ray_backend import node_labels

    def node(node_id, host, name=None, address="10.0.0.1"):
        return {"NodeID": node_id, "NodeManagerHostname": host, "NodeManagerAddress": address,
                "NodeName": name or address}

    assert node_labels([node("a" * 56, "gpu01", address="10.0.0.1"), node("b" * 56, "gpu02", address="10.0.0.2"),
                        node("c" * 56, "gpu03", name="big", address="10.0.0.3")]) == \
        {"a" * 56: "gpu01", "b" * 56: "gpu02", "c" * 56: "big"}
    # two Ray nodes on one host (a test cluster, or a node started twice)
    assert node_labels([node("1" * 56, "vm"), node("2" * 56, "vm")]) == {"1" * 56: "vm/11111111",
                                                                         "2" * 56: "vm/22222222"}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            state = stat_file.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file()}


def _kept_epochs(run: Path) -> int:
    """Epochs the run's last.pt holds (Ultralytics counts from 0)."""
    return torch.load(run / "weights" / "last.pt", map_location="cpu", weights_only=False)["epoch"] + 1


def _attempts(run: Path) -> list[tuple[str, int]]:
    """(node, attempt) of every Ray task that ran the run, from its worker.log."""
    return [(node, int(attempt)) for node, attempt in
            re.findall(r"Ray task on (\S+), attempt (\d+):", (run / "worker.log").read_text())]


def _assert_continued(run: Path, kept: int, epochs: int) -> None:
    """The run's epochs after the ``kept`` ones of its checkpoint ran once each, after them (a
    stop between an epoch's results.csv row and its checkpoint leaves that row, and the epoch
    is redone), and the next attempt said it resumed there."""
    logged = _epochs_logged(run)
    assert logged[-(epochs - kept):] == list(range(kept + 1, epochs + 1)), logged
    assert sorted(set(logged)) == list(range(1, epochs + 1)) and len(logged) <= epochs + 1, logged
    assert f"from epoch {kept + 1} to {epochs} total epochs" in (run / "worker.log").read_text()


@pytest.mark.slow
def test_a_node_that_does_not_share_the_folders_is_named_before_anything_trains(ray_cluster, tmp_path):
    """A real second node whose Ray started with other SCSA_YOLO_BENCH_OUT and SCSA_YOLO_DATA
    (as a node that mounts other storage there): the probe names that node, and only it, with
    each problem, and nothing is started."""
    root, nodes = ray_cluster
    elsewhere = tmp_path / "elsewhere"
    stray = _add_node(nodes, "stray", env={"SCSA_YOLO_BENCH_OUT": str(elsewhere / "out"),
                                           "SCSA_YOLO_DATA": str(elsewhere / "data")}, num_cpus=1)
    try:
        out = tmp_path / "out"
        result = _bench("--grid", _grid(root, "pair", attns="[none, scsa]"), "--out", out, "--backend", "ray",
                        "--address", nodes.address)
    finally:
        nodes.remove_node(stray)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the Ray workers do not share this grid's folders" in result.stderr, result.stderr
    problems = [line.strip() for line in result.stderr.splitlines() if line.startswith("  node ")]
    assert problems and all(line.startswith("node stray") for line in problems), problems
    message = " ".join(result.stderr.split())
    assert f"cannot read the probe this driver wrote in {out}/.scsa-yolo-probe" in message
    assert f"(the node looked in {elsewhere / 'out'}/.scsa-yolo-probe)" in message
    assert f"which is not in {out}/.scsa-yolo-probe here" in message
    assert "dataset synthetic: " in message and "Traceback" not in result.stderr
    assert "submitted" not in result.stdout and sorted(out.iterdir()) == []


@pytest.mark.slow
def test_a_run_that_needs_8_cpus_and_a_gpu_lands_only_on_a_node_that_has_both(ray_cluster, tmp_path):
    """Nodes with Ray's logical CPUs and GPUs (Ray takes the counts it is given): while no
    node has 8 CPUs and a GPU the grid is refused at once, naming the request and the largest
    nodes; once one has, the run lands there, not on the node with the GPU but 2 CPUs. (This
    machine has no GPU to train on: the run itself fails, and retries=0 keeps that short.)"""
    from scsa_yolo.bench.grid import load_grid
    from scsa_yolo.bench.ray_backend import execute_on_ray
    from scsa_yolo.bench.runner import plan_runs, resolve_datasets

    root, nodes = ray_cluster
    grid = _grid(root, "one")
    out = tmp_path / "out"
    added = [_add_node(nodes, "gpu-small", num_cpus=2, num_gpus=1), _add_node(nodes, "cpu-big", num_cpus=16)]
    try:
        refused = _bench("--grid", grid, "--out", out, "--backend", "ray", "--address", nodes.address,
                         "--cpus-per-run", 8, "--gpus-per-run", 1)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        message = " ".join(refused.stderr.split())
        assert "no node of the Ray cluster has 8 CPU(s) and 1 GPU(s) for one run; the largest of its" in message
        assert "node(s): cpu-big: 16 CPU, 0 GPU; gpu-small: 2 CPU, 1 GPU." in message
        assert "Traceback" not in refused.stderr and not out.exists()

        added.append(_add_node(nodes, "gpu-big", num_cpus=8, num_gpus=1))
        lines = []
        loaded = load_grid(grid)
        planned = plan_runs(loaded.runs(), out, resolve_datasets(loaded, lines.append))
        outcome = execute_on_ray(planned, out, cpus_per_run=8, gpus_per_run=1, retries=0, echo=lines.append)
    finally:
        for node in added:
            nodes.remove_node(node)
    assert "ray: using the Ray this process is already connected to" in lines
    assert any(line.endswith("per run: 8 CPU(s), 1 GPU(s) (device 0)") for line in lines), lines
    assert _attempts(out / "synthetic" / "yolov8n-none-s0") == [("gpu-big", 1)]
    assert len(outcome.completed) + len(outcome.failed) == 1


@pytest.fixture(scope="module")
def workers(ray_cluster):
    """Three more nodes, n1-n3, with 3 CPUs each: with --cpus-per-run 3 each hosts one run at
    a time and the head (2 CPUs) none, so a grid's runs spread over them and land on nodes
    that a test may remove. Yields (Cluster, {name: node})."""
    _, nodes = ray_cluster
    added = {name: _add_node(nodes, name, num_cpus=3) for name in ("n1", "n2", "n3")}
    yield nodes, added
    for node in added.values():
        if node in nodes.worker_nodes:
            nodes.remove_node(node)


@pytest.mark.slow
def test_a_grid_spread_over_three_nodes_gives_the_records_and_report_of_the_local_pool(both_backends, workers):
    """Three runs, one on each of n1-n3 at once, against the local pool's records of the same
    runs (two of them made by both_backends, the third here)."""
    root, _, address, _, _ = both_backends
    grid = _grid(root, "three", attns="[none, se, scsa]")
    shutil.copytree(root / "local", root / "local3")
    local = _bench("--grid", grid, "--out", root / "local3")
    assert local.returncode == 0, local.stdout + local.stderr
    assert "3 run(s): 2 already done, 1 to run" in local.stdout
    result = _bench("--grid", grid, "--out", root / "three", "--backend", "ray", "--address", address,
                    "--cpus-per-run", 3)
    assert result.returncode == 0, result.stdout + result.stderr
    names = sorted(p.name for p in (root / "local3" / "synthetic").iterdir())
    assert len(names) == 3 and sorted(p.name for p in (root / "three" / "synthetic").iterdir()) == names
    for name in names:
        local_record = load_record(root / "local3" / "synthetic" / name / "record.json")
        on_ray = load_record(root / "three" / "synthetic" / name / "record.json")
        assert on_ray["train_mode"] == local_record["train_mode"] == "fresh"
        for key in METRICS:
            assert on_ray["metrics"][key] == local_record["metrics"][key], (name, key)
        assert on_ray["profile"]["params"] == local_record["profile"]["params"]
    assert (root / "three" / "report.md").read_text() == (root / "local3" / "report.md").read_text()
    assert "ray: 4 node(s), 11 CPU(s), 0 GPU(s); per run: 3 CPU(s), 0 GPU(s) (device cpu)" in result.stdout
    assert "ray: out folder and inputs checked on 4 node(s)" in result.stdout
    placed = sorted(attempt for name in names for attempt in _attempts(root / "three" / "synthetic" / name))
    assert placed == [("n1", 1), ("n2", 1), ("n3", 1)]
    assert "needed more than one attempt" not in result.stdout


@pytest.mark.slow
def test_driver_killed_mid_grid_then_the_same_command_resumes_the_rest(cluster, workers):
    """SIGKILL of the driver while one run is done and the other trains: Ray ends the dead
    driver's job, whose Ray workers exit and kill their children, the run's worker among
    them, so nothing writes into the run folders any more; the same command then resumes the
    unfinished run from its checkpoint and redoes nothing done. The training run's worker is
    paused (SIGSTOP) after its first epoch, so that it is still training when the other run
    is done, and stays paused: it must end without being let go (a worker that outlived its
    driver would stay, and fail the test), and its folder stays as the driver left it.
    (Unpaused, such a worker trains on for the second or so Ray takes to end the job.)"""
    root, address = cluster
    out = root / "killed"
    args = ("--grid", _grid(root, "killed", attns="[none, scsa]", epochs=3), "--out", out, "--backend", "ray",
            "--address", address, "--cpus-per-run", 3, "--no-report")
    done, training = out / "synthetic" / "yolov8n-none-s0", out / "synthetic" / "yolov8n-scsa-backbone-s0"
    driver = subprocess.Popen(_command(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    worker = None
    try:
        worker = _wait_for_epoch(training, driver)["pid"]
        os.kill(worker, signal.SIGSTOP)
        _wait_until(lambda: (done / "record.json").is_file() or driver.poll() is not None,
                    "the other run's record", timeout=300)
        driver.kill()
        output, _ = driver.communicate(timeout=60)
        at_death = _files(training)
        _wait_until(lambda: not _alive(worker), f"the end of the dead driver's worker {worker}", timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
        if worker is not None and _alive(worker):  # the test failed: leave nothing behind
            os.kill(worker, signal.SIGKILL)
    assert driver.returncode == -signal.SIGKILL, output
    assert (done / "record.json").is_file() and not (training / "record.json").exists(), output
    assert _files(training) == at_death  # nothing was written there after the driver died
    kept = _kept_epochs(training)
    record_before = (done / "record.json").stat().st_mtime_ns

    result = _bench(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bench: 2 run(s): 1 already done, 1 to run" in result.stdout
    assert "[2/2] synthetic/yolov8n-scsa-backbone-s0: submitted (resuming)" in result.stdout
    assert "yolov8n-none-s0: submitted" not in result.stdout
    assert (done / "record.json").stat().st_mtime_ns == record_before
    assert load_record(training / "record.json")["train_mode"] == "resumed"
    _assert_continued(training, kept, epochs=3)


@pytest.mark.slow
def test_a_node_lost_while_it_trains_a_run(cluster, workers):
    """The node that trains a run is removed (all its Ray processes end, the run's worker
    with them): the run is submitted again, lands on another node, resumes from its last
    finished epoch, and the grid completes with one record per run; the summary says where
    the run was lost and where it finished. Its worker is paused after its first epoch, so
    that the removal meets a known checkpoint."""
    root, address = cluster
    nodes, added = workers
    out = root / "lost"
    grid = _grid(root, "lost", attns="[none, scsa]", epochs=3)
    run = out / "synthetic" / "yolov8n-scsa-backbone-s0"
    driver = subprocess.Popen(_command("--grid", grid, "--out", out, "--backend", "ray", "--address", address,
                                       "--cpus-per-run", 3), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        progress = _wait_for_epoch(run, driver)
        os.kill(progress["pid"], signal.SIGSTOP)
        kept, lost_on = _kept_epochs(run), progress["host"]
        nodes.remove_node(added[lost_on])
        _wait_until(lambda: not _alive(progress["pid"]), "the end of the lost node's worker", timeout=30)
        output, _ = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, output
    [(first, _), (finished_on, _)] = attempts = _attempts(run)
    assert [attempt for _, attempt in attempts] == [1, 2], attempts
    assert first == lost_on and finished_on in added and finished_on != lost_on
    assert re.search(rf"\[2/2\] synthetic/yolov8n-scsa-backbone-s0: attempt 1 failed \((\w+) on {lost_on}: ", output)
    assert "[2/2] synthetic/yolov8n-scsa-backbone-s0: submitted (attempt 2 of 3)" in output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("record.json")) == [
        "synthetic/yolov8n-none-s0/record.json", "synthetic/yolov8n-scsa-backbone-s0/record.json"]
    assert load_record(run / "record.json")["train_mode"] == "resumed"
    assert load_record(out / "synthetic" / "yolov8n-none-s0" / "record.json")["train_mode"] == "fresh"
    _assert_continued(run, kept, epochs=3)
    assert "1 run(s) needed more than one attempt:" in output
    assert re.search(rf"  synthetic/yolov8n-scsa-backbone-s0: attempt 1 lost on {lost_on} \(\w+Error\); "
                     rf"finished on {finished_on} \(attempt 2\)", output), output
    assert "Detection accuracy per dataset (Table 4 style)" in output


# ---------------------------------------------------------------- Slurm

SBATCH = Path(__file__).resolve().parents[1] / "benchmarks" / "slurm_ray_bench.sbatch"
SRUN = """#!/bin/bash
# stand-in for srun: runs the step's command on this machine, without srun's own options
while [ $# -gt 0 ]; do
    case "$1" in
        -w|--nodelist) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
exec "$@"
"""
SCONTROL = """#!/bin/bash
# stand-in for `scontrol show hostnames LIST`, LIST as comma-separated names
[ "$1 $2" = "show hostnames" ] || { echo "scontrol stand-in: '$*' is not supported" >&2; exit 2; }
tr ',' '\\n' <<< "$3"
"""


HOSTNAME = """#!/bin/bash
# stand-in for hostname: this machine is every node, and its loopback address the head's
if [ "$1" = "--ip-address" ]; then echo 127.0.0.1; else exec /bin/hostname "$@"; fi
"""


def _stand_ins(folder: Path) -> Path:
    """A folder for the front of PATH: srun, scontrol and hostname stand-ins, and python, ray
    and scsa-yolo of the Python that runs these tests."""
    python = shlex.quote(sys.executable)
    scripts = {"srun": SRUN, "scontrol": SCONTROL, "hostname": HOSTNAME, "python": f'#!/bin/sh\nexec {python} "$@"\n',
               "ray": f'#!/bin/sh\nexec {python} -m ray.scripts.scripts "$@"\n',
               "scsa-yolo": f'#!/bin/sh\nexec {python} -m scsa_yolo.cli.main "$@"\n'}
    folder.mkdir()
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod((folder / name).stat().st_mode | stat.S_IXUSR)
    return folder


def _session(sid: int) -> list[int]:
    """The processes of session ``sid`` (a Slurm job's processes, here)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _end_job(sid: int, kill_wait: float = 3) -> None:
    """What Slurm does at a job's time limit or end: SIGTERM to every process of the job, and
    SIGKILL to those left after KillWait (30 s by default; shorter here)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _session(sid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + kill_wait
        while _session(sid) and time.monotonic() < deadline:
            time.sleep(0.2)


def _pending(pid: int, signum: int) -> bool:
    """Whether ``signum`` waits for the (stopped) process ``pid``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    masks = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask & (1 << (signum - 1)) for mask in masks)


@pytest.mark.slow
def test_the_slurm_script_runs_the_grid_and_its_time_limit_leaves_it_resumable(tmp_path):
    """benchmarks/slurm_ray_bench.sbatch as Slurm runs it, with srun and scontrol stand-ins
    that start the Ray head and the Ray worker of a 2-node allocation on this machine: its
    time-limit signal (SIGTERM to the script, --signal=B:TERM@120) stops the bench, which
    cancels its run keeping the last finished epoch; then the time limit ends every process
    of the job; the same submission resumes the run and completes the grid.

    The run's worker is paused after its first epoch until the cancel's SIGINT waits for it,
    so that the run cannot end before the cancel reaches it, however fast the machine."""
    bin_folder = _stand_ins(tmp_path / "bin")
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    out, epochs = tmp_path / "out", 3
    run = out / "synthetic" / "yolov8n-none-s0"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLURM_", "RAY_")) and key not in ("VENV", "GRID", "OUT")}
    env.update(PATH=f"{bin_folder}:{env['PATH']}", SLURM_JOB_NODELIST="node1,node2", SLURM_CPUS_PER_TASK="1",
               GRID=str(_grid(tmp_path, "slurm", epochs=epochs)), OUT=str(out),
               SCSA_YOLO_DATA=str(tmp_path / "data"), GPUS_PER_RUN="0", CPUS_PER_RUN="1", RAY_PORT=str(port),
               RAY_TMPDIR=ray_tmp, YOLO_OFFLINE="1")

    def submit(log: Path) -> subprocess.Popen:
        with open(log, "w") as console:
            return subprocess.Popen(["bash", str(SBATCH)], env=env, cwd=tmp_path, stdout=console,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    try:
        job = submit(tmp_path / "job1.out")
        try:
            worker = _wait_for_epoch(run, job)["pid"]
            os.kill(worker, signal.SIGSTOP)
            job.send_signal(signal.SIGTERM)  # --signal=B:TERM@120: the batch script alone
            try:
                _wait_until(lambda: _pending(worker, signal.SIGINT), "the cancel's SIGINT at the worker")
            finally:
                os.kill(worker, signal.SIGCONT)
            job.wait(120)
        finally:
            _end_job(job.pid)  # the time limit: every process of the job
        output = (tmp_path / "job1.out").read_text()
        assert job.returncode == 1, output
        assert "Ray head: node1 (" in output and "2 node(s), 1 CPU(s) and 0 GPU(s) each" in output
        assert "ray: 2 node(s), 2 CPU(s), 0 GPU(s); per run: 1 CPU(s), 0 GPU(s) (device cpu)" in output
        assert "SIGTERM (time limit near): stopping the bench; submit the same command again to resume" in output
        assert "bench interrupted: cancelled 1 Ray task(s); run the same command again to resume" in output
        assert "worker interrupted; re-run the grid to resume from the last checkpoint" in (
            run / "worker.log").read_text()
        assert not (run / "record.json").exists()
        kept = _kept_epochs(run)

        job = submit(tmp_path / "job2.out")
        try:
            job.wait(600)
        finally:
            _end_job(job.pid)  # Slurm ends the Ray steps with the script
        output = (tmp_path / "job2.out").read_text()
        assert job.returncode == 0, output
        assert "bench: 1 run(s): 0 already done, 1 to run" in output
        assert "[1/1] synthetic/yolov8n-none-s0: submitted (resuming)" in output
        assert load_record(run / "record.json")["train_mode"] == "resumed"
        _assert_continued(run, kept, epochs)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
