"""Ultralytics' reading of datasets: a data YAML, and COCO's 91 -> 80 class table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["coco91_to_coco80", "read_data_yaml"]


def read_data_yaml(data_yaml: str | Path) -> dict[str, Any]:
    """A data YAML as Ultralytics' trainer and validator read it (paths resolved, ``names``
    as a dict), without downloading anything.

    Raises:
        FileNotFoundError, SyntaxError, TypeError: Ultralytics' own errors for a missing
            split folder, a YAML without ``names`` or a key of the wrong type.
    """
    from ultralytics.data.utils import check_det_dataset

    return check_det_dataset(str(data_yaml), autodownload=False)


def coco91_to_coco80() -> list[int | None]:
    """COCO category id (1..91) at index ``id - 1`` -> its class 0..79, None for the ids
    COCO 2017 leaves unused (Ultralytics' ``coco91_to_coco80_class``)."""
    from ultralytics.data.converter import coco91_to_coco80_class

    return coco91_to_coco80_class()
