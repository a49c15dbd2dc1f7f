"""``scsa-yolo data``: list, prepare and check the benchmark datasets."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from scsa_yolo.cli.command import Group
from scsa_yolo.cliutil import parse_key_values, split_list
from scsa_yolo.data.convert.recipes import RecipeOption, dataset_names, get_recipe, recipe_names

ROOT_HELP = "Data root holding one folder per dataset (default: $SCSA_YOLO_DATA or ./datasets)."


def _all_recipe_options() -> dict[str, tuple[RecipeOption, list[str]]]:
    """Every recipe option by name, with the datasets that have it (one CLI flag each)."""
    found: dict[str, tuple[RecipeOption, list[str]]] = {}
    for name in recipe_names():
        for option in get_recipe(name).options:
            found.setdefault(option.name, (option, []))[1].append(name)
    return found


def _recipe_option_decorators():
    decorators = []
    for option, owners in _all_recipe_options().values():
        flag = "--" + option.name.replace("_", "-")
        help_text = f"{option.help} [{', '.join(owners)}; default: {option.default!r}]"
        if option.is_flag:
            decorators.append(click.option(f"{flag}/--no-{flag[2:]}", option.name, default=None, help=help_text))
        elif option.choices:
            decorators.append(click.option(flag, option.name, type=click.Choice(option.choices), default=None, help=help_text))
        else:
            decorators.append(click.option(flag, option.name, type=type(option.default), default=None, help=help_text))
    return decorators


def _with_recipe_options(func):
    for decorator in reversed(_recipe_option_decorators()):
        func = decorator(func)
    return func


@click.group(name="data", cls=Group)
def data() -> None:
    """List, prepare and check the benchmark datasets (COCO, VOC, VisDrone, ExDark, FLIR, ImageNet-style
    class folders, synthetic, synthetic-cls)."""


@data.command(name="list")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None, help=ROOT_HELP)
def list_datasets(root: Path | None) -> None:
    """Each dataset: classes, splits, download size, size on disk, prepared or not."""
    from scsa_yolo.data.catalog import dataset_rows, format_rows

    click.echo(format_rows(dataset_rows(root)))


@data.command(name="prepare")
@click.argument("name", type=click.Choice(dataset_names(), case_sensitive=False))
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None, help=ROOT_HELP)
@click.option(
    "--source",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Archives or extracted folders you already have (a folder or one archive). Without it, "
    "datasets with a public URL are downloaded into ROOT/.sources/NAME.",
)
@click.option("--splits", multiple=True, help="Splits to prepare, e.g. --splits val or --splits train,val (default: all).")
@click.option("--force", is_flag=True, help="Rebuild even if the dataset is already prepared.")
@click.option(
    "--link",
    "link_mode",
    type=click.Choice(["auto", "hardlink", "symlink", "copy"]),
    default="auto",
    show_default=True,
    help="How images reach ROOT/NAME/images: auto = hard link, copy when on another file system.",
)
@click.option("--keep-bad-downloads", is_flag=True, help="Keep a download that fails its checksum as NAME.bad (default: delete).")
@click.option("--no-progress", is_flag=True, help="No progress lines.")
@click.option("--set", "set_options", multiple=True, metavar="KEY=VALUE", help="Any recipe/generator option as KEY=VALUE.")
@_with_recipe_options
def prepare(
    name: str,
    root: Path | None,
    source: Path | None,
    splits: tuple[str, ...],
    force: bool,
    link_mode: str,
    keep_bad_downloads: bool,
    no_progress: bool,
    set_options: tuple[str, ...],
    **recipe_options: Any,
) -> None:
    """Convert dataset NAME into ROOT/NAME (Ultralytics layout, COCO ground truth, manifest; class folders
    for a classification dataset)."""
    from scsa_yolo.data.prepare import prepare_dataset

    options = {k: v for k, v in recipe_options.items() if v is not None}
    given = parse_key_values(set_options, param_hint="--set", example="num_train=200")
    options.update({key.replace("-", "_"): value for key, value in given.items()})
    name = name.lower()
    result = prepare_dataset(
        name,
        root=root,
        source=source,
        splits=split_list(splits) or None,
        force=force,
        options=options,
        link_mode=link_mode,
        on_mismatch="keep" if keep_bad_downloads else "delete",
        progress=not no_progress,
        echo=lambda message: click.echo(message, err=True),
    )
    if result.status == "prepared":
        click.echo(f"{name}: prepared in {result.seconds:.1f} s -> {result.data_yaml}")
    else:
        click.echo(f"{name}: already prepared -> {result.data_yaml}")


@data.command(name="check")
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None, help=ROOT_HELP)
def check(name: str, root: Path | None) -> None:
    """Verify prepared dataset NAME (or a dataset folder) against its manifest; print class statistics."""
    from scsa_yolo.data.layout.manifest import check_dataset
    from scsa_yolo.data.layout.paths import dataset_dir

    candidate = Path(name).expanduser()
    folder = candidate if candidate.is_dir() and (candidate / "manifest.json").exists() else dataset_dir(name, root)
    if not folder.is_dir():
        raise click.ClickException(
            f"{folder} does not exist: prepare it with `scsa-yolo data prepare {name}"
            f"{f' --root {root}' if root is not None else ''}`"
        )
    report = check_dataset(folder)
    if report.table:
        click.echo(report.table)
    if not report.ok:
        for problem in report.problems[:50]:
            click.echo(f"problem: {problem}", err=True)
        more = len(report.problems) - 50
        raise click.ClickException(
            f"{folder}: {len(report.problems)} problem(s){f' ({more} not shown)' if more > 0 else ''}; "
            f"rebuild with `scsa-yolo data prepare {folder.name} --force`"
        )
    counts = ", ".join(f"{split} {found['images']} images" for split, found in report.checked.items())
    click.echo(f"{folder}: OK ({counts})")
