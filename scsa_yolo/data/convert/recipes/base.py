"""What every dataset recipe declares, and the helpers the converters share.

A recipe knows one dataset's original distribution: its classes, its splits, the files it
ships as (with URLs, sizes and checksums where public) and how to read its annotations.
Its :meth:`Recipe.convert` turns a :class:`~scsa_yolo.data.fetch.sources.SourceTree` into a
stream of :class:`ConvertedImage` (pixel boxes, ignore regions flagged); writing the
Ultralytics layout, the COCO ground truth and the manifest is the writer's job.

A *generated* recipe (``generated = True``, the synthetic set) has no source files: its
:meth:`Recipe.convert` draws the images itself and hands their encoded bytes to the same
writer.

A classification recipe (``task = "classify"``: ImageNet-style folders, ``synthetic-cls``)
streams :class:`ClassifiedImage` instead, and its writer lays out class folders
(``split/<class>/``), the layout ``yolo classify train data=FOLDER`` reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

from scsa_yolo.errors import ScsaYoloError
from scsa_yolo.data.fetch.download import RemoteFile
from scsa_yolo.data.fetch.sources import SourceMissing, SourceTree
from ..boxes import GtBox
from ..events import (
    ACTION_SKIPPED,
    CORRUPT_IMAGE,
    EXIF_ROTATED,
    MISSING_IMAGE,
    SIZE_FROM_IMAGE,
    SIZE_MISMATCH,
    ACTION_KEPT,
    ConversionLog,
)
from ..images import ImageProblem, probe_image


class RecipeOptionError(ScsaYoloError, ValueError):
    """An option a recipe does not have, or a value outside its choices."""

    usage = True


class UnknownDataset(ScsaYoloError, ValueError):
    """A dataset name no recipe has."""

    usage = True


@dataclass(frozen=True)
class RecipeOption:
    """A conversion choice of one recipe, exposed as a ``scsa-yolo data prepare`` option."""

    name: str  # python name; the CLI flag is --name-with-dashes
    default: Any
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def is_flag(self) -> bool:
        return isinstance(self.default, bool)


@dataclass
class ConvertedImage:
    """One image ready to be written: where it is, its output name, size and boxes.

    ``source`` is the image file, placed without re-encoding; a generated image has no file
    (``source`` None) and brings its encoded bytes in ``data`` instead.
    ``boxes`` are in pixels (top-left origin, ``x y w h``), already clipped to the image;
    boxes with ``ignore=True`` become ``iscrowd`` regions in the ground truth only.
    ``name`` is the path below ``images/<split>/`` (keeps the original extension).
    ``extra_labels`` are training labels that are not ground-truth boxes (VOC difficult
    objects with ``--train-difficult``: an ignore region in the GT, a label in training).
    """

    source: Path | None
    name: str
    width: int
    height: int
    boxes: list[GtBox] = field(default_factory=list)
    extra_labels: list[GtBox] = field(default_factory=list)
    data: bytes | None = None


@dataclass
class ClassifiedImage:
    """One image of a classification dataset, written to ``<split>/<class_name>/<name>``.

    Like :class:`ConvertedImage`: ``source`` is placed without re-encoding, or a generated
    image brings its encoded bytes in ``data``.
    """

    source: Path | None
    name: str
    class_name: str
    data: bytes | None = None


@dataclass
class Conversion:
    """What :meth:`Recipe.convert` returns: the class list and the image stream.

    ``images`` yields ``(split, image)`` split after split (:class:`ConvertedImage`, or
    :class:`ClassifiedImage` for a classification recipe, whose ``classes`` are its class
    folders' names in sorted order, the class indices Ultralytics gives them). ``totals`` (images expected per
    split) only feeds the progress line. ``yaml_extra`` is merged into the data YAML,
    ``manifest_extra`` into the manifest (top-level keys, e.g. the generator's parameters).
    """

    classes: list[str]
    images: Iterator[tuple[str, ConvertedImage]]
    totals: dict[str, int] = field(default_factory=dict)
    yaml_extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    manifest_extra: dict = field(default_factory=dict)


class Recipe:
    """Base class of the dataset recipes."""

    name: ClassVar[str]
    title: ClassVar[str]
    homepage: ClassVar[str] = ""
    classes: ClassVar[tuple[str, ...] | None]  # None: derived from the annotations
    splits: ClassVar[tuple[str, ...]]
    eval_splits: ClassVar[tuple[str, ...]]
    remote_files: ClassVar[tuple[RemoteFile, ...]] = ()
    options: ClassVar[tuple[RecipeOption, ...]] = ()
    manual_help: ClassVar[str] = ""
    #: True: no source files, the recipe draws its images. Such a dataset is rebuilt (not
    #: refused) when the request differs or its files changed, since nothing the user
    #: supplied is lost; its manifest records a content hash to tell.
    generated: ClassVar[bool] = False
    #: Further datasets of this recipe, named ``NAME-VARIANT`` (``synthetic-lowlight``).
    variants: ClassVar[tuple[str, ...]] = ()
    #: The layout written: ``detect`` (images/, labels/, COCO ground truth; it also trains
    #: ``segment`` when its labels are polygons) or ``classify`` (class folders, no labels).
    task: ClassVar[str] = "detect"

    @classmethod
    def variant(cls, name: str) -> "Recipe":
        """The recipe of dataset ``name`` (``NAME-VARIANT``); a recipe with variants overrides this.

        Raises:
            UnknownDataset: this recipe has no such variant.
        """
        raise UnknownDataset(f"unknown dataset '{name}'")

    # --- declarations -------------------------------------------------------------------
    @property
    def downloadable(self) -> bool:
        """True when every source file has a direct URL."""
        return bool(self.remote_files) and all(r.url for r in self.remote_files)

    def files_for(self, splits: list[str]) -> list[RemoteFile]:
        """Source files needed to build ``splits``."""
        wanted = set(splits)
        return [r for r in self.remote_files if r.needed_for(wanted)]

    def download_size(self, splits: list[str] | None = None) -> int | None:
        """Sum of the known sizes of the source files (None when any is unknown)."""
        files = self.files_for(list(splits or self.splits))
        if not files or any(r.size is None for r in files):
            return None
        return sum(r.size for r in files)

    def resolve_options(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown names or values raise :class:`RecipeOptionError`."""
        known = {o.name: o for o in self.options}
        resolved = {o.name: o.default for o in self.options}
        for key, value in (given or {}).items():
            if key not in known:
                valid = ", ".join(sorted(known)) or "none"
                raise RecipeOptionError(f"dataset '{self.name}' has no option '{key}' (its options: {valid})")
            option = known[key]
            if option.choices and value not in option.choices:
                raise RecipeOptionError(
                    f"option '{key}' of '{self.name}' must be one of {', '.join(option.choices)}, got {value!r}"
                )
            resolved[key] = value
        return resolved

    def check_splits(self, splits: list[str] | None) -> list[str]:
        """``splits`` in the recipe's order (all when None); unknown names raise :class:`RecipeOptionError`."""
        if not splits:
            return list(self.splits)
        unknown = [s for s in splits if s not in self.splits]
        if unknown:
            raise RecipeOptionError(
                f"dataset '{self.name}' has no split {', '.join(map(repr, unknown))} (its splits: {', '.join(self.splits)})"
            )
        return [s for s in self.splits if s in splits]

    def split_missing(self, split: str, requested: Sequence[str], what: str, roots: Sequence[Path]) -> SourceMissing:
        """The error for a split whose files are not in the source, with the ``--splits`` way out.

        ``what`` names the missing folder or file; ``requested`` are the splits being built. A
        user who has only some splits' files (e.g. VisDrone's or FLIR's train/val archives)
        learns that ``--splits`` prepares just those.
        """
        searched = ", ".join(str(root) for root in roots) or "(no source folder)"
        others = [s for s in requested if s != split]
        if others:
            hint = f"If you have only some splits' files, prepare those with --splits, e.g. --splits {','.join(others)}."
        else:
            hint = f"--splits chooses which of {', '.join(self.splits)} to prepare."
        return SourceMissing(
            f"{self.name}: no {what} under {searched}.\nSplit '{split}' needs it. {hint}\n{self.manual_help}"
        )

    # --- conversion ---------------------------------------------------------------------
    def convert(self, tree: SourceTree, splits: list[str], options: dict[str, Any], log: ConversionLog) -> Conversion:
        raise NotImplementedError


def measure_image(
    path: Path,
    log: ConversionLog,
    *,
    split: str,
    annotation_file: str,
    declared: tuple[int, int] | None = None,
) -> tuple[int, int] | None:
    """Size ``(width, height)`` of the image at ``path`` or None when it cannot be used.

    A missing or unreadable image is logged (``missing_image`` / ``corrupt_image``) and the
    caller skips it. A declared size (from the annotation) that is absent, zero or
    different from the file is logged; the file's own size wins, because that is what the
    training loader will see.
    """
    name = path.name
    if not path.is_file():
        log.record(MISSING_IMAGE, ACTION_SKIPPED, annotation_file, split=split, image=name, detail=f"no image {path}")
        return None
    try:
        width, height, orientation = probe_image(path)
    except ImageProblem as problem:
        log.record(CORRUPT_IMAGE, ACTION_SKIPPED, str(path), split=split, image=name, detail=str(problem))
        return None
    if declared is not None:
        dw, dh = declared
        if not dw or not dh:
            log.record(SIZE_FROM_IMAGE, ACTION_KEPT, annotation_file, split=split, image=name, detail=f"{width}x{height}")
        elif (dw, dh) != (width, height):
            log.record(
                SIZE_MISMATCH,
                ACTION_KEPT,
                annotation_file,
                split=split,
                image=name,
                detail=f"annotation says {dw}x{dh}, file is {width}x{height}: using the file's size",
            )
    if orientation not in (0, 1):
        log.record(
            EXIF_ROTATED,
            ACTION_KEPT,
            str(path),
            split=split,
            image=name,
            detail=f"EXIF orientation {orientation}: boxes are kept in stored-pixel coordinates",
        )
    return width, height
