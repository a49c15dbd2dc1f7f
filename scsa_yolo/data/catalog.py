"""The table behind ``scsa-yolo data list``: every recipe and its state under a data root.

The synthetic scenarios (``synthetic-lowlight``, ``synthetic-tiny``, ``synthetic-thermal``)
have no recipe of their own (one generator makes them all); they are listed right after
``synthetic``.
"""
from __future__ import annotations

from pathlib import Path

from ..cliutil import format_table, human_bytes
from .manifest import ManifestError, is_complete, load_manifest
from .paths import dataset_dir, default_data_root
from .recipes import get_recipe, recipe_names
from .writer import staging_dir

COLUMNS = ("dataset", "title", "classes", "splits", "download", "on disk", "prepared")


def _listed() -> list[tuple[str, object]]:
    """(dataset name, recipe) in listing order; scenarios share the synthetic recipe."""
    listed = []
    for name in recipe_names():
        recipe = get_recipe(name)
        listed.append((name, recipe))
        if name == "synthetic":
            from .synthetic import SCENARIOS

            listed += [(scenario.dataset, _ScenarioRecipe(recipe, scenario.title)) for scenario in SCENARIOS.values()]
    return listed


class _ScenarioRecipe:
    """The synthetic recipe under a scenario's title (all else is the same)."""

    def __init__(self, base, title: str) -> None:
        self._base, self.title = base, title

    def __getattr__(self, attribute):
        return getattr(self._base, attribute)


def dataset_rows(root: str | Path | None = None) -> list[dict[str, str]]:
    """One row per dataset: what it is, and whether it is prepared under ``root``."""
    root_path = Path(root).expanduser() if root is not None else default_data_root()
    rows = []
    for name, recipe in _listed():
        folder = dataset_dir(name, root_path)
        try:
            manifest = load_manifest(folder)
        except ManifestError:
            manifest = None
        prepared = "no"
        classes = str(len(recipe.classes)) if recipe.classes else "derived" if name == "flir" else "-"
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
            download = "manual" if recipe.remote_files else "generated"
        rows.append(
            {"dataset": name, "title": recipe.title, "classes": classes, "splits": splits,
             "download": download, "on disk": on_disk, "prepared": prepared}
        )
    return rows


def format_rows(rows: list[dict[str, str]]) -> str:
    """Left-aligned plain-text table of :func:`dataset_rows`."""
    return format_table(COLUMNS, ([r[c] for c in COLUMNS] for r in rows))
