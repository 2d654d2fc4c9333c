"""The network edge, against a raw socket peer that records the exact bytes it received."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import http.server
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runway_client import _transport
from runway_client._errors import (
    InputChangedError,
    NetworkError,
    RequestTimeoutError,
    StorageError,
)
from runway_client._files import check_input_file, open_upload_body
from runway_client._models import Job, JobSpec, SchoolYear
from runway_client._retry import RetryPolicy
from runway_client._steps import upload_file
from runway_client._transport import HttpRequest, RequestsTransport
from runway_client.sandbox import Sandbox


@dataclass
class Peer:
    """A one-connection-at-a-time HTTP peer: records request heads and bodies, answers as told."""

    mode: str = "answer"  # answer | stall | close | early (answer before the body, close)
    modes: list[str] = field(default_factory=list)  # per connection first, then ``mode``
    answer: bytes = b'HTTP/1.1 200 OK\r\nETag: "abc"\r\nContent-Length: 0\r\n\r\n'
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    port: int = 0
    hold: float = 0.0

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        self.heads.append(head)
        mode = self.modes.pop(0) if self.modes else self.mode
        if mode == "close":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # a reset, mid-body
        if mode == "early":
            conn.sendall(self.answer)
            conn.shutdown(socket.SHUT_WR)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            chunk = conn.recv(1024 * 1024)
            if not chunk:
                break
            body += chunk
        self.bodies.append(body)
        if mode == "stall":
            time.sleep(2)
            return
        conn.sendall(self.answer)
        time.sleep(self.hold)  # keep the connection open, sending nothing more


@pytest.fixture
def peer() -> Iterator[Peer]:
    listener = socket.create_server(("127.0.0.1", 0))
    made = Peer(port=listener.getsockname()[1])
    thread = threading.Thread(target=made.serve, args=(listener,), daemon=True)
    thread.start()
    yield made
    listener.close()


def transport(read_timeout: float = 5.0) -> RequestsTransport:
    return RequestsTransport(connect_timeout=2.0, read_timeout=read_timeout)


def header_lines(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_put_sends_the_presigned_url_exactly_with_a_content_length(
    peer: Peer, tmp_path: Path
) -> None:
    data = b"x" * (3 * 1024 * 1024 + 11)
    path = tmp_path / "sat file.csv"
    path.write_bytes(data)
    source = check_input_file("INPUT_FILE", path).unwrap()
    raw_target = "/bucket/ea/ea/u/INPUT_FILE/sat%20file%7E%2B%C3%A9.csv?X-Amz-Date=20261129T000000Z&X-Amz-Signature=ab%2Fcd%3D"
    with open_upload_body(source).unwrap() as body:
        answer = (
            transport()
            .put(
                f"http://127.0.0.1:{peer.port}{raw_target}",
                body,
                headers={"Content-Type": "application/octet-stream"},
                step="upload",
            )
            .unwrap()
        )
    assert answer.status == 200
    assert answer.headers["etag"] == '"abc"'
    request_line = peer.heads[0].split(b"\r\n")[0].decode()
    assert request_line == f"PUT {raw_target} HTTP/1.1"
    headers = header_lines(peer.heads[0])
    assert headers["content-length"] == str(len(data))
    assert headers["content-type"] == "application/octet-stream"
    assert "transfer-encoding" not in headers
    assert peer.bodies[0] == data


def test_an_empty_body_is_sent_with_content_length_zero_not_chunked(peer: Peer) -> None:
    class Empty:
        def read(self, size: int = -1, /) -> bytes:
            return b""

        def __len__(self) -> int:
            return 0

    transport().put(
        f"http://127.0.0.1:{peer.port}/b/k", Empty(), headers={}, step="upload"
    ).unwrap()
    headers = header_lines(peer.heads[0])
    assert headers["content-length"] == "0"
    assert "transfer-encoding" not in headers


def test_send_posts_the_built_request_and_returns_any_status(peer: Peer) -> None:
    peer.answer = b'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"message":"x"}'
    request = HttpRequest(
        method="POST",
        url=f"http://127.0.0.1:{peer.port}/api/v1/jobs",
        headers=(("Authorization", "Bearer t0k"),),
        body=b"{}",
    )
    answer = transport().send(request, step="create_job").unwrap()
    assert answer.status == 400
    assert answer.body == b'{"message":"x"}'
    assert header_lines(peer.heads[0])["authorization"] == "Bearer t0k"


def test_redirects_are_not_followed(peer: Peer) -> None:
    peer.answer = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n"
    request = HttpRequest(method="POST", url=f"http://127.0.0.1:{peer.port}/api/v1/jobs")
    assert transport().send(request, step="create_job").unwrap().status == 307
    assert len(peer.heads) == 1


def test_a_stalled_answer_is_a_timeout_error_without_the_signature(peer: Peer) -> None:
    peer.mode = "stall"
    request = HttpRequest(
        method="POST", url=f"http://127.0.0.1:{peer.port}/k?X-Amz-Signature=s3cr3tsig"
    )
    error = transport(read_timeout=0.3).send(request, step="start").failure()
    assert isinstance(error, RequestTimeoutError)
    assert "no answer within 0.3 s" in error.message
    assert error.step == "start"
    assert "s3cr3tsig" not in str(error)
    assert "s3cr3tsig" not in repr(error)


def test_a_dropped_connection_is_a_network_error(peer: Peer) -> None:
    peer.mode = "close"
    request = HttpRequest(
        method="POST", url=f"http://127.0.0.1:{peer.port}/k?X-Amz-Signature=s3cr3tsig"
    )
    error = transport().send(request, step="upload").failure()
    assert type(error) is NetworkError
    assert "s3cr3tsig" not in str(error)


def test_a_refused_connection_is_a_network_error_without_the_signature() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    request = HttpRequest(
        method="PUT", url=f"http://127.0.0.1:{port}/b/k.csv?X-Amz-Signature=s3cr3tsig"
    )
    error = transport().send(request, step="upload").failure()
    assert isinstance(error, NetworkError)
    assert "could not connect" in error.message
    assert error.request_sent is False  # safe to send again, even a POST
    assert "/b/k.csv?…" in error.message  # the query (credentials) is not shown
    assert "s3cr3tsig" not in str(error)


def test_an_error_raised_by_the_body_comes_back_as_the_failure(peer: Peer, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"y" * (4 * 1024 * 1024))
    source = check_input_file("K", path).unwrap()
    with open_upload_body(source).unwrap() as body:
        body.read(1024 * 1024)  # simulate: the file shrinks after a first block
        path.write_bytes(b"y" * 10)
        error = (
            transport()
            .put(f"http://127.0.0.1:{peer.port}/b/k", body, headers={}, step="upload")
            .failure()
        )
    assert isinstance(error, InputChangedError)
    assert "got shorter" in error.message


def test_a_redirect_from_storage_comes_back_as_an_answer_not_an_exception(
    peer: Peer, tmp_path: Path
) -> None:
    peer.answer = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/x\r\nContent-Length: 0\r\n\r\n"
    path = tmp_path / "d.csv"
    path.write_bytes(b"abc")
    source = check_input_file("K", path).unwrap()
    with open_upload_body(source).unwrap() as body:
        answer = transport().put(
            f"http://127.0.0.1:{peer.port}/b/k", body, headers={}, step="upload"
        )
    assert answer.unwrap().status == 307

    class Collect:
        def begin(self, headers: object, /) -> bool:
            return True

        def write(self, data: bytes, /) -> int:
            return len(data)

    assert (
        transport()
        .get(f"http://127.0.0.1:{peer.port}/b/k", Collect(), step="download")
        .unwrap()
        .status
        == 307
    )


def test_a_slow_body_is_a_timeout_not_a_connection_failure(peer: Peer) -> None:
    peer.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"
    peer.hold = 1.5  # then nothing more, with the connection still open

    class Collect:
        def begin(self, headers: object, /) -> bool:
            return True

        def write(self, data: bytes, /) -> int:
            return len(data)

    error = (
        transport(read_timeout=0.3)
        .get(f"http://127.0.0.1:{peer.port}/b/k", Collect(), step="download")
        .failure()
    )
    assert isinstance(error, RequestTimeoutError)


# ---------------------------------------------------------------- uploads straight from the file


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which way each upload's body went: ``sendfile`` (direct, plain HTTP)."""
    seen: list[str] = []
    real = _transport._send_zero_copy

    def spy(*args: object) -> None:
        seen.append("sendfile")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_transport, "_send_zero_copy", spy)
    return seen


def big_file(tmp_path: Path, size: int = 3 * 1024 * 1024 + 5) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path, data


def test_a_file_body_goes_by_sendfile_exactly_with_progress_for_every_byte(
    peer: Peer, tmp_path: Path, sends: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_transport, "SENDFILE_BYTES", 1024 * 1024)  # several blocks
    path, data = big_file(tmp_path)
    source = check_input_file("K", path).unwrap()
    counts: list[int] = []
    with open_upload_body(source).unwrap() as body:
        answer = transport().put(
            f"http://127.0.0.1:{peer.port}/b/k?X-Amz-Signature=a%2Fb",
            body,
            headers={"Content-Type": "application/octet-stream"},
            step="upload",
            on_sent=counts.append,
        )
        assert answer.unwrap().status == 200
        assert body.finish().unwrap().sha256 == hashlib.sha256(data).hexdigest()
    assert sends == ["sendfile"]
    assert peer.bodies == [data]
    headers = header_lines(peer.heads[0])
    assert headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in headers
    assert peer.heads[0].split(b"\r\n")[0] == b"PUT /b/k?X-Amz-Signature=a%2Fb HTTP/1.1"
    assert sum(counts) == len(data)
    assert len(counts) >= 4  # at least one report per 1 MiB call


def test_a_file_that_shrinks_during_sendfile_is_refused(
    peer: Peer, tmp_path: Path, sends: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_transport, "SENDFILE_BYTES", 1024 * 1024)
    path, _ = big_file(tmp_path)
    source = check_input_file("K", path).unwrap()

    def shrink(count: int) -> None:
        os.truncate(path, 1024 * 1024 + 10)

    with open_upload_body(source).unwrap() as body:
        error = (
            transport()
            .put(
                f"http://127.0.0.1:{peer.port}/b/k", body, headers={}, step="upload", on_sent=shrink
            )
            .failure()
        )
    assert sends == ["sendfile"]
    assert isinstance(error, InputChangedError)
    assert "got shorter while being uploaded (ended after 1048586 bytes)" in error.message


def test_an_error_raised_by_on_sent_ends_the_upload_as_that_failure(
    peer: Peer, tmp_path: Path, sends: list[str]
) -> None:
    path, _ = big_file(tmp_path)
    source = check_input_file("K", path).unwrap()
    stop = NetworkError("stopped by the caller", step="upload")

    def cancel(count: int) -> None:
        raise stop

    with open_upload_body(source).unwrap() as body:
        error = (
            transport()
            .put(
                f"http://127.0.0.1:{peer.port}/b/k", body, headers={}, step="upload", on_sent=cancel
            )
            .failure()
        )
    assert error is stop
    assert error.__traceback__ is None  # no frames holding the URL


def test_an_answer_sent_before_the_body_is_read_is_heard(
    peer: Peer, tmp_path: Path, sends: list[str]
) -> None:
    peer.mode = "early"
    peer.answer = (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: 78\r\n\r\n"
        b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    )
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as file:
        file.truncate(32 * 1024 * 1024)  # more than the socket buffers hold (sparse: no RAM)
    source = check_input_file("K", path).unwrap()
    with open_upload_body(source).unwrap() as body:
        answer = transport().put(
            f"http://127.0.0.1:{peer.port}/b/k", body, headers={}, step="upload"
        )
    assert answer.unwrap().status == 403
    assert b"Request has expired" in answer.unwrap().body


def test_a_proxy_for_the_url_is_honoured_so_the_body_goes_through_requests(
    peer: Peer, tmp_path: Path, sends: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{peer.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    path, data = big_file(tmp_path, 1000)
    source = check_input_file("K", path).unwrap()
    counts: list[int] = []
    with open_upload_body(source).unwrap() as body:
        answer = transport().put(
            "http://storage.invalid/b/k?X-Amz-Signature=x",
            body,
            headers={},
            step="upload",
            on_sent=counts.append,
        )
    assert answer.unwrap().status == 200
    assert sends == []  # not sent from the file: the proxy (the peer) got it via requests
    assert peer.heads[0].split(b"\r\n")[0].startswith(b"PUT http://storage.invalid/b/k?")
    assert peer.bodies == [data]
    assert sum(counts) == len(data)


def one_file_job(path: Path, url: str) -> Job:
    spec = JobSpec(
        partner="ea",
        tenant="ea",
        bundle="assessments/MAP_Growth",
        school_year=SchoolYear(end_year=2026),
        files=(check_input_file("INPUT_FILE", path).unwrap(),),
    )
    return Job(
        uid="job-1", upload_urls={"INPUT_FILE": url}, spec=spec, created_at=datetime.now(UTC)
    )


def test_an_upload_reset_mid_body_is_sent_again_from_byte_0(
    peer: Peer, tmp_path: Path, sends: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_transport, "SENDFILE_BYTES", 1024 * 1024)
    peer.modes = ["close"]  # the first connection is reset after the request head
    path, data = big_file(tmp_path, 2 * 1024 * 1024 + 1)
    job = one_file_job(path, f"http://127.0.0.1:{peer.port}/b/INPUT_FILE?X-Amz-Signature=s")
    fast = RetryPolicy(attempts=3, backoff_base=0.01)
    receipt = upload_file(transport(), job, "INPUT_FILE", policy=fast).unwrap()
    assert len(peer.heads) == 2
    assert peer.bodies == [data]  # the second try: the whole file, from byte 0
    assert receipt.bytes == len(data)
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    assert sends == ["sendfile", "sendfile"]


def test_verify_etag_accepts_the_quoted_md5_and_refuses_another_as_an_integrity_error(
    peer: Peer, tmp_path: Path
) -> None:
    from runway_client import IntegrityError

    path, data = big_file(tmp_path, 4096)
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag is MD5
    peer.answer = f'HTTP/1.1 200 OK\r\nETag: "{md5}"\r\nContent-Length: 0\r\n\r\n'.encode()
    job = one_file_job(path, f"http://127.0.0.1:{peer.port}/b/INPUT_FILE")
    receipt = upload_file(transport(), job, "INPUT_FILE", verify_etag=True).unwrap()
    assert receipt.etag == f'"{md5}"'

    peer.answer = (
        b'HTTP/1.1 200 OK\r\nETag: "0123456789abcdef0123456789abcdef"\r\nContent-Length: 0\r\n\r\n'
    )
    error = upload_file(transport(), job, "INPUT_FILE", verify_etag=True).failure()
    assert isinstance(error, IntegrityError)
    assert isinstance(error, StorageError)
    assert error.job_uid == "job-1"
    assert "INPUT_FILE (big.bin)" in error.message
    assert "job job-1" in error.message
    assert md5 in error.message
    assert len(peer.heads) == 2  # a mismatch is not retried
    # without the option the same answer is accepted as it is today
    assert upload_file(transport(), job, "INPUT_FILE").unwrap().etag.startswith('"0123')


# ---------------------------------------------------------------- issue 11: what crosses the edge

SECRET_BODY = "client_secret=SECRET-in-the-form-9f8e"
BEARER = "TOKEN-in-the-header-7a6b"
SIGNATURE = "SIG-in-the-url-5c4d"


def shown_with_locals(exc: BaseException) -> str:
    """What an error reporter that captures locals (Sentry-style) would print."""
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


def secrets_in(text: str) -> list[str]:
    return [s for s in ("SECRET-in-the-form", BEARER, SIGNATURE) if s in text]


class Interrupted(Exception):
    """Stands in for an orchestrator's timeout exception (not a RunwayError)."""


@pytest.mark.parametrize("kind", [KeyboardInterrupt, Interrupted])
def test_an_exception_raised_mid_request_carries_no_secret_in_traceback_locals(
    peer: Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: type[BaseException]
) -> None:
    import urllib3.connection

    def interrupted(self: object, method: str, url: str, body: object = None, headers: object = None, **kw: object) -> None:  # fmt: skip
        raise kind("interrupted mid-request")

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "request", interrupted)

    def interrupted_head(self: object, *args: object, **kw: object) -> None:
        raise kind("interrupted mid-request")

    # an upload from a file goes over http.client directly (sendfile), not urllib3
    monkeypatch.setattr(http.client.HTTPConnection, "endheaders", interrupted_head)
    base = f"http://127.0.0.1:{peer.port}"
    path = tmp_path / "a.csv"
    path.write_bytes(b"x" * 1000)
    source = check_input_file("INPUT_FILE", path).unwrap()

    def token_request() -> object:
        return transport().send(
            HttpRequest(method="POST", url=f"{base}/oauth/token", body=SECRET_BODY.encode()),
            step="authorize",
        )

    def api_request() -> object:
        return transport().send(  # headers inline: this frame's locals are shown too
            HttpRequest(
                method="POST",
                url=f"{base}/api/v1/jobs",
                headers=(("Authorization", f"Bearer {BEARER}"),),
            ),
            step="create_job",
        )

    def upload() -> object:
        with open_upload_body(source).unwrap() as body:
            return transport().put(
                f"{base}/b/k?X-Amz-Signature={SIGNATURE}", body, headers={}, step="upload"
            )

    def download() -> object:
        class Sink:
            def begin(self, headers: object, /) -> bool:
                return True

            def write(self, data: bytes, /) -> int:
                return len(data)

        return transport().get(f"{base}/b/k?X-Amz-Signature={SIGNATURE}", Sink(), step="download")

    for call in (token_request, api_request, upload, download):
        with pytest.raises(kind) as caught:
            call()
        assert secrets_in(shown_with_locals(caught.value)) == [], call.__name__


def test_a_real_timer_signal_mid_request_leaks_nothing_through_locals(tmp_path: Path) -> None:
    """An orchestrator's timeout, raised by a SIGALRM handler while the client waits."""
    import signal

    from runway_client import RunwayClient
    from runway_client.sandbox import Sandbox

    def on_alarm(signum: int, frame: object) -> None:
        raise Interrupted("task timed out")

    path = tmp_path / "sat.csv"
    path.write_bytes(b"id,score\n1,2\n")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with Sandbox() as sb:
            for route in ("token", "create_job", "upload", "start"):
                sb.clear_faults()
                sb.inject(route, "stall", seconds=3)
                client = RunwayClient(
                    runway_base_url=sb.runway_base_url,
                    auth_base_url=sb.auth_base_url,
                    client_id=sb.client_id,
                    client_secret=sb.client_secret,
                    partner_code=sb.partner_code,
                )
                signal.setitimer(signal.ITIMER_REAL, 1.0)
                try:
                    with pytest.raises(Interrupted) as caught:
                        client.load_files(
                            tenant_code="ea",
                            bundle_name="assessments/MAP_Growth",
                            input_files={"INPUT_FILE": path},
                            school_year="2026",
                        )
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                text = shown_with_locals(caught.value)
                assert sb.client_secret not in text, route
                assert "X-Amz-Signature=" not in text or "X-Amz-Signature=REDACTED" in text, route
                assert re.search(r"Bearer [A-Za-z0-9._~+/=-]{20,}", text) is None, route
    finally:
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- issue 11: bounded answers

_HUGE = 1024**3  # a 1 GiB error page


class _Hostile(http.server.BaseHTTPRequestHandler):
    sent = 0
    bomb = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/page"):
            self.send_response(500)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(_HUGE))
            self.end_headers()
            block = b"<p>" + b"x" * (1024 * 1024 - 3)
            try:
                for _ in range(_HUGE // len(block)):
                    self.wfile.write(block)
                    type(self).sent += len(block)
            except OSError:
                return
            return
        status = 500 if self.path.startswith("/bomb-error") else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(self.bomb)))
        self.end_headers()
        try:
            self.wfile.write(self.bomb)
        except OSError:
            return


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    member = gzip.compress(b"\0" * (16 * 1024 * 1024), compresslevel=9)
    _Hostile.bomb = member * 128  # 2 GiB of zeros in about 2 MB
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1536 * 1024**2, 1536 * 1024**2))
from runway_client._transport import HttpRequest, RequestsTransport
from runway_client.sandbox import Sandbox
t = RequestsTransport(connect_timeout=5, read_timeout=30)
answer = t.send(HttpRequest(method="POST", url=sys.argv[1], body=b"{}"), step="create_job")
# VmHWM: this process's own peak. ru_maxrss would also count the parent's peak RSS
# (a vfork'ed child's exec records the parent's high-water mark), i.e. pytest's.
status = open("/proc/self/status").read()
peak = int(status.split("VmHWM:")[1].split()[0]) // 1024
shown = answer.map(lambda r: (r.status, len(r.body))).alt(lambda e: (type(e).__name__, e.message))
print(peak, shown)
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/page", "(500, 65536)"),
        ("/bomb-error", "(500, 65536)"),
        ("/bomb", "ProtocolError"),
    ],
)
def test_a_huge_error_page_or_a_gzip_bomb_does_not_fill_memory(
    hostile: str, path: str, expected: str
) -> None:
    _Hostile.sent = 0
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, hostile + path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mib, shown = done.stdout.split(" ", 1)
    assert expected in shown
    assert int(peak_mib) < 400  # MiB (the interpreter and imports: ~200); reading it all: 2+ GB
    assert _Hostile.sent < 256 * 1024**2  # the rest of the page was never read


def test_a_direct_upload_that_cannot_connect_says_nothing_was_sent(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now: connection refused
    path, _ = big_file(tmp_path, 100)
    source = check_input_file("K", path).unwrap()
    with open_upload_body(source).unwrap() as body:
        error = (
            transport()
            .put(
                f"http://127.0.0.1:{port}/b/k?X-Amz-Signature=s3cr3t",
                body,
                headers={},
                step="upload",
            )
            .failure()
        )
    assert isinstance(error, NetworkError)
    assert not error.request_sent
    assert "could not connect for PUT" in error.message
    assert "s3cr3t" not in str(error)


# ----------------------------------------------------------------- API calls by http.client


def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


def test_a_kept_alive_connection_the_server_closed_is_not_reused(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_environment(monkeypatch)
    peer.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"  # keep-alive, then closed
    made = transport()
    request = HttpRequest(method="POST", url=f"http://127.0.0.1:{peer.port}/api/v1/jobs")
    assert made.send(request, step="create_job").unwrap().body == b"{}"
    time.sleep(0.3)  # the peer has closed the connection the client keeps
    # A closed connection written to would fail (or lose a POST /jobs): a new one is made.
    assert made.send(request, step="create_job").unwrap().status == 200
    assert len(peer.heads) == 2
    made.close()


def test_api_requests_go_direct_with_content_length_and_the_defaults(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_environment(monkeypatch)
    sent: list[str] = []
    real = RequestsTransport._send_direct

    def spy(self: RequestsTransport, *args: object, **kwargs: object) -> object:
        sent.append("direct")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RequestsTransport, "_send_direct", spy)
    request = HttpRequest(
        method="POST",
        url=f"http://127.0.0.1:{peer.port}/api/v1/jobs/abc/start",
        headers=(("Accept", "application/json"),),
    )
    assert transport().send(request, step="start").unwrap().status == 200
    assert sent == ["direct"]
    head = peer.heads[0].decode("latin-1").split("\r\n")
    assert head[0] == "POST /api/v1/jobs/abc/start HTTP/1.1"
    headers = header_lines(peer.heads[0])
    assert headers["content-length"] == "0"  # a POST without a body says so (as requests)
    assert headers["accept"] == "application/json"  # the request's own, sent once
    assert sum(line.lower().startswith("accept:") for line in head) == 1
    assert headers["user-agent"].startswith("runway-client/")
    assert headers["accept-encoding"] == "gzip, deflate"
    assert headers["host"] == f"127.0.0.1:{peer.port}"


def test_a_proxy_for_an_api_url_is_honoured(peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{peer.port}")
    request = HttpRequest(method="POST", url="http://runway.invalid/api/v1/jobs", body=b"{}")
    assert transport().send(request, step="create_job").unwrap().status == 200
    assert peer.heads[0].split(b"\r\n")[0] == b"POST http://runway.invalid/api/v1/jobs HTTP/1.1"
    assert peer.bodies == [b"{}"]


def test_a_load_without_a_proxy_never_imports_requests(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests costs ~0.2 s to import, most of a short load's start-up: a load (token,
    job, upload, start) straight to its servers must not need it."""
    _no_proxy_environment(monkeypatch)
    path = tmp_path / "sat.csv"
    path.write_bytes(b"a,b\n1,2\n")
    script = f"""
import sys
from runway_client import RunwayClient
client = RunwayClient({sandbox.runway_base_url!r}, {sandbox.auth_base_url!r},
                      {sandbox.client_id!r}, {sandbox.client_secret!r}, {sandbox.partner_code!r})
receipt = client.load_files(tenant_code="ea", bundle_name="assessments/PSAT_SAT",
                            input_files={{"INPUT_FILE": {str(path)!r}}}, school_year="2526",
                            bundle_params={{"TEST_TYPE": "SAT"}})
print(receipt.job_uid, "requests" in sys.modules, "urllib3" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    uid, requests_loaded, urllib3_loaded = done.stdout.split()
    assert sandbox.job(uid).started
    assert (requests_loaded, urllib3_loaded) == ("False", "False")


def test_a_cancel_while_waiting_for_the_answer_ends_the_upload_soon(
    peer: Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small body sits whole in the kernel's buffers at once: the cancel must be
    seen while the answer is awaited, not when (if ever) it comes."""
    _no_proxy_environment(monkeypatch)
    peer.mode = "stall"  # reads the body, answers nothing for 2 s, closes
    path = tmp_path / "small.csv"
    path.write_bytes(b"a,b\n" * 1000)
    source = check_input_file("K", path).unwrap()
    stop = threading.Event()
    cancelled = NetworkError("stopped by the caller", step="upload")
    counts: list[int] = []

    def on_sent(count: int) -> None:
        counts.append(count)
        if stop.is_set():
            raise cancelled

    timer = threading.Timer(0.3, stop.set)
    timer.start()
    began = time.monotonic()
    with open_upload_body(source).unwrap() as body:
        error = (
            transport(read_timeout=10)
            .put(
                f"http://127.0.0.1:{peer.port}/b/k",
                body,
                headers={},
                step="upload",
                on_sent=on_sent,
            )
            .failure()
        )
    took = time.monotonic() - began
    timer.cancel()
    assert error is cancelled
    assert took < 1.5, took  # the peer would not close before 2 s, nor time out before 10
    assert sum(counts) == 4000  # every byte was sent before the wait
    assert 0 in counts  # polled while waiting


def _answer_once(answer: bytes, host: str = "127.0.0.1", port: int = 0) -> tuple[int, list[bytes]]:
    """A peer on ``host:port`` that reads one request head, sends ``answer``, waits a
    little and closes; its port and the heads it received."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family)
    heads: list[bytes] = []

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                heads.append(data.partition(b"\r\n\r\n")[0])
                conn.sendall(answer)
                time.sleep(0.3)

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], heads


@pytest.mark.parametrize("close", [False, True])
def test_a_half_written_answer_is_a_network_error_not_a_shorter_body(
    monkeypatch: pytest.MonkeyPatch, close: bool
) -> None:
    """An answer whose body ends before its Content-Length is broken off (requests
    said so too): taking its first bytes as the whole answer would misread it."""
    _no_proxy_environment(monkeypatch)
    connection = b"Connection: close\r\n" if close else b""
    port, _ = _answer_once(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n" + connection + b'\r\n{"a": 1}'
    )
    made = transport()
    request = HttpRequest(method="POST", url=f"http://127.0.0.1:{port}/api/v1/jobs/u/start")
    error = made.send(request, step="start").failure()
    assert type(error) is NetworkError
    assert "broke off" in error.message
    assert error.request_sent
    made.close()


def test_an_api_url_with_non_ascii_characters_is_sent_percent_encoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """make_config accepts a base URL with non-ASCII characters; requests sent it
    percent-encoded (UTF-8) and so must the direct path, not raise out of send."""
    _no_proxy_environment(monkeypatch)
    port, heads = _answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    made = transport()
    request = HttpRequest(method="GET", url=f"http://127.0.0.1:{port}/\u00e9t\u00e9 x/api/v1/a")
    assert made.send(request, step="list_output_sets").unwrap().body == b"{}"
    assert heads[0].split(b"\r\n")[0] == b"GET /%C3%A9t%C3%A9%20x/api/v1/a HTTP/1.1"
    made.close()


def test_an_ipv6_url_without_a_port_goes_to_the_default_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``http://[::1]/``: the port is 80, the host ::1 (http.client, given no port,
    would read ``::1``'s last group as a port and look up the host ':')."""
    _no_proxy_environment(monkeypatch)
    try:
        _, heads = _answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "::1", 80)
    except OSError as exc:  # no IPv6, port 80 taken or not ours to bind
        pytest.skip(f"cannot listen on [::1]:80: {exc}")
    made = transport()
    request = HttpRequest(method="GET", url="http://[::1]/api/v1/a")
    assert made.send(request, step="list_output_sets").unwrap().body == b"{}"
    assert header_lines(heads[0])["host"] == "[::1]"
    made.close()


def test_a_repeated_answer_header_keeps_every_value_joined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """requests joined a repeated header's values with ", " (RFC 9110 5.3); the direct
    path kept only the last one."""
    _no_proxy_environment(monkeypatch)
    port, _ = _answer_once(
        b'HTTP/1.1 429 Too Many Requests\r\nWarning: 199 - "a"\r\nwarning: 199 - "b"\r\n'
        b"Content-Length: 2\r\n\r\n{}"
    )
    made = transport()
    request = HttpRequest(method="POST", url=f"http://127.0.0.1:{port}/api/v1/jobs/u/start")
    answer = made.send(request, step="start").unwrap()
    assert answer.headers["warning"] == '199 - "a", 199 - "b"'
    made.close()


@pytest.mark.parametrize("value", ["Bearer s3cr3t-t0ken\n", "Bearer s3cr3t-t0ken\r\nX-Evil: 1"])
def test_a_header_http_refuses_is_a_failure_that_does_not_quote_the_token(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A token with a line break (a custom token source reading a file, say) made
    http.client raise a ValueError quoting the whole header, token included, out of
    send; it is a ProtocolError saying nothing was sent, and the token stays out."""
    _no_proxy_environment(monkeypatch)
    port, heads = _answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    made = transport()
    request = HttpRequest(
        method="POST",
        url=f"http://127.0.0.1:{port}/api/v1/jobs",
        headers=(("Authorization", value),),
        body=b"{}",
    )
    error = made.send(request, step="create_job").failure()
    assert type(error).__name__ == "ProtocolError"
    assert not error.request_sent
    assert "s3cr3t" not in str(error)
    assert "s3cr3t" not in repr(error)
    assert heads == []  # nothing reached the server
    made.close()


@pytest.mark.parametrize("host", ["x" * 64 + ".invalid", "a..b.invalid"])
def test_a_host_name_that_cannot_be_encoded_is_a_failure_saying_nothing_was_sent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str
) -> None:
    """make_config takes https://a..b.example (a typo): the IDNA codec refuses it
    before any lookup. requests made that a Failure; the direct path raised
    UnicodeError out of send (and out of put)."""
    _no_proxy_environment(monkeypatch)
    made = transport()
    request = HttpRequest(method="POST", url=f"https://{host}/api/v1/jobs", body=b"{}")
    error = made.send(request, step="create_job").failure()
    assert isinstance(error, NetworkError)
    assert not error.request_sent
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\n1,2\n")
    with open_upload_body(check_input_file("K", path).unwrap()).unwrap() as body:
        put = made.put(f"https://{host}/b/k?X-Amz-Signature=s", body, headers={}, step="upload")
    assert isinstance(put.failure(), NetworkError)
    assert not put.failure().request_sent
    made.close()
