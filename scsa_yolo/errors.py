"""The one base class of every error scsa-yolo raises for a user to act on.

An error of ours carries its whole user-facing message once: what was wrong, where (file,
row, argument) and how to fix it. The command line turns any :class:`ScsaYoloError` into
one click error in one place (:mod:`scsa_yolo.cli.main`), so no command translates errors
itself and no bad input ends in a traceback.

Each concrete class also keeps the built-in base it always had (``ValueError``,
``FileNotFoundError``, ``RuntimeError``), so callers that catch those keep working.
"""

from __future__ import annotations

__all__ = ["ScsaYoloError"]


class ScsaYoloError(Exception):
    """Base of our errors; ``str(error)`` is the complete message for the user.

    ``usage``: True when the error is about what the user typed (an option, a name, a
    file they pointed at): the CLI exits 2 as for a usage error; False (the default) for
    failures of the work itself (exit 1).
    """

    usage: bool = False

    def at(self, where: str) -> "ScsaYoloError":
        """The same error (same type and attributes) with ``where`` before its message,
        for a caller that knows the file or option the bad value came from."""
        located = type(self).__new__(type(self))  # no __init__: subclasses take other arguments
        located.__dict__.update(self.__dict__)
        located.args = (f"{where}: {self}",)
        return located
