"""What our commands rely on in Ultralytics' trainer, its arguments and its run folders.

Touch points (supported: ultralytics >=8.4,<8.5), each covered by
``tests/test_integration_training.py``:

1. **Training arguments** -- a ``key=value`` from our command line is converted the way
   the ``yolo`` command converts it (``ultralytics.cfg.smart_value``), renamed when the key
   is deprecated and refused when unknown (``check_dict_alignment``), and type-checked
   (``check_cfg``), so a mistake is reported before any training starts.
2. **Log level** -- :func:`quiet` silences ``ultralytics.utils.LOGGER`` below a level.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator


class TrainArgumentError(ValueError):
    """A training argument Ultralytics does not accept; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def argument_value(text: str) -> Any:
    """``"0.01"`` -> 0.01, ``"False"`` -> False, ``"none"`` -> None, ``"AdamW"`` -> ``"AdamW"``:
    a command-line value as the ``yolo`` command reads it."""
    from ultralytics.cfg import smart_value

    return smart_value(text.strip())


@contextlib.contextmanager
def quiet(level: int = logging.ERROR) -> Iterator[None]:
    """Ultralytics logs only from ``level`` up inside this block (no model summaries, help texts)."""
    from ultralytics.utils import LOGGER

    before = LOGGER.level
    LOGGER.setLevel(max(before, level))
    try:
        yield
    finally:
        LOGGER.setLevel(before)


def check_train_args(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` as Ultralytics' trainer will take them: deprecated keys renamed, values checked.

    Raises:
        TrainArgumentError: an unknown key (Ultralytics' message suggests similar ones), or
            a value of the wrong type or out of range.
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg, check_dict_alignment

    checked = dict(args)
    try:
        with quiet(logging.WARNING):  # it logs the whole `yolo` help text before raising; deprecations still warn
            check_dict_alignment(DEFAULT_CFG_DICT, checked)  # renames deprecated keys in place
    except SyntaxError as error:
        unknown = next((key for key in args if key not in DEFAULT_CFG_DICT), "")
        raise TrainArgumentError(unknown, str(error).strip()) from None
    for key, value in checked.items():
        try:
            check_cfg({key: value})
        except (TypeError, ValueError) as error:
            raise TrainArgumentError(key, str(error).strip()) from None
    return checked


__all__ = [
    "TrainArgumentError",
    "argument_value",
    "check_train_args",
    "quiet",
]
