"""Writes a classification dataset as class folders, atomically.

The layout is the one ``yolo classify train data=ROOT/NAME`` reads::

    ROOT/NAME/train/<class>/...   images (linked, or a generated image's bytes)
    ROOT/NAME/val/<class>/...
    ROOT/NAME/manifest.json       classes, images per class and split, every change

Ultralytics numbers the classes by the sorted names of the ``train`` folders, so every class
gets its folder in every split, an empty one included: the indices never shift. Like
:class:`~scsa_yolo.data.layout.writer.DatasetWriter`, it writes to ``ROOT/.NAME.partial``
first and renames that into place once the manifest (written last) is there.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Callable

from scsa_yolo import __version__
from scsa_yolo.atomic import write_json_atomic
from scsa_yolo.data.convert.events import ACTION_KEPT, EMPTY_CLASS, ConversionLog
from scsa_yolo.data.convert.images import place_image
from scsa_yolo.data.convert.recipes.base import ClassifiedImage, Conversion
from .manifest import content_sha256
from .paths import MANIFEST_NAME
from .writer import MANIFEST_FORMAT, MANIFEST_VERSION, EmptySplitError, staging_dir, swap_into_place


class ClassFolderWriter:
    """Writes one classification dataset under ``final`` (``ROOT/NAME``) through a staging folder."""

    def __init__(
        self,
        final: Path,
        *,
        link_mode: str = "auto",
        progress: bool = True,
        record_content: bool = False,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.final = Path(final).absolute()
        self.staging = staging_dir(self.final)
        self.link_mode = link_mode
        self.progress = progress
        self.echo = echo
        self.link_counts: Counter[str] = Counter()
        self.files: list[str] | None = [] if record_content else None

    def write(self, conversion: Conversion, log: ConversionLog, *, manifest_fields: dict) -> dict:
        """Consume the conversion stream, write everything, rename into place; returns the manifest."""
        if self.staging.exists():
            self.echo(f"removing {self.staging} left by an interrupted run")
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        try:
            splits = list(manifest_fields["request"]["splits"])
            counts, sizes = self._write_images(conversion, splits)
            empty = [s for s in splits if not sum(counts[s].values())]
            if empty:
                reasons = ", ".join(f"{k} {v}" for k, v in sorted(log.counts.items())) or "no events"
                raise EmptySplitError(
                    f"{manifest_fields['dataset']}: split(s) {', '.join(empty)} got no image ({reasons}); "
                    f"is --source the right folder? Nothing was written."
                )
            for split in splits:  # every class folder in every split: Ultralytics' indices stay put
                for name in conversion.classes:
                    (self.staging / split / name).mkdir(parents=True, exist_ok=True)
                    if not counts[split][name]:
                        log.record(EMPTY_CLASS, ACTION_KEPT, f"{split}/{name}", split=split,
                                   detail=f"class '{name}' has no image in split '{split}': an empty folder")
            manifest = self._finish(conversion, log, splits, counts, sizes, manifest_fields)
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        swap_into_place(self.staging, self.final)
        return manifest

    def _write_images(self, conversion: Conversion, splits: list[str]) -> tuple[dict[str, Counter], Counter]:
        from scsa_yolo.integration.progress import progress_bar  # imports torch: not at module level

        counts: dict[str, Counter[str]] = {split: Counter() for split in splits}
        sizes: Counter[str] = Counter()
        known = set(conversion.classes)
        bar, current = None, None
        for split, image in conversion.images:
            if split != current:
                if bar is not None:
                    bar.close()
                current = split
                bar = progress_bar(f"writing {split}", conversion.totals.get(split), "images", enabled=self.progress)
            bar.update()
            if image.class_name not in known:  # a recipe bug, not a user error
                raise ValueError(f"{image.name}: class {image.class_name!r} is not among {conversion.classes}")
            target = self.staging / split / image.class_name / Path(*PurePosixPath(image.name).parts)
            self._place(image, target)
            counts[split][image.class_name] += 1
            sizes[split] += os.path.getsize(target)
        if bar is not None:
            bar.close()
        return counts, sizes

    def _place(self, image: ClassifiedImage, target: Path) -> None:
        if image.data is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(image.data)
            self.link_counts["written"] += 1
        else:
            self.link_counts[place_image(image.source, target, self.link_mode)] += 1
        if self.files is not None:
            self.files.append(target.relative_to(self.staging).as_posix())

    def _finish(self, conversion: Conversion, log: ConversionLog, splits: list[str], counts: dict[str, Counter],
                sizes: Counter, fields: dict) -> dict:
        classes = list(conversion.classes)
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "complete": True,
            "dataset": fields["dataset"],
            "task": "classify",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "scsa_yolo_version": __version__,
            "request": fields["request"],
            "source": fields.get("source", []),
            "classes": classes,
            "link_mode": dict(self.link_counts),
            "notes": conversion.notes,
            "splits": {
                split: {
                    "images": sum(counts[split].values()),
                    "images_per_class": {name: counts[split].get(name, 0) for name in classes},
                    "empty_classes": [name for name in classes if not counts[split].get(name)],
                    "image_bytes": sizes[split],
                }
                for split in splits
            },
            **log.to_json(),
            **conversion.manifest_extra,
        }
        if self.files is not None:
            manifest["files"] = self.files
            manifest["content_sha256"] = content_sha256(self.staging, self.files)
        write_json_atomic(manifest, self.staging / MANIFEST_NAME)  # last: the completeness mark
        return manifest
