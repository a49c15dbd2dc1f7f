"""The start-up hook installed by scsa_yolo-autoload.pth: cheap, safe, switchable.

Each test runs a fresh interpreter, because the hook acts at interpreter start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ENV = {k: v for k, v in os.environ.items() if not k.startswith("SCSA_YOLO_")}
ENV["YOLO_OFFLINE"] = "1"


def _python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, cwd=tmp_path, env={**ENV, **env}, timeout=180,
    )


def test_the_pth_file_is_installed():
    purelib = Path(sysconfig.get_paths()["purelib"])
    pth = purelib / "scsa_yolo-autoload.pth"
    assert pth.is_file(), "install the package (pip install -e .) so the autoload .pth is in site-packages"
    assert pth.read_text().strip() == "import scsa_yolo._autoload"


def test_startup_installs_the_hook_without_importing_torch_or_ultralytics(tmp_path):
    out = _python(
        """
        import sys
        hooked = any(getattr(f, "scsa_yolo_autoload", False) for f in sys.meta_path)
        heavy = sorted(m for m in ("torch", "ultralytics", "numpy", "scsa_yolo.nn") if m in sys.modules)
        print(hooked, heavy)
        """,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True []"


def test_importtime_shows_only_the_tiny_autoload_module(tmp_path):
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True,
                         cwd=tmp_path, env=ENV, timeout=60)
    imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line]
    assert "scsa_yolo._autoload" in imported
    assert not [m for m in imported if m.split(".")[0] in ("torch", "ultralytics")]


def test_stock_ultralytics_sees_the_layers_without_any_import_of_ours(tmp_path):
    out = _python(
        """
        from ultralytics import YOLO
        model = YOLO("yolov8n-scsa.yaml")
        print(sorted({type(m).__name__ for m in model.model.modules() if type(m).__module__.startswith("scsa_yolo")}))
        """,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['ResidualAttention', 'SCSA']"  # the default placement


def test_disabled_by_environment(tmp_path):
    out = _python(
        """
        import sys
        print(any(getattr(f, "scsa_yolo_autoload", False) for f in sys.meta_path))
        from ultralytics.nn import tasks
        print("SCSA" in vars(tasks))
        import scsa_yolo.integration
        scsa_yolo.integration.register()  # the documented manual route
        print("SCSA" in vars(tasks))
        """,
        tmp_path,
        SCSA_YOLO_NO_AUTOLOAD="1",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "True"]


@pytest.mark.parametrize("breakage", [
    "import scsa_yolo.integration.ultralytics as u\nu.register = lambda module: 1 / 0",
    "import sys\nsys.modules['scsa_yolo.nn.registry'] = None  # the registry cannot be imported",
])
def test_a_broken_registration_never_breaks_ultralytics(tmp_path, breakage):
    code = breakage + textwrap.dedent(
        """
        from ultralytics.nn import tasks
        tasks.DetectionModel("yolov8n.yaml", verbose=False)
        print("ultralytics ok", "SCSA" in vars(tasks))
        """
    )
    quiet = _python(code, tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip().splitlines()[-1] == "ultralytics ok False"
    assert "scsa-yolo autoload" not in quiet.stderr
    loud = _python(code, tmp_path, SCSA_YOLO_DEBUG="1")
    assert loud.returncode == 0, loud.stderr
    assert loud.stderr.count("scsa-yolo autoload: registering with ultralytics.nn.tasks failed") == 1
    assert ("ZeroDivisionError" in loud.stderr) or ("ImportError" in loud.stderr or "ModuleNotFoundError" in loud.stderr)


def test_ultralytics_import_errors_pass_through_unchanged(tmp_path):
    fake = tmp_path / "ultralytics" / "nn"
    fake.mkdir(parents=True)
    (tmp_path / "ultralytics" / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "tasks.py").write_text("raise RuntimeError('broken tasks module')\n")
    out = _python(
        """
        import sys
        sys.path.insert(0, ".")
        try:
            import ultralytics.nn.tasks
        except RuntimeError as error:
            print("raised", error)
        """,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "raised broken tasks module"
