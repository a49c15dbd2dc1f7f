"""Every `scsa-yolo ...` command the README shows exists as written (issue 26, item 3).

The commands come from the README's shell code blocks and from its inline code spans that
start with `scsa-yolo`. Each is walked through the real click command tree: every
sub-command and option must exist, a flag takes no value, an option gets its value, and
every value is accepted by the option's type (choices such as --style, integer ranges) and,
for --grid, --data, --attn(s) and --placement, is a shipped grid, a known dataset, a
registered attention or a placement. Nothing is run: a README command may need data or
hours of training. Files named in a command are not required to exist.

Inline spans may write alternatives as the README's prose does: `table4|table3` for a value,
`data list / prepare NAME / check NAME` for sub-commands; upper-case words (NAME, RUN, DIR)
and `...` are placeholders.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from scsa_yolo.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "results/README.md", "results/quickstart/README.md", "datasets/README.md",
             "cfg/models/README.md", "results/perf/compiled_path_h200/README.md")
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
SHELL_SEPARATORS = {"&&", "||", ";", "|", "&"}
PLACEHOLDER = re.compile(r"^([A-Z][A-Z0-9_]*|\.\.\.)$")  # NAME, RUN, ...
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)")


@dataclass(frozen=True)
class Command:
    where: str  # "README.md:42"
    argv: tuple[str, ...]  # after `scsa-yolo`

    def __str__(self) -> str:
        return f"{self.where}: {' '.join(('scsa-yolo', *self.argv))}"


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _shell_commands(block: str, program: str = "scsa-yolo") -> list[tuple[int, tuple[str, ...]]]:
    """Invocations of ``program`` in a shell block with their line in it (0-based): continuation
    lines joined, comments dropped, chains (&&, ;, |) split, leading VAR=value skipped."""
    commands = []
    number = 0
    for line in re.split(r"(?<!\\)\n", block):
        first, number = number, number + line.count("\n") + 1
        line = line.replace("\\\n", " ")
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        segment: list[str] = []
        for token in [*tokens, ";"]:
            if token not in SHELL_SEPARATORS:
                segment.append(token)
                continue
            while segment and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", segment[0]):
                segment.pop(0)
            if segment and segment[0] == program:
                commands.append((first, tuple(segment[1:])))
            segment = []
    return commands


def _inline_commands(span: str) -> list[tuple[str, ...]]:
    """An inline span; ` / ` separates alternative sub-commands of the words before the first."""
    words = " ".join(span.split())
    first, *others = words.split(" / ")
    head = shlex.split(first)
    prefix = head[:-1] if others else head
    variants = [head] + [prefix[: max(1, len(prefix))] + shlex.split(other) for other in others]
    return [tuple(v[1:]) for v in variants]


def readme_commands(document: str, program: str = "scsa-yolo") -> list[Command]:
    """The ``program`` commands of a document: shell blocks, and for scsa-yolo inline spans."""
    path = ROOT / document
    text = path.read_text()
    commands = []
    for fence in FENCE.finditer(text):
        language = fence.group(1).strip().split()[0] if fence.group(1).strip() else ""
        if language in SHELL_BLOCKS:
            start = _line_of(text, fence.start(2))
            for offset, argv in _shell_commands(fence.group(2), program):
                commands.append(Command(f"{document}:{start + offset}", argv))
    if program != "scsa-yolo":
        return commands
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # keep line numbers
    for span in INLINE.finditer(prose):
        if span.group(1).split()[:1] == ["scsa-yolo"]:
            for argv in _inline_commands(span.group(1)):
                commands.append(Command(f"{document}:{_line_of(prose, span.start())}", argv))
    return commands


# ------------------------------------------------------------------ the command tree
def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _domains() -> dict[str, tuple[str, callable]]:
    """Values of free-text options that the README must spell as the code knows them:
    option -> (what it is, check)."""
    from scsa_yolo.bench.grid import shipped_grids
    from scsa_yolo.data.catalog import dataset_names
    from scsa_yolo.identity import PLACEMENTS
    from scsa_yolo.nn.registry import attention_names

    datasets, attentions, grids = set(dataset_names()), set(attention_names()), set(shipped_grids())

    def yaml_path(value: str) -> bool:
        return value.endswith((".yaml", ".yml"))

    return {
        "--grid": ("a shipped grid or a grid YAML", lambda v: v in grids or yaml_path(v)),
        "--data": ("a dataset name or a data YAML", lambda v: all(d in datasets or yaml_path(d) for d in _comma_list(v))),
        "--attn": ("an attention name", lambda v: v in attentions),
        "--attns": ("attention names", lambda v: all(a in attentions for a in _comma_list(v))),
        "--placement": ("placements", lambda v: all(p in PLACEMENTS for p in _comma_list(v))),
    }


def _check_value(param: click.Parameter, name: str, value: str, ctx: click.Context, domains) -> list[str]:
    problems = []
    for alternative in value.split("|"):
        if PLACEHOLDER.match(alternative) or isinstance(param.type, click.Path):
            continue  # a placeholder, or a file that only the reader has
        try:
            param.type.convert(alternative, param, ctx)
        except click.BadParameter as error:
            problems.append(f"{name} {alternative}: {error.format_message()}")
            continue
        if name in domains:
            what, accepts = domains[name]
            if not accepts(alternative):
                problems.append(f"{name} {alternative}: not {what}")
    return problems


def check_command(argv: tuple[str, ...], domains) -> list[str]:
    """What is wrong with `scsa-yolo *argv` against the real command tree (empty: nothing)."""
    command: click.Command = main
    ctx = click.Context(main, info_name="scsa-yolo")
    path = ["scsa-yolo"]
    rest = list(argv)
    while isinstance(command, click.Group) and rest:
        token = rest.pop(0)
        if token.startswith("-"):
            if token not in {o for p in command.get_params(ctx) for o in (*p.opts, *p.secondary_opts)}:
                return [f"{' '.join(path)} has no option {token}"]
            continue
        sub = command.get_command(ctx, token)
        if sub is None:
            return [f"{' '.join(path)} has no sub-command {token!r}"]
        command, ctx = sub, click.Context(sub, info_name=token, parent=ctx)
        path.append(token)
    if isinstance(command, click.Group):
        return []  # `scsa-yolo models` alone prints its help

    options = {o: p for p in command.get_params(ctx) if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    problems, positional = [], []
    while rest:
        token = rest.pop(0)
        if not (token.startswith("-") and len(token) > 1):
            positional.append(token)
            continue
        name, has_value, value = token.partition("=")
        param = options.get(name)
        if param is None:
            problems.append(f"{' '.join(path)} has no option {name}")
            continue
        if param.is_flag or param.count:
            if has_value:
                problems.append(f"{name} is a flag and takes no value")
            continue
        if not has_value:
            if not rest:
                problems.append(f"{name} needs a value")
                continue
            value = rest.pop(0)
        problems += _check_value(param, name, value, ctx, domains)

    unlimited = any(a.nargs == -1 for a in arguments)
    capacity = sum(max(a.nargs, 0) for a in arguments)
    if not unlimited and len(positional) > capacity:
        problems.append(f"{' '.join(path)} takes {capacity} argument(s), got {positional}")
    for argument, value in zip([a for a in arguments if a.nargs == 1], positional):
        problems += _check_value(argument, argument.name.upper(), value, ctx, domains)
    return problems


# ------------------------------------------------------------------ tests
COMMANDS = [c for document in DOCUMENTS for c in readme_commands(document)]


def test_the_readme_shows_commands_of_every_kind():
    """The extraction itself: blocks, continuation lines, chains, inline spans, alternatives."""
    shown = {c.argv for c in COMMANDS}
    assert ("bench",) in shown  # `pip install . && scsa-yolo bench`
    assert ("data", "check", "NAME") in shown  # `data list / prepare NAME / check NAME`
    assert any(c[:1] == ("explain",) and "--cam-images" in c for c in shown)  # a continued line
    assert any(c[:1] == ("report",) and "table4|table3|table2|table1" in c for c in shown)
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_readme_command_exists_as_written(command):
    assert check_command(command.argv, _domains()) == []


YOLO_COMMANDS = [c for document in DOCUMENTS for c in readme_commands(document, "yolo")]


@pytest.mark.parametrize("command", YOLO_COMMANDS, ids=lambda c: f"{c.where}: yolo {' '.join(c.argv)}")
def test_readme_stock_yolo_command_is_valid(command):
    """`yolo train model=yolov8n-scsa.yaml ...`: Ultralytics accepts every argument, and a
    model YAML of ours resolves by name as the README says it does."""
    from scsa_yolo.cliutil import training_arguments
    from scsa_yolo.integration import register

    mode, *pairs = command.argv
    assert mode in {"train", "val", "predict", "export"}, command
    arguments = training_arguments(pairs)
    model = str(arguments.get("model", ""))
    if model.endswith(".yaml") and not (ROOT / model).exists():
        register()
        from ultralytics.nn.tasks import yaml_model_load

        assert yaml_model_load(model)["yaml_file"] == model


def test_the_readme_shows_stock_yolo_commands():
    assert len(YOLO_COMMANDS) >= 3


@pytest.mark.parametrize("argv, problem", [
    (("report", "runs/bench", "--style", "table5"), "--style table5"),
    (("report", "--styles", "table4"), "scsa-yolo report has no option --styles"),
    (("bench", "--grid", "quik"), "--grid quik: not a shipped grid"),
    (("bench", "--dry-run=yes"), "--dry-run is a flag"),
    (("train", "--attn", "scssa"), "--attn scssa: not an attention name"),
    (("train", "--epochs", "0"), "--epochs 0"),
    (("data", "prepare", "visdron"), "NAME visdron"),
    (("data", "fetch", "voc"), "scsa-yolo data has no sub-command 'fetch'"),
    (("models", "transfer", "--weights"), "--weights needs a value"),
])
def test_the_check_catches_a_command_that_drifted(argv, problem):
    """The checker is not a rubber stamp: each of these is refused with the reason."""
    problems = check_command(argv, _domains())
    assert any(problem in p for p in problems), problems


def test_the_readme_names_every_file_of_the_bench_report(tmp_path):
    """Issue 26: the bench wrote report.notes.txt, which the README did not list. Every file
    `scsa-yolo bench` writes into its report (as cli/bench.py calls write_report) is named."""
    from test_report_tables import _records

    from scsa_yolo.records import write_record
    from scsa_yolo.report.build import write_report
    from scsa_yolo.report.render import FORMATS

    for i, record in enumerate(_records()):
        write_record(record, tmp_path / "runs" / f"r{i:02d}" / "record.json")
    _, written, _ = write_report([tmp_path / "runs"], formats=FORMATS, out=tmp_path / "bench" / "report", plot=True)
    text = (ROOT / "README.md").read_text()
    named = set()
    for stem, choices, single in re.findall(r"runs/bench/(report)\.(?:\{([^}]*)\}|([\w.]+))", text):
        named |= {f"{stem}.{ext}" for ext in (choices.split(",") if choices else [single])}
    assert {path.name for path in written} <= named, sorted({path.name for path in written} - named)
