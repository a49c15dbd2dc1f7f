"""The progress bar of long work (downloads, extraction, conversion): Ultralytics' own.

Ultralytics' ``TQDM`` looks like the bars of its training and validation, so a command
that prepares data and then trains shows one style. It imports torch, hence the import
inside :func:`progress_bar`.

On a terminal the bar redraws itself in place (``\\r`` and the erase-line code ``ESC [K``).
Where stderr is not a terminal (piped to ``tee``, redirected to a log, a CI job) those
codes would land in the file as garbage, so the bar becomes :class:`PlainProgress`: plain
lines, one every :data:`PLAIN_INTERVAL_S` seconds at most and one at the end.

Ultralytics' own bars (training epochs, validation) redraw the same way wherever they
print. :func:`plain_ultralytics_bars` makes them print one plain line per bar, at its end,
while stdout is not a terminal. Touch point: ``TQDM.__init__`` asks the module function
``ultralytics.utils.tqdm.is_noninteractive_console()`` (true on GitHub Actions) whether to
redraw; the context manager answers yes for its duration. Ultralytics' colours stay.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["PlainProgress", "plain_ultralytics_bars", "progress_bar"]

#: Shortest time between two lines of a :class:`PlainProgress` (the last line always prints).
PLAIN_INTERVAL_S = 30.0


def progress_bar(desc: str, total: int | float | None, unit: str, *, enabled: bool = True, initial: int = 0) -> Any:
    """A bar on stderr with ``update(n=1)`` and ``close()``.

    Args:
        desc: the text before the bar (``"converting val"``).
        total: the count at 100%; None when unknown (the bar then counts up).
        unit: what is counted (``"images"``, ``"files"``, ``"B"``).
        enabled: False gives a bar that prints nothing.
        initial: the count already done (a resumed download).
    """
    stream = sys.stderr
    if not is_terminal(stream):
        return PlainProgress(desc, total, unit, enabled=enabled, initial=initial, stream=stream)
    from ultralytics.utils.tqdm import TQDM

    return TQDM(desc=desc, total=total, initial=initial, unit=unit, disable=not enabled, file=stream)


@contextlib.contextmanager
def plain_ultralytics_bars(stream: TextIO | None = None) -> Iterator[None]:
    """Ultralytics' bars as one plain line each, at their end, while ``stream`` (default:
    stdout, where they print) is not a terminal; on a terminal nothing changes."""
    if is_terminal(sys.stdout if stream is None else stream):
        yield
        return
    from ultralytics.utils import tqdm as bars

    original = getattr(bars, "is_noninteractive_console", None)
    if original is None:  # another Ultralytics: leave its bars as they are
        yield
        return
    bars.is_noninteractive_console = lambda: True
    try:
        yield
    finally:
        bars.is_noninteractive_console = original


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class PlainProgress:
    """Progress as plain lines, for logs and pipes: ``converting train: 120/320 images (37%)``.

    The same ``update``/``close`` interface as Ultralytics' bar; a context manager too.
    """

    def __init__(self, desc: str, total: int | float | None, unit: str, *, enabled: bool = True, initial: int = 0,
                 stream: TextIO | None = None, interval_s: float = PLAIN_INTERVAL_S) -> None:
        self.desc, self.total, self.unit, self.enabled = desc, total or None, unit, enabled
        self.n = initial
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.started = self.last_line = time.monotonic()
        self.closed = False

    def _number(self, count: float) -> str:
        return f"{count / 2**20:.1f}" if self.unit == "B" else f"{count:g}"

    def _line(self, final: bool) -> str:
        unit = "MiB" if self.unit == "B" else self.unit
        if self.total:
            done = f"{self._number(self.n)}/{self._number(self.total)} {unit} ({100 * self.n / self.total:.0f}%)"
        else:
            done = f"{self._number(self.n)} {unit}"
        if final:
            done += f" in {time.monotonic() - self.started:.1f} s"
        return f"{self.desc}: {done}\n"

    def _write(self, final: bool) -> None:
        if not self.enabled:
            return
        self.last_line = time.monotonic()
        try:
            self.stream.write(self._line(final))
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe: progress is not worth failing the work for
            pass

    def update(self, n: int | float = 1) -> None:
        self.n += n
        if time.monotonic() - self.last_line >= self.interval_s:
            self._write(final=False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._write(final=True)

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
