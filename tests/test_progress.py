"""Progress without a terminal: plain lines at most every interval, and one at the end."""
import io

from scsa_yolo.integration.progress import PlainProgress, progress_bar


def test_plain_progress_prints_lines_by_interval_and_a_final_line():
    every = io.StringIO()
    bar = PlainProgress("extracting a.zip", 4, "files", stream=every, interval_s=0.0)
    for _ in range(4):
        bar.update()
    bar.close()
    bar.close()  # closing twice prints once
    lines = every.getvalue().splitlines()
    assert lines[:4] == [f"extracting a.zip: {n}/4 files ({25 * n}%)" for n in range(1, 5)]
    assert len(lines) == 5 and lines[4].startswith("extracting a.zip: 4/4 files (100%) in ")

    quiet = io.StringIO()
    with PlainProgress("converting val", None, "images", stream=quiet, interval_s=3600) as bar:
        for _ in range(7):
            bar.update()
    assert quiet.getvalue().count("\n") == 1 and quiet.getvalue().startswith("converting val: 7 images in ")

    off = io.StringIO()
    with PlainProgress("x", 2, "files", stream=off, interval_s=0.0, enabled=False) as bar:
        bar.update(2)
    assert off.getvalue() == ""


def test_progress_bar_is_plain_where_stderr_is_not_a_terminal(capsys):
    bar = progress_bar("converting train", 2, "images")  # pytest's captured stderr is no terminal
    assert isinstance(bar, PlainProgress)
    bar.update(2)
    bar.close()
    assert capsys.readouterr().err.startswith("converting train: 2/2 images (100%) in ")
