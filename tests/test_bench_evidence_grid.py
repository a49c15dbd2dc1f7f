"""The shipped evidence grid of issue 30 and its schedule check: what they run, without training."""
from click.testing import CliRunner

from scsa_yolo.bench.grid import load_grid
from scsa_yolo.cli.main import main


def test_the_evidence_grid_fine_tunes_five_attentions_in_three_placements_with_five_seeds(tmp_path):
    grid = load_grid("table4-evidence")
    runs = grid.runs()
    assert len(runs) == 3 * (1 + 4 * 3) * 5
    assert {r.dataset_key for r in runs} == {"synthetic-lowlight", "synthetic-tiny", "synthetic-thermal"}
    assert {(r.attn, r.placement) for r in runs} == {("none", None)} | {
        (a, p) for a in ("se", "cbam", "ca", "scsa") for p in ("backbone-res", "block", "block-res")}
    assert {r.seed for r in runs} == {0, 1, 2, 3, 4}
    result = CliRunner().invoke(main, ["bench", "--grid", "table4-evidence", "--dry-run", "--out", str(tmp_path)],
                                env={"SCSA_YOLO_DATA": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    start = f"fine-tuned from the pretraining step's {tmp_path / 'pretrain/synthetic/yolov8n-none-s0/weights/last.pt'}"
    assert result.output.count(start) == 195
    assert "synthetic-tiny/yolov8n-scsa-block-res-ft-s4" in result.output


def test_the_plateau_grid_validates_every_epoch_of_the_plain_model_from_the_same_start():
    plateau, evidence = load_grid("table4-evidence-plateau"), load_grid("table4-evidence")
    assert plateau.pretrain == evidence.pretrain and plateau.datasets == evidence.datasets
    assert [r.attn for r in plateau.runs()] == ["none"] * 6
    assert plateau.train_args["val"] is True and plateau.epochs > evidence.epochs
