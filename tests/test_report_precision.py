"""How precise a comparison is (issue 30 item 1): the minimum detectable difference (MDD) next
to every interval, and the seeds a comparison would need to detect a chosen difference.

Expected figures come from the textbook formula MDD = (t(1 - a/2, n - 1) + t(1 - b, n - 1)) *
s_d / sqrt(n) with the t quantiles of a printed table, written out below, not from the code
under test.
"""
import math
import statistics

import pytest
from click.testing import CliRunner
from test_report_noise import PLAIN, SCSA, SE, T_975, _csv_rows, _md_row, seeded  # noqa: F401 (seeded: a shared fixture)

from scsa_yolo.report.build import make_report
from scsa_yolo.report.stats import (
    detectable_difference,
    seeds_needed,
    t_quantile,
    welch_detectable_difference,
    welch_seeds_needed,
)

# One-sided 80% quantiles t(0.80, df) (the power term at 80% power), from the printed table of
# Student's t in Wikipedia's "Student's t-distribution" article (column "80%" one-sided), the
# same values as any textbook table with a 0.20 upper-tail column.
T_80 = {1: 1.376, 2: 1.061, 3: 0.978, 4: 0.941, 5: 0.920, 6: 0.906, 7: 0.896, 8: 0.889, 9: 0.883, 10: 0.879,
        20: 0.860, 30: 0.854}
# t(0.975, df) beyond test_report_noise's table, same source.
T_975_MORE = {**T_975, 7: 2.365, 8: 2.306, 9: 2.262}


@pytest.mark.parametrize("df", sorted(T_80))
def test_the_power_quantile_matches_the_printed_table(df):
    assert t_quantile(0.80, df) == pytest.approx(T_80[df], abs=6e-4)


def test_paired_mdd_of_a_hand_computed_example():
    # n = 5 pairs with s_d = 1: (2.776 + 0.941) / sqrt(5) = 1.662
    assert detectable_difference(1.0, 5) == pytest.approx((2.776 + 0.941) / math.sqrt(5), abs=1e-3)
    assert detectable_difference(0.0, 5) == 0.0  # no spread: any difference shows
    assert detectable_difference(2.0, 5) == pytest.approx(2 * detectable_difference(1.0, 5))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        detectable_difference(1.0, 1)


def test_seeds_needed_of_a_hand_computed_example():
    # s_d = 1, target 1: n = 9 gives (2.306 + 0.889) / 3 = 1.065 > 1, n = 10 gives (2.262 + 0.883) / sqrt(10) = 0.995
    assert (T_975_MORE[8] + T_80[8]) / math.sqrt(9) > 1 >= (T_975_MORE[9] + T_80[9]) / math.sqrt(10)
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(0.01, 0.01) == 10  # only the ratio of spread to target counts
    assert seeds_needed(0.0, 1.0) == 2  # the fewest pairs that give an interval
    with pytest.raises(ValueError, match="must be > 0"):
        seeds_needed(1.0, 0.0)


@pytest.mark.parametrize("spread", [0.05, 0.3, 0.8, 1.7, 6.0])
def test_seeds_needed_is_the_smallest_n_whose_mdd_reaches_the_target(spread):
    n = seeds_needed(spread, 1.0)
    assert detectable_difference(spread, n) <= 1.0
    assert n == 2 or detectable_difference(spread, n - 1) > 1.0
    scan = next(k for k in range(2, 10_000) if detectable_difference(spread, k) <= 1.0)
    assert n == scan


def test_welch_mdd_and_seeds_per_side():
    # equal spreads and sizes: Welch's v = 2n - 2 = 4 for n = 3, standard error sqrt(2 s^2 / 3)
    assert welch_detectable_difference(1.0, 1.0, 3, 3) == pytest.approx((2.776 + 0.941) * math.sqrt(2 / 3), abs=1e-3)
    n = welch_seeds_needed(1.0, 1.0, 1.0)
    assert welch_detectable_difference(1.0, 1.0, n, n) <= 1.0 < welch_detectable_difference(1.0, 1.0, n - 1, n - 1)


# --------------------------------------------------------------------------- in the report (the `seeded` records of test_report_noise)


def _table_seeds(spread: float, target: float) -> int:
    """The smallest n with (t(0.975, n-1) + t(0.80, n-1)) * spread / sqrt(n) <= target, from the tables."""
    return next(n for n in range(2, 11) if (T_975_MORE[n - 1] + T_80[n - 1]) * spread / math.sqrt(n) <= target)


def test_the_report_shows_the_mdd_next_to_each_interval_and_the_seeds_needed(seeded):
    report = make_report([seeded], "table4")
    deltas = [SCSA[s][0] - PLAIN[s][0] for s in PLAIN]  # 0.030, 0.025, 0.040
    s_d = statistics.stdev(deltas)
    mdd = (T_975[2] + T_80[2]) * s_d / math.sqrt(3)
    row = next(r for r in _csv_rows(report) if r["method"] == "+SCSA (block)")
    assert float(row["AP_diff_mdd"]) == pytest.approx(mdd, abs=2e-5)
    assert int(float(row["AP_diff_seeds_needed"])) == _table_seeds(s_d, 0.01) == 7
    text = report.render("md")
    header = _md_row(text, "Method", section=1)
    assert header[2:] == ["ΔAP", "ΔAP50", "ΔAP75", "MDD AP", "MDD AP50", "MDD AP75"]
    cells = _md_row(text, "+SCSA (block)", section=1)
    assert cells[5] == f"{100 * mdd:.1f}"  # "2.4" beside "+3.2 [+1.3, +5.1]"
    assert cells[7] == "-"  # no AP75 in these records: no interval, no MDD
    # Welch (the seeds differ): the same formula with Welch's degrees of freedom (4 here)
    se, plain = [v for v, _ in SE.values()], [v for v, _ in PLAIN.values()]
    welch = (T_975[4] + T_80[4]) * math.sqrt(statistics.variance(se) / 3 + statistics.variance(plain) / 3)
    assert _md_row(text, "+SE (block)", section=1)[5] == f"{100 * welch:.1f}"
    assert "(t(0.975, n-1) + t(0.8, n-1)) * s_d / sqrt(n)" in text and "80% power" in text
    assert "Welch: (t(0.975, v) + t(0.8, v))" in text
    seeds_note = next(line for line in text.splitlines() if line.startswith("- Seeds for a 1-point AP difference"))
    assert seeds_note.endswith(f"voc: +SE (block) {welch_seeds_needed(0.01, 0.01, 0.01)}, +SCSA (block) 7.")
    for fmt in ("latex", "html"):
        assert "MDD AP" in report.render(fmt) and "Seeds for a 1-point AP difference" in report.render(fmt)


def test_detect_sets_the_difference_of_the_seeds_note(seeded):
    from scsa_yolo.cli.main import main

    deltas = [SCSA[s][0] - PLAIN[s][0] for s in PLAIN]
    outcome = CliRunner().invoke(main, ["report", str(seeded), "--detect", "2"])
    assert outcome.exit_code == 0, outcome.output
    expected = _table_seeds(statistics.stdev(deltas), 0.02)
    assert expected == 4 and "Seeds for a 2-point AP difference" in outcome.output
    assert f"+SCSA (block) {expected}." in outcome.output
    refused = CliRunner().invoke(main, ["report", str(seeded), "--detect", "0"])
    assert refused.exit_code == 2 and "--detect" in refused.output and "Traceback" not in refused.output
