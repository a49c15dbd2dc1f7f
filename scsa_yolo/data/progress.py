"""A dependency-free progress line for downloads, extraction and conversion (stderr)."""
from __future__ import annotations

import sys
import time
from typing import TextIO


def human_bytes(n: float | None) -> str:
    """``1536`` -> ``'1.5 KiB'``; None -> ``'?'``."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """Counts work done and redraws one status line, at most every ``interval`` seconds.

    On a terminal the line is rewritten in place; elsewhere (logs, CI) a new line is
    printed every ``interval`` seconds so logs stay short.
    """

    def __init__(
        self,
        label: str,
        total: float | None = None,
        *,
        unit: str = "items",
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float | None = None,
    ) -> None:
        self.label, self.total, self.unit, self.enabled = label, total, unit, enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.2 if self.tty else 10.0)
        self.done = 0.0
        self.start = self._last = time.monotonic()

    def _fmt(self, value: float) -> str:
        return human_bytes(value) if self.unit == "bytes" else f"{value:.0f}"

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        rate_text = f"{human_bytes(rate)}/s" if self.unit == "bytes" else f"{rate:.0f} {self.unit}/s"
        if self.total:
            pct = 100.0 * self.done / self.total
            return f"{self.label}: {self._fmt(self.done)}/{self._fmt(self.total)} ({pct:.0f}%) {rate_text}"
        return f"{self.label}: {self._fmt(self.done)} {self.unit if self.unit != 'bytes' else ''} {rate_text}".replace("  ", " ")

    def update(self, amount: float = 1) -> None:
        self.done += amount
        now = time.monotonic()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self._draw(final=False)

    def _draw(self, final: bool) -> None:
        text = self.line()
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(final=True)
