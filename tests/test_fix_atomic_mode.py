"""Atomic writes give the file the mode the umask gives any new file (issue 20 item 6)."""

from __future__ import annotations

import os
import stat

import pytest

from scsa_yolo import atomic
from scsa_yolo.atomic import write_json_atomic, write_text_atomic

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_atomic_files_get_the_mode_a_plain_open_gets(tmp_path, umask, mask):
    umask(mask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    text = write_text_atomic(tmp_path / "sub" / "report.md", "# r\n")
    data = write_json_atomic({"a": 1}, tmp_path / "record.json", indent=2)
    assert _mode(text) == _mode(data) == _mode(plain) == 0o666 & ~mask
    assert text.read_text() == "# r\n"


def test_under_umask_022_others_can_read(tmp_path, umask):
    umask(0o022)
    assert _mode(write_text_atomic(tmp_path / "spec.json", "{}")) == 0o644


def test_overwrite_takes_the_current_umask_mode(tmp_path, umask):
    umask(0o077)
    target = write_text_atomic(tmp_path / "manifest.json", "1")
    assert _mode(target) == 0o600
    umask(0o022)
    write_text_atomic(target, "2")
    assert _mode(target) == 0o644 and target.read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp file left


def test_umask_reader_agrees_with_os_umask(umask):
    for mask in (0o022, 0o077, 0o000):
        umask(mask)
        assert atomic._current_umask() == mask
