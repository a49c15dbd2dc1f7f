"""`scsa-yolo bench --backend ray` on a real local Ray (2 CPUs, one per run): the same records
and report as the local pool, a killed worker retried and resumed, a run that keeps failing
reported without stopping the others, Ctrl-C then a re-run, the shared-folder refusal, and
the install hint without Ray.

One Ray instance serves the module (started here); each bench runs as its own driver
process that connects to it with --address, as on a cluster.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from scsa_yolo.cli.main import main
from scsa_yolo.records import load_record

ray = pytest.importorskip("ray")

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
def cluster(tmp_path_factory):
    """A local Ray with 2 CPUs; its workers see the module's data root (as `ray start` would
    pass the environment it was started with).

    It is started with SIGINT ignored, whatever runs pytest: as a Ray started by a background
    job of a shell without job control (`nohup`, `... &` in a script, CI) is. Its workers then
    ignore SIGINT too, which made Ray's cancel a no-op for them (issue 16)."""
    root = tmp_path_factory.mktemp("ray")
    saved = {k: os.environ.get(k) for k in ("SCSA_YOLO_DATA", "YOLO_OFFLINE")}
    os.environ.update(SCSA_YOLO_DATA=str(root / "data"), YOLO_OFFLINE="1")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # "local": a Ray of its own, even where another one on this machine (`ray start`, a
        # concurrent test session) left its address file, which a bare ray.init() would join
        context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    def sigint_disposition():  # nested: Ray ships it by value (the workers cannot import this module)
        return signal.getsignal(signal.SIGINT)

    try:
        disposition = ray.get(ray.remote(sigint_disposition).options(num_cpus=0).remote())
        assert disposition == signal.SIG_IGN, f"the Ray workers handle SIGINT ({disposition})"
        yield root, context.address_info["address"]
    finally:
        ray.shutdown()
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
