"""Argument checks shared by the attention layers: errors name the layer, argument and value."""

from __future__ import annotations

from collections.abc import Sequence

from scsa_yolo.errors import ScsaYoloError


class LayerArgumentError(ScsaYoloError, ValueError):
    """A layer argument the layer cannot take (``SCSA: channels=30 must be divisible by ...``)."""

    usage = True


def layer_error(layer: str, argument: str, value: object, problem: str) -> LayerArgumentError:
    """The error for ``layer``'s ``argument`` of ``value``: ``SCSA: channels=30 must be divisible by ...``."""
    return LayerArgumentError(f"{layer}: {argument}={value!r} {problem}")


def check_choice(layer: str, argument: str, value: object, choices: Sequence[str]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise layer_error(layer, argument, value, f"is not one of {', '.join(map(repr, choices))}")


def check_positive_int(layer: str, argument: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1 (bools rejected), else raise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise layer_error(layer, argument, value, "must be a positive int")
    return value


def is_number(value: object) -> bool:
    """An int or float, bools excluded (``True`` is an int to Python, never a setting here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def reduced_channels(channels: int, reduction: int | float, minimum: int = 1) -> int:
    """Hidden width ``channels // reduction`` floored at ``minimum`` (>= 1).

    The published reductions (16, 32) would give zero hidden channels on narrow layers
    (e.g. 16 channels / 32); the floor keeps such layers valid.
    """
    return max(minimum, int(channels // reduction), 1)
