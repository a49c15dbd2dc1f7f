"""The model-YAML generator: placements, index remapping, rendering, the committed set, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from scsa_yolo.cli.models import models as models_cli
from scsa_yolo.cli.models import write_committed_set
from scsa_yolo.identity import PLACEMENTS, TASKS, stock_base
from scsa_yolo.models.catalog import (
    COMMITTED_BASES,
    COMMITTED_TASK_BASES,
    attention_row,
    cfg_models_dir,
    committed_models,
    load_base,
    make_model_text,
)
from scsa_yolo.models.generate import ModelYamlError, add_attention, insert_attention, placement_targets
from scsa_yolo.models.render import flow, render_model_yaml

REPO_CFG = Path(__file__).resolve().parents[1] / "cfg" / "models"


def _refs(f, index):
    return [index + r if r < 0 else r for r in (f if isinstance(f, list) else [f])]


def _resolve_to_base(generated, inserted_module="SCSA"):
    """Map each generated row back to the base: attention rows are identities.

    Returns (base_rows_equivalent, attended_rows): for every non-attention row its
    ``[inputs-as-base-indices, n, module, args]``, and for every attention row the base
    row it attends.
    """
    rows = generated["backbone"] + generated["head"]
    to_base: dict[int, int] = {}  # generated row -> base row whose output it carries
    attended: dict[int, int] = {}
    equivalent = []
    base_index = 0
    for index, (f, n, module, args) in enumerate(rows):
        inputs = _refs(f, index) if index else [-1]
        if module == inserted_module:
            assert inputs == [index - 1], "an attention row must read the row just before it"
            attended[index] = to_base[index - 1]
            to_base[index] = to_base[index - 1]
            continue
        mapped = [to_base[i] if i >= 0 else -1 for i in inputs]
        equivalent.append([mapped, n, module, args])
        to_base[index] = base_index
        base_index += 1
    return equivalent, attended, to_base


def _bases_taking(*placements: str) -> list[tuple[str, str]]:
    """``(base, placement)`` for every committed base (every task) whose task takes the placement."""
    return [(base, placement) for base in COMMITTED_BASES for placement in placements
            if TASKS[stock_base(base)[1]].takes(PLACEMENTS[placement])]


@pytest.mark.parametrize("base, placement", _bases_taking("backbone", "neck"))
def test_inserting_attention_keeps_the_network_when_attention_is_identity(base, placement):
    model = load_base(base)
    generated = add_attention(model, placement, "SCSA", []).model
    equivalent, attended, to_base = _resolve_to_base(generated)
    base_rows = model["backbone"] + model["head"]
    expected = [[_refs(f, i) if i else [-1], n, m, a] for i, (f, n, m, a) in enumerate(base_rows)]
    assert equivalent == expected
    targets = placement_targets(model, placement)
    assert sorted(attended.values()) == targets
    # every consumer of a target reads the attention row, never the raw block
    rows = generated["backbone"] + generated["head"]
    target_rows = {gen for gen, b in to_base.items() if b in targets and gen not in attended}
    for index, (f, _n, module, _a) in enumerate(rows):
        if module == "SCSA" or index == 0:
            continue
        assert not set(_refs(f, index)) & target_rows, f"row {index} reads an un-attended target"
    # section sizes: backbone placement grows the backbone, neck placement the head
    grown = "backbone" if placement == "backbone" else "head"
    assert len(generated[grown]) == len(model[grown]) + len(targets)


def test_placement_targets_of_the_stock_bases():
    assert placement_targets(load_base("yolov8"), "backbone") == [4, 6, 9]
    assert placement_targets(load_base("yolo11"), "backbone") == [4, 6, 10]
    assert placement_targets(load_base("yolov8"), "neck") == [15, 18, 21]
    assert placement_targets(load_base("yolo11"), "neck") == [16, 19, 22]


def test_yolov8_backbone_rows_exactly():
    generated = add_attention(load_base("yolov8"), "backbone", "SE", [{"reduction": 8}]).model
    rows = generated["backbone"] + generated["head"]
    assert [i for i, r in enumerate(rows) if r[2] == "SE"] == [5, 8, 12]
    assert rows[5] == [-1, 1, "SE", [{"reduction": 8}]]
    assert rows[14] == [[-1, 8], 1, "Concat", [1]]  # was [-1, 6]: reads attended P4
    assert rows[17] == [[-1, 5], 1, "Concat", [1]]  # was [-1, 4]: reads attended P3
    assert rows[23] == [[-1, 12], 1, "Concat", [1]]  # was [-1, 9]: reads attended P5
    assert rows[20] == [[-1, 15], 1, "Concat", [1]]  # was [-1, 12]: shifted
    assert rows[-1] == [[18, 21, 24], 1, "Detect", ["nc"]]


def test_neck_placement_detect_reads_attention_rows():
    rows = add_attention(load_base("yolov8"), "neck", "CA", []).model
    rows = rows["backbone"] + rows["head"]
    assert rows[-1] == [[16, 20, 24], 1, "Detect", ["nc"]]
    assert [rows[i][2] for i in (16, 20, 24)] == ["CA"] * 3
    assert rows[17] == [-1, 1, "Conv", [256, 3, 2]]  # the PAN path continues from the attended P3


def test_generator_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelYamlError, match="unknown placement 'head'"):
        placement_targets(load_base("yolov8"), "head")
    with pytest.raises(ModelYamlError, match="no 'head' section"):
        placement_targets({"backbone": [[-1, 1, "Conv", [8]]]}, "backbone")
    with pytest.raises(ModelYamlError, match="no detection head row"):
        placement_targets({"backbone": [[-1, 1, "Conv", [8]]], "head": [[-1, 1, "Conv", [8]]]}, "neck")
    with pytest.raises(ModelYamlError, match="does not point at an earlier row"):
        placement_targets({"backbone": [[-1, 1, "Conv", [8]]], "head": [[[-1, 5], 1, "Concat", [1]]]}, "backbone")
    with pytest.raises(ModelYamlError, match="not row indices"):
        insert_attention(load_base("yolov8"), [99], "SE", [])
    with pytest.raises(ModelYamlError, match="neither a stock model"):
        load_base(str(tmp_path / "missing.yaml"))


def test_render_round_trips_awkward_values():
    model = {
        "nc": 3,
        "lr": 1e-05,
        "scales": {"n": [0.33, 0.25, 1024]},
        "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "SCSA", [[3, 5], 7, {"norm": "bn", "use_pcsa": False}]]],
        "head": [[-1, 1, "nn.Upsample", ["None", 2, "nearest"]], [[-1, 0], 1, "Concat", [1]], [-1, 1, "X", ["a b", None, "yes"]]],
    }
    text = render_model_yaml(model, ["header"], {1: "note"})
    assert yaml.safe_load(text) == model
    assert "- [-1, 1, SCSA, [[3, 5], 7, {norm: bn, use_pcsa: False}]] # 1 note" in text
    assert flow(["yes", "a b"]) == '["yes", "a b"]'


def test_committed_yamls_are_exactly_the_generator_output(tmp_path):
    written = write_committed_set(tmp_path, echo=lambda _msg: None)
    assert len(written) == len(committed_models())
    for path in written:
        committed = REPO_CFG / path.name
        assert committed.is_file(), f"{path.name} is not committed; run scsa-yolo models make --all"
        assert committed.read_text() == path.read_text(), f"{path.name} differs; run scsa-yolo models make --all"
    stray = {p.name for p in REPO_CFG.glob("*.yaml")} - {p.name for p in written}
    assert not stray, f"cfg/models holds YAMLs the generator does not make: {sorted(stray)}"


def test_the_committed_set_holds_each_task_with_the_placements_it_takes():
    """Detection, segmentation and classification bases of every family; a classification model
    (no neck) gets the backbone placements only, the others every placement."""
    by_task = {task: {(base, placement) for base, _attn, placement, _name in committed_models(task)}
               for task in ("detect", "segment", "classify")}
    assert set(COMMITTED_TASK_BASES) == set(by_task)
    for family in ("yolov8", "yolo11", "yolo26"):
        assert {(f"{family}-seg", p) for p in PLACEMENTS} <= by_task["segment"]
        assert {(f"{family}-cls", p) for p in ("backbone", "backbone-res", "block", "block-res")} == \
               {pair for pair in by_task["classify"] if pair[0] == f"{family}-cls"}
    names = [name for *_rest, name in committed_models()]
    assert len(names) == len(set(names)) == 3 * 14 * 6 * 2 + 3 * 14 * 4
    assert "yolov8-seg-scsa-backbone-res.yaml" in names and "yolo26-cls-caa-block-res.yaml" in names
    assert not [name for name in names if "-cls-" in name and "-neck" in name]


def test_a_classification_yaml_says_where_its_backbone_rows_go():
    """The placement's P3/P4/P5 wording does not fit a model without a neck; the header says what happens."""
    _name, text = make_model_text("yolov8-cls", attention_row("se"), "backbone-res")
    assert "A classify model has no neck and its head reads only the last backbone row, so the attention goes " \
           "on base row 8 alone." in text  # yolov8-cls: 9 backbone rows, the last a C2f
    rows = yaml.safe_load(text)["backbone"]
    assert rows[-1] == [-1, 1, "ResAttn", ["SE"]] and len(rows) == 10
    _name, detect = make_model_text("yolov8", attention_row("se"), "backbone-res")
    assert "has no neck" not in detect


def test_load_base_gives_a_fresh_copy_and_rereads_a_changed_file(tmp_path):
    """Bases are parsed once per file version (the committed set reads each dozens of times):
    a caller's edits never reach the next caller, and an edited file is read again."""
    import os

    first = load_base("yolov8")
    first["backbone"].clear()
    assert len(load_base("yolov8")["backbone"]) == 10
    custom = tmp_path / "mine.yaml"
    custom.write_text("nc: 2\nbackbone: [[-1, 1, Conv, [8, 3, 2]]]\nhead: [[-1, 1, Detect, [nc]]]\n")
    assert load_base(custom)["nc"] == 2
    custom.write_text("nc: 3\nbackbone: [[-1, 1, Conv, [8, 3, 2]]]\nhead: [[-1, 1, Detect, [nc]]]\n")
    stamp = custom.stat().st_mtime_ns + 10**9  # a clock too coarse to tell the two writes apart
    os.utime(custom, ns=(stamp, stamp))
    assert load_base(custom)["nc"] == 3


def test_installed_cfg_dir_is_the_repo_cfg():
    assert cfg_models_dir().resolve() == REPO_CFG.resolve()


def test_ablation_yaml_row_carries_the_registry_keywords():
    row = attention_row("scsa-no-pcsa")
    name, text = make_model_text("yolo11", row, "neck")
    assert name == "yolo11-scsa-no-pcsa-neck.yaml"
    assert "SCSA, [{use_pcsa: False}]]" in text
    name, text = make_model_text("yolo11", row, "neck-res")
    assert name == "yolo11-scsa-no-pcsa-neck-res.yaml"
    assert "ResAttn, [SCSA, {use_pcsa: False}]]" in text
    with pytest.raises(ValueError, match="adds no layer"):
        attention_row("none")


def test_models_make_cli(tmp_path):
    runner = CliRunner()
    result = runner.invoke(models_cli, ["make", "--base", "yolo11", "--attn", "CBAM", "--placement", "neck", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "yolo11-cbam-neck.yaml").read_text() == (REPO_CFG / "yolo11-cbam-neck.yaml").read_text()

    custom = tmp_path / "tiny.yaml"
    custom.write_text((REPO_CFG.parent.parent / "cfg" / "models" / "yolov8-se-backbone.yaml").read_text())
    result = runner.invoke(models_cli, ["make", "--base", str(custom), "--attn", "eca", "--placement", "neck",
                                        "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "tiny-eca-neck.yaml").read_text()
    assert "SE" in text and "ECA" in text

    result = runner.invoke(models_cli, ["make", "--attn", "bogus", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown attention 'bogus'" in result.output and "scsa" in result.output
    result = runner.invoke(models_cli, ["make", "--base", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "neither a stock model" in result.output
    result = runner.invoke(models_cli, ["list"])
    assert result.exit_code == 0 and "yolov8-scsa-block.yaml" in result.output and "missing" not in result.output


def test_models_info_cli():
    runner = CliRunner()
    result = runner.invoke(models_cli, ["info", "yolov8n-scsa.yaml", "--imgsz", "64"])
    assert result.exit_code == 0, result.output
    # the default placement (backbone-res): the backbone rows' 3,164,368 plus one gate per channel (64+128+256)
    assert result.output.startswith("yolov8n-scsa.yaml: 3,164,816 params, ")
    result = runner.invoke(models_cli, ["info", "yolov8n-nothing.yaml"])
    assert result.exit_code == 1 and "yolov8n-nothing.yaml" in result.output


@pytest.mark.parametrize("base, placement", _bases_taking("backbone-res", "neck-res"))
def test_residual_rows_sit_where_the_series_rows_sit(base, placement):
    model = load_base(base)
    series = add_attention(model, placement.removesuffix("-res"), "SCSA", [{"use_pcsa": False}]).model
    residual = add_attention(model, placement, "SCSA", [{"use_pcsa": False}]).model
    series_rows = series["backbone"] + series["head"]
    residual_rows = residual["backbone"] + residual["head"]
    assert len(series_rows) == len(residual_rows)
    for a, b in zip(series_rows, residual_rows):
        if a[2] == "SCSA":
            assert b == [a[0], a[1], "ResAttn", ["SCSA", {"use_pcsa": False}]]
        else:
            assert a == b


def test_block_placement_wraps_the_shortcut_blocks_in_place():
    model = load_base("yolov8")
    generated = add_attention(model, "block", "SE", [{"reduction": 4}]).model
    rows, base = generated["backbone"] + generated["head"], model["backbone"] + model["head"]
    assert len(rows) == len(base)
    wrapped = [i for i, r in enumerate(rows) if r[2] == "BlockAttn"]
    assert wrapped == [2, 4, 6, 8]  # the C2f rows with shortcut=True; head C2f rows have none
    for i in wrapped:
        f, n, block, block_args = base[i]
        assert rows[i] == [f, n, "BlockAttn", [block, block_args, "SE", {"reduction": 4}]]
    assert [r for i, r in enumerate(rows) if i not in wrapped] == [r for i, r in enumerate(base) if i not in wrapped]
    assert placement_targets(load_base("yolo11"), "block") == [2, 4, 6, 8]  # C3k2 rows of the backbone


def test_block_placement_refuses_a_base_without_shortcut_blocks():
    plain = {"backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "C2f", [32]]],
             "head": [[[1], 1, "Detect", ["nc"]]]}
    with pytest.raises(ModelYamlError, match="shortcut bottlenecks.*backbone-res"):
        add_attention(plain, "block", "SCSA", [])


@pytest.mark.parametrize("base", COMMITTED_TASK_BASES["detect"])
def test_block_res_rows_are_the_block_rows_with_the_gated_module(base):
    from scsa_yolo.identity import ModelId

    model = load_base(base)
    block = add_attention(model, "block", "SCSA", [{"use_pcsa": False}]).model
    gated = add_attention(model, "block-res", "SCSA", [{"use_pcsa": False}]).model
    block_rows, gated_rows = block["backbone"] + block["head"], gated["backbone"] + gated["head"]
    assert [r[2] for r in gated_rows].count("BlockResAttn") == [r[2] for r in block_rows].count("BlockAttn") > 0
    for a, b in zip(block_rows, gated_rows):
        assert b == ([a[0], a[1], "BlockResAttn", a[3]] if a[2] == "BlockAttn" else a)
    model_id = ModelId.parse(f"{base}n-scsa-block-res.yaml")
    assert (model_id.attn, model_id.placement, model_id.yaml_name()) == ("scsa", "block-res", f"{base}-scsa-block-res.yaml")
