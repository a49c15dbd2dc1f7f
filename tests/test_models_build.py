"""Every committed model YAML builds at two scales, runs forward, has its attentions where its
placement says, and matches the README table."""

from __future__ import annotations

import functools
import re

import pytest
import torch

import scsa_yolo.integration as integration
from scsa_yolo.identity import PLACEMENTS
from scsa_yolo.models.catalog import cfg_models_dir, committed_models
from scsa_yolo.models.table import TABLE_SCALES, scaled, table_rows

integration.register()
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

pytestmark = pytest.mark.slow
_ROW = re.compile(r"^\| `([^`]+)` \| [^|]+ \| [^|]+ \|(.*)\|$")


def read_table_params() -> dict[tuple[str, str], int]:
    """Params per ``(file_name, scale)`` in the committed cfg/models/README.md table."""
    found = {}
    for line in (cfg_models_dir() / "README.md").read_text().splitlines():
        match = _ROW.match(line.strip())
        if not match:
            continue
        cells = [c.strip() for c in match.group(2).split("|")]
        for k, scale in enumerate(TABLE_SCALES):
            found[(match.group(1), scale)] = int(cells[2 * k].replace(",", ""))
    return found


README_PARAMS = read_table_params()


def _shortcut_bottlenecks(model) -> int:
    """Shortcut bottlenecks in the backbone of a built model (Ultralytics' own class)."""
    from ultralytics.nn.modules.block import Bottleneck

    backbone = model.model[: len(model.yaml["backbone"])]
    return sum(1 for m in backbone.modules() if type(m) is Bottleneck and m.add)


@functools.lru_cache(maxsize=None)
def _plain_layout(base: str, scale: str) -> tuple[int, int]:
    """(shortcut bottlenecks in the backbone, layer count) of the stock model, built once per
    base and scale instead of once per block YAML."""
    plain = DetectionModel(f"{base}{scale}.yaml", verbose=False)
    return _shortcut_bottlenecks(plain), len(plain.model)


@pytest.mark.parametrize("base, attn, placement, name", committed_models())
def test_committed_yaml_builds_and_runs_at_two_scales(base, attn, placement, name):
    from scsa_yolo.nn.placement import AttendedBottleneck, ResidualAttention

    form = PLACEMENTS[placement].form
    for scale in TABLE_SCALES:
        model = DetectionModel(scaled(name, scale), verbose=False).eval()
        assert model.yaml["scale"] == scale
        if form == "block":
            plain_bottlenecks, plain_layers = _plain_layout(base, scale)
            attended = [m for m in model.modules() if isinstance(m, AttendedBottleneck)]
            assert len(attended) == plain_bottlenecks > 0, f"{name} at {scale}"
            assert _shortcut_bottlenecks(model) == 0  # every one of them now holds the attention
            assert len(model.model) == plain_layers
        else:
            wrapper = ResidualAttention if form == "residual" else None
            rows = [m for m in model.model if type(m).__module__.startswith("scsa_yolo.nn")]
            assert len(rows) == 3, f"{name} at {scale}: {len(rows)} attention rows"
            assert all((type(m) is wrapper) if wrapper else not isinstance(m, ResidualAttention) for m in rows)
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 64, 64))[0]
        assert out.shape[0] == 1 and torch.isfinite(out).all()
        params = sum(p.numel() for p in model.parameters())
        assert params == README_PARAMS[(name, scale)], (
            f"{name} at scale {scale} has {params} params, cfg/models/README.md says "
            f"{README_PARAMS[(name, scale)]}; regenerate with scsa-yolo models make --all"
        )


def test_readme_table_lists_every_model():
    assert {(name, scale) for name, *_ in table_rows() for scale in TABLE_SCALES} == set(README_PARAMS)
