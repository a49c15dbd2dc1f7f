"""Profiling: aten-level FLOP counts, params, CPU settings, CLI (model and layer modes)."""
import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from scsa_yolo.bench.profile import (
    CPU_SETTINGS, count_flops, count_flops_split, profile_layer, profile_model, profile_models, time_interleaved,
)
from scsa_yolo.cli.main import main


def test_conv_flops_follow_two_per_multiply_add():
    conv = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    assert count_flops(conv, torch.zeros(1, 8, 10, 10)) == 2 * 16 * 8 * 3 * 3 * 10 * 10


def test_attention_matmuls_are_counted():
    """SCSA's channel self-attention (two C x C x N products) shows up in the count."""
    from scsa_yolo.nn.registry import create_attention

    channels, side = 32, 14  # 7x7 pooling -> N = 2 * 2 tokens
    x = torch.randn(1, channels, side, side)
    with_pcsa = count_flops(create_attention("scsa", channels).eval(), x)
    without_pcsa = count_flops(create_attention("scsa-no-pcsa", channels).eval(), x)
    tokens = (side // 7) ** 2
    assert with_pcsa - without_pcsa >= 2 * (2 * channels * channels * tokens)


def test_yolov8n_gflops_agree_with_ultralytics_thop_count():
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    result = profile_model("yolov8n.yaml", imgsz=640, device="cpu", reps=0)
    model = DetectionModel("yolov8n.yaml", verbose=False)
    assert result.params == sum(p.numel() for p in model.parameters())
    assert result.gflops == pytest.approx(get_flops(model, 640), rel=0.03)  # 8.7 GFLOPs, the published figure
    # the all-ops figure adds the fused model's SiLUs, adds, poolings ... beside it
    assert result.gflops < result.gflops_all < 1.5 * result.gflops
    assert {"gflops", "gflops_all", "flops_all_convention"} <= set(result.to_dict())


def test_cpu_runs_the_reduced_protocol_and_says_so():
    result = profile_model("yolov8n.yaml", imgsz=64, device="cpu", reps=1, warmup=0)
    assert result.reduced and "reduced protocol" in result.note and result.timing == "perf_counter"
    assert result.batch == CPU_SETTINGS["batch"] and not result.half
    assert result.throughput > 0 and result.latency_ms > 0 and result.fused
    with pytest.raises(ValueError, match="needs a CUDA device"):
        profile_model("yolov8n.yaml", imgsz=64, device="cpu", half=True)


def test_competing_functions_are_timed_in_interleaved_rounds():
    calls = []
    figures = time_interleaved([lambda: calls.append("a"), lambda: calls.append("b")], torch.device("cpu"),
                               warmup=1, reps=4, rounds=2)
    # warm-up of each, then per round: a's share of the reps, then b's
    assert "".join(calls) == "ab" + "aabb" + "aabb"
    assert len(figures) == 2 and all(f > 0 for f in figures)


def test_several_models_are_profiled_side_by_side():
    plain, scsa = profile_models(["yolov8n.yaml", "yolov8n-scsa.yaml"], imgsz=64, device="cpu", reps=2, warmup=0)
    assert plain.timing == scsa.timing == "perf_counter, interleaved rounds over 2 models"
    assert scsa.params > plain.params and plain.throughput > 0 and scsa.latency_ms > 0
    alone = profile_model("yolov8n.yaml", imgsz=64, device="cpu", reps=0)
    assert alone.params == plain.params and alone.gflops == plain.gflops and alone.timing == "perf_counter"


def test_layer_profile_reports_shape_params_and_times():
    result = profile_layer("scsa", (16, 14, 14), batch=2, reps=1, warmup=0, device="cpu")
    assert result.shape == (2, 16, 14, 14) and result.params == 16 * 16  # SCSA: 16 params per channel
    assert result.forward_ms > 0 and result.forward_backward_ms > 0 and result.gflops > 0


def test_profile_cli_models_records_and_table2(tmp_path):
    records = tmp_path / "records"
    out = tmp_path / "profile.json"
    outcome = CliRunner().invoke(main, [
        "profile", "--model", "yolov8n", "--attns", "none,scsa", "--imgsz", "64", "--device", "cpu",
        "--reps", "1", "--warmup", "0", "--records", str(records), "--out", str(out),
    ])
    assert outcome.exit_code == 0, outcome.output
    results = json.loads(out.read_text())
    assert [r["model"] for r in results] == ["yolov8n", "yolov8n-scsa-backbone-res"]
    assert results[1]["params"] > results[0]["params"]
    report = CliRunner().invoke(main, ["report", str(records), "--style", "table2"])
    assert report.exit_code == 0, report.output
    assert "+SCSA" in report.output and "| 1.00 |" in report.output
    assert "reduced CPU protocol" in report.output


def test_profile_cli_layer_mode_and_bad_input():
    outcome = CliRunner().invoke(main, ["profile", "--layer", "eca", "--shape", "32,8,8", "--reps", "1", "--device", "cpu"])
    assert outcome.exit_code == 0, outcome.output
    assert "eca on (B=2, C=32, H=8, W=8)" in outcome.output
    outcome = CliRunner().invoke(main, ["profile", "--layer", "attention9", "--shape", "32,8,8"])
    assert outcome.exit_code == 2 and "known names: none, se" in outcome.output
    outcome = CliRunner().invoke(main, ["profile", "--layer", "scsa"])
    assert outcome.exit_code == 2 and "--shape" in outcome.output


def test_elementwise_rule_one_flop_per_element_of_the_largest_tensor():
    """SE on (1, 64, 20, 20), by hand: the 1x1 convs give 2 * (64*4 + 4*64) FLOPs; the
    element-wise count is mean over H*W (reads 25600) + ReLU (4) + sigmoid (64) + the
    rescale (25600)."""
    from scsa_yolo.nn.registry import create_attention

    n = 64 * 20 * 20
    assert count_flops_split(create_attention("se", 64), torch.randn(1, 64, 20, 20)) == (2 * (64 * 4 + 4 * 64), n + 4 + 64 + n)


def test_elementwise_rule_counts_norm_and_pooling_but_not_data_movement():
    x = torch.randn(1, 8, 6, 6)
    n = x.numel()

    class Moves(nn.Module):
        def forward(self, t):
            return torch.cat([t, t], dim=1).permute(0, 2, 3, 1).reshape(1, -1).clone()

    assert count_flops_split(Moves(), x) == (0, 0)
    assert count_flops_split(nn.GroupNorm(4, 8), x) == (0, n)
    assert count_flops_split(nn.MaxPool2d(2), x) == (0, n)  # reads every input once
    assert count_flops_split(nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.Hardswish()), x) == (2 * 8 * 8 * 36, n)


def test_attention_without_matmuls_is_no_longer_free():
    """SA (shuffle attention) has no convolution or matrix product: the matmul/conv-only
    count reads 0, the all-ops count does not."""
    result = profile_layer("sa", (128, 10, 10), batch=1, reps=0, device="cpu")
    assert result.gflops == 0 and result.gflops_all > 0
    n = 128 * 10 * 10  # at least: the half-map mean, the GN, and the two rescales
    assert result.gflops_all * 1e9 >= n / 2 + n / 2 + n


def test_records_of_a_model_outside_the_suite_are_refused_before_any_timing(tmp_path):
    from ultralytics.utils import ROOT

    own = tmp_path / "mine.yaml"  # a user's YAML: no suite identity to name its record by
    own.write_text((ROOT / "cfg" / "models" / "v8" / "yolov8.yaml").read_text())
    outcome = CliRunner().invoke(main, ["profile", "--model", f"yolov8n.yaml,{own}", "--device", "cpu",
                                        "--imgsz", "64", "--records", str(tmp_path / "records")])
    assert outcome.exit_code == 2, outcome.output
    assert "--records needs a suite model" in outcome.output and str(own) in outcome.output
    assert "throughput" not in outcome.output and not (tmp_path / "records").exists()
