"""Reports that say what is noise: intervals against the plain model, placement and start
in the labels, the 1-seed and short-schedule notes, no winner among CPU timings nor among
timings a bench took while its runs shared one GPU, and an empty folder named with what to
run first (issue 13 item 4; issue 20 items 4, 5, 9).

Expected intervals are computed here from the textbook formulas with the t quantiles of a
printed table, not by the code under test.
"""
import csv
import io
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scsa_yolo.identity import ModelId, Pretrained
from scsa_yolo.records import make_record, write_record
from scsa_yolo.report.build import make_report, write_report
from scsa_yolo.report.load import load_rows
from scsa_yolo.report.stats import t_quantile

# Two-sided 95% (upper 0.975) quantiles of Student's t, as printed in any statistics table.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 10: 2.228, 20: 2.086, 30: 2.042}

ENV = {"python": "3.11", "platform": "linux", "scsa_yolo": "0.1.0", "ultralytics": "8.4", "torch": "2.4",
       "cuda": "12.4", "device_name": "test", "git_commit": None}


def _record(dataset, name, seed, ap, ap50=None, *, epochs=100, pretrained=False, profile=None):
    model_id = ModelId.parse(name).with_(pretrained=pretrained)
    metrics = {"split": "val", "AP": ap, "AP50": ap50, "AP75": None, "APs": None, "APm": None, "APl": None,
               "per_class": {}, "ultralytics": {}, "n_images": 10}
    return make_record(
        "train", f"{dataset}/{model_id.run_name(seed)}", model_id, model_yaml=model_id.yaml_name(scaled=True),
        imgsz=640, env=ENV, dataset=dataset, seed=seed, epochs=epochs, batch=16,
        pretrained=Pretrained("weights/start.pt", "0" * 64) if pretrained else None,
        metrics=metrics, profile=profile,
    )


def _write(records, folder: Path) -> Path:
    for i, record in enumerate(records):
        write_record(record, folder / f"r{i:02d}" / "record.json")
    return folder


def _csv_rows(report):
    return list(csv.DictReader(io.StringIO(report.render("csv"))))


def _md_row(text: str, label: str, section: int = 0) -> list[str]:
    """Cells of the Markdown row labelled ``label`` in the ``section``-th table of ``text``."""
    tables = [part for part in text.split("\n\n") if part.startswith("|")]
    for line in tables[section].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if label in cells:
            return cells
    raise AssertionError(f"no row {label!r} in table {section} of\n{text}")


def _interval(diff, half):
    return diff - half, diff + half


def _shown(diff, low, high):
    return f"{100 * diff:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


# --------------------------------------------------------------------------- t quantiles
@pytest.mark.parametrize("df", sorted(T_975))
def test_t_quantile_matches_the_printed_table(df):
    assert t_quantile(0.975, df) == pytest.approx(T_975[df], abs=6e-4)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995])
def test_t_quantile_matches_closed_forms_for_one_and_two_degrees_of_freedom(p):
    # df = 1 is the Cauchy distribution; df = 2 has F^-1(p) = (2p - 1) / sqrt(2 p (1 - p)).
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)
    assert t_quantile(1 - p, 2) == pytest.approx(-t_quantile(p, 2), rel=1e-12)


def test_t_quantile_for_real_degrees_of_freedom_lies_between_its_neighbours():
    assert T_975[3] < t_quantile(0.975, 2.5) < T_975[2]
    assert t_quantile(0.975, 1e7) == pytest.approx(1.960, abs=5e-4)


# --------------------------------------------------------------------------- intervals
PLAIN = {0: (0.500, 0.80), 1: (0.510, 0.82), 2: (0.520, 0.81)}
SCSA = {0: (0.530, 0.82), 1: (0.535, 0.80), 2: (0.560, 0.83)}  # same seeds: paired
SE = {3: (0.530, None), 4: (0.540, None), 5: (0.550, None)}  # other seeds: Welch


@pytest.fixture()
def seeded(tmp_path):
    records = [_record("voc", "yolov8n", s, ap, ap50) for s, (ap, ap50) in PLAIN.items()]
    records += [_record("voc", "yolov8n-scsa-block", s, ap, ap50) for s, (ap, ap50) in SCSA.items()]
    records += [_record("voc", "yolov8n-se-block", s, ap, ap50) for s, (ap, ap50) in SE.items()]
    return _write(records, tmp_path / "runs")


def test_paired_interval_over_seeds_matches_the_textbook_formula(seeded):
    report = make_report([seeded], "table4")
    deltas = [SCSA[s][0] - PLAIN[s][0] for s in PLAIN]  # 0.030, 0.025, 0.040
    diff = sum(deltas) / 3
    low, high = _interval(diff, T_975[2] * statistics.stdev(deltas) / math.sqrt(3))
    row = next(r for r in _csv_rows(report) if r["method"] == "+SCSA (block)")
    assert row["AP_diff_test"] == "paired"
    assert float(row["AP_diff"]) == pytest.approx(diff, abs=1e-9)
    assert (float(row["AP_diff_low"]), float(row["AP_diff_high"])) == pytest.approx((low, high), abs=2e-5)
    assert row["AP_diff_ns"] == "False"
    text = report.render("md")
    assert _md_row(text, "+SCSA (block)", section=1)[2] == _shown(diff, low, high)  # "+3.2 [+1.3, +5.1]"


def test_welch_interval_when_the_seeds_differ(seeded):
    report = make_report([seeded], "table4")
    se = [v for v, _ in SE.values()]
    plain = [v for v, _ in PLAIN.values()]
    variance = statistics.variance(se) / 3 + statistics.variance(plain) / 3
    # Equal variances and sizes: Welch-Satterthwaite gives exactly 3 + 3 - 2 = 4 degrees of freedom.
    df = variance ** 2 / ((statistics.variance(se) / 3) ** 2 / 2 + (statistics.variance(plain) / 3) ** 2 / 2)
    assert df == pytest.approx(4)
    diff = statistics.mean(se) - statistics.mean(plain)
    low, high = _interval(diff, T_975[4] * math.sqrt(variance))
    row = next(r for r in _csv_rows(report) if r["method"] == "+SE (block)")
    assert row["AP_diff_test"] == "welch"
    assert (float(row["AP_diff_low"]), float(row["AP_diff_high"])) == pytest.approx((low, high), abs=2e-5)
    assert _md_row(report.render("md"), "+SE (block)", section=1)[2] == _shown(diff, low, high)


def test_an_interval_holding_zero_is_marked_and_the_mark_explained(seeded):
    report = make_report([seeded], "table4")
    deltas = [SCSA[s][1] - PLAIN[s][1] for s in PLAIN]  # AP50: +0.02, -0.02, +0.02
    diff = sum(deltas) / 3
    low, high = _interval(diff, T_975[2] * statistics.stdev(deltas) / math.sqrt(3))
    assert low < 0 < high
    text = report.render("md")
    cells = _md_row(text, "+SCSA (block)", section=1)
    assert cells[3] == _shown(diff, low, high) + " (ns)"
    assert not cells[2].endswith("(ns)")
    assert "(ns): the interval contains 0" in text
    assert "on means over 3 seeds" in text  # what bold/underline rank
    assert "Short schedule" not in text  # 100 epochs is not short
    for fmt in ("latex", "html"):
        assert "(ns)" in report.render(fmt) and "the interval contains 0" in report.render(fmt)


# --------------------------------------------------------------------------- 1 seed, short schedule
ONE_SEED_NOTE = "1 seed: differences cannot be told from noise"


def test_a_single_seed_report_says_its_differences_are_noise_in_every_output(tmp_path):
    runs = _write([_record("synthetic", "yolov8n", 0, 0.80, 0.95, epochs=10),
                   _record("synthetic", "yolov8n-scsa-block", 0, 0.78, 0.94, epochs=10)], tmp_path / "runs")
    out = tmp_path / "out" / "report"
    report, written, _ = write_report([runs], "table4", ("md", "latex", "html", "csv"), out=out)
    for suffix in (".md", ".tex", ".html", ".notes.txt"):
        text = out.with_name("report" + suffix).read_text()
        assert ONE_SEED_NOTE in text, suffix
        assert "Short schedule: 10 epochs" in text, suffix
    assert out.with_name("report.notes.txt") in written
    assert "Difference to the plain model" not in report.render("md")  # no interval anywhere: no table of them
    from scsa_yolo.cli.main import main

    outcome = CliRunner().invoke(main, ["report", str(runs)])
    assert outcome.exit_code == 0, outcome.output
    assert ONE_SEED_NOTE in outcome.output and "single runs" in outcome.output


def test_several_seeds_have_no_one_seed_note(seeded):
    assert ONE_SEED_NOTE not in make_report([seeded], "table4").render("md")


# --------------------------------------------------------------------------- CPU timings
def _profile(throughput, device, shared=None):
    """A record's profile; ``shared``: its ``shared_device_slots`` (None: a record from before the count)."""
    return {"params": 3_000_000, "gflops": 8.7, "imgsz": 640, "throughput": throughput, "latency_ms": 1000 / throughput,
            "batch": 2 if device == "cpu" else 32, "half": device != "cpu", "device": device,
            "device_name": "Some CPU (2 threads)" if device == "cpu" else "NVIDIA H200",
            "reduced": device == "cpu", "timing": "perf_counter" if device == "cpu" else "cuda-events",
            **({} if shared is None else {"shared_device_slots": shared})}


def _timed_runs(folder, device, shared=(None, None, None)):
    """Plain, +SE and +SCSA; ``shared``: each one's ``shared_device_slots``."""
    return _write([_record("synthetic", "yolov8n", 0, 0.80, profile=_profile(44.0, device, shared[0])),
                   _record("synthetic", "yolov8n-se-block", 0, 0.81, profile=_profile(94.6, device, shared[1])),
                   _record("synthetic", "yolov8n-scsa-block", 0, 0.79, profile=_profile(38.5, device, shared[2]))],
                  folder)


def test_cpu_throughput_marks_no_winner_but_accuracy_still_does(tmp_path):
    text = make_report([_timed_runs(tmp_path / "cpu", "cpu")], "table2").render("md")
    se = _md_row(text, "+SE (block)")
    # columns: Dataset, Model, Method, Params, GFLOPs, Throughput, Rel., Latency, AP
    assert se[5] == "95" and se[7] == "10.57"  # fastest, yet plain
    assert "**" not in "".join(_md_row(text, label)[5] + _md_row(text, label)[7]
                               for label in ("-", "+SE (block)", "+SCSA (block)"))
    assert "<u>" not in "".join(_md_row(text, label)[5] for label in ("-", "+SE (block)", "+SCSA (block)"))
    assert se[8] == "**81.0**"
    assert "CPU, not comparable" in text and "no best or second is marked" in text
    gpu = make_report([_timed_runs(tmp_path / "gpu", "cuda:0")], "table2").render("md")
    assert _md_row(gpu, "+SE (block)")[5] == "**95**" and "CPU, not comparable" not in gpu


def test_cpu_throughput_plot_says_not_comparable(tmp_path):
    from PIL import Image

    for device, expected in (("cpu", True), ("cuda:0", False)):
        out = tmp_path / device.replace(":", "") / "report"
        _, written, messages = write_report([_timed_runs(tmp_path / f"runs-{device}", device)], "table2", ("md",),
                                            out=out, plot=True)
        assert not messages
        png = out.with_name("report.png")
        assert png in written
        assert ("CPU, not comparable" in Image.open(png).info["Description"]) is expected


SHARED_NOTE = "Shared GPU, not comparable"


def _timing_marks(text: str) -> str:
    """The markup of the throughput and latency cells of the three timed runs."""
    return "".join(_md_row(text, label)[5] + _md_row(text, label)[7] for label in ("-", "+SE (block)", "+SCSA (block)"))


def test_throughput_timed_while_bench_runs_shared_the_gpu_marks_no_winner(tmp_path):
    """Throughput a bench timed while 6 of its runs trained on the GPU is the other runs' load as
    much as the model's cost: no winner there, a note that says so; accuracy still ranked."""
    text = make_report([_timed_runs(tmp_path / "shared", "cuda:0", (6, 6, 6))], "table2").render("md")
    se = _md_row(text, "+SE (block)")
    # columns: Dataset, Model, Method, Params, GFLOPs, Throughput, Rel., Latency, AP
    assert (se[5], se[6], se[7]) == ("95", "2.15", "10.57")  # fastest, yet plain; Rel. shown as for CPU timings
    assert "**" not in _timing_marks(text) and "<u>" not in _timing_marks(text)
    assert se[8] == "**81.0**"
    assert f"{SHARED_NOTE}: the bench timed throughput and latency while 6 of its runs" in text
    assert "(Rel. too)" in text and "`scsa-yolo profile`" in text and "CPU, not comparable" not in text
    assert [row["shared_device_slots"] for row in _csv_rows(make_report([tmp_path / "shared"], "table2"))] == ["6"] * 3
    # one shared run in the block is enough; the note names the counts there are
    mixed = make_report([_timed_runs(tmp_path / "mixed", "cuda:0", (1, 2, 16))], "table2").render("md")
    assert "**" not in _timing_marks(mixed) and "while 2 to 16 of its runs" in mixed
    # alone, or a record from before the count: ranked as before, no note, no CSV column
    for name, shared in (("alone", (1, 1, 1)), ("older", (None, None, None))):
        report = make_report([_timed_runs(tmp_path / name, "cuda:0", shared)], "table2")
        text = report.render("md")
        assert _md_row(text, "+SE (block)")[5] == "**95**" and _md_row(text, "-")[5] == "<u>44</u>"
        assert SHARED_NOTE not in text and "shared_device_slots" not in _csv_rows(report)[0]


def test_shared_gpu_throughput_plot_says_not_comparable(tmp_path):
    import matplotlib.pyplot as plt

    from scsa_yolo.report.plot import SHARED_CAVEAT, ap_vs_throughput_figure

    for shared, expected in (((6, 6, 6), True), ((1, 1, 1), False)):
        rows, _ = load_rows([_timed_runs(tmp_path / str(shared[0]), "cuda:0", shared)])
        fig, description = ap_vs_throughput_figure(rows)
        try:
            assert (SHARED_CAVEAT in description) is expected
            assert (f"{SHARED_CAVEAT}: 6 runs at once" in fig.axes[0].xaxis.label.get_text()) is expected
            assert (SHARED_CAVEAT in fig.axes[0].get_title()) is expected
        finally:
            plt.close(fig)


def test_every_label_of_the_plot_lies_inside_the_figure(tmp_path):
    """Issue 26: the CPU caveat made the x label wider than its panel, and the PNG cut it off
    on the left. Every text of the figure (labels, titles, legend) now lies inside it, with
    one panel and with several."""
    import matplotlib.pyplot as plt

    from scsa_yolo.report.load import load_rows
    from scsa_yolo.report.plot import ap_vs_throughput_figure

    cpu_rows, _ = load_rows([_timed_runs(tmp_path / "cpu", "cpu")])
    other = [{**row, "dataset": "synthetic-tiny"} for row in cpu_rows]  # a second panel
    for rows in (cpu_rows, cpu_rows + other):
        fig, _ = ap_vs_throughput_figure(rows)
        try:
            renderer = fig.canvas.get_renderer()
            fig.canvas.draw()
            texts = [fig.legends[0]]
            for ax in fig.axes:
                texts += [ax.xaxis.label, ax.yaxis.label, ax.title]
            assert "CPU, not comparable" in fig.axes[0].xaxis.label.get_text()
            for text in texts:
                box = text.get_window_extent(renderer)
                assert 0 <= box.x0 and box.x1 <= fig.bbox.x1 and 0 <= box.y0 and box.y1 <= fig.bbox.y1, (
                    getattr(text, "get_text", lambda: "legend")(), box, fig.bbox)
        finally:
            plt.close(fig)


# --------------------------------------------------------------------------- placement and start
def test_placement_is_in_every_label_and_rows_group_by_placement(tmp_path):
    legacy = _record("voc", "yolov8n-se-backbone", 0, 0.51)
    legacy["spec"]["placement"] = None  # written before placements existed
    for key in ("pretrained", "pretrained_start", "base_yaml"):
        legacy["spec"].pop(key)
    records = [legacy, _record("voc", "yolov8n", 0, 0.50), _record("voc", "yolov8n-scsa-block", 0, 0.52),
               _record("voc", "yolov8n-se-neck-res", 0, 0.53), _record("voc", "yolov8n-scsa-backbone-res", 0, 0.54),
               _record("voc", "yolov8n-se-block", 0, 0.55)]
    report = make_report([_write(records, tmp_path / "runs")], "table4")
    text = report.render("md")
    main_table = next(part for part in text.split("\n\n") if part.startswith("|"))
    labels = [line.split("|")[2].strip() for line in main_table.splitlines()[2:]]
    assert labels == ["-", "+SE (backbone)", "+SCSA (backbone-res)", "+SE (neck-res)", "+SE (block)", "+SCSA (block)"]
    placements = {r["method"]: r["placement"] for r in _csv_rows(report)}
    assert placements["-"] == "" and placements["+SE (backbone)"] == "backbone"
    assert placements["+SCSA (block)"] == "block" and placements["+SE (neck-res)"] == "neck-res"


def test_fine_tuned_and_scratch_runs_are_never_averaged_and_each_meets_its_own_plain(tmp_path):
    records = [_record("voc", "yolov8n", 0, 0.50), _record("voc", "yolov8n", 1, 0.52),
               _record("voc", "yolov8n", 0, 0.60, pretrained=True), _record("voc", "yolov8n", 1, 0.62, pretrained=True),
               _record("voc", "yolov8n-scsa-block", 0, 0.63, pretrained=True),
               _record("voc", "yolov8n-scsa-block", 1, 0.66, pretrained=True)]
    report = make_report([_write(records, tmp_path / "runs")], "table4")
    text = report.render("md")
    # each start is ranked on its own (a lone row from scratch has nothing to be ranked against)
    assert _md_row(text, "-")[2] == "51.0 ± 1.4"
    assert _md_row(text, "- (ft)")[2] == "<u>61.0 ± 1.4</u>"
    assert _md_row(text, "+SCSA (block, ft)")[2] == "**64.5 ± 2.1**"
    deltas = [0.63 - 0.60, 0.66 - 0.62]
    diff = sum(deltas) / 2
    low, high = _interval(diff, T_975[1] * statistics.stdev(deltas) / math.sqrt(2))
    assert _md_row(text, "+SCSA (block, ft)", section=1)[2] == _shown(diff, low, high) + " (ns)"
    starts = {r["method"]: r["start"] for r in _csv_rows(report)}
    assert starts == {"-": "scratch", "- (ft)": "ft", "+SCSA (block, ft)": "ft"}
    assert "ft: fine-tuned from a pretrained checkpoint" in text


def test_plain_ultralytics_runs_get_placement_and_start_from_the_model_name(tmp_path):
    for folder, model in (("a", "yolov8n-scsa-block.yaml"), ("b", "yolov8n.pt"), ("c", "mine.yaml")):
        run = tmp_path / "runs" / folder
        run.mkdir(parents=True)
        (run / "args.yaml").write_text(f"model: {model}\ndata: voc.yaml\nepochs: 5\nimgsz: 64\nseed: 0\n")
        (run / "results.csv").write_text("epoch,metrics/mAP50(B),metrics/mAP50-95(B)\n1,0.5,0.3\n")
    rows, problems = load_rows([tmp_path / "runs"])
    assert not problems
    by_run = {row["run_id"]: row for row in rows}
    assert (by_run["a"]["method"], by_run["a"]["placement"], by_run["a"]["start"]) == ("+SCSA† (block)", "block", "scratch")
    assert (by_run["b"]["method"], by_run["b"]["model"], by_run["b"]["start"]) == ("-† (ft)", "yolov8n", "ft")
    assert (by_run["c"]["method"], by_run["c"]["model"], by_run["c"]["attn"]) == ("-†", "mine", "none")


def test_the_report_package_does_not_import_bench():
    code = ("import sys, scsa_yolo.report.build, scsa_yolo.report.plot; "
            "sys.exit(sorted(m for m in sys.modules if m.startswith('scsa_yolo.bench')) != [])")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --------------------------------------------------------------------------- empty folder
def test_report_of_an_empty_folder_names_it_and_says_what_to_run(tmp_path):
    from scsa_yolo.cli.main import main

    empty = tmp_path / "nothing here"
    empty.mkdir()
    outcome = CliRunner().invoke(main, ["report", str(empty)])
    assert outcome.exit_code == 1
    assert str(empty) in outcome.output
    assert f"scsa-yolo bench --out {empty}" in outcome.output
    assert "Traceback" not in outcome.output
    outcome = CliRunner().invoke(main, ["report", str(tmp_path / "missing")])
    assert outcome.exit_code == 2 and "does not exist" in outcome.output and "scsa-yolo bench --out" in outcome.output
