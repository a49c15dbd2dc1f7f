"""The click classes every ``scsa-yolo`` command is declared with.

Our errors all derive from :class:`scsa_yolo.errors.ScsaYoloError` and carry their whole
message; this is the one place that turns them into click errors: a usage error (exit 2)
for what the user typed, a failure (exit 1) for the work itself. Commands do not catch
our errors themselves, so no bad input ends in a traceback and no message is rewritten
on its way out.
"""
from __future__ import annotations

import click

from scsa_yolo.errors import ScsaYoloError

__all__ = ["Command", "Group", "click_error"]


def click_error(error: ScsaYoloError, ctx: click.Context | None = None) -> click.ClickException:
    """The click error a user sees for one of ours: its message once, its exit code."""
    if error.usage and error.option:
        return click.BadParameter(str(error), ctx=ctx, param_hint=error.option)
    if error.usage:
        return click.UsageError(str(error), ctx=ctx)
    return click.ClickException(str(error))


class Command(click.Command):
    """A click command whose :class:`~scsa_yolo.errors.ScsaYoloError` becomes a click error."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ScsaYoloError as error:
            raise click_error(error, ctx) from None


class Group(click.Group):
    """A click group whose sub-commands (and sub-groups) are :class:`Command` s."""

    command_class = Command
    group_class = type  # sub-groups are of this same class
