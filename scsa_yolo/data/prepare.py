"""``scsa-yolo data prepare``: source files -> recipe -> writer, idempotently.

A dataset counts as prepared when ``ROOT/NAME/manifest.json`` says ``complete`` for the
same request (splits and recipe options). Then a second run does nothing and says so;
``force=True`` rebuilds. A request that differs from what is on disk is refused (rather
than silently replacing a dataset) unless ``force`` is given.

A generated dataset (the synthetic sets) takes the same path, with its recipe drawing the
images instead of reading source files. It counts as prepared only while its files still
hash to the manifest's content hash and its data YAML points at its folder; otherwise, or
when the request differs, it is generated again (nothing the user supplied is lost).
:func:`resolve_or_prepare` turns ``--data`` into a data YAML and generates such a dataset
on first use.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from scsa_yolo.errors import ScsaYoloError
from ..text import human_bytes
from .convert.events import ConversionLog
from .convert.recipes import Recipe, RecipeOptionError, get_recipe, is_generated
from .fetch.sources import materialize_sources
from .layout.manifest import ManifestError, content_unchanged, is_complete, load_manifest
from .layout.paths import DATA_YAML_NAME, DatasetNotPrepared, data_yaml_path, dataset_dir, default_data_root, resolve_data
from .layout.class_writer import ClassFolderWriter
from .layout.writer import DatasetWriter, staging_dir

SOURCES_DIR = ".sources"  # ROOT/.sources/NAME/{archives,extracted}: downloads and unpacked archives


class PrepareError(ScsaYoloError, RuntimeError):
    """The request cannot be carried out as given; the message says what to do."""


@dataclass
class PrepareResult:
    """What :func:`prepare_dataset` did."""

    status: str  # "prepared" or "already prepared"
    folder: Path
    data_yaml: Path  # what ``data=`` takes: the data YAML, or the folder of a classification dataset
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
        UnknownDataset, RecipeOptionError, ValueError: bad name, option or split (also
            ``source`` or ``splits`` for a generated dataset, which has neither).
        PrepareError: a different dataset is already there and ``force`` is not set.
        SourceMissing: files that must be fetched by hand are not in ``source``.
        DownloadError, ChecksumMismatch, UnsafeArchiveError, ArchiveError: source problems.
    """
    recipe = get_recipe(name)
    if recipe.generated and (source is not None or splits):
        raise RecipeOptionError(f"the {recipe.name} dataset is generated: --source and --splits do not apply")
    splits = recipe.check_splits(splits)
    options = recipe.resolve_options(options)
    request = _request(splits, options)
    root_path = Path(root).expanduser() if root is not None else default_data_root()
    folder = dataset_dir(recipe.name, root_path).absolute()
    classify = recipe.task == "classify"
    data_argument = dataset_dir(recipe.name, root_path) if classify else data_yaml_path(recipe.name, root_path)

    if folder.exists() and not force:
        manifest = _on_disk(recipe, folder)
        if _reusable(recipe, folder, manifest, request):
            echo(f"{recipe.name}: already prepared at {folder} (nothing to do; --force rebuilds)")
            return PrepareResult("already prepared", folder, data_argument, manifest)
        if is_complete(manifest) and not recipe.generated:  # a generated one is made again below
            raise PrepareError(
                f"{folder} holds '{recipe.name}' prepared with {manifest.get('request')}, "
                f"not the requested {request}; pass --force to rebuild it"
            )
        if not recipe.generated:
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
    origin = f" from {', '.join(map(str, tree.roots))}" if tree.roots else ""
    echo(f"{recipe.name}: {'generating' if recipe.generated else 'converting'} splits {', '.join(splits)}{origin}")
    conversion = recipe.convert(tree, splits, options, log)
    if classify:
        writer = ClassFolderWriter(folder, link_mode=link_mode, progress=progress, record_content=recipe.generated,
                                   echo=echo)
    else:
        writer = DatasetWriter(
            folder, eval_splits=recipe.eval_splits, link_mode=link_mode, progress=progress,
            record_content=recipe.generated, echo=echo,
        )
    manifest = writer.write(
        conversion,
        log,
        manifest_fields={"dataset": recipe.name, "request": request, "source": source_records},
    )
    result = PrepareResult("prepared", folder, data_argument, manifest, log, time.monotonic() - started)
    result.summary = summarize(manifest, log)
    for line in result.summary:
        echo(line)
    return result


def summarize(manifest: dict, log: ConversionLog) -> list[str]:
    """Human summary: images and boxes per split, then every change with its count."""
    lines = []
    for split, s in manifest["splits"].items():
        if manifest.get("task") == "classify":
            empty = f", {len(s['empty_classes'])} empty" if s["empty_classes"] else ""
            lines.append(
                f"  {split:6s} {s['images']:7d} images in {len(s['images_per_class'])} classes{empty}, "
                f"{human_bytes(s['image_bytes'])}"
            )
            continue
        masks = f" ({s['masks']} with masks)" if s.get("masks") else ""
        lines.append(
            f"  {split:6s} {s['images']:7d} images ({s['background_images']} without boxes), "
            f"{s['boxes']:8d} boxes{masks}, {s['ignore_regions']:6d} ignore regions, {human_bytes(s['image_bytes'])}"
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


def _on_disk(recipe: Recipe, folder: Path) -> dict | None:
    """The manifest in ``folder``; for a generated dataset an unreadable one counts as none
    (it is generated again), for the others it raises :class:`ManifestError`."""
    try:
        return load_manifest(folder)
    except ManifestError:
        if recipe.generated:
            return None
        raise


def _reusable(recipe: Recipe, folder: Path, manifest: dict | None, request: dict) -> bool:
    """Complete and made for ``request``; a generated dataset must also be as it was written
    (content hash) and not moved (its data YAML's ``path`` is this folder)."""
    if not is_complete(manifest) or manifest.get("request") != request:
        return False
    if not recipe.generated:
        return True
    # class folders name no path, so a moved classification set is still usable
    return content_unchanged(folder, manifest) and (recipe.task == "classify" or _yaml_points_to(folder))


def _yaml_points_to(folder: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load((folder / DATA_YAML_NAME).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and Path(str(data.get("path", ""))) == folder


def resolve_or_prepare(
    name_or_path: str | Path, root: str | Path | None = None, echo: Callable[[str], None] | None = None
) -> Path:
    """Data YAML (a classification dataset's folder) for a ``--data`` value; a generated
    dataset is generated on first use.

    Like :func:`scsa_yolo.data.layout.paths.resolve_data`, but the name of a generated dataset
    (``synthetic``, ``synthetic-lowlight``, ...) that is not prepared under ``root`` is
    prepared with its default options. A prepared one is used as it is (never generated
    again), whatever options it was made with. ``echo`` (None: silent) gets the messages.

    Raises:
        DatasetNotPrepared: not a data YAML, not prepared, and not a generated dataset.
        RecipeOptionError: a generated recipe's name with an unknown variant (choices listed).
    """
    try:
        return resolve_data(name_or_path, root)
    except DatasetNotPrepared:
        if Path(str(name_or_path)).suffix in {".yaml", ".yml"} or not is_generated(str(name_or_path)):
            raise
    say = echo or (lambda _: None)
    say(f"{name_or_path} dataset not found: generating it (a few seconds) ...")
    result = prepare_dataset(str(name_or_path), root=root, progress=echo is not None, echo=say)
    say(f"{name_or_path} dataset ready: {result.data_yaml}")
    return result.data_yaml


__all__ = ["PrepareError", "PrepareResult", "prepare_dataset", "resolve_or_prepare", "staging_dir", "summarize"]
