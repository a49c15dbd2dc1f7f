"""Reports of segmentation and classification records (issue 29 item 6): ``--style table6``
(box and mask AP, with Table 4's intervals over seeds and notes) and ``--style table2`` with
Top-1 and Top-5 beside the cost columns."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from scsa_yolo.identity import ModelId
from scsa_yolo.records import make_record, write_record
from scsa_yolo.report.build import make_report
from scsa_yolo.report.tables import ReportError

ENV = {"python": "3.11", "platform": "linux", "scsa_yolo": "0.1", "ultralytics": "8.4", "torch": "2.4",
       "cuda": None, "device_name": "cpu", "git_commit": None}
PROFILE = {"gflops": 12.0, "imgsz": 160, "throughput": 500.0, "latency_ms": 4.0, "batch": 32, "half": True,
           "device_name": "NVIDIA H100", "reduced": False}


def _seg_record(attn, seed, box, mask):
    """A segmentation run's record: box AP figures at the top, the mask's under metrics.mask."""
    model_id = ModelId.create("yolov8n-seg", attn)
    names = ("AP", "AP50", "AP75", "APs", "APm", "APl")
    metrics = {"split": "val", **dict(zip(names, box)), "per_class": {}, "ultralytics": {}, "n_images": 40,
               "mask": {**dict(zip(names, mask)), "per_class": {}}}
    return make_record("train", f"synthetic/{model_id.run_name(seed)}", model_id, model_yaml="x.yaml", imgsz=160,
                       env=ENV, dataset="synthetic", seed=seed, epochs=20, batch=32, metrics=metrics,
                       profile={**PROFILE, "params": 3_400_000 + (0 if attn == "none" else 7_000)})


def _cls_record(attn, seed, top1, top5, throughput):
    model_id = ModelId.create("yolov8n-cls", attn)
    metrics = {"split": "val", "top1": top1, "top5": top5, "per_class": {}, "ultralytics": {}, "n_images": 60}
    return make_record("train", f"synthetic-cls/{model_id.run_name(seed)}", model_id, model_yaml="x.yaml", imgsz=64,
                       env=ENV, dataset="synthetic-cls", seed=seed, epochs=30, batch=64, metrics=metrics,
                       profile={**PROFILE, "imgsz": 64, "throughput": throughput,
                                "params": 1_440_000 + (0 if attn == "none" else 5_000)})


@pytest.fixture()
def seg_records(tmp_path):
    # three seeds each; +SCSA better in box and mask AP, +SE worse in mask AP only
    values = {"none": (0.40, 0.30), "scsa": (0.43, 0.34), "se": (0.405, 0.27)}
    for attn, (box, mask) in values.items():
        for seed, delta in enumerate((0.0, 0.004, -0.004)):
            record = _seg_record(attn, seed, (box + delta, 0.7, 0.45, None, 0.3, 0.5),
                                 (mask + delta, 0.6, 0.31 + delta, 0.1, 0.25, 0.45 + delta))
            write_record(record, tmp_path / "runs" / f"{attn}{seed}" / "record.json")
    return tmp_path / "runs"


def _row(text, *starts):
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[: len(starts)] == list(starts):
            return cells
    raise AssertionError(f"no row {starts} in\n{text}")


def test_table6_shows_box_and_mask_ap_marked_with_intervals_over_seeds(seg_records):
    report = make_report([seg_records], "table6")
    text = report.render("md")
    assert "Instance segmentation: box and mask AP (Table 6 style)" in text
    header = _row(text, "Dataset", "Model", "Method")
    assert header[3:] == ["AP box", "AP50 box", "AP75 box", "AP mask", "AP50 mask", "AP75 mask", "APs mask",
                          "APm mask", "APl mask", "n"]
    plain = _row(text, "synthetic", "yolov8n-seg", "-")
    scsa = _row(text, "", "", "+SCSA (backbone-res)")
    se = _row(text, "", "", "+SE (backbone-res)")
    assert scsa[3] == "**43.0 ± 0.4**" and se[3] == "<u>40.5 ± 0.4</u>" and plain[3] == "40.0 ± 0.4"
    assert scsa[6] == "**34.0 ± 0.4**" and plain[6] == "<u>30.0 ± 0.4</u>" and se[6] == "27.0 ± 0.4"
    assert scsa[12] == "3"
    # the differences to the plain model: every box and mask column, paired intervals over the 3 seeds
    diff = report.table.diff
    # the Δ columns, then each metric's minimum detectable difference (issue 30)
    assert [c.header for c in diff.columns] == [f"Δ{c.header}" for c in report.table.columns] + \
           [f"MDD {c.header}" for c in report.table.columns]
    scsa_diff = next(r for r in diff.rows if r.labels[-1] == "+SCSA (backbone-res)")
    assert scsa_diff.cells[3].text == "+4.0 [+4.0, +4.0]" and not scsa_diff.cells[3].not_significant
    se_diff = next(r for r in diff.rows if r.labels[-1] == "+SE (backbone-res)")
    assert se_diff.cells[3].text.startswith("-3.0 [")
    notes = " ".join(report.table.notes)
    assert "box columns: pycocotools COCO box AP (bbox); mask columns: pycocotools COCO mask AP (segm, " in notes
    assert "means over 3 seeds" in notes and "in AP points" in notes and "paired t-interval" in notes
    assert "Short schedule: 20 epochs" in notes
    csv = report.render("csv")
    assert "mask_AP_mean" in csv.splitlines()[0] and "mask_AP_diff_low" in csv.splitlines()[0]
    latex = report.render("latex")
    assert r"AP$^{mask}_{50}$" in latex and r"AP$^{box}$" in latex


def test_table6_needs_segmentation_records(tmp_path):
    record = _cls_record("none", 0, 0.8, 0.99, 900.0)
    write_record(record, tmp_path / "r" / "record.json")
    with pytest.raises(ReportError, match="style table6 needs segmentation records"):
        make_report([tmp_path / "r"], "table6")


def test_table4_reads_a_segmentation_run_as_the_detection_run_it_also_is(seg_records):
    text = make_report([seg_records], "table4").render("md")
    assert "Model: yolov8n-seg" in text and _row(text, "Dataset", "Method")[2:] == ["AP", "AP50", "AP75", "n"]
    assert _row(text, "", "+SCSA (backbone-res)")[2] == "**43.0 ± 0.4**"  # the box AP, not the mask's 34.0
    assert "AP columns: pycocotools COCO box AP in %" in text


def test_table2_with_classification_records_adds_top1_top5_beside_the_cost(tmp_path):
    values = {"none": (0.80, 0.97, 1000.0), "eca": (0.83, 0.98, 950.0), "scsa": (0.85, 0.99, 900.0)}
    for attn, (top1, top5, throughput) in values.items():
        for seed, delta in enumerate((0.0, 0.01)):
            write_record(_cls_record(attn, seed, top1 + delta, top5, throughput),
                         tmp_path / "runs" / f"{attn}{seed}" / "record.json")
    report = make_report([tmp_path / "runs"], "table2")
    text = report.render("md")
    header = _row(text, "Dataset", "Model", "Method")
    assert header[3:] == ["Params(M)", "GFLOPs", "Throughput(img/s)", "Rel.", "Latency(ms)", "Top-1", "Top-5", "n"]
    plain = _row(text, "synthetic-cls", "yolov8n-cls", "-")  # the plain model's row comes first
    assert plain[3] == "1.440" and plain[8] == "80.5 ± 0.7" and plain[9] == "97.0 ± 0.0"
    scsa = _row(text, "", "", "+SCSA (backbone-res)")
    assert scsa[3] == "1.445" and scsa[8] == "**85.5 ± 0.7**" and scsa[9] == "**99.0 ± 0.0**"
    assert _row(text, "", "", "+ECA (backbone-res)")[8] == "<u>83.5 ± 0.7</u>"
    notes = " ".join(report.table.notes)
    assert "Top-1/Top-5: classification accuracy" in notes and "means over 2 seeds" in notes
    assert "in accuracy points" in notes
    scsa_diff = next(r for r in report.table.diff.rows if r.labels[-1] == "+SCSA (backbone-res)")
    assert [c.header for c in report.table.diff.columns] == ["ΔTop-1", "ΔTop-5", "MDD Top-1", "MDD Top-5"]
    assert scsa_diff.cells[0].text == "+5.0 [+5.0, +5.0]"


def test_report_cli_renders_table6(seg_records, tmp_path):
    from scsa_yolo.cli.main import main

    outcome = CliRunner().invoke(main, ["report", str(seg_records), "--style", "table6", "--format", "all",
                                        "--out", str(tmp_path / "table6")])
    assert outcome.exit_code == 0, outcome.output
    assert "Table 6 style" in outcome.output and "AP mask" in outcome.output
    for ext in ("md", "tex", "html", "csv"):
        assert (tmp_path / f"table6.{ext}").stat().st_size > 0


def _ultralytics_run(folder, model, header, rows):
    """A plain `yolo train` folder: args.yaml and results.csv with Ultralytics' column names."""
    folder.mkdir(parents=True)
    (folder / "args.yaml").write_text(f"model: {model}\ndata: /data/tiny/data.yaml\nseed: 0\nepochs: 2\nimgsz: 64\n")
    lines = [",".join(["epoch", *header])] + [",".join(map(str, [i + 1, *r])) for i, r in enumerate(rows)]
    (folder / "results.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_plain_ultralytics_seg_and_cls_runs_give_their_best_epoch(tmp_path):
    from scsa_yolo.report.load import load_rows

    seg = _ultralytics_run(tmp_path / "seg", "yolov8n-seg.yaml",
                           ["metrics/mAP50(B)", "metrics/mAP50-95(B)", "metrics/mAP50(M)", "metrics/mAP50-95(M)"],
                           [(0.5, 0.30, 0.45, 0.20), (0.6, 0.28, 0.55, 0.26)])  # epoch 2: best box + mask fitness
    cls = _ultralytics_run(tmp_path / "cls", "yolov8n-cls.yaml", ["metrics/accuracy_top1", "metrics/accuracy_top5"],
                           [(0.70, 0.95), (0.72, 0.90), (0.69, 0.99)])  # epoch 3: best (top1 + top5) / 2
    rows, problems = load_rows([seg, cls])
    assert not problems
    by_model = {row["model"]: row for row in rows}
    seg_row, cls_row = by_model["yolov8n-seg"], by_model["yolov8n-cls"]
    assert (seg_row["task"], seg_row["AP"], seg_row["mask_AP"], seg_row["mask_AP50"]) == ("segment", 0.28, 0.26, 0.55)
    assert (cls_row["task"], cls_row["top1"], cls_row["top5"], cls_row["AP"]) == ("classify", 0.69, 0.99, None)
    assert "AP mask" in make_report([seg], "table6").render("md")
    (tmp_path / "pose").mkdir()
    (tmp_path / "pose" / "args.yaml").write_text("model: yolov8n-pose.yaml\n")
    (tmp_path / "pose" / "results.csv").write_text("epoch,metrics/mAP50(P)\n1,0.5\n")
    rows, problems = load_rows([tmp_path / "pose"])
    assert not rows and "not a detection, segmentation or classification run" in str(problems[0])
