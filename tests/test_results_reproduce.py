"""The committed GPU results regenerate, byte for byte, from their committed run records.

Regenerate them after a change to the report (and check the diff) with the same command:
``scsa-yolo report results/RECORDS --style STYLE --format all --out results/STEM`` (add
``--no-plot`` where no PNG is committed). A report drawn from records of two folders names
every part (glob patterns allowed, as the shell would expand them); ``results/README.md``
gives its command.
"""
from pathlib import Path

import pytest
from click.testing import CliRunner

from scsa_yolo.cli.main import main

RESULTS = Path(__file__).resolve().parents[1] / "results"

REPORTS = [
    # (records folder or tuple of record paths/patterns, style, committed report stem)
    ("throughput/records", "table2", "throughput/table2"),
    ("synthetic/records", "table4", "synthetic/table4"),
    # The placement grid and the fine-tuning grids of benchmarks/gpu_grids.sh (one H200).
    ("placement/records", "table4", "placement/table4"),
    ("finetune/records", "table4", "finetune/table4"),
    # The four newer rivals (session 11, one H100) against plain runs of the same kind of GPU.
    (("placement/plain_h100/records", "placement/records/yolov8n-simam-*", "placement/records/yolov8n-lska-*",
      "placement/records/yolov8n-mlca-*", "placement/records/yolov8n-caa-*"), "table4", "placement/plain_h100/table4"),
    # The segmentation and classification grids of gpu_grids.sh PHASE=tasks (one H100).
    ("table6-synthetic/records", "table6", "table6-synthetic/table6"),
    ("table2-synthetic-cls/records", "table2", "table2-synthetic-cls/table2"),
    # The two-GPU grids (benchmarks/multi_gpu.sh): one run per GPU, and both runs on GPU 0.
    ("multi_gpu/bench_gpus_0_1/records", "table4", "multi_gpu/bench_gpus_0_1/report"),
    ("multi_gpu/bench_gpu_0_twice/records", "table4", "multi_gpu/bench_gpu_0_twice/report"),
]


def record_paths(records: str | tuple[str, ...]) -> list[Path]:
    """The committed paths a REPORTS entry names (patterns expanded, sorted); fails if a part is missing."""
    paths = []
    for part in (records,) if isinstance(records, str) else records:
        matches = sorted(RESULTS.glob(part))
        if not matches:
            pytest.fail(f"committed records missing: {RESULTS / part}")
        paths += matches
    return paths


@pytest.mark.parametrize("records, style, stem", REPORTS, ids=[r[2] for r in REPORTS])
@pytest.mark.parametrize("fmt", ["md", "latex", "html", "csv"])
def test_committed_report_regenerates_from_committed_records(tmp_path, records, style, stem, fmt):
    committed_dir = RESULTS / Path(stem).parent
    paths = [str(path) for path in record_paths(records)]
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["report", *paths, "--style", style, "--format", fmt, "--out", str(out), "--no-plot"]
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
