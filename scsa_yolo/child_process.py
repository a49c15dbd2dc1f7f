"""Commands that start scsa-yolo code in a fresh Python process: bench workers, warm-up shards.

`python -m scsa_yolo...` would put the current folder first on ``sys.path``. Run from a source
checkout with a regular (non-editable) install, the child would then import the checkout's
``scsa_yolo/``, which lacks the installed ``scsa_yolo.cfg`` and ``scsa_yolo.cli`` (they live in
the top-level ``cfg/`` and ``cli/`` folders), and fail before doing anything. ``-c`` puts ``''``
there instead, and every boot line here drops it, so the child imports the installation its
parent imported, from any folder.
"""
from __future__ import annotations

import sys

DROP_CURRENT_FOLDER = "import sys; sys.path[:] = [p for p in sys.path if p != '']; "


def python_command(statement: str, *args: str) -> list[str]:
    """``[python, -c, statement, *args]``, the current folder dropped from the child's path
    before ``statement`` runs; ``args`` reach it as ``sys.argv[1:]``."""
    return [sys.executable, "-c", DROP_CURRENT_FOLDER + statement, *args]


def cli_command(*args: str) -> list[str]:
    """``scsa-yolo ARGS`` in a fresh interpreter (what the console script would run)."""
    return python_command("from scsa_yolo.cli.main import main; sys.exit(main(prog_name='scsa-yolo'))", *args)
