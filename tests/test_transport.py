"""The network edge, against a raw socket peer that records the exact bytes it received."""

from __future__ import annotations

import gzip
import http.server
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runway_client._errors import InputError, NetworkError, RequestTimeoutError
from runway_client._files import check_input_file, open_upload_body
from runway_client._transport import HttpRequest, RequestsTransport


@dataclass
class Peer:
    """A one-connection-at-a-time HTTP peer: records request heads and bodies, answers as told."""

    mode: str = "answer"  # answer | stall | close
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
        if self.mode == "close":
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
        if self.mode == "stall":
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
    assert isinstance(error, InputError)
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
t = RequestsTransport(connect_timeout=5, read_timeout=30)
answer = t.send(HttpRequest(method="POST", url=sys.argv[1], body=b"{}"), step="create_job")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
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
    assert int(peak_mib) < 200  # MiB; reading it all took over 2 GB
    assert _Hostile.sent < 256 * 1024**2  # the rest of the page was never read
