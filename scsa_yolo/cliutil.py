"""Text into the ``scsa-yolo`` commands: KEY=VALUE arguments and comma lists.

One way each, for every command:

* :func:`parse_key_values` -- ``KEY=VALUE`` items, values read as the ``yolo`` command
  reads them (``0.01``, ``False``, ``none``, ``[1, 2]``, plain words);
* :func:`training_arguments` -- the same, then checked by Ultralytics as training
  arguments (names, deprecations, types and ranges), for ``train`` and ``bench``;
* :func:`split_list` -- ``"a, b,c"`` and repeated options as one list.

Text out (tables, sizes) is :mod:`scsa_yolo.text`.

Bad input is a :class:`click.UsageError` (or :class:`click.BadParameter` naming the
option) whose message names the item and the fix.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import click


def _input_error(message: str, param_hint: str | None) -> click.UsageError:
    return click.BadParameter(message, param_hint=param_hint) if param_hint else click.UsageError(message)


def parse_key_values(
    pairs: Iterable[str], *, param_hint: str | None = None, example: str = "lr0=0.005"
) -> dict[str, Any]:
    """``('lr0=0.01', 'amp=False')`` -> ``{'lr0': 0.01, 'amp': False}``.

    ``param_hint`` names the option the pairs came from (``--set``); None for arguments.

    Raises:
        click.UsageError: an item without ``=``, without a key or without a value.
    """
    pairs = list(pairs)
    if not pairs:
        return {}
    from scsa_yolo.integration.training import argument_value

    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise _input_error(f"{pair!r} is not KEY=VALUE (e.g. {example})", param_hint)
        if not raw.strip():
            raise _input_error(f"{pair!r} has no value: write {key}=VALUE (none for no value)", param_hint)
        parsed[key] = argument_value(raw)
    return parsed


def training_arguments(pairs: Iterable[str], *, reserved: Mapping[str, str] | None = None) -> dict[str, Any]:
    """KEY=VALUE Ultralytics training arguments, checked by Ultralytics before any training.

    ``reserved`` maps keys that the command sets through its own options to those options
    (``{"epochs": "--epochs"}``). Deprecated keys come back under their current names.

    Raises:
        click.UsageError: not KEY=VALUE, a reserved key, an unknown key (with Ultralytics'
            suggestions), or a value of the wrong type or range.
    """
    from scsa_yolo.integration.training import TrainArgumentError, check_train_args

    parsed = parse_key_values(pairs)
    for key in parsed:
        if reserved and key in reserved:
            raise click.UsageError(f"use the {reserved[key]} option instead of {key}=...")
    try:
        return check_train_args(parsed)
    except TrainArgumentError as error:
        raise click.UsageError(f"{error} (`yolo cfg` lists Ultralytics' training arguments)") from None


def split_list(
    values: str | Iterable[str] | None, kind: type = str, *, param_hint: str | None = None
) -> list | None:
    """``"a, b,c"`` (or several such strings) -> ``["a", "b", "c"]``; None stays None.

    With ``kind=int`` the items become integers.

    Raises:
        click.BadParameter: an item that is not an integer, for ``kind=int``.
    """
    if values is None:
        return None
    texts = [values] if isinstance(values, str) else list(values)
    items = [item.strip() for text in texts for item in str(text).split(",") if item.strip()]
    if kind is int:
        try:
            return [int(item) for item in items]
        except ValueError:
            raise click.BadParameter(
                f"expected comma-separated integers, got {', '.join(map(repr, texts))}", param_hint=param_hint
            ) from None
    return items


__all__ = ["parse_key_values", "split_list", "training_arguments"]
