"""``imagefolder``: ImageNet-style class folders, ``train/<class>/*.jpg`` and ``val/<class>/*.jpg``.

The layout of ImageNet's usual extraction, and of any classification dataset arranged for
``yolo classify train``. ``--source`` is that folder (or a parent of it, or an archive of
it). The classes are the ``train`` folder's class folders, in sorted order (the indices
Ultralytics gives them); ``val`` (``validation`` and ``valid`` are accepted too, as in
Ultralytics) may lack some of them, but a class in ``val`` that ``train`` does not have is
refused: no model trained on ``train`` could predict it.

Every image is checked by its header (the pixels are not decoded): unreadable files and
images smaller than 10 px (which Ultralytics' loader skips) are counted and named
(``corrupt_image``), files that are not images (``not_an_image``) and images outside every
class folder (``not_in_class``) too; hidden files (``.DS_Store``) are no images. A class
left without images in a split is kept as an empty folder and named (``empty_class``).
Images are linked, never re-encoded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from scsa_yolo.data.fetch.download import RemoteFile
from scsa_yolo.data.fetch.sources import SourceMissing, SourceTree
from scsa_yolo.errors import ScsaYoloError
from ..events import ACTION_SKIPPED, CORRUPT_IMAGE, NOT_AN_IMAGE, NOT_IN_CLASS, ConversionLog
from ..images import IMAGE_SUFFIXES
from .base import ClassifiedImage, Conversion, Recipe, measure_image

#: Ultralytics' classification loader skips images with a side below this (pixels)
MIN_SIDE = 10
#: the names a split's folder may have, first found wins (Ultralytics' own choices for val)
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation", "valid")}


class ClassFolderError(ScsaYoloError, ValueError):
    """Class folders that cannot make a classification dataset (the message says which and why)."""


class ImageFolderRecipe(Recipe):
    name = "imagefolder"
    title = "Class folders (ImageNet-style)"
    homepage = "https://www.image-net.org"
    classes = None  # the train folder's class folders
    splits = ("train", "val")
    eval_splits = ("val",)
    task = "classify"
    remote_files = (
        RemoteFile(
            "ImageNet-style class folders", None, splits=("train", "val"),
            manual="a folder with train/<class>/ and val/<class>/ image folders",
        ),
    )
    manual_help = (
        "imagefolder: pass --source DIR where DIR holds train/<class>/*.jpg and val/<class>/*.jpg (ImageNet's "
        "ILSVRC2012 train and val extracted into class folders, or any classification dataset in that layout; "
        "an archive of DIR works too). Class names are the train folder's sub-folder names."
    )

    def convert(self, tree: SourceTree, splits: list[str], options: dict, log: ConversionLog) -> Conversion:
        base = self._locate(tree, splits)
        folders = {split: _split_folder(base, split) for split in ("train", "val")}
        classes = _class_names(folders["train"] or folders[splits[0]])
        if folders["train"] is not None and folders["val"] is not None and "val" in splits:
            unknown = sorted(set(_class_names(folders["val"])) - set(classes))
            if unknown:
                shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
                raise ClassFolderError(
                    f"imagefolder: {folders['val']} has class folder(s) that {folders['train']} lacks: {shown}. "
                    f"A model trained on train cannot predict them; add train/<class>/ images for them or remove "
                    f"them from val."
                )
        if not classes:
            raise ClassFolderError(f"imagefolder: {folders['train'] or folders[splits[0]]} holds no class folders. "
                                   f"{self.manual_help}")
        located = {split: folders[split] for split in splits}
        return Conversion(classes, self._images(located, classes, log),
                          notes=[f"classes: the class folders of {folders['train'] or folders[splits[0]]}"])

    def _locate(self, tree: SourceTree, splits: list[str]) -> Path:
        """The shallowest folder holding every requested split's folder."""
        if not tree.roots:
            raise SourceMissing(f"imagefolder: no --source given.\n{self.manual_help}")
        found = tree.find_dirs(lambda d: all(_split_folder(d, s) is not None for s in splits))
        if found:
            return found[0]
        partial = tree.find_dirs(lambda d: any(_split_folder(d, s) is not None for s in self.splits))
        if partial:
            missing = next(s for s in splits if _split_folder(partial[0], s) is None)
            raise self.split_missing(missing, splits, f"{'/ or '.join(SPLIT_FOLDERS[missing])}/ folder", [partial[0]])
        raise SourceMissing(f"imagefolder: no train/ or val/ class folders under {', '.join(map(str, tree.roots))}.\n"
                            f"{self.manual_help}")

    def _images(self, located: dict[str, Path], classes: list[str], log: ConversionLog
                ) -> Iterator[tuple[str, ClassifiedImage]]:
        known = set(classes)
        for split, folder in located.items():
            for entry in sorted(folder.iterdir()):
                if entry.is_file():
                    reason = NOT_IN_CLASS if entry.suffix.lower() in IMAGE_SUFFIXES else NOT_AN_IMAGE
                    log.record(reason, ACTION_SKIPPED, str(entry), split=split, image=entry.name,
                               detail="a file outside every class folder")
                elif entry.is_dir() and entry.name in known:
                    yield from self._class_images(split, entry, log)

    @staticmethod
    def _class_images(split: str, folder: Path, log: ConversionLog) -> Iterator[tuple[str, ClassifiedImage]]:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            relative = path.relative_to(folder).as_posix()
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                log.record(NOT_AN_IMAGE, ACTION_SKIPPED, str(path), split=split, image=relative,
                           detail=f"suffix {path.suffix or '(none)'} is not one of {', '.join(IMAGE_SUFFIXES)}")
                continue
            size = measure_image(path, log, split=split, annotation_file=str(path))
            if size is None:
                continue
            if min(size) < MIN_SIDE:
                log.record(CORRUPT_IMAGE, ACTION_SKIPPED, str(path), split=split, image=relative,
                           detail=f"{size[0]}x{size[1]} px: Ultralytics skips images below {MIN_SIDE} px")
                continue
            yield split, ClassifiedImage(path, relative, folder.name)


def _split_folder(base: Path, split: str) -> Path | None:
    return next((base / name for name in SPLIT_FOLDERS[split] if (base / name).is_dir()), None)


def _class_names(split_folder: Path) -> list[str]:
    """The class folders of a split, sorted (Ultralytics' class order); hidden folders are no class."""
    return sorted(p.name for p in split_folder.iterdir() if p.is_dir() and not p.name.startswith("."))
