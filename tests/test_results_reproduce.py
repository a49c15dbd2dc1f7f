"""The committed GPU results regenerate, byte for byte, from their committed run records.

Regenerate them after a change to the report (and check the diff) with the same command:
``scsa-yolo report results/RECORDS --style STYLE --format all --out results/STEM`` (add
``--no-plot`` where no PNG is committed).
"""
from pathlib import Path

import pytest
from click.testing import CliRunner

from scsa_yolo.cli.main import main

RESULTS = Path(__file__).resolve().parents[1] / "results"

REPORTS = [
    # (records folder, style, committed report stem)
    ("throughput/records", "table2", "throughput/table2"),
    ("synthetic/records", "table4", "synthetic/table4"),
    # The placement grid and the fine-tuning grids of benchmarks/gpu_grids.sh (one H200).
    ("placement/records", "table4", "placement/table4"),
    ("finetune/records", "table4", "finetune/table4"),
    # The segmentation and classification grids of gpu_grids.sh PHASE=tasks (one H100).
    ("table6-synthetic/records", "table6", "table6-synthetic/table6"),
    ("table2-synthetic-cls/records", "table2", "table2-synthetic-cls/table2"),
    # The two-GPU grids (benchmarks/multi_gpu.sh): one run per GPU, and both runs on GPU 0.
    ("multi_gpu/bench_gpus_0_1/records", "table4", "multi_gpu/bench_gpus_0_1/report"),
    ("multi_gpu/bench_gpu_0_twice/records", "table4", "multi_gpu/bench_gpu_0_twice/report"),
]


@pytest.mark.parametrize("records, style, stem", REPORTS, ids=[r[2] for r in REPORTS])
@pytest.mark.parametrize("fmt", ["md", "latex", "html", "csv"])
def test_committed_report_regenerates_from_committed_records(tmp_path, records, style, stem, fmt):
    committed_dir = RESULTS / Path(stem).parent
    if not (RESULTS / records).is_dir():
        pytest.fail(f"committed records missing: {RESULTS / records}")
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["report", str(RESULTS / records), "--style", style, "--format", fmt, "--out", str(out), "--no-plot"]
    )
    assert result.exit_code == 0, result.output
    suffix = {"md": ".md", "latex": ".tex", "html": ".html", "csv": ".csv"}[fmt]
    regenerated = out.with_suffix(suffix).read_text()
    committed = (committed_dir / (Path(stem).name + suffix)).read_text()
    assert regenerated == committed
    if fmt == "csv":  # the notes a CSV cannot hold travel beside it
        notes = out.with_suffix(".notes.txt")
        committed_notes = committed_dir / (Path(stem).name + ".notes.txt")
        assert notes.is_file() == committed_notes.is_file()
        if notes.is_file():
            assert notes.read_text() == committed_notes.read_text()
