"""Downloads against a real HTTP server on 127.0.0.1: resume, verification, refusal, and
what a user is told when the host cannot be reached at all."""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import threading
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_data_common import pixel_boxes
from test_data_visdrone import make_visdrone

from scsa_yolo.cli.main import main
from scsa_yolo.data.convert.recipes.visdrone import VisDroneRecipe
from scsa_yolo.data.fetch.download import ChecksumMismatch, DownloadError, HostUnreachable, RemoteFile, download
from scsa_yolo.data.prepare import prepare_dataset

PAYLOAD = os.urandom(300_000)


class FixtureServer:
    """Serves ``files`` (path -> bytes) with Range support; can cut responses short.

    ``cut[path] = n`` makes the next ``len`` responses for ``path`` stop after ``n`` bytes
    (the connection closes mid-body, as a flaky network does). ``drop[path] = n`` closes
    the next ``n`` connections for ``path`` before any response. ``ignore_range`` answers
    every request with the whole file (a server without Range support). ``requests``
    records ``(path, Range header)``.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.requests, self.ignore_range = files, {}, [], False
        self.drop: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                if server.drop.get(self.path):
                    server.drop[self.path] -= 1
                    self.close_connection = True  # no status line: the client sees a dropped link
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start, status = 0, 200
                header = self.headers.get("Range")
                if header and not server.ignore_range:
                    start = int(header.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    status = 206
                chunk = body[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(chunk)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                limit = server.cut.get(self.path)
                if limit:
                    server.cut[self.path] = None
                    self.wfile.write(chunk[:limit])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _remote(server: FixtureServer, path="/data.bin", **overrides) -> RemoteFile:
    fields = {"size": len(PAYLOAD), "md5": hashlib.md5(PAYLOAD).hexdigest(), "sha256": hashlib.sha256(PAYLOAD).hexdigest()}
    fields.update(overrides)
    return RemoteFile("data.bin", server.url(path), **fields)


def test_download_verifies_and_a_second_call_reuses_the_file(tmp_path):
    with FixtureServer({"/data.bin": PAYLOAD}) as server:
        path = download(_remote(server), tmp_path, progress=False)
        assert path.read_bytes() == PAYLOAD and not (tmp_path / "data.bin.part").exists()
        assert download(_remote(server), tmp_path, progress=False) == path
        assert len(server.requests) == 1  # verified from the recorded digests, not fetched again


def test_truncated_transfer_resumes_with_a_range_request(tmp_path):
    with FixtureServer({"/data.bin": PAYLOAD}) as server:
        server.cut["/data.bin"] = 100_000
        messages = []
        path = download(_remote(server), tmp_path, progress=False, echo=messages.append)
        assert path.read_bytes() == PAYLOAD
        assert server.requests == [("/data.bin", None), ("/data.bin", "bytes=100000-")]
        assert any("resuming" in m for m in messages)


def test_a_part_file_from_an_earlier_run_is_resumed(tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:12_345])
    with FixtureServer({"/data.bin": PAYLOAD}) as server:
        assert download(_remote(server), tmp_path, progress=False).read_bytes() == PAYLOAD
        assert server.requests == [("/data.bin", "bytes=12345-")]


def test_a_server_without_range_support_restarts_from_zero(tmp_path):
    (tmp_path / "data.bin.part").write_bytes(b"x" * 5000)  # junk that must not survive
    with FixtureServer({"/data.bin": PAYLOAD}) as server:
        server.ignore_range = True
        assert download(_remote(server), tmp_path, progress=False).read_bytes() == PAYLOAD


def test_checksum_mismatch_is_refused_and_the_bad_file_deleted_or_kept(tmp_path):
    with FixtureServer({"/data.bin": PAYLOAD}) as server:
        with pytest.raises(ChecksumMismatch, match="refused, SHA-256"):
            download(_remote(server, sha256="0" * 64), tmp_path, progress=False)
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(ChecksumMismatch, match="kept as"):
            download(_remote(server, md5="0" * 32), tmp_path, progress=False, on_mismatch="keep")
        assert (tmp_path / "data.bin.bad").read_bytes() == PAYLOAD and not (tmp_path / "data.bin").exists()
        with pytest.raises(ChecksumMismatch, match=f"size {len(PAYLOAD)} bytes, expected {len(PAYLOAD) + 1}"):
            download(_remote(server, size=len(PAYLOAD) + 1, md5=None, sha256=None), tmp_path / "s", progress=False)


def test_a_corrupted_file_on_disk_is_detected(tmp_path):
    with FixtureServer({"/data.bin": PAYLOAD}) as server:
        path = download(_remote(server), tmp_path, progress=False)
        path.write_bytes(PAYLOAD[:-1] + b"\0")
        with pytest.raises(ChecksumMismatch, match="is not the expected data.bin"):
            download(_remote(server), tmp_path, progress=False)


def test_http_errors_and_missing_urls_name_the_file(tmp_path):
    with FixtureServer({}) as server:
        with pytest.raises(DownloadError, match=r"/missing.bin: HTTP 404"):
            download(_remote(server, "/missing.bin"), tmp_path, progress=False)
    with pytest.raises(DownloadError, match="no direct download URL. Fill in the form"):
        download(RemoteFile("x.zip", None, manual="Fill in the form."), tmp_path)


def _zip_folder(folder: Path, prefix: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def test_prepare_downloads_verifies_extracts_and_converts(tmp_path, monkeypatch):
    source = make_visdrone(tmp_path / "fixture")
    archive = _zip_folder(source / "VisDrone2019-DET-val", "VisDrone2019-DET-val")
    with FixtureServer({"/VisDrone2019-DET-val.zip": archive}) as server:
        server.cut["/VisDrone2019-DET-val.zip"] = len(archive) // 3  # a flaky first attempt
        remote = RemoteFile(
            "VisDrone2019-DET-val.zip", server.url("/VisDrone2019-DET-val.zip"), size=len(archive),
            sha256=hashlib.sha256(archive).hexdigest(), splits=("val",),
        )
        monkeypatch.setattr(VisDroneRecipe, "remote_files", (remote,))
        result = prepare_dataset("visdrone", root=tmp_path / "root", splits=["val"], progress=False, echo=lambda m: None)
    assert [r for _, r in server.requests] == [None, f"bytes={len(archive) // 3}-"]
    assert result.manifest["source"][0]["sha256"] == hashlib.sha256(archive).hexdigest()
    assert (tmp_path / "root" / ".sources" / "visdrone" / "archives" / "VisDrone2019-DET-val.zip").is_file()
    assert len(pixel_boxes(result.folder, "val")["0000001_00000_d_0000001.jpg"]) == 3


# -- unreachable hosts and dropped transfers: what the user is told ---------------------------
UNRESOLVABLE = "http://scsa-yolo-test.invalid/data.bin"  # RFC 2606: .invalid never resolves


def _closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unresolvable_host_is_reported_as_unreachable_without_retries(tmp_path):
    messages = []
    with pytest.raises(HostUnreachable) as info:
        download(RemoteFile("data.bin", UNRESOLVABLE), tmp_path, progress=False, echo=messages.append)
    message = str(info.value)
    assert "cannot download data.bin: the host name scsa-yolo-test.invalid could not be resolved" in message
    assert "Nothing was saved." in message and ".part" not in message and "connection lost" not in message
    assert f"put it at {tmp_path / 'data.bin'}" in message and "--source" in message
    assert messages == [] and list(tmp_path.iterdir()) == []


def test_a_refused_connection_is_reported_as_unreachable(tmp_path):
    port = _closed_port()
    url = f"http://127.0.0.1:{port}/data.bin"
    with pytest.raises(HostUnreachable, match=rf"127\.0\.0\.1:{port} refused the connection\. Nothing was saved"):
        download(RemoteFile("data.bin", url), tmp_path, progress=False)


def test_an_existing_part_file_is_named_when_the_host_is_unreachable(tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:2048])
    with pytest.raises(HostUnreachable, match=r"The partial file .*data\.bin\.part \(2\.0 KiB\) is kept"):
        download(RemoteFile("data.bin", UNRESOLVABLE), tmp_path, progress=False)
    assert (tmp_path / "data.bin.part").read_bytes() == PAYLOAD[:2048]


def test_dropped_connections_are_retried_and_no_part_file_is_claimed(tmp_path):
    with FixtureServer({"/data.bin": PAYLOAD}) as server:
        server.drop["/data.bin"] = 10
        messages = []
        with pytest.raises(DownloadError) as info:
            download(_remote(server), tmp_path, progress=False, retries=2, echo=messages.append)
    assert not isinstance(info.value, HostUnreachable)
    message = str(info.value)
    assert "the transfer failed 3 times, last with RemoteDisconnected" in message
    assert "Nothing was saved." in message and ".part" not in message
    assert [m.split(", ")[-1] for m in messages] == ["retry 1/2", "retry 2/2"]
    assert len(server.requests) == 3 and not (tmp_path / "data.bin.part").exists()


def test_a_transfer_cut_every_time_keeps_and_names_the_part_file(tmp_path):
    with FixtureServer({"/data.bin": PAYLOAD}) as server:
        server.cut["/data.bin"] = 50_000
        messages = []

        def recut(message):  # every resumed request is cut again after 50 kB
            messages.append(message)
            server.cut["/data.bin"] = 50_000

        with pytest.raises(DownloadError, match=r"The partial file .*data\.bin\.part \(.*\) is kept; the next attempt"):
            download(_remote(server), tmp_path, progress=False, retries=1, echo=recut)
        assert (tmp_path / "data.bin.part").read_bytes() == PAYLOAD[:100_000]
    assert any("transfer stopped early, retry 1/1" in m for m in messages)


def test_prepare_without_network_says_host_unreachable_and_suggests_source(tmp_path, monkeypatch):
    """The issue's case: `data prepare visdrone` offline, through the real CLI."""
    remote = RemoteFile("VisDrone2019-DET-val.zip", "http://visdrone-mirror.invalid/VisDrone2019-DET-val.zip",
                        splits=("val",))
    monkeypatch.setattr(VisDroneRecipe, "remote_files", (remote,))
    result = CliRunner().invoke(main, ["data", "prepare", "visdrone", "--root", str(tmp_path / "root"),
                                       "--splits", "val", "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "Error: cannot download VisDrone2019-DET-val.zip: the host name visdrone-mirror.invalid" in result.output
    assert "--source" in result.output and "retry" not in result.output and ".part" not in result.output
    assert "Traceback" not in result.output


def test_progress_on_a_pipe_is_plain_lines(tmp_path, capfd):
    """Issue 26: a download piped to a log wrote the bar's redraw codes (CR, ESC [K) into it;
    where stderr is not a terminal, progress is plain lines."""
    with FixtureServer({"/data.bin": PAYLOAD}) as server:
        server.cut["/data.bin"] = 100_000  # a resumed transfer: its line counts from the resumed byte
        download(_remote(server), tmp_path, progress=True)
    err = capfd.readouterr().err
    assert "\x1b" not in err and "\r" not in err
    mib = f"{len(PAYLOAD) / 2**20:.1f}"
    assert f"data.bin: {mib}/{mib} MiB (100%) in " in err, err
