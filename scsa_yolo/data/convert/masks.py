"""Object masks: polygons in pixels, their area, clipping, and the one-outline form a YOLO
segment label needs.

A polygon is COCO's flat list ``(x1, y1, x2, y2, ...)`` in pixels, top-left origin, with
pixel ``i`` covering ``[i, i + 1)``: a square polygon from 10 to 20 covers 10 pixels, as its
box ``x=10, w=10`` does. COCO describes an object as the union of one or more such parts (an
object cut in two by an occluder); a YOLO segment label holds one outline per object, so
:func:`join_parts` links the parts into one with zero-width bridges, and a part traversed the
other way round (a hole, as in a ring) stays a hole under both the even-odd and the
non-zero fill rule that Ultralytics (OpenCV) and pycocotools use.

A crowd region of COCO keeps its run-length encoding (``rle``) in the ground truth only; it
never becomes a training label.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

Polygon = tuple[float, ...]  # x1, y1, x2, y2, ... in pixels


@dataclass(frozen=True)
class Mask:
    """An object's mask: polygon parts (pixels; their union is the object) or a COCO RLE.

    ``rle`` is ``{"size": [height, width], "counts": ...}`` (compressed string or the
    uncompressed list), kept as the source wrote it.
    """

    polygons: tuple[Polygon, ...] = ()
    rle: dict | None = field(default=None, hash=False)  # a dict: kept out of the hash

    @property
    def area(self) -> float:
        """Pixels covered: the polygons' areas (shoelace, holes subtracted) or the RLE's count."""
        if self.rle is not None:
            return rle_area(self.rle)
        return sum(abs(signed_area(p)) for p in self.polygons)

    def rounded(self, decimals: int = 3) -> "Mask":
        """The same mask with its polygon coordinates rounded (as a JSON file holds them)."""
        if self.rle is not None:
            return self
        return Mask(tuple(tuple(round(float(v), decimals) for v in part) for part in self.polygons))

    def to_coco(self) -> list[list[float]] | dict:
        """The ``segmentation`` of a COCO annotation: the polygon parts, or the RLE as it is."""
        return self.rle if self.rle is not None else [list(part) for part in self.polygons]

    def outline(self) -> Polygon:
        """One polygon for a YOLO segment label (the parts joined, see :func:`join_parts`)."""
        return join_parts(self.polygons)


def rectangle(x: float, y: float, w: float, h: float) -> Polygon:
    """The polygon of box ``x y w h`` (pixels), clockwise on screen from the top-left corner."""
    return (x, y, x + w, y, x + w, y + h, x, y + h)


def signed_area(polygon: Polygon) -> float:
    """Shoelace area of a flat polygon; its sign tells the direction (a hole counts negative
    when traversed against its outline)."""
    xs, ys = polygon[0::2], polygon[1::2]
    n = len(xs)
    return 0.5 * sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))


def bounds(polygons: Sequence[Polygon]) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` around every vertex of ``polygons`` (as Ultralytics derives a
    segment label's box)."""
    xs = [v for p in polygons for v in p[0::2]]
    ys = [v for p in polygons for v in p[1::2]]
    return min(xs), min(ys), max(xs), max(ys)


def is_polygon(values: object) -> bool:
    """Whether ``values`` is a flat list of at least three ``x, y`` pairs of finite numbers."""
    if not isinstance(values, (list, tuple)) or len(values) < 6 or len(values) % 2:
        return False
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
               for v in values)


def clip_polygon(polygon: Polygon, width: float, height: float) -> Polygon:
    """``polygon`` cut to the image ``[0, width] x [0, height]`` (Sutherland-Hodgman);
    empty when less than a triangle of positive area is left."""
    points = list(zip(polygon[0::2], polygon[1::2]))
    edges = (
        (lambda p: p[0] >= 0, lambda a, b: _cross_x(a, b, 0.0)),
        (lambda p: p[0] <= width, lambda a, b: _cross_x(a, b, float(width))),
        (lambda p: p[1] >= 0, lambda a, b: _cross_y(a, b, 0.0)),
        (lambda p: p[1] <= height, lambda a, b: _cross_y(a, b, float(height))),
    )
    for inside, cross in edges:
        if not points:
            break
        kept = []
        for i, current in enumerate(points):
            previous = points[i - 1]
            if inside(current):
                if not inside(previous):
                    kept.append(cross(previous, current))
                kept.append(current)
            elif inside(previous):
                kept.append(cross(previous, current))
        points = kept
    flat = tuple(v for point in points for v in point)
    return flat if len(points) >= 3 and abs(signed_area(flat)) > 0 else ()


def _cross_x(a: tuple[float, float], b: tuple[float, float], x: float) -> tuple[float, float]:
    t = (x - a[0]) / (b[0] - a[0])
    return x, a[1] + t * (b[1] - a[1])


def _cross_y(a: tuple[float, float], b: tuple[float, float], y: float) -> tuple[float, float]:
    t = (y - a[1]) / (b[1] - a[1])
    return a[0] + t * (b[0] - a[0]), y


def outside_by(polygon: Polygon, width: float, height: float) -> float:
    """How far (pixels) the farthest vertex lies outside the image; 0 when all are inside."""
    xs, ys = polygon[0::2], polygon[1::2]
    return max(0.0, -min(xs), max(xs) - width, -min(ys), max(ys) - height)


def join_parts(parts: Sequence[Polygon]) -> Polygon:
    """One polygon from several: each further part is spliced in at the vertex nearest to it,
    walked once round and closed, then the walk returns along the same zero-width bridge.

    The filled area stays the union of the parts for parts that do not overlap, and a part
    wound the other way (a hole) stays a hole.
    """
    if not parts:
        return ()
    joined = list(zip(parts[0][0::2], parts[0][1::2]))
    for part in parts[1:]:
        points = list(zip(part[0::2], part[1::2]))
        k, j = min(
            ((k, j) for k in range(len(joined)) for j in range(len(points))),
            key=lambda kj: (joined[kj[0]][0] - points[kj[1]][0]) ** 2 + (joined[kj[0]][1] - points[kj[1]][1]) ** 2,
        )
        loop = points[j:] + points[: j + 1]  # starts and ends at the bridge's far end
        joined = joined[: k + 1] + loop + joined[k:]
    return tuple(v for point in joined for v in point)


def rle_area(rle: dict) -> float:
    """Pixels set in a COCO RLE (compressed or uncompressed ``counts``)."""
    from pycocotools import mask as mask_utils

    height, width = rle["size"]
    encoded = mask_utils.frPyObjects(rle, height, width) if isinstance(rle["counts"], list) else rle
    return float(mask_utils.area(encoded))
