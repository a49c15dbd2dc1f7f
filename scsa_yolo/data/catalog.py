"""The table behind ``scsa-yolo data list``: every dataset and its state under a data root.

Datasets are listed in recipe order, each recipe's variants right after it (``synthetic``,
then ``synthetic-lowlight``, ``synthetic-tiny``, ``synthetic-thermal``).
"""
from __future__ import annotations

from pathlib import Path

from ..text import format_table, human_bytes
from .convert.recipes import dataset_names, get_recipe
from .layout.manifest import ManifestError, is_complete, load_manifest
from .layout.paths import dataset_dir, default_data_root
from .layout.writer import staging_dir

COLUMNS = ("dataset", "title", "classes", "splits", "download", "on disk", "prepared")


def dataset_rows(root: str | Path | None = None) -> list[dict[str, str]]:
    """One row per dataset: what it is, and whether it is prepared under ``root``."""
    root_path = Path(root).expanduser() if root is not None else default_data_root()
    rows = []
    for name in dataset_names():
        recipe = get_recipe(name)
        folder = dataset_dir(name, root_path)
        try:
            manifest = load_manifest(folder)
        except ManifestError:
            manifest = None
        prepared = "no"
        classes = str(len(recipe.classes)) if recipe.classes else "derived"
        splits = ",".join(recipe.splits)
        on_disk = "-"
        if is_complete(manifest):
            prepared = "yes"
            classes = str(len(manifest.get("classes", [])))
            splits = ",".join(manifest.get("splits", {}))
            on_disk = human_bytes(sum(s.get("image_bytes", 0) for s in manifest["splits"].values()))
        elif staging_dir(folder.absolute()).exists():
            prepared = "interrupted"
        elif folder.exists():
            prepared = "incomplete"
        if recipe.downloadable:
            size = recipe.download_size()
            download = human_bytes(size) if size is not None else "yes"
        else:
            download = "generated" if recipe.generated else "manual"
        rows.append(
            {"dataset": name, "title": recipe.title, "classes": classes, "splits": splits,
             "download": download, "on disk": on_disk, "prepared": prepared}
        )
    return rows


def format_rows(rows: list[dict[str, str]]) -> str:
    """Left-aligned plain-text table of :func:`dataset_rows`."""
    return format_table(COLUMNS, ([r[c] for c in COLUMNS] for r in rows))
