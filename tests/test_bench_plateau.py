"""`scsa-yolo plateau`: the epoch where a run's val AP stopped moving (issue 30, item 4), and
with --across-schedules the shortest schedule length a longer one no longer beats, on
hand-made results.csv files whose answers are worked out by hand in each test."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from scsa_yolo.bench.plateau import PlateauError, check_plateau, plateau_epoch, read_curve
from scsa_yolo.bench.schedules import compare_schedules
from scsa_yolo.cli.main import main

COLUMNS = "epoch,time,train/box_loss,metrics/precision(B),metrics/mAP50-95(B),lr/pg0"


def write_results(folder, ap_points, header=COLUMNS, epochs=None):
    """An Ultralytics-style results.csv whose AP column holds ``ap_points`` / 100 (a fraction,
    as Ultralytics writes it), epochs 1..N unless ``epochs`` lists them."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [name.strip() for name in header.split(",")]
    lines = [header]
    for epoch, ap in zip(epochs or range(1, len(ap_points) + 1), ap_points):
        values = {"epoch": epoch, "time": 10.0 * epoch, "metrics/mAP50-95(B)": round(ap / 100, 6)}
        lines.append(",".join(str(values.get(name, 0.5)) for name in names))
    (folder / "results.csv").write_text("\n".join(lines) + "\n")
    return folder / "results.csv"


# rises 3 AP points an epoch to 30 at epoch 10, then flat: the 5-epoch moving mean first
# reaches 30 at epoch 14 (epochs 10-14) and stays; at epoch 13 it is 29.4, 0.6 below
RISE_THEN_FLAT = [3.0 * e for e in range(1, 11)] + [30.0] * 10
# the same rise, then +-0.4 points of epoch-to-epoch noise around 30: raw values differ by
# 0.8 forever, the moving means by at most 0.16 from epoch 14 on (30.0, then 30.08 / 29.92)
NOISY = [3.0 * e for e in range(1, 11)] + [30.0 + (0.4 if e % 2 == 0 else -0.4) for e in range(11, 31)]
# half a point more every epoch: never flat within 0.2 points
STILL_RISING = [20.0 + 0.5 * e for e in range(1, 21)]


def test_a_rising_then_flat_curve_plateaus_where_its_moving_mean_settles():
    assert plateau_epoch(RISE_THEN_FLAT) == 14
    assert plateau_epoch(RISE_THEN_FLAT, window=1) == 10  # the raw curve settles at epoch 10


def test_a_noisy_curve_plateaus_through_its_moving_mean_where_the_raw_values_never_do():
    assert plateau_epoch(NOISY) == 14
    assert plateau_epoch(NOISY, window=1) is None


def test_a_curve_still_rising_by_half_a_point_an_epoch_has_no_plateau():
    assert plateau_epoch(STILL_RISING) is None
    # with 0.6 points of tolerance only epoch 19 is within it of every later mean (epoch 20's, 0.5 up)
    assert plateau_epoch(STILL_RISING, tolerance=0.6) == 19


def test_the_epochs_are_the_largest_plateau_over_the_runs_rounded_up_to_a_multiple_of_five(tmp_path):
    write_results(tmp_path / "synthetic-tiny" / "yolov8n-none-ft-s0", RISE_THEN_FLAT)
    write_results(tmp_path / "synthetic-tiny" / "yolov8n-none-ft-s1", [10.0] * 20)  # flat: plateau at epoch 5
    write_results(tmp_path / "synthetic-thermal" / "yolov8n-none-ft-s0", NOISY)
    write_results(tmp_path / "pretrain" / "synthetic" / "yolov8n-none-s0", STILL_RISING)  # not a fine-tuning run
    result = CliRunner().invoke(main, ["plateau", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:3] for line in result.output.splitlines()[2:5]}
    assert rows == {"synthetic-thermal/yolov8n-none-ft-s0": ["30", "14"],
                    "synthetic-tiny/yolov8n-none-ft-s0": ["20", "14"], "synthetic-tiny/yolov8n-none-ft-s1": ["20", "5"]}
    assert "pretrain" not in result.output
    assert result.output.endswith("epochs: 15\n")
    assert check_plateau([tmp_path], multiple=4).epochs() == 16


def test_a_run_still_rising_fails_the_check_naming_it_and_a_longer_schedule(tmp_path):
    write_results(tmp_path / "synthetic-tiny" / "yolov8n-none-ft-s0", RISE_THEN_FLAT)
    write_results(tmp_path / "synthetic-tiny" / "yolov8n-none-ft-s1", STILL_RISING)
    result = CliRunner().invoke(main, ["plateau", str(tmp_path)])
    assert result.exit_code == 1
    assert "synthetic-tiny/yolov8n-none-ft-s1      20     none" in result.output  # the table comes first
    assert ("no plateau before the last epoch in 1 of 2 run(s): synthetic-tiny/yolov8n-none-ft-s1 (20 epochs)"
            in result.output)
    assert "--epochs 40" in result.output and "\nepochs: " not in result.output


def test_missing_files_and_columns_are_named(tmp_path):
    run = tmp_path / "synthetic-tiny" / "yolov8n-none-ft-s0"
    run.mkdir(parents=True)
    (run / "spec.json").write_text(json.dumps({"epochs": 20, "train_args": {"val": True}}))
    write_results(tmp_path / "synthetic-tiny" / "yolov8n-none-ft-s1", RISE_THEN_FLAT,
                  header="epoch,time,metrics/mAP50(B)")
    result = CliRunner().invoke(main, ["plateau", str(tmp_path)])
    assert result.exit_code == 1
    assert f"2 of 2 run(s) cannot be checked:\n  {run / 'results.csv'} is missing" in result.output
    assert ("yolov8n-none-ft-s1/results.csv has no column 'metrics/mAP50-95(B)' "
            "(columns: epoch, time, metrics/mAP50(B))") in result.output
    assert "Traceback" not in result.output


def test_unfinished_runs_and_runs_without_validation_are_refused_from_their_spec(tmp_path):
    short = write_results(tmp_path / "d" / "short", RISE_THEN_FLAT[:12]).parent
    (short / "spec.json").write_text(json.dumps({"epochs": 20, "train_args": {"val": True}}))
    unvalidated = write_results(tmp_path / "d" / "noval", RISE_THEN_FLAT).parent
    (unvalidated / "spec.json").write_text(json.dumps({"epochs": 20, "train_args": {"val": False}}))
    with pytest.raises(PlateauError) as error:
        check_plateau([tmp_path])
    assert "d/noval did not validate every epoch (train_args val: false" in str(error.value)
    assert f"{short / 'results.csv'} holds 12 of the 20 epochs the run was started for" in str(error.value)


def test_with_its_grid_every_run_of_the_grid_must_be_there(tmp_path):
    for seed in (0, 1):
        write_results(tmp_path / "synthetic-lowlight" / f"yolov8n-none-ft-s{seed}", [10.0] * 60)
    with pytest.raises(PlateauError, match=r"4 of 6 run\(s\) cannot be checked:\n  .*synthetic-tiny/yolov8n-none-ft-s0/"
                                           r"results.csv is missing: the run synthetic-tiny/yolov8n-none-ft-s0 "):
        check_plateau([tmp_path], grid="table4-evidence-plateau")


def test_a_resumed_run_repeats_an_epoch_and_its_later_row_counts(tmp_path):
    path = write_results(tmp_path / "d" / "run", [10.0, 12.0, 11.0, 13.0], epochs=[1, 2, 2, 3])
    assert read_curve(path).ap == pytest.approx((10.0, 11.0, 13.0))
    gap = write_results(tmp_path / "d" / "gap", [10.0, 12.0], epochs=[1, 3])
    with pytest.raises(PlateauError, match=r"gap/results.csv skips epoch\(s\) 2"):
        read_curve(gap)


# --- across schedules (scsa_yolo.bench.schedules) ---------------------------------------------
def _ramp(epochs, final):
    """A curve that climbs to ``final`` at its last epoch, as Ultralytics' decaying schedule does."""
    return [final - 0.5 * (epochs - e) for e in range(1, epochs + 1)]


def _schedule_folders(tmp_path, finals):
    """One bench --out folder per schedule length: ``finals[epochs][dataset]`` = final AP per seed."""
    for epochs, by_dataset in finals.items():
        for dataset, per_seed in by_dataset.items():
            for seed, final in enumerate(per_seed):
                write_results(tmp_path / f"e{epochs}" / dataset / f"yolov8n-none-ft-s{seed}", _ramp(epochs, final))
    return [str(tmp_path / f"e{epochs}") for epochs in finals]


def test_across_schedules_the_shortest_length_the_longest_beats_by_at_most_the_tolerance(tmp_path):
    # within each run AP climbs to the end (no within-run plateau); across lengths, tiny gains
    # 2.0 from 30 to 60 epochs and 0.3 from 60 to 120 (means over two seeds)
    folders = _schedule_folders(tmp_path, {
        30: {"synthetic-tiny": [66.0, 68.0], "synthetic-lowlight": [80.0, 80.2]},
        60: {"synthetic-tiny": [68.0, 70.0], "synthetic-lowlight": [80.1, 80.3]},
        120: {"synthetic-tiny": [68.3, 70.3], "synthetic-lowlight": [80.2, 80.4]},
    })
    assert CliRunner().invoke(main, ["plateau", folders[1]]).exit_code == 1  # within a run: never flat
    result = CliRunner().invoke(main, ["plateau", "--across-schedules", *folders])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[2:-1]]
    assert ["synthetic-tiny", "30", "2", "67.00", "1.41", "+2.30"] in rows
    assert ["synthetic-tiny", "60", "2", "69.00", "1.41", "+0.30"] in rows
    assert ["synthetic-lowlight", "120", "2", "80.30", "0.14", "-"] in rows
    assert result.output.endswith("epochs: 60\n")
    assert CliRunner().invoke(main, ["plateau", "--across-schedules", "--gain-tolerance", "2.5",
                                     *folders]).output.endswith("epochs: 30\n")


def test_across_schedules_fails_when_the_longest_still_gains_and_when_runs_do_not_match(tmp_path):
    folders = _schedule_folders(tmp_path, {60: {"synthetic-tiny": [68.0, 70.0]},
                                           120: {"synthetic-tiny": [69.0, 71.0]}})
    result = CliRunner().invoke(main, ["plateau", "--across-schedules", *folders])
    assert result.exit_code == 1 and "synthetic-tiny            60     2   69.00   1.41  +1.00" in result.output
    assert ("the 120-epoch schedule still adds more than 0.5 AP points over every shorter one on some dataset "
            "(synthetic-tiny +1.00 after 60)") in result.output and "--epochs 240" in result.output
    with pytest.raises(PlateauError, match=r"all 2 run\(s\) have 60 epochs"):
        compare_schedules([folders[0]])
    write_results(tmp_path / "e120" / "synthetic-tiny" / "yolov8n-none-ft-s2", _ramp(120, 70.0))
    with pytest.raises(PlateauError, match=r"not so: synthetic-tiny/yolov8n-none-ft-s2 \(120 epochs only\)"):
        compare_schedules(folders)
    assert "Traceback" not in result.output
