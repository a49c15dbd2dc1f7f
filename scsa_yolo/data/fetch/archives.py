"""Safe extraction of zip and tar archives.

Every entry is checked before anything is written: an absolute path, a ``..`` component,
a symbolic or hard link, or a device/FIFO entry makes the whole archive refused with an
error naming the archive and the entry. Extraction goes to a temporary sibling folder
that is renamed into place at the end, so an interrupted extraction never looks complete.
"""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
COMPLETE_MARKER = ".extracted"


class UnsafeArchiveError(ValueError):
    """An archive entry would land outside the target folder or is not a plain file."""


class ArchiveError(ValueError):
    """A file that is not a readable zip or tar archive."""


def is_archive(path: Path) -> bool:
    """True for files whose name ends like a zip or tar archive."""
    name = path.name.lower()
    return path.is_file() and any(name.endswith(suffix) for suffix in ARCHIVE_SUFFIXES)


def archive_stem(path: Path) -> str:
    """``VOCtest_06-Nov-2007.tar.gz`` -> ``VOCtest_06-Nov-2007``."""
    name = path.name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _safe_relative(archive: Path, name: str) -> PurePosixPath | None:
    """The entry's path relative to the target folder; None for the archive root itself."""
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: entry {name!r} has an absolute path; refusing to extract")
    parts = [p for p in cleaned.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: entry {name!r} climbs out of the target folder ('..'); refusing to extract")
    return PurePosixPath(*parts) if parts else None


def _zip_plan(archive: Path, zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath, bool]]:
    plan = []
    for info in zf.infolist():
        relative = _safe_relative(archive, info.filename)
        # Unix file type from the upper 16 bits; 0 when the archiver recorded none (Windows, writestr)
        file_type = stat.S_IFMT(info.external_attr >> 16)
        if file_type == stat.S_IFLNK:
            raise UnsafeArchiveError(f"{archive}: entry {info.filename!r} is a symbolic link; refusing to extract")
        if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{archive}: entry {info.filename!r} is not a regular file; refusing to extract")
        if relative is not None:
            plan.append((info, relative, info.is_dir()))
    return plan


def _tar_plan(archive: Path, tf: tarfile.TarFile) -> list[tuple[tarfile.TarInfo, PurePosixPath, bool]]:
    plan = []
    for member in tf.getmembers():
        relative = _safe_relative(archive, member.name)
        if member.issym() or member.islnk():
            raise UnsafeArchiveError(
                f"{archive}: entry {member.name!r} is a {'symbolic' if member.issym() else 'hard'} link "
                f"(to {member.linkname!r}); refusing to extract"
            )
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"{archive}: entry {member.name!r} is a device or FIFO; refusing to extract")
        if relative is not None:
            plan.append((member, relative, member.isdir()))
    return plan


class _open:
    """Context manager yielding ``("zip"|"tar", handle)`` or raising :class:`ArchiveError`."""

    def __init__(self, archive: Path) -> None:
        self.archive = Path(archive)
        self.handle = None

    def __enter__(self):
        try:
            if zipfile.is_zipfile(self.archive):
                self.handle = zipfile.ZipFile(self.archive)
                return "zip", self.handle
            if tarfile.is_tarfile(self.archive):
                self.handle = tarfile.open(self.archive)
                return "tar", self.handle
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as error:
            raise ArchiveError(f"{self.archive}: cannot read the archive ({error})") from None
        raise ArchiveError(f"{self.archive}: not a zip or tar archive (damaged or incomplete download?)")

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()


def extract(archive: str | Path, dest: str | Path, *, progress: bool = True) -> Path:
    """Extract ``archive`` into the folder ``dest`` (created); returns ``dest``.

    ``dest`` is complete when it holds the marker file ``.extracted``; a second call then
    does nothing. A half-extracted temporary folder from an interrupted run is replaced.

    Raises:
        UnsafeArchiveError: an entry is absolute, climbs out with ``..``, or is a link or device.
        ArchiveError: the file is not a readable zip or tar archive.
    """
    archive, dest = Path(archive), Path(dest)
    if (dest / COMPLETE_MARKER).is_file():
        return dest
    staging = dest.with_name(f".{dest.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    with _open(archive) as (kind, handle):
        plan = _zip_plan(archive, handle) if kind == "zip" else _tar_plan(archive, handle)
        staging.mkdir(parents=True)
        from scsa_yolo.integration.progress import progress_bar  # imports torch: not at module level

        bar = progress_bar(f"extracting {archive.name}", len(plan), "files", enabled=progress)
        try:
            for entry, relative, is_dir in plan:
                target = staging.joinpath(*relative.parts)
                if is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = handle.open(entry) if kind == "zip" else handle.extractfile(entry)
                    with source, open(target, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
                bar.update()
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise ArchiveError(f"{archive}: extraction failed at {relative} ({error})") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        bar.close()
    (staging / COMPLETE_MARKER).write_text(f"{archive.name}\n")
    if dest.exists():
        shutil.rmtree(dest)  # an older incomplete extraction without the marker
    os.replace(staging, dest)
    return dest
