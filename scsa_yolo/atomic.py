"""Atomic writes: a temporary file in the target folder, then a rename.

Everything another stage reads (ground truths, manifests, run records, reports, generated
YAMLs) goes through here, so a reader never sees a half-written file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` (parents created) through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(
    data: Any, path: str | Path, *, indent: int | None = None, default: Callable[[Any], Any] | None = None
) -> Path:
    """Serialise ``data`` as JSON and write it atomically.

    ``json.dumps`` then one write: ``json.dump`` to a file streams through the pure-Python
    encoder, 3-5x slower on large ground truths and manifests.
    """
    text = json.dumps(data, indent=indent, default=default)
    return write_text_atomic(path, text + "\n" if indent is not None else text)
