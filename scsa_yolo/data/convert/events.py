"""The conversion log: every box or image a converter changes, drops or re-maps.

Converters never drop anything silently. Each change is one :class:`Event` naming the
source file, the line (or annotation id for JSON sources), what happened and why. The
events and their per-reason counts go into the dataset manifest and the summary printed at
the end of ``scsa-yolo data prepare``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

# Reasons. Box-level first, then image-level.
CLIPPED = "clipped"  # box extended past the image border: clipped to it
DEGENERATE = "degenerate"  # zero or negative width/height (after clipping): dropped
ZERO_AREA = "zero_area"  # source box with zero width or height: dropped
UNKNOWN_CLASS = "unknown_class"  # class name/id not among the dataset's classes: dropped
MALFORMED = "malformed"  # line/box that cannot be parsed: dropped
CROWD = "crowd"  # COCO iscrowd box: ignore region in GT, no training label
DIFFICULT = "difficult"  # VOC difficult object: ignore region in GT (training label optional)
IGNORED_REGION = "ignored_region"  # VisDrone category 0 / score 0: ignore region for every class
OTHERS = "others"  # VisDrone category 11: handled by the --others policy
RENAMED_CLASS = "renamed_class"  # class name matched after case/space normalisation
NO_MASK = "no_mask"  # object without a usable polygon in a split with masks: its box is its mask
MASK_CLIPPED = "mask_clipped"  # polygon extended past the image border: clipped to it
MASK_BOX_MISMATCH = "mask_box_mismatch"  # polygon's extent and the box differ by more than a pixel
MISSING_IMAGE = "missing_image"  # annotation without an image file: image skipped
CORRUPT_IMAGE = "corrupt_image"  # image that cannot be read: image skipped
DUPLICATE_IMAGE = "duplicate_image"  # second image with the same output name: skipped
NOT_IN_SPLIT = "not_in_split"  # image present in the source but not in any split list
NO_ANNOTATION = "no_annotation"  # image without an annotation file: kept as background
SIZE_MISMATCH = "size_mismatch"  # declared image size differs from the file: file wins
SIZE_FROM_IMAGE = "size_from_image"  # declared size missing or zero: read from the file
EXIF_ROTATED = "exif_rotated"  # EXIF orientation tag set: loaders may rotate the pixels
# classification folders
EMPTY_CLASS = "empty_class"  # class folder without a readable image in a split: kept, no images
NOT_AN_IMAGE = "not_an_image"  # file in a class folder whose suffix is no image format: skipped
NOT_IN_CLASS = "not_in_class"  # image directly in a split folder, outside every class folder: skipped

# what happened to the box or image
ACTION_DROPPED = "dropped"
ACTION_CLIPPED = "clipped"
ACTION_IGNORE = "ignore_region"
ACTION_KEPT = "kept"
ACTION_REMAPPED = "remapped"
ACTION_SKIPPED = "image_skipped"


@dataclass(frozen=True)
class Event:
    """One change made by a converter.

    ``line`` is the 1-based line in ``file`` for text sources; JSON sources give the
    annotation id in ``detail`` instead.
    """

    reason: str
    action: str
    file: str
    line: int | None = None
    split: str | None = None
    image: str | None = None
    detail: str = ""

    def where(self) -> str:
        """``file:line`` (or just ``file``) for messages."""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


_EVENT_FIELDS = ("reason", "action", "file", "line", "split", "image", "detail")


def _event_json(event: Event) -> dict:
    """The event's fields without the empty ones (``dataclasses.asdict`` is 10x slower)."""
    return {k: v for k in _EVENT_FIELDS if (v := getattr(event, k)) is not None and v != ""}


class ConversionLog:
    """Collects :class:`Event`s and counts them per reason."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.counts: Counter[str] = Counter()

    def record(
        self,
        reason: str,
        action: str,
        file: str,
        line: int | None = None,
        *,
        split: str | None = None,
        image: str | None = None,
        detail: str = "",
    ) -> Event:
        event = Event(reason, action, str(file), line, split, image, detail)
        self.events.append(event)
        self.counts[reason] += 1
        return event

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.events.append(event)
            self.counts[event.reason] += 1

    def count(self, reason: str) -> int:
        return self.counts.get(reason, 0)

    def to_json(self) -> dict:
        """Counts plus every event, for the manifest."""
        return {
            "counts": dict(sorted(self.counts.items())),
            "events": [_event_json(e) for e in self.events],
        }

    def summary_lines(self, examples: int = 3) -> list[str]:
        """One line per reason with its count and the first few places it happened."""
        lines = []
        for reason, count in sorted(self.counts.items()):
            sample = [e for e in self.events if e.reason == reason][:examples]
            where = "; ".join(f"{e.where()}{' ' + e.detail if e.detail else ''}" for e in sample)
            lines.append(f"  {reason:16s} {count:8d}  e.g. {where}")
        return lines
