"""The attention registry: names, lookup, errors, and that every name builds and runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import scsa_yolo.nn as layers
from scsa_yolo.nn.registry import (
    TABLE1_ROWS,
    UnknownAttentionError,
    attention_names,
    create_attention,
    get_attention,
    register_attention,
)

# Parameters per channel of each SCSA ablation (see tests/test_nn_scsa_ablations.py).
SCSA_PARAMS_PER_C = {
    "scsa": 16, "scsa-no-smsa": 5, "scsa-no-pcsa": 11, "scsa-pcsa-first": 16, "scsa-norm-first": 16,
    "scsa-no-norm": 12, "scsa-bn": 16, "scsa-ln": 16, "scsa-global-pool": 16, "scsa-multihead": 16,
    "scsa-unshared": 23, "scsa-scale-tokens": 16, "scsa-g1-3": 13, "scsa-g1-7": 17, "scsa-g2-3-7": 15,
    "scsa-g4-3-5-7-9": 16,
}


def test_core_names_and_labels():
    expected = {"none": "-", "se": "+SE", "eca": "+ECA", "ca": "+CA", "fca": "+FCA", "cbam": "+CBAM", "scsa": "+SCSA"}
    for name, label in expected.items():
        spec = get_attention(name)
        assert (spec.name, spec.label) == (name, label)
    assert get_attention("none").cls is None and get_attention("none").yaml_module is None
    assert get_attention("scsa").cls is layers.SCSA and get_attention("scsa").yaml_args == []
    assert attention_names()[:7] == list(expected)


def test_lookup_is_case_insensitive():
    assert get_attention("SCSA").name == "scsa"
    assert get_attention("  Se ").cls is layers.SE
    assert get_attention("SCSA_No_PCSA").name == "scsa-no-pcsa"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownAttentionError) as info:
        get_attention("sk-attention")
    message = str(info.value)
    assert "'sk-attention'" in message
    assert all(name in message for name in attention_names())
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownAttentionError):
        create_attention("nope", 64)


def test_specs_are_copies():
    spec = get_attention("scsa-no-pcsa")
    spec.kwargs["use_pcsa"] = True
    spec.yaml_args.clear()
    assert get_attention("scsa-no-pcsa").kwargs == {"use_pcsa": False}
    assert get_attention("scsa-no-pcsa").yaml_args == [{"use_pcsa": False}]


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_attention("SE", layers.SE, "+SE")


@pytest.mark.parametrize("name", attention_names())
def test_every_name_builds_and_runs_for_64_channels(name):
    spec = get_attention(name)
    layer = create_attention(name, 64)
    x = torch.randn(2, 64, 10, 12)
    y = layer(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if spec.cls is None:
        assert isinstance(layer, nn.Identity)
        return
    assert type(layer) is spec.cls and spec.yaml_module == spec.cls.__name__
    # the YAML row (module name + args) rebuilds the same layer
    from_yaml = getattr(layers, spec.yaml_module)(64, *spec.yaml_args[:-1], **(spec.yaml_args[-1] if spec.yaml_args else {}))
    assert list(from_yaml.state_dict()) == list(layer.state_dict())
    if spec.cls is layers.SCSA:
        assert sum(p.numel() for p in layer.parameters()) == SCSA_PARAMS_PER_C[name] * 64


def test_table1_covers_every_scsa_variant_once():
    scsa_names = [n for n in attention_names() if n.startswith("scsa")]
    assert [name for _, name in TABLE1_ROWS] == scsa_names
    assert set(scsa_names) == set(SCSA_PARAMS_PER_C)
    assert {group for group, _ in TABLE1_ROWS} == {"Baseline", "Macro Design", "Ordering", "Micro Design", "Branch"}
    labels = [get_attention(n).label for n in attention_names()]
    assert len(labels) == len(set(labels))


def test_overrides_reach_the_constructor():
    layer = create_attention("scsa-multihead", 64, num_heads=8)
    assert layer.num_heads == 8 and layer.channel_shuffle
    assert create_attention("se", 64, reduction=4).fc1.out_channels == 16
