"""The box every converter emits, and the clean-up they share: clip to the image, drop
degenerate boxes, log both."""
from __future__ import annotations

from dataclasses import dataclass, replace

from .events import ACTION_CLIPPED, ACTION_DROPPED, CLIPPED, DEGENERATE, ConversionLog
from .masks import Mask

# Clipping moves an edge by at least this many pixels before it is logged; smaller moves are
# float noise from the source format (e.g. 640.0000001) and carry no information.
CLIP_TOLERANCE_PX = 1e-6


@dataclass(frozen=True)
class GtBox:
    """One ground-truth box in pixels, top-left origin, with its mask when the source has one
    (:class:`~scsa_yolo.data.convert.masks.Mask`: polygons, or a crowd region's RLE)."""

    class_index: int
    x: float
    y: float
    w: float
    h: float
    ignore: bool = False
    mask: Mask | None = None


def fit_box_to_image(
    box: GtBox,
    width: int,
    height: int,
    log: ConversionLog,
    *,
    file: str,
    line: int | None = None,
    split: str | None = None,
    image: str | None = None,
    ref: str = "",
) -> GtBox | None:
    """Clip ``box`` (pixels, top-left origin) to ``width x height``.

    Returns the clipped box, or None when nothing of it is left (zero or negative width or
    height), logging a ``clipped`` or ``degenerate`` event either way.
    """
    x0, y0 = box.x, box.y
    x1, y1 = x0 + box.w, y0 + box.h
    if box.w > 0 and box.h > 0 and x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return box  # the common case, kept cheap
    where = {"split": split, "image": image}
    prefix = f"{ref}: " if ref else ""
    if not (box.w > 0 and box.h > 0):
        log.record(DEGENERATE, ACTION_DROPPED, file, line, detail=f"{prefix}w={box.w:g} h={box.h:g}", **where)
        return None
    cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    if cx1 - cx0 <= 0 or cy1 - cy0 <= 0:
        log.record(
            DEGENERATE,
            ACTION_DROPPED,
            file,
            line,
            detail=f"{prefix}box [{x0:g},{y0:g},{x1:g},{y1:g}] outside the {width}x{height} image",
            **where,
        )
        return None
    moved = max(abs(cx0 - x0), abs(cy0 - y0), abs(cx1 - x1), abs(cy1 - y1))
    if moved == 0:
        return box
    clipped = replace(box, x=cx0, y=cy0, w=cx1 - cx0, h=cy1 - cy0)
    if moved <= CLIP_TOLERANCE_PX:
        return clipped
    log.record(
        CLIPPED,
        ACTION_CLIPPED,
        file,
        line,
        detail=f"{prefix}[{x0:g},{y0:g},{x1:g},{y1:g}] -> [{cx0:g},{cy0:g},{cx1:g},{cy1:g}] in {width}x{height}",
        **where,
    )
    return clipped
