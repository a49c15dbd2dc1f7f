"""Learned-gate diagnostics (issue 30 item 3): the gates g of the placements with an identity
start are summarised per layer, carried by the run record, and tabulated by
``scsa-yolo report --style gates``.

Expected figures are computed here from the gate tensors read out of the checkpoint's state
dict by name, not through the code under test.
"""
from __future__ import annotations

import csv
import io

import pytest
import torch
from click.testing import CliRunner

from scsa_yolo.bench.worker import learned_gates
from scsa_yolo.explain.gates import learned_gate_stats
from scsa_yolo.explain.layers import find_attention_layers
from scsa_yolo.identity import ModelId
from scsa_yolo.integration.specs import resolve_model
from scsa_yolo.integration.transfer import build_target, save_checkpoint
from scsa_yolo.records import RecordError, make_record, write_record
from scsa_yolo.report.build import make_report
from scsa_yolo.report.tables import ReportError


def _model_with_gates(name: str, seed: int = 0):
    """A built model whose gates hold spread values (as after training), and its argument."""
    argument = resolve_model(name).argument
    model = build_target(argument, 2)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key.endswith(".gate"):
                value.copy_(torch.randn(value.shape, generator=generator) * 0.05)
    return model, argument


def _expected(state: dict, layer_prefix: str) -> dict:
    g = state[f"{layer_prefix}.gate"].double()
    return {"mean": float(g.mean()), "mean_abs": float(g.abs().mean()), "max_abs": float(g.abs().max())}


# --------------------------------------------------------------------------- per layer
def test_block_res_layers_carry_their_gate_and_say_gated():
    model, _ = _model_with_gates("yolov8n-scsa-block-res")
    layers = find_attention_layers(model)
    assert [layer.key for layer in layers] == ["2/m.0.attn", "4/m.0.attn", "4/m.1.attn", "6/m.0.attn",
                                               "6/m.1.attn", "8/m.0.attn"]
    assert layers[2].label == "row 4 / m.1.attn (SCSA, in bottleneck, gated)"
    state = model.state_dict()
    stats = learned_gate_stats(layers)
    assert [s["key"] for s in stats] == [layer.key for layer in layers]
    for layer, found in zip(layers, stats):
        prefix = f"model.{layer.row}.{layer.path.removesuffix('.attn')}"
        assert found["form"] == "bottleneck" and found["channels"] == layer.module.channels
        expected = _expected(state, prefix)
        assert [found[k] for k in expected] == pytest.approx(list(expected.values()), rel=1e-6)
    plain_block = find_attention_layers(build_target(resolve_model("yolov8n-scsa-block").argument, 2))
    assert learned_gate_stats(plain_block) == []  # the block placement has no gate


def test_explain_notes_name_the_gated_form():
    from scsa_yolo.explain.gates import capture_gates

    model, _ = _model_with_gates("yolov8n-se-block-res")
    layer = find_attention_layers(model)[1]  # row 4 / m.0.attn
    (gates,) = capture_gates(model.eval(), [layer], [torch.rand(1, 3, 64, 64)])
    g = model.state_dict()["model.4.m.0.gate"].double()
    assert gates.notes == [f"gated bottleneck h + g*(attn(h) - h): learned g has mean {float(g.mean()):+.3f}, "
                           f"mean |g| {float(g.abs().mean()):.3f}, range [{float(g.min()):+.3f}, {float(g.max()):+.3f}]"]


# --------------------------------------------------------------------------- the record
@pytest.mark.parametrize("name, keys", [
    ("yolov8n-se-backbone-res", ["5/attn", "8/attn", "12/attn"]),
    ("yolov8n-se-block-res", ["2/m.0.attn", "4/m.0.attn", "4/m.1.attn", "6/m.0.attn", "6/m.1.attn", "8/m.0.attn"]),
])
def test_the_worker_reads_the_gates_of_last_pt(tmp_path, name, keys):
    model, argument = _model_with_gates(name, seed=1)
    save_checkpoint(model, tmp_path / "weights" / "last.pt", argument)
    found = learned_gates(tmp_path)
    assert found["weights"] == "weights/last.pt"
    assert [layer["key"] for layer in found["layers"]] == keys
    state = model.state_dict()
    for layer in found["layers"]:
        row, _, path = layer["key"].partition("/")
        prefix = f"model.{row}" + ("" if path == "attn" else f".{path.removesuffix('.attn')}")
        expected = _expected(state, prefix)
        assert (layer["mean"], layer["mean_abs"], layer["max_abs"]) == pytest.approx(
            (expected["mean"], expected["mean_abs"], expected["max_abs"]), rel=1e-6)
        assert layer["mean_abs"] > 0


def test_a_model_without_gates_records_none(tmp_path):
    for name in ("yolov8n-se-block", "yolov8n-se-backbone"):
        save_checkpoint(build_target(resolve_model(name).argument, 2), tmp_path / name / "weights" / "last.pt", name)
        assert learned_gates(tmp_path / name) is None
    assert learned_gates(tmp_path / "no-run") is None


# --------------------------------------------------------------------------- the report
ENV = {"python": "3.11", "platform": "linux", "scsa_yolo": "0.1.0", "ultralytics": "8.4", "torch": "2.4",
       "cuda": "12.4", "device_name": "test", "git_commit": None}


def _record(name, seed, gates):
    model_id = ModelId.parse(name)
    metrics = {"split": "val", "AP": 0.5, "AP50": 0.7, "AP75": None, "APs": None, "APm": None, "APl": None,
               "per_class": {}, "ultralytics": {}, "n_images": 4}
    record = make_record("train", f"synthetic/{model_id.run_name(seed)}", model_id, model_yaml=model_id.yaml_name(),
                         imgsz=160, env=ENV, dataset="synthetic", seed=seed, epochs=10, batch=8, metrics=metrics)
    if gates is not None:
        record["learned_gates"] = {"weights": "weights/last.pt", "layers": [
            {"key": key, "label": key, "kind": "SE", "form": "residual", "channels": 8, "mean": mean,
             "mean_abs": mean_abs, "max_abs": max_abs, "min": -max_abs, "max": max_abs}
            for key, (mean, mean_abs, max_abs) in gates.items()]}
    return record


@pytest.fixture()
def gate_runs(tmp_path):
    records = [
        _record("yolov8n", 0, None), _record("yolov8n", 1, None),
        _record("yolov8n-se-block", 0, None),
        _record("yolov8n-se-backbone-res", 0, {"5/attn": (0.010, 0.020, 0.050), "8/attn": (0.0, 0.001, 0.002)}),
        _record("yolov8n-se-backbone-res", 1, {"5/attn": (0.014, 0.030, 0.070), "8/attn": (0.0, 0.003, 0.004)}),
        _record("yolov8n-se-block-res", 0, {"4/m.1.attn": (-0.2, 0.4, 0.9)}),
    ]
    for i, record in enumerate(records):
        write_record(record, tmp_path / "runs" / f"r{i}" / "record.json")
    return tmp_path / "runs"


def _md_cells(text: str, *starts: str) -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[: len(starts)] == list(starts):
            return cells
    raise AssertionError(f"no row {starts} in\n{text}")


def test_the_gates_style_shows_every_layer_with_mean_and_std_over_seeds(gate_runs):
    report = make_report([gate_runs], "gates")
    text = report.render("md")
    assert _md_cells(text, "Dataset") == ["Dataset", "Method", "Layer", "mean g", "mean abs(g)", "max abs(g)", "n"]
    # mean over the two seeds, sample std: 0.020 and 0.030 -> 0.025 ± 0.007
    assert _md_cells(text, "synthetic", "+SE (backbone-res)", "row 5 / attn") == [
        "synthetic", "+SE (backbone-res)", "row 5 / attn", "0.012 ± 0.003", "0.025 ± 0.007", "0.060 ± 0.014", "2"]
    assert _md_cells(text, "", "", "row 8 / attn")[3:] == ["0.000 ± 0.000", "0.002 ± 0.001", "0.003 ± 0.001", "2"]
    assert _md_cells(text, "", "+SE (block-res)", "row 4 / m.1.attn")[3:] == ["-0.200", "0.400", "0.900", "1"]
    assert "+SE (block) " not in text and "| -" not in text  # runs without gates have no rows
    assert "3 run(s) without learned gates" in text
    assert "A mean |g| near 0 means training left that attention switched off" in text
    rows = list(csv.DictReader(io.StringIO(report.render("csv"))))
    assert {(r["method"], r["layer"]) for r in rows} == {
        ("+SE (backbone-res)", "row 5 / attn"), ("+SE (backbone-res)", "row 8 / attn"),
        ("+SE (block-res)", "row 4 / m.1.attn")}
    for fmt in ("latex", "html"):
        assert "row 4 / m.1.attn" in report.render(fmt)


def test_the_gates_style_without_gates_says_which_runs_have_them(tmp_path):
    write_record(_record("yolov8n-se-block", 0, None), tmp_path / "runs" / "a" / "record.json")
    with pytest.raises(ReportError, match="backbone-res, neck-res, block-res"):
        make_report([tmp_path / "runs"], "gates")
    from scsa_yolo.cli.main import main

    outcome = CliRunner().invoke(main, ["report", str(tmp_path / "runs"), "--style", "gates"])
    assert outcome.exit_code == 1 and "no record carries any" in outcome.output and "Traceback" not in outcome.output


def test_a_malformed_gate_section_is_named(tmp_path):
    record = _record("yolov8n-se-backbone-res", 0, {"5/attn": (0.0, 0.0, 0.0)})
    record["learned_gates"]["layers"][0].pop("mean_abs")
    with pytest.raises(RecordError, match=r"missing 'learned_gates.layers\[0\].mean_abs'"):
        write_record(record, tmp_path / "record.json")
