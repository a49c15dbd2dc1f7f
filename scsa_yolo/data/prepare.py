"""``scsa-yolo data prepare``: source files -> recipe -> writer, idempotently.

A dataset counts as prepared when ``ROOT/NAME/manifest.json`` says ``complete`` for the
same request (splits and recipe options). Then a second run does nothing and says so;
``force=True`` rebuilds. A request that differs from what is on disk is refused (rather
than silently replacing a dataset) unless ``force`` is given.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..cliutil import human_bytes
from . import synthetic
from .events import ConversionLog
from .manifest import is_complete, load_manifest
from .paths import data_yaml_path, dataset_dir, default_data_root
from .recipes import RecipeOptionError, get_recipe
from .sources import materialize_sources
from .writer import DatasetWriter, staging_dir

SOURCES_DIR = ".sources"  # ROOT/.sources/NAME/{archives,extracted}: downloads and unpacked archives


class PrepareError(RuntimeError):
    """The request cannot be carried out as given; the message says what to do."""


@dataclass
class PrepareResult:
    """What :func:`prepare_dataset` did."""

    status: str  # "prepared" or "already prepared"
    folder: Path
    data_yaml: Path
    manifest: dict | None = None
    log: ConversionLog | None = None
    seconds: float = 0.0
    summary: list[str] = field(default_factory=list)


def _request(splits: list[str], options: dict[str, Any]) -> dict:
    return {"splits": list(splits), "options": dict(sorted(options.items()))}


def prepare_dataset(
    name: str,
    *,
    root: str | Path | None = None,
    source: str | Path | None = None,
    splits: list[str] | None = None,
    force: bool = False,
    options: dict[str, Any] | None = None,
    link_mode: str = "auto",
    on_mismatch: str = "delete",
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> PrepareResult:
    """Prepare dataset ``name`` under ``root`` (see the module docstring).

    Raises:
        UnknownDataset, RecipeOptionError, ValueError: bad name, option or split.
        PrepareError: a different dataset is already there and ``force`` is not set.
        SourceMissing: files that must be fetched by hand are not in ``source``.
        DownloadError, ChecksumMismatch, UnsafeArchiveError, ArchiveError: source problems.
    """
    if _is_generated(name):  # synthetic and synthetic-SCENARIO: no recipe, one generator
        return _prepare_synthetic(root, force, options or {}, echo, str(name).lower())
    recipe = get_recipe(name)
    splits = recipe.check_splits(splits)
    options = recipe.resolve_options(options)
    request = _request(splits, options)
    root_path = Path(root).expanduser() if root is not None else default_data_root()
    folder = dataset_dir(recipe.name, root_path).absolute()

    manifest = load_manifest(folder) if folder.exists() else None
    if folder.exists() and not force:
        if is_complete(manifest) and manifest.get("request") == request:
            echo(f"{recipe.name}: already prepared at {folder} (nothing to do; --force rebuilds)")
            return PrepareResult("already prepared", folder, data_yaml_path(recipe.name, root_path), manifest)
        if is_complete(manifest):
            raise PrepareError(
                f"{folder} holds '{recipe.name}' prepared with {manifest.get('request')}, "
                f"not the requested {request}; pass --force to rebuild it"
            )
        raise PrepareError(
            f"{folder} exists but is not a complete scsa-yolo dataset (no complete manifest.json); "
            f"move it away or pass --force to replace it"
        )

    started = time.monotonic()
    log = ConversionLog()
    files = recipe.files_for(splits)
    tree, source_records = materialize_sources(
        files,
        source=source,
        cache_dir=root_path / SOURCES_DIR / recipe.name,
        dataset=recipe.name,
        manual_help=recipe.manual_help,
        progress=progress,
        on_mismatch=on_mismatch,
        echo=echo,
    )
    echo(f"{recipe.name}: converting splits {', '.join(splits)} from {', '.join(map(str, tree.roots))}")
    conversion = recipe.convert(tree, splits, options, log)
    writer = DatasetWriter(folder, eval_splits=recipe.eval_splits, link_mode=link_mode, progress=progress, echo=echo)
    manifest = writer.write(
        conversion,
        log,
        manifest_fields={"dataset": recipe.name, "request": request, "source": source_records},
    )
    result = PrepareResult(
        "prepared", folder, data_yaml_path(recipe.name, root_path), manifest, log, time.monotonic() - started
    )
    result.summary = summarize(manifest, log)
    for line in result.summary:
        echo(line)
    return result


def summarize(manifest: dict, log: ConversionLog) -> list[str]:
    """Human summary: images and boxes per split, then every change with its count."""
    lines = []
    for split, s in manifest["splits"].items():
        lines.append(
            f"  {split:6s} {s['images']:7d} images ({s['background_images']} without boxes), "
            f"{s['boxes']:8d} boxes, {s['ignore_regions']:6d} ignore regions, {human_bytes(s['image_bytes'])}"
        )
    lines.append(f"  images placed by: {', '.join(f'{k} {v}' for k, v in sorted(manifest['link_mode'].items())) or '-'}")
    if log.counts:
        lines.append("  changes (every one is listed in manifest.json 'events'):")
        lines.extend(log.summary_lines())
    else:
        lines.append("  no box or image was changed, skipped or re-mapped")
    for note in manifest.get("notes", []):
        lines.append(f"  note: {note}")
    return lines


def _is_generated(name: str) -> bool:
    """``synthetic`` or ``synthetic-...`` (a misspelt scenario too: its error lists the choices)."""
    text = str(name).lower()
    return text == "synthetic" or text.startswith("synthetic-")


def _prepare_synthetic(
    root: str | Path | None, force: bool, options: dict[str, Any], echo: Callable[[str], None], name: str = "synthetic"
) -> PrepareResult:
    """Delegate to :func:`scsa_yolo.data.synthetic.prepare_synthetic_dataset`.

    ``name`` is ``synthetic`` or ``synthetic-SCENARIO``; an unknown scenario is a
    :class:`RecipeOptionError` whose message lists the choices.
    """
    root_path = Path(root).expanduser() if root is not None else default_data_root()
    folder = dataset_dir(name, root_path).absolute()
    before = _created(folder)
    started = time.monotonic()
    try:
        yaml_path = Path(synthetic.prepare_synthetic_dataset(name, root_path, force=force, **options))
    except TypeError as error:  # an option the generator's signature does not have
        raise RecipeOptionError(f"{name}: {error}") from None
    except synthetic.SyntheticOptionError as error:
        raise RecipeOptionError(f"{name}: {error}") from None
    manifest = load_manifest(yaml_path.parent)
    status = "already prepared" if before is not None and before == _created(yaml_path.parent) else "prepared"
    echo(f"{name}: {'already up to date' if status == 'already prepared' else 'generated'} at {yaml_path.parent}")
    return PrepareResult(status, yaml_path.parent, yaml_path, manifest, None, time.monotonic() - started)


def _created(folder: Path) -> str | None:
    try:
        manifest = load_manifest(folder)
    except ValueError:
        return None
    return manifest.get("created") if manifest else None


__all__ = ["PrepareError", "PrepareResult", "prepare_dataset", "staging_dir", "summarize"]
