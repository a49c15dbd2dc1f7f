"""Atomic writes: a temporary file in the target folder, then a rename.

Everything another stage reads (ground truths, manifests, run records, reports, generated
YAMLs) goes through here, so a reader never sees a half-written file. The file gets the
permissions any newly created file would get (0666 less the process umask, so 0644 under
umask 022): ``tempfile.mkstemp`` alone would leave it readable by its owner only (0600).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows.

    ``os.umask`` can only be read by setting it, which briefly changes it for every thread
    of the process; Linux reports it in /proc/self/status, so that is tried first.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_file_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Let ``write(tmp)`` fill a temporary file beside ``path`` (parents created), then
    rename it to ``path``; nothing is left behind when ``write`` raises.

    The temporary name ends in ``path``'s suffix, for writers that pick the format from it
    (``savefig``, ``torch.save`` alike).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp creates 0600; give the mode open() would have given a new file (on
        # Windows only the read-only bit exists)
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` (parents created) through a temporary file and a rename."""
    return write_file_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(
    data: Any, path: str | Path, *, indent: int | None = None, default: Callable[[Any], Any] | None = None
) -> Path:
    """Serialise ``data`` as JSON and write it atomically.

    ``json.dumps`` then one write: ``json.dump`` to a file streams through the pure-Python
    encoder, 3-5x slower on large ground truths and manifests.
    """
    text = json.dumps(data, indent=indent, default=default)
    return write_text_atomic(path, text + "\n" if indent is not None else text)
