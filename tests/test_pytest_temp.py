"""The suite's pytest settings leave nothing in the system temp folder after a passing run
(issue 26: about 650 MB of checkpoints and runs per full run, three runs kept)."""
import os
import subprocess
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
SAMPLE = """\
import pytest


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    path = tmp_path_factory.mktemp("shared") / "model.pt"
    path.write_bytes(b"0" * 500_000)
    return path


def test_writes_a_checkpoint(tmp_path, shared):
    (tmp_path / "last.pt").write_bytes(b"0" * 500_000)
"""


def _left_behind(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())


def test_a_passing_session_leaves_no_temp_files_and_a_failing_one_keeps_its_own(tmp_path):
    root = tmp_path / "temproot"
    root.mkdir()
    sample = tmp_path / "test_sample.py"

    def session(source: str) -> subprocess.CompletedProcess:
        sample.write_text(source)
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(PYPROJECT),
             "--rootdir", str(tmp_path), str(sample)],
            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTEST_DEBUG_TEMPROOT": str(root)},
        )

    passed = session(SAMPLE)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert _left_behind(root) == 0
    failed = session(SAMPLE + "    assert False\n")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert _left_behind(root) >= 1_000_000  # the failed test's folder and the session's stay for a look
