"""Downloads with progress, resume of partial files and size/checksum verification.

A file is fetched into ``NAME.part`` beside its final path. An interrupted transfer
(dropped connection, Ctrl-C) leaves the ``.part`` file; the next attempt asks the server
for the remaining bytes with an HTTP ``Range`` request and appends them. Only a file whose
size and checksums match what is known about it is renamed to its final name, so a file
without ``.part`` on disk is always complete and verified.

A host that cannot be reached at all (its name does not resolve, it refuses the
connection, no route to it) is not retried: that is no network, or a blocked host, and the
message says how to bring a copy fetched elsewhere instead.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from scsa_yolo.text import human_bytes


USER_AGENT = "scsa-yolo-downloader/1 (+https://github.com/ultralytics/ultralytics compatible)"
MISMATCH_POLICIES = ("delete", "keep")


@dataclass(frozen=True)
class RemoteFile:
    """A source file of a dataset.

    ``url`` is None for files with no direct public location (a form or a browser-only
    host); ``manual`` then says where to get it. ``splits`` names the dataset splits that
    need the file (empty: every split).
    """

    name: str
    url: str | None = None
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    splits: tuple[str, ...] = ()
    manual: str = ""
    note: str = ""
    aliases: tuple[str, ...] = ()  # other names the same content ships under (e.g. official .tar)

    def matches(self, file_name: str) -> bool:
        """True when ``file_name`` is this file's name or an alias (case-insensitive)."""
        return file_name.lower() in {n.lower() for n in (self.name, *self.aliases)}

    def needed_for(self, splits: set[str]) -> bool:
        return not self.splits or bool(set(self.splits) & splits)


class DownloadError(RuntimeError):
    """A download failed; the message names the URL and what to do."""


class HostUnreachable(DownloadError):
    """The server could not be contacted at all (no bytes were exchanged)."""


class ChecksumMismatch(DownloadError):
    """The downloaded bytes are not the expected file (size, MD5 or SHA-256 differs)."""


def file_digests(path: Path, chunk_size: int = 1 << 20) -> dict:
    """Size, MD5 and SHA-256 of a file (one read)."""
    md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            md5.update(block)
            sha256.update(block)
            size += len(block)
    return {"size": size, "md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def verify_digests(remote: RemoteFile, digests: dict, expected_size: int | None = None) -> list[str]:
    """Differences between a file's digests and what is known of ``remote`` (empty: fine)."""
    problems = []
    size = remote.size if remote.size is not None else expected_size
    if size is not None and digests["size"] != size:
        problems.append(f"size {digests['size']} bytes, expected {size}")
    if remote.md5 and digests["md5"] != remote.md5.lower():
        problems.append(f"MD5 {digests['md5']}, expected {remote.md5.lower()}")
    if remote.sha256 and digests["sha256"] != remote.sha256.lower():
        problems.append(f"SHA-256 {digests['sha256']}, expected {remote.sha256.lower()}")
    return problems


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _already_verified(path: Path, remote: RemoteFile) -> dict | None:
    """Digests recorded when ``path`` was verified, if the file has not changed since."""
    try:
        record = json.loads(_sidecar(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if record.get("size") != stat.st_size or record.get("mtime_ns") != stat.st_mtime_ns:
        return None
    return record if not verify_digests(remote, record) else None


def _record_verified(path: Path, digests: dict) -> None:
    """Cache the digests beside the file so the next run need not re-hash gigabytes."""
    stat = path.stat()
    try:
        _sidecar(path).write_text(json.dumps({**digests, "mtime_ns": stat.st_mtime_ns}))
    except OSError:
        pass  # a read-only folder of the user's: verify again next time


def verify_local(path: Path, remote: RemoteFile) -> dict:
    """Check a file already on disk against ``remote``; returns its digests.

    Raises:
        ChecksumMismatch: size or checksum differs (the file is left in place).
    """
    cached = _already_verified(path, remote)
    if cached is not None:
        return cached
    digests = file_digests(path)
    problems = verify_digests(remote, digests)
    if problems:
        raise ChecksumMismatch(
            f"{path} is not the expected {remote.name}: {'; '.join(problems)}. "
            f"Delete it and download it again{f' from {remote.url}' if remote.url else ''}."
        )
    _record_verified(path, digests)
    return digests


_TRANSIENT = (
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    ConnectionError,
    socket.timeout,
    TimeoutError,
)


def _unreachable_reason(url: str, error: BaseException) -> str | None:
    """Why ``url``'s host could not be contacted, or None when ``error`` is anything else.

    ``urlopen`` wraps connect-time failures in a URLError whose ``reason`` is the socket
    error; a transfer dropped later surfaces as another exception type.
    """
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    parts = urlsplit(url)
    host = parts.hostname or url
    where = f"{host}:{parts.port}" if parts.port else host
    if isinstance(reason, socket.gaierror):
        return f"the host name {host} could not be resolved (no network connection, or no DNS)"
    if isinstance(reason, ConnectionRefusedError):
        return f"{where} refused the connection"
    if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN):
        return f"there is no route to {host} ({reason.strerror or reason})"
    return None


def _part_note(part: Path) -> str:
    """What is left of the attempts: mention ``part`` only when it holds bytes to resume."""
    size = part.stat().st_size if part.is_file() else 0
    if size:
        return f"The partial file {part} ({human_bytes(size)}) is kept; the next attempt resumes it."
    return "Nothing was saved."


def _fetched_elsewhere_hint(remote: RemoteFile, target: Path) -> str:
    return (
        f"To use a copy fetched elsewhere ({remote.url}), put it at {target} (it is verified "
        f"before use) or pass it, or its folder, with `scsa-yolo data prepare <dataset> --source PATH`."
    )


def download(
    remote: RemoteFile,
    dest_dir: str | Path,
    *,
    progress: bool = True,
    on_mismatch: str = "delete",
    retries: int = 3,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Download ``remote`` to ``dest_dir/remote.name``; returns the verified file.

    A complete, verified file already there is reused (its digests are cached beside it).
    A ``.part`` file is resumed. A dropped connection is retried ``retries`` times, each
    time resuming where it stopped.

    Args:
        on_mismatch: what to do with a finished download whose size or checksum is wrong:
            ``delete`` the ``.part`` file (default: resuming it can only repeat the error)
            or ``keep`` it renamed to ``NAME.bad`` for inspection.

    Raises:
        HostUnreachable: the host could not be contacted (not retried).
        DownloadError: no URL, HTTP error, a transfer that kept failing after the retries.
        ChecksumMismatch: the finished file is not the expected one.
    """
    if on_mismatch not in MISMATCH_POLICIES:
        raise ValueError(f"on_mismatch must be one of {MISMATCH_POLICIES}, got {on_mismatch!r}")
    if not remote.url:
        raise DownloadError(f"{remote.name} has no direct download URL. {remote.manual}".strip())
    say = echo or (lambda message: None)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / remote.name
    part = dest_dir / (remote.name + ".part")
    if target.is_file():
        say(f"{remote.name}: already downloaded, verifying")
        verify_local(target, remote)
        return target

    expected = remote.size
    failures = 0
    while True:
        have = part.stat().st_size if part.is_file() else 0
        if expected is not None and have == expected:
            break
        if expected is not None and have > expected:
            part.unlink()  # longer than the file can be: start over
            have = 0
        if have:
            say(f"{remote.name}: resuming at {human_bytes(have)}")
        try:
            offered = _fetch(remote, part, have, timeout, chunk_size, progress, expected)
        except _TRANSIENT + (urllib.error.URLError,) as error:
            if isinstance(error, urllib.error.HTTPError):
                raise _http_error(remote, error) from None
            unreachable = _unreachable_reason(remote.url, error)
            if unreachable is not None:
                raise HostUnreachable(
                    f"cannot download {remote.name}: {unreachable}. {_part_note(part)} "
                    f"Run the same command again once the host is reachable. "
                    f"{_fetched_elsewhere_hint(remote, target)}"
                ) from None
            failures += 1
            detail = getattr(error, "reason", None) or error
            if failures > retries:
                raise DownloadError(
                    f"{remote.url}: the transfer failed {failures} times, last with "
                    f"{type(error).__name__}: {detail}. {_part_note(part)} Run the same command again."
                ) from None
            got = part.stat().st_size if part.is_file() else 0
            say(
                f"{remote.name}: attempt failed ({type(error).__name__}: {detail}) "
                f"at {human_bytes(got)}, retry {failures}/{retries}"
            )
            continue
        if offered is not None and expected is not None and offered != expected:
            break  # the server has another file than the one expected: verification refuses it
        expected = expected if expected is not None else offered
        if expected is None or part.stat().st_size >= expected:
            break
        failures += 1  # server closed the stream early
        if failures > retries:
            raise DownloadError(
                f"{remote.url}: transfer stopped at {part.stat().st_size} of {expected} bytes "
                f"(after {retries} retries). {_part_note(part)} Run the same command again."
            )
        say(f"{remote.name}: transfer stopped early, retry {failures}/{retries}")

    digests = file_digests(part)
    problems = verify_digests(remote, digests, expected)
    if problems:
        kept = ""
        if on_mismatch == "keep":
            bad = part.with_name(remote.name + ".bad")
            os.replace(part, bad)
            kept = f" The bad file is kept as {bad}."
        else:
            part.unlink()
        raise ChecksumMismatch(f"{remote.url}: refused, {'; '.join(problems)}.{kept}")
    os.replace(part, target)
    _record_verified(target, digests)
    return target


def _http_error(remote: RemoteFile, error: urllib.error.HTTPError) -> DownloadError:
    return DownloadError(f"{remote.url}: HTTP {error.code} {error.reason}")


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)")


def _fetch(
    remote: RemoteFile,
    part: Path,
    start: int,
    timeout: float,
    chunk_size: int,
    show_progress: bool,
    expected: int | None,
) -> int | None:
    """One HTTP request appending to ``part`` from byte ``start``.

    Returns the size of the whole file as the server reports it (None when it does not).
    """
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(remote.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:
            # nothing left to send from `start`: the server says how long the file is
            match = _CONTENT_RANGE_UNSATISFIED.match(error.headers.get("Content-Range", "") or "")
            return int(match.group(1)) if match else start
        raise
    with response:
        offered = None
        if start and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != start:
                raise DownloadError(
                    f"{remote.url}: server answered range {response.headers.get('Content-Range')!r} "
                    f"to a request from byte {start}; delete {part} and try again"
                )
            offered = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        else:
            start, mode = 0, "wb"  # server ignored the range: start over
            length = response.headers.get("Content-Length")
            offered = int(length) if length is not None else None
        from scsa_yolo.integration.progress import progress_bar  # imports torch: not at module level

        bar = progress_bar(remote.name, expected or offered, "B", enabled=show_progress, initial=start)
        with open(part, mode) as handle:
            while block := response.read(chunk_size):
                handle.write(block)
                bar.update(len(block))
        bar.close()
    return offered
