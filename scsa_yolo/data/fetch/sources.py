"""Finding a dataset's source files: downloaded archives, archives the user has, or folders.

Recipes never assume where the user unpacked things. They ask a :class:`SourceTree` (one or
more folders) for a folder or file by name, found at any depth, so ``--source`` may point
at the archives, at the folder they were unpacked into, or at any parent of it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from scsa_yolo.errors import ScsaYoloError
from .archives import archive_stem, extract, is_archive
from .download import DownloadError, RemoteFile, download, verify_local

# Folders never searched: our own staging folders and VCS/OS clutter.
_SKIP_DIRS = {".git", "__MACOSX", ".DS_Store"}


class SourceMissing(ScsaYoloError, FileNotFoundError):
    """A file or folder the recipe needs is not in the source; the message says what to get."""


class SourceError(ScsaYoloError, ValueError):
    """A source file that exists but cannot be read as what it should be (names the file)."""


def load_json(path: Path) -> dict:
    """A source JSON file, or :class:`SourceError` naming the file and the position."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SourceError(f"{path}:{error.lineno}: not valid JSON ({error.msg}); re-extract or re-download it") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(f"{path}: cannot be read ({error})") from None
    if not isinstance(data, dict):
        raise SourceError(f"{path}: expected a COCO-format object with 'images' and 'annotations'")
    return data


class SourceTree:
    """Read-only view over the folders holding a dataset's original files."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = [Path(r) for r in roots]

    def __repr__(self) -> str:
        return f"SourceTree({[str(r) for r in self.roots]})"

    def walk_dirs(self, max_depth: int = 6) -> Iterator[Path]:
        """Every folder under the roots (breadth first, roots included)."""
        seen: set[Path] = set()
        for root in self.roots:
            level = [root]
            for _ in range(max_depth + 1):
                following = []
                for folder in level:
                    if folder in seen:
                        continue
                    seen.add(folder)
                    yield folder
                    try:
                        with os.scandir(folder) as entries:
                            following.extend(
                                Path(e.path)
                                for e in entries
                                if e.is_dir(follow_symlinks=True) and e.name not in _SKIP_DIRS and not e.name.startswith(".")
                            )
                    except OSError:
                        continue
                level = sorted(following)
                if not level:
                    break

    def find_dirs(self, predicate: Callable[[Path], bool], max_depth: int = 6) -> list[Path]:
        """Folders under the roots for which ``predicate`` holds, shallowest first."""
        return [d for d in self.walk_dirs(max_depth) if predicate(d)]

    def find_dir(self, name: str, *, contains: Iterable[str] = (), max_depth: int = 6) -> Path | None:
        """The shallowest folder called ``name`` (case-insensitive) holding every ``contains`` entry."""
        wanted = name.lower()
        required = list(contains)

        def matches(folder: Path) -> bool:
            return folder.name.lower() == wanted and all((folder / entry).exists() for entry in required)

        found = self.find_dirs(matches, max_depth)
        return found[0] if found else None

    def find_file(self, name: str, max_depth: int = 6) -> Path | None:
        """The shallowest file called ``name`` (exact name first, then case-insensitive)."""
        fallback = None
        for folder in self.walk_dirs(max_depth):
            candidate = folder / name
            if candidate.is_file():
                return candidate
            if fallback is None:
                lowered = name.lower()
                try:
                    fallback = next((folder / e for e in os.listdir(folder) if e.lower() == lowered and (folder / e).is_file()), None)
                except OSError:
                    pass
        return fallback


def materialize_sources(
    remotes: Sequence[RemoteFile],
    *,
    source: str | Path | None,
    cache_dir: Path,
    dataset: str,
    manual_help: str,
    progress: bool = True,
    on_mismatch: str = "delete",
    echo: Callable[[str], None] = print,
) -> tuple[SourceTree, list[dict]]:
    """Turn ``--source`` (or a download) into folders a recipe can search.

    * ``source`` None: every file of ``remotes`` is downloaded into ``cache_dir/archives``
      (resumed, verified) and extracted into ``cache_dir/extracted/<archive stem>``. A file
      without a URL raises :class:`SourceMissing` with ``manual_help``.
    * ``source`` an archive: it is extracted into the cache.
    * ``source`` a folder: searched as it is; archives inside it whose names match
      ``remotes`` (or any archive when the folder holds nothing else) are extracted into the
      cache and searched too.

    Returns the tree and a record per source file for the manifest.
    """
    extracted_root = cache_dir / "extracted"
    records: list[dict] = []
    roots: list[Path] = []

    def unpack(archive: Path) -> None:
        echo(f"extracting {archive} -> {extracted_root / archive_stem(archive)}")
        roots.append(extract(archive, extracted_root / archive_stem(archive), progress=progress))

    if source is None:
        missing = [r for r in remotes if not r.url]
        if missing:
            names = ", ".join(r.name for r in missing)
            raise SourceMissing(f"{dataset}: {names} cannot be downloaded automatically.\n{manual_help}")
        for remote in remotes:
            echo(f"downloading {remote.name} from {remote.url}")
            try:
                path = download(remote, cache_dir / "archives", progress=progress, on_mismatch=on_mismatch, echo=echo)
            except DownloadError:
                raise
            records.append({"name": remote.name, "url": remote.url, **_digest_record(path, remote)})
            unpack(path)
        return SourceTree(roots), records

    source = Path(source).expanduser().absolute()
    if not source.exists():
        raise SourceMissing(f"--source {source} does not exist.\n{manual_help}")
    if source.is_file():
        if not is_archive(source):
            raise SourceMissing(f"--source {source} is a file but not a zip/tar archive.\n{manual_help}")
        _check_known(source, remotes, echo)
        records.append({"name": source.name, "path": str(source.resolve())})
        unpack(source)
        return SourceTree(roots), records

    archives = sorted(p for p in source.iterdir() if is_archive(p))
    wanted = [p for p in archives if any(r.matches(p.name) for r in remotes)] or [
        p for p in archives if not any(q.is_dir() for q in source.iterdir())
    ]
    for archive in wanted:
        _check_known(archive, remotes, echo)
        records.append({"name": archive.name, "path": str(archive.resolve())})
        unpack(archive)
    roots.insert(0, source)
    if not wanted:
        records.append({"name": source.name, "path": str(source.resolve()), "kind": "folder"})
    return SourceTree(roots), records


def _check_known(archive: Path, remotes: Sequence[RemoteFile], echo: Callable[[str], None]) -> None:
    """Verify a user-supplied archive when its name matches a file of known size/checksum."""
    remote = next((r for r in remotes if r.name.lower() == archive.name.lower()), None)  # aliases: other bytes
    if remote is not None and (remote.size or remote.md5 or remote.sha256):
        echo(f"verifying {archive.name} against its known size/checksum")
        verify_local(archive, remote)


def _digest_record(path: Path, remote: RemoteFile) -> dict:
    digests = verify_local(path, remote)
    return {"size": digests["size"], "sha256": digests["sha256"], "md5": digests["md5"]}
