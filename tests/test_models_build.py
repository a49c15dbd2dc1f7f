"""Every committed detection YAML, and a fixed sample of the segmentation and classification
ones, builds at two scales, runs forward, has its attentions where its placement says, and
matches the README table.

Building all ~670 committed files would take CI minutes; the seg/cls files are made by the same
generator (their text is checked against it, all of them, in test_models_generator.py), so a
sample that takes every placement once per base, the attentions rotating, covers what can
differ between them.
"""

from __future__ import annotations

import functools
import re

import pytest
import torch

import scsa_yolo.integration as integration
from scsa_yolo.identity import PLACEMENTS, stock_base
from scsa_yolo.models.catalog import (
    COMMITTED_ATTENTIONS,
    COMMITTED_TASK_BASES,
    cfg_models_dir,
    committed_models,
    committed_placements,
    load_base,
    model_id_of,
)
from scsa_yolo.models.generate import placement_targets
from scsa_yolo.models.table import TABLE_SCALES, scaled, table_rows

integration.register()
from ultralytics.nn import tasks  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

from scsa_yolo.integration.yolo import MODEL_CLASSES  # noqa: E402

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
    plain = getattr(tasks, MODEL_CLASSES[stock_base(base)[1]])(scaled(f"{base}.yaml", scale), verbose=False)
    return _shortcut_bottlenecks(plain), len(plain.model)


def _task_sample() -> list[tuple[str, str, str, str]]:
    """Every placement once per segmentation and classification base, the attention rotating
    through the committed ones: ``(base, attn, placement, file_name)``, the same every run."""
    sample, turn = [], 0
    for task in ("segment", "classify"):
        for base in COMMITTED_TASK_BASES[task]:
            for placement in committed_placements(task):
                attn = COMMITTED_ATTENTIONS[turn % len(COMMITTED_ATTENTIONS)]
                sample.append((base, attn, placement, model_id_of(base, attn, placement).yaml_name()))
                turn += 1
    return sample


def _check_built(model_class: type, base: str, placement: str, name: str, attention_rows: int) -> None:
    """Build ``name`` at every table scale with ``model_class`` and check its attention layers
    (``attention_rows`` rows, or every shortcut bottleneck of the plain model for a block
    placement), a finite forward pass and the README's params."""
    from scsa_yolo.nn.placement import AttendedBottleneck, ResidualAttention

    form = PLACEMENTS[placement].form
    for scale in TABLE_SCALES:
        model = model_class(scaled(name, scale), verbose=False).eval()
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
            assert len(rows) == attention_rows, f"{name} at {scale}: {len(rows)} attention rows"
            assert all((type(m) is wrapper) if wrapper else not isinstance(m, ResidualAttention) for m in rows)
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 64, 64))[0]
        # detect and classify: one prediction tensor; segment: the predictions and the mask prototypes
        for tensor in out if isinstance(out, tuple) else (out,):
            assert tensor.shape[0] == 1 and torch.isfinite(tensor).all()
        params = sum(p.numel() for p in model.parameters())
        assert params == README_PARAMS[(name, scale)], (
            f"{name} at scale {scale} has {params} params, cfg/models/README.md says "
            f"{README_PARAMS[(name, scale)]}; regenerate with scsa-yolo models make --all"
        )


@pytest.mark.parametrize("base, attn, placement, name", committed_models("detect"))
def test_committed_yaml_builds_and_runs_at_two_scales(base, attn, placement, name):
    _check_built(DetectionModel, base, placement, name, attention_rows=3)


@pytest.mark.parametrize("base, attn, placement, name", _task_sample())
def test_a_sample_of_the_seg_and_cls_yamls_builds_and_runs_at_two_scales(base, attn, placement, name):
    model_class = getattr(tasks, MODEL_CLASSES[stock_base(base)[1]])
    # a segmentation model attends P3/P4/P5 like a detection one; a classification model the one
    # backbone output its head reads
    targets = placement_targets(load_base(base), placement)
    if PLACEMENTS[placement].form != "block":
        assert len(targets) == (1 if stock_base(base)[1] == "classify" else 3)
    _check_built(model_class, base, placement, name, attention_rows=len(targets))


def test_the_sample_covers_every_task_base_and_placement_and_rotates_the_attention():
    sample = _task_sample()
    assert {(base, placement) for base, _a, placement, _n in sample} == \
           {(base, placement) for task in ("segment", "classify") for base, _a, placement, _n in committed_models(task)}
    assert len(sample) == 3 * 6 + 3 * 4
    assert {attn for _b, attn, _p, _n in sample} == set(COMMITTED_ATTENTIONS)


def test_readme_table_lists_every_model():
    assert {(name, scale) for name, *_ in table_rows() for scale in TABLE_SCALES} == set(README_PARAMS)
