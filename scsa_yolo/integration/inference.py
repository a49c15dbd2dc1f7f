"""Ultralytics' image handling for code that feeds a model by hand (``scsa-yolo explain``).

* :func:`image_suffixes` -- the file suffixes Ultralytics reads as images;
* :func:`letterboxer` -- the square letterbox its predictor applies (grey padding, centred);
* :func:`resize_to_image` -- a map at the letterboxed size back onto the original image,
  the way Ultralytics scales its masks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["image_suffixes", "letterboxer", "resize_to_image"]


def image_suffixes() -> list[str]:
    """File suffixes Ultralytics reads as images (without the dot), sorted."""
    from ultralytics.data.utils import IMG_FORMATS

    return sorted(IMG_FORMATS)


def letterboxer(imgsz: int) -> Callable[[np.ndarray], np.ndarray]:
    """A function from an (H0, W0, 3) uint8 image to its (imgsz, imgsz, 3) letterbox.

    The image is scaled to fit and padded with grey on both sides, as Ultralytics'
    ``LetterBox(auto=False)`` does; the channel order is kept.
    """
    from ultralytics.data.augment import LetterBox

    letterbox = LetterBox(new_shape=(imgsz, imgsz), auto=False, stride=32)
    return lambda image: letterbox(image=image)


def resize_to_image(maps: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(B, C, imgsz, imgsz) maps of a letterboxed input -> (B, C, H0, W0) on the original
    image of ``shape = (H0, W0)``: the padding cut off, then resized (``scale_masks``)."""
    from ultralytics.utils.ops import scale_masks

    return scale_masks(maps, shape)
