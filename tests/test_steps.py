"""Each step over real HTTP against the sandbox, and every 4xx of CONTRACT.md mapped to its kind."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from returns.result import Success

from runway_client._config import RunwayConfig, make_config
from runway_client._errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    RunwayError,
    StorageError,
    UploadExpiredError,
)
from runway_client._models import Job, JobSpec, SchoolYear, Token, UploadedJob
from runway_client._pipeline import load_files, prepare_job
from runway_client._redaction import Secret
from runway_client._steps import authorize, create_job, start, upload
from runway_client._transport import RequestsTransport
from runway_client.sandbox import Sandbox
from runway_client.wire import load_scopes


@pytest.fixture
def net() -> Iterator[RequestsTransport]:
    made = RequestsTransport(connect_timeout=5, read_timeout=30)
    yield made
    made.close()


def config_for(sb: Sandbox, **changes: str) -> RunwayConfig:
    settings = {
        "runway_base_url": sb.runway_base_url,
        "auth_base_url": sb.auth_base_url,
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
        "partner_code": sb.partner_code,
        **changes,
    }
    return make_config(**settings).unwrap()  # type: ignore[arg-type]


def token_of(raw: str) -> Token:
    return Token(access_token=Secret(raw), token_type="Bearer", expires_at=time.time() + 600)


def spec_for(path: Path, **changes: object) -> JobSpec:
    settings: dict[str, object] = {
        "partner_code": "ea",
        "tenant_code": "ea",
        "bundle_name": "assessments/PSAT_SAT",
        "school_year": "2526",
        "input_files": {"INPUT_FILE": path},
        "bundle_params": {"TEST_TYPE": "SAT"},
        **changes,
    }
    return prepare_job(**settings).unwrap()  # type: ignore[arg-type]


def good_token(sb: Sandbox, net: RequestsTransport) -> Token:
    return authorize(net, config_for(sb), load_scopes("ea")).unwrap()


# ---------------------------------------------------------------- the happy path, step by step


def test_the_four_steps_load_a_file_that_the_server_stores_byte_for_byte(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    cfg = config_for(sandbox)
    token = authorize(net, cfg, load_scopes("ea")).unwrap()
    assert set(token.scope) >= {"create:jobs", "partner:ea"}
    job = create_job(net, cfg, token, spec_for(sat_csv)).unwrap()
    assert sandbox.job(job.uid).files == {"INPUT_FILE": "sat.csv"}
    uploaded = upload(net, job).unwrap()
    (receipt,) = uploaded.receipts
    data = sat_csv.read_bytes()
    assert receipt.bytes == len(data)
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    assert receipt.etag == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324 - S3's ETag is MD5
    assert sandbox.object_path(job.uid, "INPUT_FILE").read_bytes() == data
    assert not sandbox.job(job.uid).started
    load = start(net, cfg, token, uploaded).unwrap()
    assert sandbox.job(job.uid).started
    assert load.job_uid == job.uid
    assert load.school_year == "2026"
    assert load.started_at >= load.created_at


def test_load_files_flow_composes_the_steps(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    receipt = load_files(net, config_for(sandbox), spec_for(sat_csv)).unwrap()
    (job,) = sandbox.jobs()
    assert job.uid == receipt.job_uid
    assert job.started
    assert job.school_year == "2026"
    assert job.params == {"TEST_TYPE": "SAT"}
    assert job.uploaded_sha256 == {"INPUT_FILE": receipt.files[0].sha256}


def test_a_bundle_with_several_files_uploads_each(
    sandbox: Sandbox, net: RequestsTransport, tmp_path: Path
) -> None:
    paths = {}
    for key in ("INPUT_FILE", "INPUT_FILE_DS", "INPUT_FILE_SA"):
        paths[key] = tmp_path / f"{key.lower()} star.csv"
        paths[key].write_bytes(key.encode() * 1000)
    spec = spec_for(
        paths["INPUT_FILE"], bundle_name="assessments/STAR", input_files=paths, bundle_params={}
    )
    receipt = load_files(net, config_for(sandbox), spec).unwrap()
    job = sandbox.job(receipt.job_uid)
    assert job.uploaded_bytes == {key: len(key) * 1000 for key in paths}
    assert job.files["INPUT_FILE_DS"] == "input_file_ds star.csv"


# ---------------------------------------------------------------- token endpoint errors


def test_a_wrong_client_secret_is_an_authentication_error(
    sandbox: Sandbox, net: RequestsTransport
) -> None:
    error = authorize(
        net, config_for(sandbox, client_secret="wrong-secret-0000"), load_scopes("ea")
    ).failure()
    assert isinstance(error, AuthenticationError)
    assert error.step == "authorize"
    assert "wrong-secret-0000" not in str(error)


def test_scopes_the_client_was_not_granted_are_refused(
    sandbox: Sandbox, net: RequestsTransport
) -> None:
    error = authorize(net, config_for(sandbox, partner_code="zz"), load_scopes("zz")).failure()
    assert isinstance(error, PermissionDeniedError)
    assert "partner:zz" in error.message


def test_a_wrong_audience_is_refused(sandbox: Sandbox, net: RequestsTransport) -> None:
    cfg = make_config(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        audience="https://runway.invalid",
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code="ea",
    ).unwrap()
    error = authorize(net, cfg, load_scopes("ea")).failure()
    assert isinstance(error, PermissionDeniedError)
    assert "Service not found" in error.message


# ---------------------------------------------------------------- POST /jobs errors, in CONTRACT.md's order


def rejected(
    sb: Sandbox, net: RequestsTransport, spec: JobSpec, token: Token | None = None
) -> RunwayError:
    outcome = create_job(net, config_for(sb), token or good_token(sb, net), spec)
    assert not isinstance(outcome, Success)
    assert sb.jobs() == ()
    error = outcome.failure()
    assert error.step == "create_job"
    assert error.job_uid is None
    return error


def test_body_shape_errors_come_back_as_the_servers_list(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    from msgspec.structs import replace

    spec = replace(
        spec_for(sat_csv), school_year=SchoolYear(end_year=20260)
    )  # bypasses local checks
    error = rejected(sandbox, net, spec)
    assert isinstance(error, RequestRejectedError)
    assert error.status == 400
    assert error.server_message == (
        'School year must be a 4-digit end year, e.g. "2026" for the 2025-2026 school year',
    )


def test_a_token_without_client_id_is_refused(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    token = token_of(sandbox.issue_token("create:jobs partner:ea", client_id_claim=False))
    error = rejected(sandbox, net, spec_for(sat_csv), token)
    assert isinstance(error, PermissionDeniedError)
    assert error.server_message == "Token must include a client_id or azp claim"


def test_a_partner_outside_the_token_is_refused(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    error = rejected(sandbox, net, spec_for(sat_csv, partner_code="other"))
    assert isinstance(error, PermissionDeniedError)
    assert error.server_message == "Invalid partner code: other"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tenant_code": "nope"}, "Invalid tenant. ea/nope does not exist"),
        (
            {"bundle_name": "assessments/NOPE"},
            "Bundle not found or not enabled for partner: assessments/NOPE",
        ),
        ({"school_year": "2031"}, "School year is not enabled: 2031"),
        ({"bundle_params": {}}, "Missing required params: TEST_TYPE"),
        ({"bundle_params": {"TEST_TYPE": "ACT"}}, "Invalid param values: TEST_TYPE"),
        ({"bundle_params": {"TEST_TYPE": "SAT", "COLOR": "red"}}, "Unexpected params: COLOR"),
    ],
)
def test_each_validation_rule_is_a_request_rejected_error_with_the_servers_words(
    sandbox: Sandbox,
    net: RequestsTransport,
    sat_csv: Path,
    changes: dict[str, object],
    message: str,
) -> None:
    error = rejected(sandbox, net, spec_for(sat_csv, **changes))
    assert isinstance(error, RequestRejectedError)
    assert error.status == 400
    assert error.server_message == message
    assert message in str(error)


def test_an_unknown_school_year_is_rejected_by_the_server(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    from msgspec.structs import replace

    spec = replace(
        spec_for(sat_csv), school_year=SchoolYear(end_year=2526)
    )  # what "2526" sent raw would mean
    error = rejected(sandbox, net, spec)
    assert error.server_message == "Invalid school year: 2526"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"INPUT_FILE": "a", "EXTRA": "b"}, "Unexpected files: EXTRA"),
        ({"INPUT_FILE_DS": "a"}, "Missing required files: INPUT_FILE"),
    ],
)
def test_file_key_rules(
    sandbox: Sandbox, net: RequestsTransport, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    paths = {}
    for key, name in files.items():
        paths[key] = tmp_path / name
        paths[key].write_text("x")
    spec = spec_for(
        tmp_path / "a", bundle_name="assessments/STAR", input_files=paths, bundle_params={}
    )
    assert rejected(sandbox, net, spec).server_message == message


@pytest.mark.parametrize(
    ("raw", "kind", "message"),
    [
        ("not-a-jwt", AuthenticationError, "Invalid token"),
        ("", AuthenticationError, "No token"),
        ("expired", AuthenticationError, "Invalid token"),
        ("read-only", PermissionDeniedError, "Insufficient scopes"),
        ("no-scope", PermissionDeniedError, "Token missing scope claim"),
    ],
)
def test_bad_tokens_map_to_kinds(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path, raw: str, kind: type, message: str
) -> None:
    tokens = {
        "expired": lambda: sandbox.issue_token("create:jobs partner:ea", lifetime=-10),
        "read-only": lambda: sandbox.issue_token("read:jobs partner:ea"),
        "no-scope": lambda: sandbox.issue_token("create:jobs partner:ea", include_scope=False),
    }
    value = tokens[raw]() if raw in tokens else raw
    error = rejected(sandbox, net, spec_for(sat_csv), token_of(value))
    assert type(error) is kind
    assert error.server_message == message
    if value:
        assert value not in str(error)
        assert value not in repr(error)


# ---------------------------------------------------------------- upload and start errors


def made_job(sb: Sandbox, net: RequestsTransport, path: Path) -> tuple[Token, Job]:
    token = good_token(sb, net)
    return token, create_job(net, config_for(sb), token, spec_for(path)).unwrap()


def test_a_tampered_upload_url_is_a_storage_error_naming_the_job(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    from msgspec.structs import replace

    _token, job = made_job(sandbox, net, sat_csv)
    url = job.upload_urls["INPUT_FILE"]
    tampered = replace(
        job, upload_urls={"INPUT_FILE": url[:-4] + ("0000" if not url.endswith("0000") else "1111")}
    )
    error = upload(net, tampered).failure()
    assert isinstance(error, StorageError)
    assert error.code == "SignatureDoesNotMatch"
    assert error.job_uid == job.uid
    assert url.rsplit("=", 1)[1] not in str(error)


def test_an_expired_upload_url_says_a_new_job_is_needed(
    net: RequestsTransport, sat_csv: Path
) -> None:
    with Sandbox(upload_url_lifetime=0.3) as sb:
        _token, job = made_job(sb, net, sat_csv)
        time.sleep(0.6)
        error = upload(net, job).failure()
        assert isinstance(error, UploadExpiredError)  # its own kind, a StorageError too
        assert isinstance(error, StorageError)
        assert error.exit_code == 15
        assert error.code == "AccessDenied"
        assert "Request has expired" in error.message
        assert "create a new job" in error.message
        assert error.job_uid == job.uid
        assert len(sb.jobs()) == 1  # nothing created a second job


def test_a_file_changed_after_the_check_fails_the_upload_naming_the_job(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    _token, job = made_job(sandbox, net, sat_csv)
    sat_csv.write_bytes(b"shorter")
    error = upload(net, job).failure()
    assert error.job_uid == job.uid
    assert "changed size since it was checked" in error.message
    assert sandbox.job(job.uid).uploaded_bytes == {}


def test_starting_without_uploads_is_rejected_with_the_servers_message(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    token, job = made_job(sandbox, net, sat_csv)
    error = start(net, config_for(sandbox), token, UploadedJob(job=job, receipts=())).failure()
    assert isinstance(error, RequestRejectedError)
    assert error.server_message == "Some expected files were not found. Expected files: sat.csv"
    assert error.job_uid == job.uid


def test_starting_twice_is_rejected(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    token, job = made_job(sandbox, net, sat_csv)
    uploaded = upload(net, job).unwrap()
    start(net, config_for(sandbox), token, uploaded).unwrap()
    error = start(net, config_for(sandbox), token, uploaded).failure()
    assert isinstance(error, RequestRejectedError)
    assert error.server_message == f"Job already in progress: {job.uid}"


@pytest.mark.parametrize(
    ("uid", "kind", "message"),
    [
        (str(uuid.UUID(int=7)), NotFoundError, f"Job not found: {uuid.UUID(int=7)}"),
        ("not-a-uuid", RequestRejectedError, "Validation failed (uuid is expected)"),
    ],
)
def test_starting_an_unknown_job(
    sandbox: Sandbox, net: RequestsTransport, sat_csv: Path, uid: str, kind: type, message: str
) -> None:
    token, job = made_job(sandbox, net, sat_csv)
    from msgspec.structs import replace

    ghost = UploadedJob(job=replace(job, uid=uid, created_at=datetime.now(UTC)), receipts=())
    error = start(net, config_for(sandbox), token, ghost).failure()
    assert type(error) is kind
    assert error.server_message == message
    assert error.job_uid == uid


# ---------------------------------------------------------------- issue 11: storage answering early


def test_storage_answering_200_before_the_body_is_sent_is_a_retried_network_error(
    tmp_path: Path,
) -> None:
    """A PUT answered 200 after 100 bytes of 8 MB is storage's fault, tried again."""
    import socket
    import threading

    from runway_client._errors import InputError, NetworkError
    from runway_client._files import check_input_file
    from runway_client._retry import RetryPolicy

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < 100:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                seen.append(len(data))
                conn.sendall(b'HTTP/1.1 200 OK\r\nETag: "e"\r\nContent-Length: 0\r\n\r\n')
                conn.shutdown(socket.SHUT_WR)
                time.sleep(0.2)

    threading.Thread(target=serve, daemon=True).start()
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * (8 * 1024 * 1024))
    source = check_input_file("INPUT_FILE", path).unwrap()
    spec = JobSpec(
        partner="ea",
        tenant="ea",
        bundle="assessments/MAP_Growth",
        school_year=SchoolYear(end_year=2026),
        files=(source,),
    )
    uid = str(uuid.uuid4())
    job = Job(
        uid=uid,
        upload_urls={"INPUT_FILE": f"http://127.0.0.1:{port}/b/k?X-Amz-Signature=s"},
        spec=spec,
        created_at=datetime.now(UTC),
    )
    policy = RetryPolicy(attempts=3, backoff_base=0.001, backoff_cap=0.01)
    transport = RequestsTransport(connect_timeout=5, read_timeout=10)
    try:
        error = upload(transport, job, policy=policy).failure()
    finally:
        listener.close()
        transport.close()
    assert isinstance(error, NetworkError), error
    assert not isinstance(error, InputError)
    assert "after only" in error.message
    assert error.job_uid == uid
    assert error.pending is not None
    assert error.pending.receipts == ()
    assert len(seen) == 3  # tried again like any broken PUT
