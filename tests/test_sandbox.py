"""The sandbox against CONTRACT.md, over real HTTP on loopback (``requests``, no client code)."""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from runway_client.sandbox import Sandbox, SandboxJob

OCTET = {"Content-Type": "application/octet-stream"}
YEAR_FORMAT = 'School year must be a 4-digit end year, e.g. "2026" for the 2025-2026 school year'
TIMEOUT = 10


def _data_dir() -> Path | None:
    for candidate in (
        Path(__file__).resolve().parents[2] / "shared" / "runway-data",
        Path(os.environ.get("RUNWAY_DATA_DIR", "/nonexistent")),
    ):
        if (candidate / "registry.json").is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def fetch_token(sb: Sandbox, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
        "audience": sb.audience,
    }
    form.update(overrides)
    return requests.post(sb.token_url, data=form, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def token(sb: Sandbox) -> str:
    reply = fetch_token(sb)
    assert reply.status_code == 200
    return str(reply.json()["access_token"])


def api(sb: Sandbox, path: str, token: str | None, body: object = None) -> requests.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return requests.post(sb.runway_base_url + path, json=body, headers=headers, timeout=TIMEOUT)


def psat(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "partner": "ea",
        "tenant": "ea",
        "bundle": "assessments/PSAT_SAT",
        "schoolYear": "2026",
        "files": {"INPUT_FILE": "sat.csv"},
        "params": {"TEST_TYPE": "SAT"},
    }
    body.update(overrides)
    return body


def create(sb: Sandbox, token: str, body: object) -> tuple[str, dict[str, str]]:
    reply = api(sb, "/jobs", token, body)
    assert reply.status_code == 201, reply.text
    payload = reply.json()
    return str(payload["uid"]), dict(payload["uploadUrls"])


def put(url: str, data: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.put(url, data=data, headers=OCTET if headers is None else headers, timeout=10)


def s3_code(reply: requests.Response) -> str:
    assert reply.headers["Content-Type"] == "application/xml"
    return reply.text.split("<Code>")[1].split("</Code>")[0]


def expect_error(reply: requests.Response, status: int, message: object) -> None:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["statusCode"] == status
    assert body["message"] == message
    assert isinstance(body["error"], str)


# -- token endpoint ------------------------------------------------------------------------


def test_token_success_has_auth0_shape_and_claims(sb: Sandbox) -> None:
    reply = fetch_token(sb)
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "create:jobs read:jobs read:jobs:output-files partner:ea"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == sb.auth_base_url + "/"
    assert claims["sub"] == f"{sb.client_id}@clients"
    assert claims["aud"] == sb.audience
    assert claims["client_id"] == sb.client_id
    assert claims["gty"] == "client-credentials"
    assert claims["exp"] - claims["iat"] == 3600


def test_token_scope_subset_is_granted(sb: Sandbox) -> None:
    reply = fetch_token(sb, scope="create:jobs partner:ea")
    assert reply.status_code == 200
    assert reply.json()["scope"] == "create:jobs partner:ea"
    claims = jwt.decode(reply.json()["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "create:jobs partner:ea"


def test_sandbox_addresses(sb: Sandbox) -> None:
    assert sb.runway_base_url == sb.audience + "/api/v1"
    assert sb.token_url == sb.auth_base_url + "/oauth/token"
    assert not sb.audience.endswith("/")
    assert sb.audience.startswith("http://127.0.0.1:")
    assert sb.partner_code == "ea"


@pytest.mark.parametrize(
    ("overrides", "status", "error", "description"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type", None),
        ({"client_secret": "wrong"}, 401, "access_denied", "Unauthorized"),
        ({"client_id": ""}, 401, "access_denied", "Unauthorized"),
        ({"client_id": "someone-else"}, 401, "access_denied", "Unauthorized"),
        (
            {"scope": "create:jobs partner:other read:all"},
            403,
            "access_denied",
            "Client has not been granted scopes: partner:other read:all",
        ),
    ],
)
def test_token_errors(
    sb: Sandbox, overrides: dict[str, str], status: int, error: str, description: str | None
) -> None:
    reply = fetch_token(sb, **overrides)
    assert reply.status_code == status
    assert reply.json()["error"] == error
    if description is not None:
        assert reply.json()["error_description"] == description


def test_token_audience_with_trailing_slash_is_not_found(sb: Sandbox) -> None:
    reply = fetch_token(sb, audience=sb.audience + "/")
    assert reply.status_code == 403
    assert reply.json() == {
        "error": "access_denied",
        "error_description": f"Service not found: {sb.audience}/",
    }


def test_token_wants_a_form(sb: Sandbox) -> None:
    form = {"grant_type": "client_credentials", "client_id": sb.client_id}
    reply = requests.post(sb.token_url, json=form, timeout=TIMEOUT)
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_request"


# -- API guard -----------------------------------------------------------------------------


def test_guard_no_token(sb: Sandbox) -> None:
    expect_error(api(sb, "/token/verify", None), 401, "No token")
    reply = requests.post(
        sb.runway_base_url + "/token/verify", headers={"Authorization": "Basic abc"}, timeout=10
    )
    expect_error(reply, 401, "No token")
    assert reply.json()["error"] == "Unauthorized"


def test_guard_invalid_tokens(sb: Sandbox) -> None:
    expect_error(api(sb, "/token/verify", "not.a.jwt"), 401, "Invalid token")
    expired = sb.issue_token("create:jobs partner:ea", lifetime=-5)
    expect_error(api(sb, "/token/verify", expired), 401, "Invalid token")
    with Sandbox() as other:
        foreign = other.issue_token("create:jobs partner:ea")
    expect_error(api(sb, "/token/verify", foreign), 401, "Invalid token")


def test_guard_scopes(sb: Sandbox) -> None:
    no_scope = sb.issue_token("create:jobs", include_scope=False)
    expect_error(api(sb, "/token/verify", no_scope), 403, "Token missing scope claim")
    read_only = sb.issue_token("read:jobs partner:ea")
    expect_error(api(sb, "/jobs", read_only, psat()), 403, "Insufficient scopes")
    assert api(sb, "/jobs", read_only, psat()).json()["error"] == "Forbidden"


def test_unknown_route_and_wrong_method(sb: Sandbox, token: str) -> None:
    assert api(sb, "/nothing", token).status_code == 404
    reply = requests.get(sb.runway_base_url + "/jobs", timeout=TIMEOUT)
    assert reply.status_code == 405
    assert reply.json()["statusCode"] == 405


# -- POST /token/verify ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        ("create:jobs partner:ea", "Token is valid for partner: ea"),
        ("create:jobs partner:a partner:b", "Token is valid for partners: a, b"),
    ],
)
def test_verify_token(sb: Sandbox, scope: str, text: str) -> None:
    """As the real server: 201 ``text/html`` with the bare sentence, not JSON (observed)."""
    reply = api(sb, "/token/verify", sb.issue_token(scope))
    assert reply.status_code == 201
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.text == text


def test_verify_token_without_partners(sb: Sandbox) -> None:
    reply = api(sb, "/token/verify", sb.issue_token("create:jobs"))
    assert reply.status_code == 201
    assert reply.text == (
        "Token is valid for no partners. "
        'No scope of the form "partner:partner-code" was found on the token.'
    )


# -- POST /jobs: validation order ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (psat(schoolYear="2025-2026"), [YEAR_FORMAT]),
        (psat(schoolYear=2026), [YEAR_FORMAT]),
        (psat(schoolYear="26"), [YEAR_FORMAT]),
        (psat(files={"INPUT_FILE": "   "}), ["File names must not be empty"]),
        (psat(files={"INPUT_FILE": None}), ["File names must not be empty"]),
    ],
)
def test_create_job_body_shape(sb: Sandbox, token: str, body: object, message: object) -> None:
    expect_error(api(sb, "/jobs", token, body), 400, message)


def test_create_job_body_shape_reports_every_field(sb: Sandbox, token: str) -> None:
    reply = api(sb, "/jobs", token, psat(partner="", schoolYear="2526x", files={}))
    assert reply.status_code == 400
    message = reply.json()["message"]
    assert isinstance(message, list)
    assert len(message) == 3
    assert YEAR_FORMAT in message


def test_create_job_unparseable_json(sb: Sandbox, token: str) -> None:
    reply = requests.post(
        sb.runway_base_url + "/jobs",
        data=b'{"partner": ',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert reply.status_code == 400
    assert isinstance(reply.json()["message"], list)


def test_create_job_needs_client_id_claim(sb: Sandbox) -> None:
    anonymous = sb.issue_token("create:jobs partner:ea", client_id_claim=False)
    expect_error(
        api(sb, "/jobs", anonymous, psat()), 403, "Token must include a client_id or azp claim"
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (psat(partner="other"), 403, "Invalid partner code: other"),
        (psat(tenant="nope"), 400, "Invalid tenant. ea/nope does not exist"),
        (
            psat(bundle="assessments/ACT"),
            400,
            "Bundle not found or not enabled for partner: assessments/ACT",
        ),
        (psat(schoolYear="2526"), 400, "Invalid school year: 2526"),
        (psat(schoolYear="1999"), 400, "Invalid school year: 1999"),
        (psat(schoolYear="2030"), 400, "School year is not enabled: 2030"),
        (psat(params={}), 400, "Missing required params: TEST_TYPE"),
        (psat(params={"TEST_TYPE": "ACT"}), 400, "Invalid param values: TEST_TYPE"),
        (
            psat(params={"TEST_TYPE": "SAT", "FOO": "1", "BAR": "2"}),
            400,
            "Unexpected params: FOO, BAR",
        ),
        (
            psat(params={"FOO": "1"}, files={"X": "x.csv"}),
            400,
            "Missing required params: TEST_TYPE",
        ),
        (
            psat(files={"INPUT_FILE": "a.csv", "EXTRA": "b.csv"}),
            400,
            "Unexpected files: EXTRA",
        ),
        (
            psat(bundle="assessments/STAR", params=None, files={"INPUT_FILE_DS": "ds.csv"}),
            400,
            "Missing required files: INPUT_FILE",
        ),
        (
            psat(bundle="assessments/STAR", params={}, files={"INPUT_FILE": "a", "NOPE": "b"}),
            400,
            "Unexpected files: NOPE",
        ),
        # earlier rules win over later ones
        (
            psat(partner="other", tenant="nope", schoolYear="2526"),
            403,
            "Invalid partner code: other",
        ),
        (
            psat(tenant="nope", bundle="assessments/ACT"),
            400,
            "Invalid tenant. ea/nope does not exist",
        ),
        (
            psat(bundle="nope", schoolYear="2526"),
            400,
            "Bundle not found or not enabled for partner: nope",
        ),
    ],
)
def test_create_job_validation(
    sb: Sandbox, token: str, body: object, status: int, message: str
) -> None:
    expect_error(api(sb, "/jobs", token, body), status, message)


def test_create_job_partner_must_be_in_token_scopes(sb: Sandbox) -> None:
    other = sb.issue_token("create:jobs partner:zz")
    expect_error(api(sb, "/jobs", other, psat()), 403, "Invalid partner code: ea")


def test_create_job_accepts_and_ignores_api_year(sb: Sandbox, token: str) -> None:
    uid, _ = create(sb, token, psat(params={"TEST_TYPE": "PSAT 8/9", "API_YEAR": "2026"}))
    assert sb.job(uid).params["TEST_TYPE"] == "PSAT 8/9"


def test_create_job_success_records_job(sb: Sandbox, token: str) -> None:
    body = psat(
        bundle="assessments/STAR",
        params=None,
        files={"INPUT_FILE": "  star.csv ", "INPUT_FILE_SA": "skills.csv"},
    )
    uid, urls = create(sb, token, body)
    assert str(uuid.UUID(uid)) == uid
    assert list(urls) == ["INPUT_FILE", "INPUT_FILE_SA"]
    assert urlsplit(urls["INPUT_FILE"]).path == f"/runway-sandbox/ea/ea/{uid}/INPUT_FILE/star.csv"
    job = sb.job(uid)
    assert isinstance(job, SandboxJob)
    assert dict(job.files) == {"INPUT_FILE": "star.csv", "INPUT_FILE_SA": "skills.csv"}
    assert dict(job.params) == {}
    assert (job.partner, job.tenant, job.bundle, job.school_year) == (
        "ea",
        "ea",
        "assessments/STAR",
        "2026",
    )
    assert job.client_id == sb.client_id
    assert job.created_at.tzinfo is not None
    assert not job.started
    assert dict(job.uploaded_bytes) == {}
    assert sb.jobs()[-1] == job
    with pytest.raises(TypeError):
        job.files["INPUT_FILE"] = "x"  # type: ignore[index]
    with pytest.raises(KeyError):
        sb.job(str(uuid.uuid4()))


# -- POST /jobs/<uid>/start ------------------------------------------------------------------


def test_start_errors_and_success(sb: Sandbox, token: str) -> None:
    expect_error(
        api(sb, "/jobs/not-a-uuid/start", token), 400, "Validation failed (uuid is expected)"
    )
    unknown = str(uuid.uuid4())
    expect_error(api(sb, f"/jobs/{unknown}/start", token), 404, f"Job not found: {unknown}")

    body = psat(
        bundle="assessments/STAR",
        params={},
        files={"INPUT_FILE": "a.csv", "INPUT_FILE_DS": "b.csv"},
    )
    uid, urls = create(sb, token, body)
    stranger = sb.issue_token("create:jobs partner:zz")
    expect_error(api(sb, f"/jobs/{uid}/start", stranger), 404, f"Job not found: {uid}")
    missing = "Some expected files were not found. Expected files: a.csv, b.csv"
    expect_error(api(sb, f"/jobs/{uid}/start", token), 400, missing)
    assert put(urls["INPUT_FILE"], b"x,y\n1,2\n").status_code == 200
    assert put(urls["INPUT_FILE_DS"], b"").status_code == 200  # zero bytes counts as missing
    expect_error(api(sb, f"/jobs/{uid}/start", token), 400, missing)
    assert put(urls["INPUT_FILE_DS"], b"z\n").status_code == 200

    reply = api(sb, f"/jobs/{uid}/start", token)
    assert reply.status_code == 202
    assert reply.content == b""
    assert sb.job(uid).started
    expect_error(api(sb, f"/jobs/{uid}/start", token), 400, f"Job already in progress: {uid}")


def test_a_start_after_the_run_ended_makes_a_new_run(sb: Sandbox, token: str) -> None:
    """CONTRACT.md, start (observed): refused only while a run is under way; once it ended,
    202 and a new run, whose success lists a second output set with the same jobUid."""
    uid, urls = create(sb, token, psat())
    assert put(urls["INPUT_FILE"], b"id,score\n1,2\n").status_code == 200
    assert sb.runs(uid) == ()
    assert api(sb, f"/jobs/{uid}/start", token).status_code == 202
    assert sb.runs(uid) == ("running",)
    expect_error(api(sb, f"/jobs/{uid}/start", token), 400, f"Job already in progress: {uid}")
    assert sb.wait_for_run(uid) == "succeeded"
    again = api(sb, f"/jobs/{uid}/start", token)
    assert again.status_code == 202
    assert again.content == b""
    assert sb.runs(uid) == ("succeeded", "running")
    assert sb.wait_for_run(uid) == "succeeded"
    assert sb.runs(uid) == ("succeeded", "succeeded")
    sets = [s for s in sb.output_sets() if s.job_uid == uid]
    assert len(sets) == 2
    assert sets[0].uid != sets[1].uid
    listed = requests.get(
        sb.runway_base_url + "/output-sets",
        params={"partner": "ea"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    ).json()
    assert [s["uid"] for s in listed if s["jobUid"] == uid] == [s.uid for s in sets]


# -- storage ---------------------------------------------------------------------------------


def test_put_stores_the_object(sb: Sandbox, token: str) -> None:
    name = "100% a+b #1 ü.csv"
    uid, urls = create(sb, token, psat(files={"INPUT_FILE": name}))
    data = b"student,score\n" * 1000
    reply = put(urls["INPUT_FILE"], data)
    assert reply.status_code == 200, reply.text
    assert reply.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324
    assert reply.content == b""
    assert sb.object_path(uid, "INPUT_FILE").read_bytes() == data
    job = sb.job(uid)
    assert job.uploaded_bytes["INPUT_FILE"] == len(data)
    assert job.uploaded_sha256["INPUT_FILE"] == hashlib.sha256(data).hexdigest()
    assert urlsplit(urls["INPUT_FILE"]).path.endswith("/100%25%20a%2Bb%20%231%20%C3%BC.csv")


def test_put_rejects_chunked(sb: Sandbox, token: str) -> None:
    _, urls = create(sb, token, psat())
    reply = requests.put(urls["INPUT_FILE"], data=iter([b"a,b\n"]), headers=OCTET, timeout=10)
    assert reply.status_code == 501
    assert s3_code(reply) == "NotImplemented"


def test_put_without_content_length(sb: Sandbox, token: str) -> None:
    _, urls = create(sb, token, psat())
    parts = urlsplit(urls["INPUT_FILE"])
    connection = http.client.HTTPConnection(parts.netloc, timeout=TIMEOUT)
    try:
        connection.putrequest("PUT", f"{parts.path}?{parts.query}")
        connection.putheader("Content-Type", "application/octet-stream")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 411
        assert b"<Code>MissingContentLength</Code>" in response.read()
    finally:
        connection.close()


def test_put_signature_checks(sb: Sandbox, token: str) -> None:
    _, urls = create(sb, token, psat(files={"INPUT_FILE": "my file.csv"}))
    url = urls["INPUT_FILE"]
    last = url[-1]
    tampered = url[:-1] + ("0" if last != "0" else "1")
    assert s3_code(put(tampered, b"x")) == "SignatureDoesNotMatch"
    assert put(tampered, b"x").status_code == 403
    wrong_type = put(url, b"x", headers={"Content-Type": "text/csv"})
    assert wrong_type.status_code == 403
    assert s3_code(wrong_type) == "SignatureDoesNotMatch"
    reencoded = url.replace("my%20file.csv", "my+file.csv")
    assert s3_code(put(reencoded, b"x")) == "SignatureDoesNotMatch"
    unsigned = url.split("?")[0]
    assert s3_code(put(unsigned, b"x")) == "SignatureDoesNotMatch"
    assert put(url, b"x").status_code == 200


def test_put_other_methods(sb: Sandbox, token: str) -> None:
    _, urls = create(sb, token, psat())
    reply = requests.get(urls["INPUT_FILE"], timeout=TIMEOUT)
    assert reply.status_code == 405
    assert s3_code(reply) == "MethodNotAllowed"


def test_put_after_expiry_and_too_large() -> None:
    # The URL lives 3 s: long enough for the first PUT on a loaded machine; the second
    # waits until past the lifetime, measured from just before the job was created.
    lifetime = 3.0
    with Sandbox(upload_url_lifetime=lifetime, max_object_size=100) as small:
        token = small.issue_token("create:jobs partner:ea")
        created = time.monotonic()
        _, urls = create(small, token, psat())
        too_large = put(urls["INPUT_FILE"], b"x" * 1000)
        assert too_large.status_code == 400
        assert s3_code(too_large) == "EntityTooLarge"
        time.sleep(max(0.0, created + lifetime + 0.5 - time.monotonic()))
        expired = put(urls["INPUT_FILE"], b"x")
        assert expired.status_code == 403
        assert s3_code(expired) == "AccessDenied"
        assert "Request has expired" in expired.text


# -- configuration ---------------------------------------------------------------------------


def test_enabled_bundles_and_registry_path() -> None:
    with Sandbox(bundles=["assessments/STAR"]) as star_only:
        token = star_only.issue_token("create:jobs partner:ea")
        expect_error(
            api(star_only, "/jobs", token, psat()),
            400,
            "Bundle not found or not enabled for partner: assessments/PSAT_SAT",
        )
    data = _data_dir()
    if data is None:
        pytest.skip("../shared/runway-data not found (set RUNWAY_DATA_DIR)")
    with Sandbox(registry_path=data / "registry.json", storage_dir=None) as full:
        token = full.issue_token("create:jobs partner:ea")
        body = psat(bundle="assessments/ACT", params={})
        uid, urls = create(full, token, body)
        assert list(urls) == ["INPUT_FILE"]
        assert full.job(uid).bundle == "assessments/ACT"


def test_storage_dir_is_used(tmp_path: Path) -> None:
    with Sandbox(storage_dir=tmp_path, partner_code="p1", tenants=("t1",)) as custom:
        token = fetch_token(custom).json()["access_token"]
        uid, urls = create(custom, token, psat(partner="p1", tenant="t1"))
        assert put(urls["INPUT_FILE"], b"abc").status_code == 200
        assert custom.object_path(uid, "INPUT_FILE").is_relative_to(tmp_path)
        assert custom.object_path(uid, "INPUT_FILE").read_bytes() == b"abc"
    assert (tmp_path / uid).is_dir()


def test_cli_prints_settings_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "runway_client.sandbox", "--port", "0"]
    root = Path(__file__).resolve().parents[1]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=root) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline().strip() for _ in range(5)]
            settings = dict(line.removeprefix("export ").split("=", 1) for line in lines)
            assert set(settings) == {
                "RUNWAY_BASE_URL",
                "RUNWAY_AUTH_BASE_URL",
                "RUNWAY_CLIENT_ID",
                "RUNWAY_CLIENT_SECRET",
                "RUNWAY_PARTNER",
            }
            reply = requests.post(
                settings["RUNWAY_AUTH_BASE_URL"] + "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": settings["RUNWAY_CLIENT_ID"],
                    "client_secret": settings["RUNWAY_CLIENT_SECRET"],
                    "audience": settings["RUNWAY_BASE_URL"].removesuffix("/api/v1"),
                },
                timeout=TIMEOUT,
            )
            assert reply.status_code == 200
            process.terminate()
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
