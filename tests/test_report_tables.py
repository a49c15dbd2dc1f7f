"""Report formatting: marks, ties, missing cells, seeds, every style and format (golden files)."""
import csv
import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from scsa_yolo.records import SCHEMA_VERSION, write_record
from scsa_yolo.report.build import make_report
from scsa_yolo.report.render import render
from scsa_yolo.report.tables import ReportError, build_table

GOLDEN = Path(__file__).parent / "data" / "report_golden"
LABELS = {"none": "-", "se": "+SE", "eca": "+ECA", "ca": "+CA", "fca": "+FCA", "cbam": "+CBAM", "scsa": "+SCSA",
          "scsa-no-pcsa": "w/o PCSA", "scsa-g1-3": "G1(3)"}
PARAMS = {"yolov8n": 3_157_200, "yolov8s": 11_166_560}
EXTRA_PARAMS = {"none": 0, "se": 10_880, "eca": 9, "ca": 13_000, "fca": 10_880, "scsa": 7_168, "scsa-no-pcsa": 6_000, "scsa-g1-3": 7_000}


def make_record(dataset, model, attn, seed, ap, ap50, ap75, throughput=None, kind="train", aps=None, epochs=10):
    """A schema-valid record with chosen numbers (fractions)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "run_id": f"{dataset}/{model}-{attn}-s{seed}",
        "created_at": "2025-01-01T00:00:00+00:00",
        "spec": {
            "dataset": dataset, "model": model, "family": model[:-1], "scale": model[-1], "attn": attn,
            "attn_label": LABELS[attn], "attn_kwargs": {}, "placement": None if attn == "none" else "backbone",
            "model_yaml": f"{model}-{attn}.yaml", "seed": seed, "epochs": epochs, "imgsz": 640, "batch": 16,
            "train_args": {},
        },
        "env": {"python": "3.11", "platform": "linux", "scsa_yolo": "0.1.0", "ultralytics": "8.4", "torch": "2.4",
                "cuda": "12.4", "device_name": "NVIDIA H100", "git_commit": None},
        "metrics": None if kind == "profile" else {
            "split": "val", "AP": ap, "AP50": ap50, "AP75": ap75, "APs": aps, "APm": None, "APl": None,
            "per_class": {}, "ultralytics": {}, "n_images": 100,
        },
        "profile": None if throughput is None else {
            "params": PARAMS[model] + EXTRA_PARAMS[attn], "gflops": 8.7 + 0.01 * len(attn), "imgsz": 640,
            "throughput": throughput, "latency_ms": 1000 / throughput * 4, "batch": 32, "half": True,
            "device_name": "NVIDIA H100", "reduced": False,
        },
        "wall_time_s": {"train": 1.0},
        "run_dir": None,
    }


def _records() -> list[dict]:
    """Two datasets, two models; seeds, a tie, a missing run, a missing metric."""
    records = []
    voc = {  # attn -> (AP, AP50, AP75) for yolov8n
        "none": (0.507, 0.819, 0.557),
        "se": (0.502, 0.819, 0.541),   # AP50 ties with '-' at the best value
        "ca": (0.518, 0.812, 0.565),   # second AP
        "scsa": (0.530, 0.810, 0.580),  # best AP and AP75
    }
    for attn, (ap, ap50, ap75) in voc.items():
        throughput = {"none": 1000, "se": 940, "ca": 900, "scsa": 960}[attn]
        records.append(make_record("voc", "yolov8n", attn, 0, ap, ap50, ap75, throughput=throughput, aps=ap / 2))
    # yolov8s on voc: +CA missing entirely (dash cells), three seeds for '-' and +SCSA
    for seed, delta in enumerate((0.0, 0.004, -0.004)):
        records.append(make_record("voc", "yolov8s", "none", seed, 0.543 + delta, 0.838, 0.610 + delta, throughput=800))
        records.append(make_record("voc", "yolov8s", "scsa", seed, 0.555 + delta, 0.846 + delta, 0.618, throughput=700))
    records.append(make_record("voc", "yolov8s", "se", 0, 0.537, 0.836, 0.601, throughput=760))
    # a second dataset: ranks are per dataset
    for attn, ap in (("none", 0.221), ("se", 0.216), ("scsa", 0.229)):
        records.append(make_record("visdrone", "yolov8n", attn, 0, ap, ap + 0.15, ap + 0.01))
    return records


@pytest.fixture()
def record_dir(tmp_path):
    for i, record in enumerate(_records()):
        write_record(record, tmp_path / "runs" / f"r{i:02d}" / "record.json")
    return tmp_path / "runs"


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SCSA_YOLO_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from the golden file (set SCSA_YOLO_UPDATE_GOLDEN=1 to regenerate after checking)"


def _row(text: str, *starts: str) -> list[str]:
    """Cells of the Markdown row whose header cells begin with ``starts``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[: len(starts)] == list(starts):
            return cells
    raise AssertionError(f"no row {starts} in\n{text}")


def test_table4_marks_best_second_ties_missing_and_seeds(record_dir):
    text = make_report([record_dir], "table4").render("md")
    header = _row(text, "Dataset", "Method")
    assert header[2:] == ["yolov8n AP", "yolov8n AP50", "yolov8n AP75", "yolov8n n",
                          "yolov8s AP", "yolov8s AP50", "yolov8s AP75", "yolov8s n"]
    voc_plain = _row(text, "voc", "-")
    voc_se = _row(text, "", "+SE (backbone)")
    voc_ca = _row(text, "", "+CA (backbone)")
    voc_scsa = _row(text, "", "+SCSA (backbone)")
    # yolov8n AP: SCSA best, CA second, others unmarked
    assert voc_scsa[2] == "**53.0**" and voc_ca[2] == "<u>51.8</u>" and voc_plain[2] == "50.7" and voc_se[2] == "50.2"
    # yolov8n AP50: '-' and +SE tie for best (81.9), +CA is second
    assert voc_plain[3] == voc_se[3] == "**81.9**" and voc_ca[3] == "<u>81.2</u>" and voc_scsa[3] == "81.0"
    # yolov8s: three seeds -> mean ± std with n = 3; +CA never ran -> dashes
    assert voc_plain[6] == "<u>54.3 ± 0.4</u>" and voc_plain[9] == "3"
    assert voc_scsa[6] == "**55.5 ± 0.4**" and voc_scsa[9] == "3"
    assert voc_se[6] == "53.7" and voc_se[9] == "1"
    assert voc_ca[6:10] == ["-", "-", "-", "-"]
    # ranks restart per dataset: VisDrone has its own best
    assert _row(text, "visdrone", "-")[2] == "<u>22.1</u>"
    assert _row(text, "", "+SCSA (backbone)")[2] == "**53.0**"  # first +SCSA row is VOC's
    vis_rows = text.split("| visdrone")[1]
    assert "**22.9**" in vis_rows
    _golden("table4.md", text)


def test_methods_follow_registry_order_plain_first(record_dir):
    text = make_report([record_dir], "table4").render("md")
    voc_block = text.split("| voc")[1].split("| visdrone")[0]
    positions = [voc_block.index(f" {label} ") for label in ("-", "+SE (backbone)", "+CA (backbone)", "+SCSA (backbone)")]
    assert positions == sorted(positions)


@pytest.mark.parametrize("style", ["table4", "table3", "table2", "ablation"])
@pytest.mark.parametrize("fmt", ["md", "latex", "html", "csv"])
def test_every_style_and_format_matches_golden(record_dir, style, fmt):
    report = make_report([record_dir], style)
    extension = {"md": "md", "latex": "tex", "html": "html", "csv": "csv"}[fmt]
    _golden(f"{style}.{extension}", report.render(fmt))


def test_latex_uses_booktabs_and_marks(record_dir):
    text = make_report([record_dir], "table4").render("latex")
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){3-6}", r"\multicolumn{4}{c}{yolov8n}"):
        assert token in text
    assert r"\textbf{53.0}" in text and r"\underline{51.8}" in text
    assert r"\textbf{55.5 $\pm$ 0.4}" in text


def test_html_marks(record_dir):
    text = make_report([record_dir], "table4").render("html")
    assert "<b>53.0</b>" in text and "<u>51.8</u>" in text and '<th colspan="4">yolov8s</th>' in text


def test_table2_relative_throughput_and_latency_is_lower_better(record_dir):
    text = make_report([record_dir], "table2").render("md")
    plain = _row(text, "voc", "yolov8n", "-")
    scsa = _row(text, "", "", "+SCSA (backbone)")
    assert plain[6] == "1.00" and scsa[6] == "0.96"  # 960 / 1000 img/s
    assert plain[5] == "**1000**"
    assert plain[7] == "**4.00**"  # lowest latency is best


def test_throughput_note_names_a_reduced_gpu_protocol_as_gpu_not_cpu(tmp_path):
    """A GPU profile with fewer timed passes than the paper's is 'reduced', but it is no CPU figure."""
    for i, attn in enumerate(("none", "scsa")):
        record = make_record("voc", "yolov8n", attn, 0, None, None, None, throughput=1000 - 40 * i, kind="profile")
        record["profile"].update(reduced=True, device="cuda", reps=50)
        write_record(record, tmp_path / "runs" / f"r{i}" / "record.json")
    text = make_report([tmp_path / "runs"], "table2").render("md")
    note = next(line for line in text.splitlines() if line.startswith("- Throughput:"))
    assert "on NVIDIA H100 (reduced GPU protocol" in note
    assert "CPU" not in note
    assert "| 0.96 |" in text  # ratios are still given (and ranked) for a GPU


def test_csv_holds_unrounded_means_stds_and_seeds(record_dir):
    rows = list(csv.DictReader(io.StringIO(make_report([record_dir], "table4").render("csv"))))
    scsa_s = next(r for r in rows if r["block"] == "voc" and r["method"] == "+SCSA (backbone)" and r["model"] == "yolov8s")
    assert float(scsa_s["AP_mean"]) == pytest.approx(0.555)
    assert float(scsa_s["AP_std"]) == pytest.approx(0.004)
    assert scsa_s["n"] == "3" and scsa_s["seeds"] == "0,1,2"
    se_n = next(r for r in rows if r["block"] == "voc" and r["method"] == "+SE (backbone)" and r["model"] == "yolov8n")
    assert se_n["AP_std"] == "" and se_n["n"] == "1"


def test_unknown_style_and_profile_only_rows_give_clear_errors(record_dir, tmp_path):
    with pytest.raises(ReportError, match="table4, table3, table2, ablation"):
        make_report([record_dir], "table9")
    profile_only = make_record("voc", "yolov8n", "scsa", 0, None, None, None, throughput=900, kind="profile")
    profile_only["spec"]["dataset"] = None
    write_record(profile_only, tmp_path / "p" / "record.json")
    with pytest.raises(ReportError, match="table2"):
        make_report([tmp_path / "p"], "table4")
    assert "900" in make_report([tmp_path / "p"], "table2").render("md")


def test_corrupt_and_invalid_records_are_reported_with_path_and_skipped(record_dir):
    (record_dir / "broken").mkdir()
    (record_dir / "broken" / "record.json").write_text('{"schema_version": 1, "kind": "tr')
    bad = make_record("voc", "yolov8n", "eca", 0, 1.7, 0.9, 0.8)  # AP outside [0, 1]
    (record_dir / "bad").mkdir()
    (record_dir / "bad" / "record.json").write_text(json.dumps(bad))
    from scsa_yolo.cli.main import main

    outcome = CliRunner().invoke(main, ["report", str(record_dir)])
    assert outcome.exit_code == 0, outcome.output
    assert f"skipped {record_dir / 'broken' / 'record.json'}: not valid JSON" in outcome.output
    assert f"skipped {record_dir / 'bad' / 'record.json'}" in outcome.output
    assert "'metrics.AP' must be a fraction" in outcome.output
    assert "+ECA" not in outcome.output  # the invalid run is not in the table
    assert "**53.0**" in outcome.output  # the valid ones are
    assert "2 record(s) or run(s) skipped" in outcome.output


def test_report_cli_bad_style_and_format(record_dir):
    from scsa_yolo.cli.main import main

    outcome = CliRunner().invoke(main, ["report", str(record_dir), "--style", "table5"])
    assert outcome.exit_code == 2 and "'table4', 'table3', 'table2', 'ablation'" in outcome.output
    outcome = CliRunner().invoke(main, ["report", str(record_dir), "--format", "pdf"])
    assert outcome.exit_code == 2 and "'md', 'latex', 'html', 'csv', 'all'" in outcome.output
    outcome = CliRunner().invoke(main, ["report", str(record_dir / "nope")])
    assert outcome.exit_code == 2 and "does not exist" in outcome.output


def test_the_papers_table_names_are_styles_too(record_dir):
    """Issue 26: the README's `--style table1` exited 2; the paper's Table 1 is our ablation style."""
    from scsa_yolo.cli.main import main

    as_paper = CliRunner().invoke(main, ["report", str(record_dir), "--style", "table1"])
    as_ours = CliRunner().invoke(main, ["report", str(record_dir), "--style", "ablation"])
    assert as_paper.exit_code == 0, as_paper.output
    assert as_paper.output == as_ours.output and "SCSA ablations (Table 1 style)" in as_paper.output
    assert make_report([record_dir], "table1").table.style == "ablation"
    for name in ("table2", "table3", "table4"):  # the paper's other detection tables keep their names
        assert make_report([record_dir], name).table.style == name
    outcome = CliRunner().invoke(main, ["report", str(record_dir), "--style", "table5"])
    assert outcome.exit_code == 2 and "'ablation', 'table1'" in outcome.output


def test_rows_with_a_resumed_run_are_marked_and_named(tmp_path):
    """Issue 26: a run resumed after an interruption (record: train_mode resumed) can score
    differently from an uninterrupted one; its row says so, in every format, and a note
    names the run."""
    records = _records()
    resumed = next(r for r in records if r["run_id"] == "voc/yolov8s-scsa-s1")
    resumed["train_mode"] = "resumed"
    for record in records:
        record.setdefault("train_mode", "fresh")
    for i, record in enumerate(records):
        write_record(record, tmp_path / "runs" / f"r{i:02d}" / "record.json")
    report = make_report([tmp_path / "runs"], "table4")
    text = report.render("md")
    assert _row(text, "", "+SCSA (backbone) ‡")[6] == "**55.5 ± 0.4**"  # voc: the row holding the resumed seed
    assert "+SCSA (backbone) ‡" not in text.split("| visdrone")[1].split("**Difference")[0]  # visdrone's SCSA ran in one go
    assert text.count("(backbone) ‡") == 2  # the accuracy row and its difference to the plain model
    note = next(n for n in report.table.notes if n.startswith("‡"))
    assert "interrupted and resumed from its last checkpoint (1 such run: voc/yolov8s-scsa-s1)" in note
    assert r"(backbone) $^\ddagger$" in report.render("latex") and "(backbone) ‡</td>" in report.render("html")
    rows = list(csv.DictReader(io.StringIO(report.render("csv"))))
    assert {(r["block"], r["model"], r["method"]): r["resumed"] for r in rows if r["resumed"] != "0"} == {
        ("voc", "yolov8s", "+SCSA (backbone)"): "1"}

    fresh = make_report([tmp_path / "runs" / "r00"], "table4")  # no resumed run: no mark, no note, no column
    assert "‡" not in fresh.render("md") and "resumed" not in fresh.render("csv").splitlines()[0]


def test_report_cli_all_formats_and_plot(record_dir, tmp_path):
    from scsa_yolo.cli.main import main

    out = tmp_path / "results" / "table4"
    outcome = CliRunner().invoke(main, ["report", str(record_dir), "--format", "all", "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    for ext in ("md", "tex", "html", "csv", "png"):
        assert (tmp_path / "results" / f"table4.{ext}").stat().st_size > 0
    assert (tmp_path / "results" / "table4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_build_table_without_rows_is_an_error():
    with pytest.raises(ReportError, match="no runs"):
        build_table([], "table4")


def test_render_rejects_unknown_format(record_dir):
    table = make_report([record_dir], "table4").table
    with pytest.raises(ValueError, match="md, latex, html, csv"):
        render(table, "rtf")


def test_unfinished_bench_runs_are_skipped_not_reported_as_plain_ultralytics_runs(record_dir):
    unfinished = record_dir / "voc" / "yolov8n-eca-s0"
    unfinished.mkdir(parents=True)
    (unfinished / "spec.json").write_text("{}")
    (unfinished / "args.yaml").write_text("model: yolov8n-eca.yaml\ndata: voc\nepochs: 10\nimgsz: 640\nseed: 0\n")
    (unfinished / "results.csv").write_text("epoch,metrics/mAP50(B),metrics/mAP50-95(B)\n1,0.9,0.9\n")
    from scsa_yolo.cli.main import main

    outcome = CliRunner().invoke(main, ["report", str(record_dir)])
    assert outcome.exit_code == 0, outcome.output
    assert f"skipped {unfinished}: unfinished bench run" in outcome.output
    assert "+ECA" not in outcome.output and "90.0" not in outcome.output
