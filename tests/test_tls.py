"""TLS: verification is on; ``verify=`` (a CA bundle path) is honoured even when
``REQUESTS_CA_BUNDLE`` is set; plain http only for loopback hosts unless allowed.

A throwaway certificate authority and a server certificate for 127.0.0.1/localhost
are made at test time (with ``cryptography`` when importable, else the ``openssl``
command); a minimal token endpoint is served over HTTPS on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from returns.result import Failure, Result, Success

from runway_client import RunwayClient, _transport, make_config
from runway_client._config import RunwayConfig
from runway_client._errors import InputError, NetworkError, RunwayError
from runway_client._files import check_input_file, open_upload_body
from runway_client._models import Job, JobSpec, SchoolYear, Token
from runway_client._steps import authorize, upload_file
from runway_client._transport import RequestsTransport
from runway_client.cli import main

SCOPES = ("create:jobs", "partner:ea")
CLIENT_SECRET = "tls-test-client-secret-7f3a9"
ACCESS_TOKEN = "abc.def.ghi"
TIMEOUT = 5.0


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pki:
    """PEM files: the throwaway CA, the server's chain and key, and an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path


def _make_with_cryptography(folder: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    def make_ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(name(common))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = make_ca("runway-client test CA")
    _, other_cert = make_ca("an unrelated test CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        other_ca=folder / "other-ca.pem",
    )
    pki.ca.write_bytes(pem(ca_cert))
    pki.other_ca.write_bytes(pem(other_cert))
    pki.server_cert.write_bytes(pem(server_cert))
    pki.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


def _make_with_openssl(openssl: str, folder: Path) -> Pki:
    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    pki = Pki(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        other_ca=folder / "other-ca.pem",
    )
    ca_key, other_key, csr = folder / "ca.key", folder / "other-ca.key", folder / "server.csr"
    for key, cert, common in (
        (ca_key, pki.ca, "runway-client test CA"),
        (other_key, pki.other_ca, "an unrelated test CA"),
    ):
        run(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", f"/CN={common}",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )  # fmt: skip
    run(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(pki.server_key), "-out", str(csr), "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    extensions = folder / "server.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
    )
    run(
        "x509", "-req", "-in", str(csr), "-CA", str(pki.ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(pki.server_cert), "-days", "1",
        "-extfile", str(extensions),
    )  # fmt: skip
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    folder = tmp_path_factory.mktemp("pki")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("neither the cryptography package nor the openssl command is available")
        return _make_with_openssl(openssl, folder)
    return _make_with_cryptography(folder)


# ---------------------------------------------------------------- an HTTPS token endpoint


@dataclass
class Seen:
    """What the HTTPS server saw: request lines and bodies, and failed handshakes."""

    requests: list[tuple[str, bytes]] = field(default_factory=list)
    failed_handshakes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _TlsServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.seen.lock:
            self.server.seen.requests.append((self.path, body))
        if self.path == "/oauth/token":
            status = 200
            data = json.dumps(
                {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600}
            ).encode()
        elif self.path == "/api/v1/token/verify":
            status, data = 201, json.dumps("Token is valid for partner: ea").encode()
        else:
            status, data = 404, b'{"statusCode": 404, "message": "Not found"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        """An S3-like PUT: exactly Content-Length bytes (never chunked), ETag = quoted MD5."""
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.send_response(501)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.seen.lock:
            self.server.seen.requests.append((self.path, body))
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')  # noqa: S324 - as S3
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Log nothing."""


class _TlsServer(http.server.ThreadingHTTPServer):
    """Accepts plain TCP and does the TLS handshake in the request's thread, so a
    client that refuses the certificate costs one recorded failure, not a traceback."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, seen: Seen) -> None:
        self.context = context
        self.seen = seen
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        request.settimeout(TIMEOUT)
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            with self.seen.lock:
                self.seen.failed_handshakes.append(type(exc).__name__)
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore a client that hangs up."""


@dataclass(frozen=True)
class HttpsPeer:
    port: int
    seen: Seen

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def runway_base_url(self) -> str:
        return f"{self.origin}/api/v1"

    def token_bodies(self) -> list[bytes]:
        with self.seen.lock:
            return [body for path, body in self.seen.requests if path == "/oauth/token"]


@pytest.fixture
def https_peer(pki: Pki) -> Iterator[HttpsPeer]:
    """A token endpoint (and ``/api/v1/token/verify``) over HTTPS on 127.0.0.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server = _TlsServer(context, Seen())
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield HttpsPeer(port=server.server_address[1], seen=server.seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _config(peer: HttpsPeer, **changes: object) -> RunwayConfig:
    settings: dict[str, object] = {
        "runway_base_url": peer.runway_base_url,
        "auth_base_url": peer.origin,
        "client_id": "tls-client",
        "client_secret": CLIENT_SECRET,
        "partner_code": "ea",
        "connect_timeout": TIMEOUT,
        "read_timeout": TIMEOUT,
    }
    settings.update(changes)
    return make_config(**settings).unwrap()  # type: ignore[arg-type]


def _authorize(config: RunwayConfig) -> Result[Token, RunwayError]:
    transport = RequestsTransport(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        verify=config.verify,
    )
    try:
        outcome = authorize(transport, config, SCOPES)
    finally:
        transport.close()
    return outcome


def _client(peer: HttpsPeer, **changes: object) -> RunwayClient:
    return RunwayClient(
        runway_base_url=peer.runway_base_url,
        auth_base_url=peer.origin,
        client_id="tls-client",
        client_secret=CLIENT_SECRET,
        partner_code="ea",
        connect_timeout=TIMEOUT,
        read_timeout=TIMEOUT,
        **changes,  # type: ignore[arg-type]
    )


def _assert_refused_for_tls(error: RunwayError, peer: HttpsPeer) -> None:
    assert isinstance(error, NetworkError), repr(error)
    assert error.step == "authorize"
    assert error.code == "tls"
    assert "TLS" in error.message
    assert "verify=" in error.message
    assert error.request_sent is False
    assert peer.token_bodies() == []  # the client secret never left the client
    assert CLIENT_SECRET not in str(error)


# ---------------------------------------------------------------- verification


def test_the_default_refuses_a_server_whose_ca_is_not_trusted(https_peer: HttpsPeer) -> None:
    config = _config(https_peer)
    assert config.verify is True

    outcome = _authorize(config)

    assert isinstance(outcome, Failure)
    _assert_refused_for_tls(outcome.failure(), https_peer)


def test_the_client_refuses_it_too_and_raises(https_peer: HttpsPeer) -> None:
    with _client(https_peer) as client:
        token = client.token_cache(SCOPES)
        assert isinstance(token, Failure)
        _assert_refused_for_tls(token.failure(), https_peer)
        with pytest.raises(NetworkError) as caught:
            client.verify_token()
    _assert_refused_for_tls(caught.value, https_peer)


def test_a_tls_failure_is_not_retried(https_peer: HttpsPeer) -> None:
    outcome = _authorize(_config(https_peer))
    assert isinstance(outcome, Failure)
    # Retrying cannot fix a certificate; one handshake only (the server records it in
    # its own thread, so give it a moment).
    for _ in range(100):
        with https_peer.seen.lock:
            if https_peer.seen.failed_handshakes:
                break
        threading.Event().wait(0.01)
    with https_peer.seen.lock:
        assert len(https_peer.seen.failed_handshakes) == 1


def test_verify_with_our_ca_bundle_succeeds(https_peer: HttpsPeer, pki: Pki) -> None:
    config = _config(https_peer, verify=str(pki.ca))
    assert config.verify == str(pki.ca)

    outcome = _authorize(config)

    assert isinstance(outcome, Success), outcome
    assert outcome.unwrap().access_token.reveal() == ACCESS_TOKEN
    [body] = https_peer.token_bodies()
    assert b"client_secret=" in body


def test_the_client_with_our_ca_bundle_gets_a_token(https_peer: HttpsPeer, pki: Pki) -> None:
    with _client(https_peer, verify=str(pki.ca)) as client:
        token = client.token_cache(SCOPES).unwrap()
        partners = client.verify_token()
    assert token.access_token.reveal() == ACCESS_TOKEN
    assert partners == ("ea",)


def test_localhost_matches_the_certificate_too(https_peer: HttpsPeer, pki: Pki) -> None:
    origin = f"https://localhost:{https_peer.port}"
    config = make_config(
        runway_base_url=f"{origin}/api/v1",
        auth_base_url=origin,
        client_id="tls-client",
        client_secret=CLIENT_SECRET,
        partner_code="ea",
        connect_timeout=TIMEOUT,
        read_timeout=TIMEOUT,
        verify=str(pki.ca),
    ).unwrap()
    assert isinstance(_authorize(config), Success)


def test_an_unrelated_ca_bundle_is_refused(https_peer: HttpsPeer, pki: Pki) -> None:
    outcome = _authorize(_config(https_peer, verify=str(pki.other_ca)))
    assert isinstance(outcome, Failure)
    _assert_refused_for_tls(outcome.failure(), https_peer)


# ---------------------------------------------------------------- the environment


def test_requests_ca_bundle_does_not_widen_trust(
    https_peer: HttpsPeer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``REQUESTS_CA_BUNDLE`` does not override ``verify``: with the default
    ``verify=True`` the environment's CA is not trusted."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(pki.ca))

    outcome = _authorize(_config(https_peer))
    assert isinstance(outcome, Failure)
    _assert_refused_for_tls(outcome.failure(), https_peer)

    with _client(https_peer) as client, pytest.raises(NetworkError) as caught:
        client.verify_token()
    _assert_refused_for_tls(caught.value, https_peer)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
@pytest.mark.parametrize("bundle", ["other", "missing"])
def test_verify_wins_over_a_requests_ca_bundle_pointing_elsewhere(
    https_peer: HttpsPeer,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    bundle: str,
) -> None:
    elsewhere = pki.other_ca if bundle == "other" else tmp_path / "no-such-bundle.pem"
    monkeypatch.setenv(variable, str(elsewhere))

    outcome = _authorize(_config(https_peer, verify=str(pki.ca)))
    assert isinstance(outcome, Success), outcome

    with _client(https_peer, verify=str(pki.ca)) as client:
        assert client.token_cache(SCOPES).unwrap().access_token.reveal() == ACCESS_TOKEN


def test_the_cli_honours_ca_bundle_and_not_the_environment(
    https_peer: HttpsPeer,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for variable in ("RUNWAY_TOKEN_URL",):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("RUNWAY_BASE_URL", https_peer.runway_base_url)
    monkeypatch.setenv("RUNWAY_AUTH_BASE_URL", https_peer.origin)
    monkeypatch.setenv("RUNWAY_CLIENT_ID", "tls-client")
    monkeypatch.setenv("RUNWAY_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("RUNWAY_PARTNER", "ea")

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    assert main(["verify", "--connect-timeout", "5", "--read-timeout", "5"]) == 11
    out, err = capsys.readouterr()
    assert out == ""
    assert "NetworkError" in err
    assert "TLS" in err
    assert "verify=" in err
    assert CLIENT_SECRET not in err
    assert https_peer.token_bodies() == []

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.other_ca))
    assert main(["verify", "--ca-bundle", str(pki.ca)]) == 0
    out, err = capsys.readouterr()
    assert "partners: ea" in out
    assert err == ""


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("verify", [False, "", "   ", None, 0, "/no/such/ca-bundle.pem"])
def test_verify_must_be_true_or_an_existing_ca_bundle(verify: object) -> None:
    outcome = make_config(
        runway_base_url="https://api.x-prod.runwayloader.org/api/v1",
        auth_base_url="https://x.prod.us.auth0.com",
        client_id="id",
        client_secret="s",
        partner_code="ea",
        verify=verify,  # type: ignore[arg-type]
    )
    assert isinstance(outcome, Failure)
    error = outcome.failure()
    assert isinstance(error, InputError)
    assert any(problem.startswith("verify") for problem in error.problems), error.problems
    with pytest.raises(InputError):
        RunwayClient(
            runway_base_url="https://api.x-prod.runwayloader.org/api/v1",
            auth_base_url="https://x.prod.us.auth0.com",
            client_id="id",
            client_secret="s",
            partner_code="ea",
            verify=verify,  # type: ignore[arg-type]
        )


def test_verify_false_says_how_to_trust_a_private_ca() -> None:
    outcome = make_config(
        runway_base_url="https://api.x-prod.runwayloader.org/api/v1",
        auth_base_url="https://x.prod.us.auth0.com",
        client_id="id",
        client_secret="s",
        partner_code="ea",
        verify=False,  # type: ignore[arg-type]  # refused by the type too
    )
    assert isinstance(outcome, Failure)
    assert "verify=<CA bundle path>" in outcome.failure().message


_REMOTE = {
    "runway_base_url": "https://api.x-prod.runwayloader.org/api/v1",
    "auth_base_url": "https://x.prod.us.auth0.com",
}


@pytest.mark.parametrize(
    ("setting", "url"),
    [
        ("runway_base_url", "http://runway.example.org/api/v1"),
        ("runway_base_url", "http://10.0.0.5:8080/api/v1"),
        ("runway_base_url", "http://[2001:db8::1]/api/v1"),
        ("auth_base_url", "http://auth.example.org"),
        ("token_url", "http://idp.example.org/realms/r/protocol/openid-connect/token"),
    ],
)
def test_plain_http_to_a_remote_host_needs_allow_http(setting: str, url: str) -> None:
    settings: dict[str, object] = {
        **_REMOTE,
        "client_id": "id",
        "client_secret": "s",
        "partner_code": "ea",
    }
    if setting == "token_url":
        del settings["auth_base_url"]
    settings[setting] = url

    refused = make_config(**settings)  # type: ignore[arg-type]
    assert isinstance(refused, Failure)
    error = refused.failure()
    assert isinstance(error, InputError)
    assert any("must use https" in p and "allow_http=True" in p for p in error.problems)

    not_quite = make_config(**settings, allow_http="yes")  # type: ignore[arg-type]
    assert isinstance(not_quite, Failure)  # only True allows it

    allowed = make_config(**settings, allow_http=True)  # type: ignore[arg-type]
    assert isinstance(allowed, Success), allowed
    assert allowed.unwrap().allow_http is True


def test_the_client_refuses_plain_http_to_a_remote_host_without_sending() -> None:
    with pytest.raises(InputError, match="must use https"):
        RunwayClient(
            runway_base_url="http://runway.example.org/api/v1",
            auth_base_url="https://x.prod.us.auth0.com",
            client_id="id",
            client_secret="s",
            partner_code="ea",
        )
    client = RunwayClient(
        runway_base_url="http://runway.example.org/api/v1",
        auth_base_url="https://x.prod.us.auth0.com",
        client_id="id",
        client_secret="s",
        partner_code="ea",
        allow_http=True,
    )
    client.close()
    assert client.config.allow_http is True


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:8080", "http://127.1.2.3", "http://localhost:9", "http://[::1]:8080"],
)
def test_plain_http_to_loopback_is_fine(origin: str) -> None:
    config = make_config(
        runway_base_url=f"{origin}/api/v1",
        auth_base_url=origin,
        client_id="id",
        client_secret="s",
        partner_code="ea",
    )
    assert isinstance(config, Success), config
    assert config.unwrap().allow_http is False


# ---------------------------------------------------------------- uploads over TLS


def _tls_job(path: Path, url: str) -> Job:
    spec = JobSpec(
        partner="ea",
        tenant="ea",
        bundle="assessments/MAP_Growth",
        school_year=SchoolYear(end_year=2026),
        files=(check_input_file("INPUT_FILE", path).unwrap(),),
    )
    return Job(
        uid="tls-job",
        upload_urls={"INPUT_FILE": url},
        spec=spec,
        created_at=dt.datetime.now(dt.UTC),
    )


def test_an_upload_over_tls_goes_from_the_file_to_the_verified_server(
    https_peer: HttpsPeer, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_transport, "TLS_WRITE_BYTES", 1024 * 1024)  # several writes
    ways: list[str] = []
    real = _transport._send_tls

    def spy(*args: object) -> None:
        ways.append("tls")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_transport, "_send_tls", spy)
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    target = "/bucket/INPUT_FILE/big.bin?X-Amz-Signature=ab%2Fcd"
    job = _tls_job(path, f"{https_peer.origin}{target}")
    transport = RequestsTransport(connect_timeout=TIMEOUT, read_timeout=TIMEOUT, verify=str(pki.ca))
    try:
        receipt = upload_file(transport, job, "INPUT_FILE", verify_etag=True).unwrap()
    finally:
        transport.close()
    assert ways == ["tls"]
    assert https_peer.seen.requests == [(target, data)]
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    assert receipt.etag == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324


def test_an_upload_to_a_server_of_another_ca_is_a_tls_error_before_any_byte(
    https_peer: HttpsPeer, pki: Pki, tmp_path: Path
) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\n1,2\n")
    job = _tls_job(path, f"{https_peer.origin}/bucket/k?X-Amz-Signature=s3cr3tsig")
    transport = RequestsTransport(
        connect_timeout=TIMEOUT, read_timeout=TIMEOUT, verify=str(pki.other_ca)
    )
    try:
        error = upload_file(transport, job, "INPUT_FILE").failure()
    finally:
        transport.close()
    assert isinstance(error, NetworkError)
    assert error.code == "tls"
    assert not error.request_sent
    assert error.job_uid == "tls-job"
    assert "s3cr3tsig" not in str(error)
    assert https_peer.seen.requests == []


@dataclass
class _StallingTls:
    """A TLS peer that reads a request head, then reads nothing for ``stall`` seconds
    (the client's socket fills up) and then, if it is still there, the whole body,
    answering 200 with the body's MD5 as the ETag."""

    port: int
    stall: float
    bodies: list[bytes] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def stalling_tls(pki: Pki, request: pytest.FixtureRequest) -> Iterator[_StallingTls]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    peer = _StallingTls(port=listener.getsockname()[1], stall=request.param)

    def serve() -> None:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        raw.settimeout(20)
        try:
            with context.wrap_socket(raw, server_side=True) as conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
                peer.done.wait(peer.stall)
                while len(body) < length:
                    chunk = conn.recv(1024 * 1024)
                    if not chunk:
                        return
                    body += chunk
                peer.bodies.append(body)
                etag = hashlib.md5(body).hexdigest()  # noqa: S324 - as S3
                conn.sendall(
                    f'HTTP/1.1 200 OK\r\nETag: "{etag}"\r\nContent-Length: 0\r\n\r\n'.encode()
                )
        except (OSError, ssl.SSLError):
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield peer
    peer.done.set()
    listener.close()
    thread.join(timeout=25)


@pytest.mark.parametrize("stalling_tls", [10.0], indirect=True)
def test_a_cancel_while_tls_storage_takes_no_bytes_ends_the_upload_soon(
    stalling_tls: _StallingTls, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS (S3's presigned URLs are https) a cancel must be seen while the socket
    has no room, as over plain HTTP, not after read_timeout seconds of silence."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(32 * 1024 * 1024))
    source = check_input_file("K", path).unwrap()
    stop = threading.Event()
    cancelled = NetworkError("stopped by the caller", step="upload")

    def on_sent(count: int) -> None:
        if stop.is_set():
            raise cancelled

    timer = threading.Timer(0.5, stop.set)
    timer.start()
    transport = RequestsTransport(connect_timeout=TIMEOUT, read_timeout=8.0, verify=str(pki.ca))
    began = time.monotonic()
    with open_upload_body(source).unwrap() as body:
        error = transport.put(
            f"https://127.0.0.1:{stalling_tls.port}/b/k",
            body,
            headers={},
            step="upload",
            on_sent=on_sent,
        ).failure()
    took = time.monotonic() - began
    timer.cancel()
    transport.close()
    assert error is cancelled
    assert took < 4.0, took  # the peer reads nothing for 10 s; the read timeout is 8 s


@pytest.mark.parametrize("stalling_tls", [1.0], indirect=True)
def test_a_tls_upload_that_waits_for_room_sends_every_byte_once(
    stalling_tls: _StallingTls, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes interrupted to poll (``on_sent(0)``) while the peer takes nothing go on
    where they stopped: storage gets the file's bytes, each once, in order."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    data = os.urandom(8 * 1024 * 1024 + 5)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    source = check_input_file("K", path).unwrap()
    counts: list[int] = []
    transport = RequestsTransport(connect_timeout=TIMEOUT, read_timeout=8.0, verify=str(pki.ca))
    with open_upload_body(source).unwrap() as body:
        answer = transport.put(
            f"https://127.0.0.1:{stalling_tls.port}/b/k",
            body,
            headers={},
            step="upload",
            on_sent=counts.append,
        ).unwrap()
    transport.close()
    assert answer.status == 200
    assert stalling_tls.bodies == [data]
    assert sum(counts) == len(data)
    assert 0 in counts  # polled while the peer took nothing
