"""The images ``scsa-yolo explain`` looks at: found, checked and letterboxed once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["ExplainInputError", "Image", "find_images", "load_images", "to_batch"]


class ExplainInputError(ValueError):
    """No images, an unreadable image, or a path that does not exist; says what to give."""


def find_images(paths: Sequence[str | Path], limit: int | None = None) -> list[Path]:
    """Image files named by ``paths``: files as given, folders searched recursively.

    Args:
        paths: image files and/or folders.
        limit: keep the first ``limit`` images (sorted by path) when set.

    Raises:
        ExplainInputError: a path that does not exist, a file that is not an image, or no
            image at all; the message lists the accepted suffixes.
    """
    from scsa_yolo.integration.inference import image_suffixes

    suffixes = set(image_suffixes())
    found: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in suffixes)
        elif path.is_file():
            if path.suffix.lower().lstrip(".") not in suffixes:
                raise ExplainInputError(
                    f"{path} is not an image file; accepted suffixes: {', '.join(sorted(suffixes))}")
            found.append(path)
        else:
            raise ExplainInputError(f"{path} does not exist; give image files or folders holding images")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise ExplainInputError(
            f"no images found in {', '.join(str(p) for p in paths) or '(nothing given)'}; "
            f"accepted suffixes: {', '.join(sorted(suffixes))}")
    return unique[:limit] if limit else unique


@dataclass
class Image:
    """One input image.

    Attributes:
        path: the file.
        bgr: the image as read by OpenCV, (H0, W0, 3) uint8 BGR.
        letterboxed: the model input, (imgsz, imgsz, 3) uint8 RGB (Ultralytics' LetterBox,
            grey padding, centred).
    """

    path: Path
    bgr: np.ndarray
    letterboxed: np.ndarray

    @property
    def rgb(self) -> np.ndarray:
        return np.ascontiguousarray(self.bgr[..., ::-1])

    @property
    def stem(self) -> str:
        return self.path.stem


def load_images(paths: Sequence[Path], imgsz: int) -> list[Image]:
    """Read and letterbox every image to a square ``imgsz`` input.

    Raises:
        ExplainInputError: images OpenCV cannot decode, all named at once.
    """
    import cv2
    from scsa_yolo.integration.inference import letterboxer

    letterbox = letterboxer(imgsz)
    images, unreadable = [], []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None or bgr.size == 0:
            unreadable.append(str(path))
            continue
        boxed = letterbox(bgr)
        images.append(Image(Path(path), bgr, np.ascontiguousarray(boxed[..., ::-1])))
    if unreadable:
        raise ExplainInputError(
            f"cannot read {len(unreadable)} image(s) (not a decodable image): {', '.join(unreadable)}. "
            "Remove them or point --images at other files")
    return images


def to_batch(images: Sequence[Image], device: torch.device) -> torch.Tensor:
    """(B, 3, imgsz, imgsz) float tensor in [0, 1] on ``device``."""
    array = np.stack([image.letterboxed for image in images]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(array)).to(device).float().div_(255)
