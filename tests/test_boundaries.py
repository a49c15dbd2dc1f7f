"""Where each dependency may be imported: Ultralytics only under scsa_yolo/integration/,
click never from the data layer, and neither torch nor Ultralytics for a command's --help."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "scsa_yolo" / "integration"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import statement in a Python file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def importers_of(package: str, files: list[Path]) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in files for line, module in imported_modules(path)
            if module == package or module.startswith(package + ".")]


def source_files() -> list[Path]:
    return sorted([*(ROOT / "scsa_yolo").rglob("*.py"), *(ROOT / "cli").rglob("*.py")])


def test_only_the_integration_package_imports_ultralytics():
    outside = [p for p in source_files() if INTEGRATION not in p.parents]
    inside = [p for p in source_files() if INTEGRATION in p.parents]
    assert importers_of("ultralytics", inside), "the scan finds nothing: it no longer sees the imports it should"
    assert importers_of("ultralytics", outside) == [], "use (or add) a function in scsa_yolo/integration/ instead"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_the_data_layer_does_not_import_click():
    out = _python(
        """
        import importlib, pkgutil, sys
        import scsa_yolo.data as data
        for module in pkgutil.walk_packages(data.__path__, "scsa_yolo.data."):
            importlib.import_module(module.name)
        print(sorted(m for m in ("click", "scsa_yolo.cliutil") if m in sys.modules))
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_help_of_every_command_imports_neither_torch_nor_ultralytics():
    out = _python(
        """
        import sys
        import click
        from click.testing import CliRunner
        from scsa_yolo.cli.main import main

        runner = CliRunner()

        def helped(path):
            result = runner.invoke(main, [*path, "--help"])
            assert result.exit_code == 0, (path, result.output)
            command = main
            for name in path:
                command = command.get_command(None, name)
            names = command.list_commands(None) if isinstance(command, click.Group) else []
            return [" ".join(path) or "scsa-yolo"] + [p for name in names for p in helped([*path, name])]

        shown = helped([])
        print(len(shown), sorted(m for m in ("torch", "ultralytics") if m in sys.modules))
        """
    )
    assert out.returncode == 0, out.stderr
    count, heavy = out.stdout.split(" ", 1)
    assert int(count) >= 12, out.stdout  # scsa-yolo, its 8 commands and the groups' sub-commands
    assert heavy.strip() == "[]"
