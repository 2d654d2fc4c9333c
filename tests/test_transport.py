"""The network edge, against a raw socket peer that records the exact bytes it received."""

from __future__ import annotations

import socket
import threading
import time
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
