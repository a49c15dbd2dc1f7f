"""Image files: which suffixes count, reading sizes from headers, placing images into a
prepared dataset."""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from scsa_yolo.errors import ScsaYoloError

# EXIF tag 0x0112: orientation. 1 (or absent) means the stored pixels are upright.
_EXIF_ORIENTATION = 0x0112

LINK_MODES = ("auto", "hardlink", "symlink", "copy")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageProblem(ScsaYoloError):
    """An image file that is missing, empty or not readable as an image."""


def probe_image(path: Path) -> tuple[int, int, int]:
    """``(width, height, exif_orientation)`` of an image, read from its header.

    PIL parses the header only (no pixel decoding), so this costs tens of microseconds.

    Raises:
        ImageProblem: the file is missing, empty or not an image PIL can identify.
    """
    from PIL import UnidentifiedImageError

    from scsa_yolo.integration.ultralytics import pil_image_open

    try:
        if os.path.getsize(path) == 0:
            raise ImageProblem("empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. DecompressionBombWarning on huge images
            with pil_image_open()(path) as img:
                width, height = img.size
                orientation = 1
                if img.format in ("JPEG", "MPO", "TIFF"):  # PNG would decode pixels for this
                    orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except FileNotFoundError:
        raise ImageProblem("file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageProblem(f"not a readable image ({type(error).__name__}: {error})") from None
    except Exception as error:  # any decoder failure is this image's problem, not the run's
        raise ImageProblem(f"not a readable image ({type(error).__name__}: {error})") from None
    if width <= 0 or height <= 0:
        raise ImageProblem(f"image size {width}x{height}")
    return width, height, orientation


def place_image(source: Path, target: Path, mode: str = "auto") -> str:
    """Put ``source`` at ``target`` without re-encoding it; returns the method used.

    ``auto`` hard-links (no extra disk, and the dataset survives deleting the source) and
    falls back to copying when the two paths are on different file systems. ``symlink``
    saves disk across file systems but breaks when the source moves.
    """
    if mode not in LINK_MODES:
        raise ValueError(f"link mode must be one of {', '.join(LINK_MODES)}, got {mode!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode in ("auto", "hardlink"):
        try:
            os.link(source, target)
            return "hardlink"
        except OSError:
            if mode == "hardlink":
                raise
    if mode == "symlink":
        os.symlink(os.path.abspath(source), target)
        return "symlink"
    shutil.copyfile(source, target)
    return "copy"
