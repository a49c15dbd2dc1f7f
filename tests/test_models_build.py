"""Every committed model YAML builds at two scales, runs forward, and matches the README table."""

from __future__ import annotations

import pytest
import torch

import scsa_yolo.integration as integration
from scsa_yolo.models.catalog import committed_models
from scsa_yolo.models.table import TABLE_SCALES, read_table_params, scaled, table_rows

integration.register()
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

pytestmark = pytest.mark.slow
README_PARAMS = read_table_params()


@pytest.mark.parametrize("name", [name for *_, name in committed_models()])
def test_committed_yaml_builds_and_runs_at_two_scales(name):
    expected_layers = 3
    for scale in TABLE_SCALES:
        model = DetectionModel(scaled(name, scale), verbose=False).eval()
        assert model.yaml["scale"] == scale
        ours = [m for m in model.model if type(m).__module__.startswith("scsa_yolo.nn")]
        assert len(ours) == expected_layers, f"{name} at {scale}: {len(ours)} attention rows"
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
