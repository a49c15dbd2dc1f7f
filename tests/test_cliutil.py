"""The one KEY=VALUE parser, list splitter and table formatter of the commands."""
from __future__ import annotations

import click
import pytest

from scsa_yolo.cliutil import parse_key_values, split_list, training_arguments
from scsa_yolo.text import format_table


def test_values_are_read_as_the_yolo_command_reads_them():
    parsed = parse_key_values(["lr0=1e-3", "amp=false", "classes=[0, 2]", "optimizer=AdamW", "cache=none"])
    assert parsed == {"lr0": 0.001, "amp": False, "classes": [0, 2], "optimizer": "AdamW", "cache": None}


@pytest.mark.parametrize("pair, message", [("lr0", "is not KEY=VALUE"), ("=3", "is not KEY=VALUE"), ("lr0=", "has no value")])
def test_malformed_pairs_name_the_item_and_the_option(pair, message):
    with pytest.raises(click.BadParameter) as info:
        parse_key_values([pair], param_hint="--set")
    assert message in info.value.format_message() and "--set" in info.value.format_message()
    with pytest.raises(click.UsageError, match=message):
        parse_key_values([pair])


def test_training_arguments_are_checked_by_ultralytics():
    assert training_arguments(["hide_labels=True"]) == {"show_labels": False}  # a deprecated key, renamed
    for pairs, message in [
        (["lr=0.1"], "'lr' is not a valid YOLO argument"),
        (["mosaic=2"], "Valid 'mosaic' values are between 0.0 and 1.0"),
        (["epochs=1.5"], "'epochs' must be an int"),
        (["seed=3"], "use the --seed option instead of seed=..."),
    ]:
        with pytest.raises(click.UsageError) as info:
            training_arguments(pairs, reserved={"seed": "--seed"})
        assert message in info.value.format_message()


def test_split_list_joins_repeated_options_and_reads_integers():
    assert split_list(None) is None
    assert split_list(" a, b,,c ") == ["a", "b", "c"]
    assert split_list(("train,val", "test")) == ["train", "val", "test"]
    assert split_list("0, 1,2", int) == [0, 1, 2]
    with pytest.raises(click.BadParameter, match="expected comma-separated integers, got 'a,b'"):
        split_list("a,b", int, param_hint="--seeds")


def test_format_table_aligns_columns_under_a_rule():
    text = format_table(["class", "boxes"], [["car", 12], ["pedestrian", 3]], right=[1])
    assert text.splitlines() == [
        "class       boxes",
        "----------  -----",
        "car            12",
        "pedestrian      3",
    ]
