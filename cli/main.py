"""Entry point of the ``scsa-yolo`` command.

Sub-commands are imported lazily, and no command module imports torch or ultralytics at
load (they do inside the command bodies), so ``scsa-yolo --help``, every ``--help`` and
``scsa-yolo data list`` start fast (``tests/test_boundaries.py`` checks it).
"""
from __future__ import annotations

import importlib

import click

#: sub-commands; each is the click command of the same name in ``scsa_yolo.cli.<name>``
SUBCOMMANDS = ("train", "models", "data", "val", "profile", "bench", "plateau", "report", "explain", "warmup")


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        return getattr(importlib.import_module(f"scsa_yolo.cli.{name}"), name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scsa-yolo")
def main() -> None:
    """SCSA and rival attentions in Ultralytics YOLO: train, benchmark, report."""


if __name__ == "__main__":
    main()
