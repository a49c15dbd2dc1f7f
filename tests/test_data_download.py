"""Downloads against a real HTTP server on 127.0.0.1: resume, verification, refusal."""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import threading
import zipfile
from pathlib import Path

import pytest
from test_data_common import pixel_boxes
from test_data_visdrone import make_visdrone

from scsa_yolo.data.download import ChecksumMismatch, DownloadError, RemoteFile, download
from scsa_yolo.data.prepare import prepare_dataset
from scsa_yolo.data.recipes.visdrone import VisDroneRecipe

PAYLOAD = os.urandom(300_000)


class FixtureServer:
    """Serves ``files`` (path -> bytes) with Range support; can cut responses short.

    ``cut[path] = n`` makes the next ``len`` responses for ``path`` stop after ``n`` bytes
    (the connection closes mid-body, as a flaky network does). ``ignore_range`` answers
    every request with the whole file (a server without Range support). ``requests``
    records ``(path, Range header)``.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.requests, self.ignore_range = files, {}, [], False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
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
