"""Archive extraction: good archives unpack once; malicious ones are refused before any write."""
from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from scsa_yolo.data.fetch.archives import ArchiveError, UnsafeArchiveError, extract
from scsa_yolo.data.prepare import prepare_dataset


def _zip(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] = {}) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in symlinks.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] = {}) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for member in members:
            payload = data.get(member.name)
            if payload is not None:
                member.size = len(payload)
            tf.addfile(member, io.BytesIO(payload) if payload is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def test_a_good_zip_and_tar_extract_once(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"top/a.txt": b"a", "top/sub/b.txt": b"b", "top/empty/": b""})
    dest = extract(archive, tmp_path / "out", progress=False)
    assert (dest / "top" / "sub" / "b.txt").read_bytes() == b"b" and (dest / "top" / "empty").is_dir()
    (dest / "top" / "a.txt").write_bytes(b"changed")
    extract(archive, tmp_path / "out", progress=False)  # complete marker: not extracted again
    assert (dest / "top" / "a.txt").read_bytes() == b"changed"
    tar = _tar(tmp_path / "ok.tar.gz", [_member("d/x.txt")], {"d/x.txt": b"xyz"})
    assert (extract(tar, tmp_path / "tar", progress=False) / "d" / "x.txt").read_bytes() == b"xyz"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"ok.txt": b"1", "../evil.txt": b"x"}, r"entry '\.\./evil\.txt' climbs out"),
        ({"a/../../evil.txt": b"x"}, "climbs out"),
        ({"/etc/evil.txt": b"x"}, "absolute path"),
        ({"C:/evil.txt": b"x"}, "absolute path"),
        ({"..\\evil.txt": b"x"}, "climbs out"),
    ],
)
def test_path_traversal_zip_is_refused_before_writing_anything(tmp_path, entries, message):
    archive = _zip(tmp_path / "evil.zip", entries)
    with pytest.raises(UnsafeArchiveError, match=rf"evil\.zip: .*{message}"):
        extract(archive, tmp_path / "out" / "dest", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_zip_symlink_entry_is_refused(tmp_path):
    archive = _zip(tmp_path / "link.zip", {"a.txt": b"a"}, symlinks={"passwd": "/etc/passwd"})
    with pytest.raises(UnsafeArchiveError, match="'passwd' is a symbolic link"):
        extract(archive, tmp_path / "out", progress=False)


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("link", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link"),
        (_member("hard", tarfile.LNKTYPE, "../../outside"), "is a hard link"),
        (_member("dev", tarfile.CHRTYPE), "device or FIFO"),
        (_member("fifo", tarfile.FIFOTYPE), "device or FIFO"),
        (_member("../up.txt"), "climbs out"),
        (_member("/abs.txt"), "absolute path"),
    ],
)
def test_malicious_tar_entries_are_refused(tmp_path, member, message):
    archive = _tar(tmp_path / "evil.tar.gz", [_member("fine.txt"), member], {"fine.txt": b"ok"})
    with pytest.raises(UnsafeArchiveError, match=rf"evil\.tar\.gz: entry '{member.name}'.*{message}"):
        extract(archive, tmp_path / "out", progress=False)
    with pytest.raises(UnsafeArchiveError):
        extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_damaged_archive_gives_a_clear_error(tmp_path):
    good = _zip(tmp_path / "good.zip", {"a.bin": bytes(range(256)) * 400})
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ArchiveError, match="truncated.zip"):
        extract(truncated, tmp_path / "out", progress=False)
    (tmp_path / "text.zip").write_text("not an archive")
    with pytest.raises(ArchiveError, match="not a zip or tar archive"):
        extract(tmp_path / "text.zip", tmp_path / "out2", progress=False)


def test_prepare_refuses_a_malicious_source_archive(tmp_path):
    archive = _zip(
        tmp_path / "VisDrone2019-DET-val.zip",
        {"VisDrone2019-DET-val/annotations/a.txt": b"1,1,2,2,1,1,0,0\n", "../../escape.txt": b"x"},
    )
    with pytest.raises(UnsafeArchiveError, match=r"VisDrone2019-DET-val\.zip: entry '\.\./\.\./escape\.txt'"):
        prepare_dataset("visdrone", root=tmp_path / "root", source=archive, splits=["val"], progress=False,
                        echo=lambda m: None)
    assert not (tmp_path / "root" / "visdrone").exists() and not (tmp_path.parent / "escape.txt").exists()
