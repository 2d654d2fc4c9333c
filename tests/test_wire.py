"""Pure request builders and response decoders: no network here."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from runway_client._config import RunwayConfig, make_config
from runway_client._errors import (
    AuthenticationError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RequestRejectedError,
    RunwayError,
    ServerError,
    ServiceUnavailableError,
    StorageError,
)
from runway_client._models import InputFile, JobSpec, SchoolYear, Token, make_output_set_query
from runway_client._redaction import Secret
from runway_client._transport import HttpResponse
from runway_client.testing.strategies import base_urls, job_specs, secrets
from runway_client.wire import (
    api_error,
    create_job_request,
    decode_create_job,
    decode_download,
    decode_download_links,
    decode_output_sets,
    decode_start,
    decode_token,
    decode_upload,
    decode_verify_token,
    download_links_request,
    download_scopes,
    is_forbidden,
    load_scopes,
    output_sets_request,
    read_scopes,
    start_request,
    token_request,
    upload_headers,
    verify_token_request,
)

NOW = datetime(2026, 11, 29, tzinfo=UTC)
TOKEN = Token(access_token=Secret("header.payload.sig"), token_type="Bearer", expires_at=1e12)
SPEC = JobSpec(
    partner="ea",
    tenant="ea",
    bundle="assessments/PSAT_SAT",
    school_year=SchoolYear(end_year=2026),
    files=(InputFile(key="INPUT_FILE", path="/path/to/sat.csv", name="sat.csv", size=5),),
    params={"TEST_TYPE": "SAT"},
)


def config(
    secret: str = "client-secret-value", base: str = "https://api.x-prod.runwayloader.org/api/v1"
) -> RunwayConfig:
    return make_config(
        runway_base_url=base,
        auth_base_url="https://x.prod.us.auth0.com",
        client_id="cid",
        client_secret=secret,
        partner_code="ea",
    ).unwrap()


JOB_UID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"


def response(status: int, body: object = b"", **headers: str) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status=status, headers=headers, body=raw)


# ---------------------------------------------------------------- token


@given(secrets)
def test_token_request_form_round_trips_any_secret(secret: str) -> None:
    request = token_request(config(secret), load_scopes("ea"))
    assert request.method == "POST"
    assert request.url == "https://x.prod.us.auth0.com/oauth/token"
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    form = parse_qs(request.body.decode("ascii"), strict_parsing=True, keep_blank_values=True)
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["cid"],
        "client_secret": [secret],
        "audience": ["https://api.x-prod.runwayloader.org"],
        "scope": ["create:jobs partner:ea"],
    }
    public = repr(token_request(config("x" * 16), load_scopes("ea"))) + repr(config("x" * 16))
    assume(secret not in public)  # a "secret" that is also public text (a header value) is no leak
    assert secret not in repr(request)
    assert secret not in repr(config(secret))


@pytest.mark.parametrize(
    ("expires_in", "lifetime"), [("3600", 3600.0), (None, 300.0), (59.5, 59.5)]
)
def test_decode_token_takes_expires_in_as_a_string_or_not_at_all(
    expires_in: object, lifetime: float
) -> None:
    body: dict[str, object] = {"access_token": "abc.def", "token_type": "Bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    token = decode_token(response(200, body), scopes=(), now=100.0).unwrap()
    assert token.lifetime == lifetime
    assert token.expires_at == 100.0 + lifetime


def test_decode_token_is_lenient_about_scope_case_and_extra_fields() -> None:
    body = {
        "access_token": "abc.def.ghi",
        "token_type": "bearer",
        "expires_in": 300,
        "refresh_expires_in": 0,
        "not-before-policy": 0,
    }
    token = decode_token(
        response(200, body), scopes=("create:jobs", "partner:ea"), now=1000.0
    ).unwrap()
    assert token.expires_at == 1300.0
    assert token.scope == ("create:jobs", "partner:ea")
    assert token.access_token.reveal() == "abc.def.ghi"
    with_scope = decode_token(
        response(200, {**body, "scope": "create:jobs partner:a partner:b"}), scopes=(), now=0
    ).unwrap()
    assert with_scope.scope == ("create:jobs", "partner:a", "partner:b")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"access_token": "a", "token_type": "mac", "expires_in": 3}, "'mac' token"),
        ({"token_type": "Bearer", "expires_in": 3}, "not a token"),
        (b"<html>oops</html>", "not a token"),
        ({"access_token": "a", "token_type": "Bearer", "expires_in": 0}, "no usable expires_in"),
        (
            {"access_token": "a", "token_type": "Bearer", "expires_in": "soon"},
            "no usable expires_in",
        ),
    ],
)
def test_decode_token_refuses_what_is_not_a_bearer_token(body: object, says: str) -> None:
    error = decode_token(response(200, body), scopes=(), now=0).failure()
    assert isinstance(error, ProtocolError)
    assert says in error.message


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, AuthenticationError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (429, RateLimitError),
        (503, ServiceUnavailableError),
        (500, ServerError),
    ],
)
def test_token_errors_map_to_kinds_and_never_echo_the_secret(status: int, kind: type) -> None:
    secret = Secret("very-secret-value-123")
    body = {"error": "access_denied", "error_description": "bad client very-secret-value-123"}
    error = decode_token(response(status, body), scopes=(), now=0, secret=secret).failure()
    assert type(error) is kind
    assert error.step == "authorize"
    assert error.status == status
    assert "access_denied" in str(error)
    assert "very-secret-value-123" not in str(error)
    assert "very-secret-value-123" not in repr(error)


# ---------------------------------------------------------------- POST /jobs


@given(job_specs())
def test_create_job_body_decodes_back_to_the_spec(spec: JobSpec) -> None:
    request = create_job_request(config(), TOKEN, spec)
    assert request.method == "POST"
    assert request.header("authorization") == "Bearer header.payload.sig"
    assert request.header("content-type") == "application/json"
    body = json.loads(request.body)
    assert body["partner"] == spec.partner
    assert body["tenant"] == spec.tenant
    assert body["bundle"] == spec.bundle
    assert body["schoolYear"] == f"{spec.school_year.end_year}"
    assert body["files"] == {f.key: f.name for f in spec.files}
    assert body.get("params", {}) == spec.params
    assert "header.payload.sig" not in repr(request)


@given(base_urls(), st.uuids())
def test_api_urls_are_right_for_every_base_url_spelling(
    case: tuple[str, str, str], uid: object
) -> None:
    spelled, base, _audience = case
    cfg = config(base=spelled)
    assert create_job_request(cfg, TOKEN, SPEC).url == f"{base}/jobs"
    assert start_request(cfg, TOKEN, str(uid)).url == f"{base}/jobs/{uid}/start"


def test_start_request_quotes_a_strange_uid_into_one_segment() -> None:
    url = start_request(config(), TOKEN, "../x y").url
    assert urlsplit(url).path == "/api/v1/jobs/..%2Fx%20y/start"


def test_decode_create_job_keeps_presigned_urls_exactly() -> None:
    url = "https://b.s3.us-east-1.amazonaws.com/ea/ea/u/INPUT_FILE/sat%20file.csv?X-Amz-Signature=ab%2Bc"
    job = decode_create_job(
        response(201, {"uid": JOB_UID, "uploadUrls": {"INPUT_FILE": url}}), SPEC, now=NOW
    ).unwrap()
    assert job.uid == JOB_UID
    assert job.upload_urls == {"INPUT_FILE": url}
    assert job.spec is SPEC
    assert job.created_at == NOW


@pytest.mark.parametrize(
    "body",
    [
        {"uid": JOB_UID, "uploadUrls": {}},
        {"uid": JOB_UID, "uploadUrls": {"INPUT_FILE": "https://a/x", "OTHER": "https://a/y"}},
        {"uid": JOB_UID, "uploadUrls": {"INPUT_FILE": "/relative"}},
    ],
)
def test_decode_create_job_refuses_urls_that_do_not_match_the_files(body: object) -> None:
    error = decode_create_job(response(201, body), SPEC, now=NOW).failure()
    assert isinstance(error, ProtocolError)
    assert error.job_uid == JOB_UID  # the job exists: the user must know which


def test_list_message_is_kept_as_a_tuple() -> None:
    messages = [
        'School year must be a 4-digit end year, e.g. "2026" for the 2025-2026 school year',
        "File names must not be empty",
    ]
    error = decode_create_job(
        response(400, {"statusCode": 400, "error": "Bad Request", "message": messages}),
        SPEC,
        now=NOW,
    ).failure()
    assert isinstance(error, RequestRejectedError)
    assert error.server_message == tuple(messages)
    assert error.step == "create_job"
    assert error.job_uid is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, RequestRejectedError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, RequestRejectedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServiceUnavailableError),
        (302, ProtocolError),
    ],
)
def test_api_status_maps_to_one_kind(status: int, kind: type) -> None:
    error = api_error(
        response(status, {"statusCode": status, "message": "said"}), step="start", job_uid="j"
    )
    assert type(error) is kind
    assert error.server_message == "said"
    assert error.job_uid == "j"
    assert "said" in str(error)
    assert "[job j]" in str(error)


def test_api_error_without_json_shows_a_short_clean_text() -> None:
    error = api_error(
        response(502, b"<html><body><h1>502 Bad Gateway</h1>" + b"x" * 1000 + b"</body></html>"),
        step="create_job",
    )
    assert isinstance(error, ServerError)
    assert error.message.startswith("502 Bad Gateway")
    assert len(error.message) < 400


# ---------------------------------------------------------------- upload and start


def test_upload_headers_are_the_signed_content_type() -> None:
    assert upload_headers() == {"Content-Type": "application/octet-stream"}


def test_decode_upload_returns_the_etag() -> None:
    assert (
        decode_upload(
            response(200, b"", etag='"abc"'), key="K", file_name="a.csv", job_uid="j"
        ).unwrap()
        == '"abc"'
    )


@pytest.mark.parametrize(
    ("status", "code", "message", "says"),
    [
        (403, "AccessDenied", "Request has expired", "create a new job"),
        (
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match",
            "altered",
        ),
        (400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", "5 GiB"),
        (503, "SlowDown", "Please reduce your request rate.", "throttling"),
        (
            501,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
            "chunked",
        ),
    ],
)
def test_decode_upload_parses_s3_xml_errors(
    status: int, code: str, message: str, says: str
) -> None:
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>1</RequestId></Error>'
    error = decode_upload(
        response(status, xml.encode()), key="INPUT_FILE", file_name="sat.csv", job_uid="j-9"
    ).failure()
    assert isinstance(error, StorageError)
    assert error.code == code
    assert error.status == status
    assert error.job_uid == "j-9"
    assert error.server_message == message  # verbatim
    assert message.rstrip(".") in error.message
    assert says in error.message
    assert "INPUT_FILE (sat.csv)" in error.message


def test_decode_start_accepts_202_and_names_the_job_on_error() -> None:
    assert decode_start(response(202), job_uid="j").unwrap() is None
    error = decode_start(
        response(400, {"message": "Job already in progress: j"}), job_uid="j"
    ).failure()
    assert isinstance(error, RequestRejectedError)
    assert error.job_uid == "j"
    assert error.step == "start"


# ---------------------------------------------------------------- the read side


@pytest.mark.parametrize(
    ("said", "partners"),
    [
        ("Token is valid for partner: ea", ("ea",)),
        ("Token is valid for partners: a, b, c", ("a", "b", "c")),
        ("Token is valid for no partners. Add partner:<code> scopes to the client.", ()),
    ],
)
def test_verify_token_reads_the_servers_sentence(said: str, partners: tuple[str, ...]) -> None:
    # The real server's answer: text/html, the bare sentence (CONTRACT.md, observed) ...
    bare = response(201, said.encode(), **{"content-type": "text/html; charset=utf-8"})
    assert decode_verify_token(bare).unwrap() == partners
    # ... and a JSON string holding it, should an instance send one.
    assert decode_verify_token(response(201, said)).unwrap() == partners


@pytest.mark.parametrize("body", [b'"Something else"', b'{"partners": ["ea"]}', b"Token is valid"])
def test_verify_token_refuses_other_answers(body: bytes) -> None:
    assert isinstance(decode_verify_token(response(201, body)).failure(), ProtocolError)


def test_verify_token_request_posts_to_the_verify_path() -> None:
    request = verify_token_request(config(), TOKEN)
    assert (request.method, request.url) == (
        "POST",
        "https://api.x-prod.runwayloader.org/api/v1/token/verify",
    )


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.timezones()
    ).filter(lambda d: d.utcoffset() is not None),
    st.sampled_from([None, True, False]),
)
def test_output_sets_query_string_is_strict_iso_utc(moment: datetime, sent: bool | None) -> None:
    query = make_output_set_query(
        partner_code="ea",
        tenant_code="t 1",
        school_year="2025-26",
        created_after=moment,
        sent_to_ods=sent,
        bundle_name="assessments/X",
    ).unwrap()
    url = output_sets_request(config(), TOKEN, query).url
    parts = urlsplit(url)
    assert parts.path == "/api/v1/output-sets"
    got = parse_qs(parts.query, strict_parsing=True)
    assert got["partner"] == ["ea"]
    assert got["tenant"] == ["t 1"]
    assert got["schoolYear"] == ["2026"]
    assert got["bundle"] == ["assessments/X"]
    assert got.get("sentToOds") == (None if sent is None else [str(sent).lower()])
    (sent_after,) = got["createdAfter"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", sent_after)
    back = datetime.fromisoformat(sent_after)
    assert abs((back - moment).total_seconds()) < 0.001


def test_only_the_partner_is_sent_when_no_filter_is_set() -> None:
    query = make_output_set_query(partner_code="ea").unwrap()
    assert urlsplit(output_sets_request(config(), TOKEN, query).url).query == "partner=ea"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"created_after": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"created_after": "2026-01-01"}, "timezone-aware"),
        ({"school_year": "2527"}, "school_year '2527'"),
        ({"sent_to_ods": "yes"}, "sent_to_ods must be True, False or None"),
        ({"tenant_code": " ea"}, "tenant_code"),
        ({"tenant_code": "e\x07a"}, "tenant_code 'e\\x07a' has control characters"),
        ({"partner_code": ""}, "partner_code"),
    ],
)
def test_bad_output_set_filters_are_input_errors(changes: dict[str, object], says: str) -> None:
    settings: dict[str, object] = {"partner_code": "ea", **changes}
    error = make_output_set_query(**settings).failure()
    assert isinstance(error, InputError)
    assert says in error.message


OUTPUT_SET = {
    "uid": "3f0e2b1c-0000-4000-8000-000000000001",
    "files": ["studentAssessments.jsonl"],
    "sentToOds": True,
    "createdAt": "2026-11-29T10:00:00.000Z",
    "jobUid": "j-1",
    "partner": "ea",
    "tenant": "ea",
    "schoolYear": "2026",
    "bundle": "assessments/PSAT_SAT",
}


def test_output_sets_decode_with_aware_times_and_ignore_extra_fields() -> None:
    (found,) = decode_output_sets(response(200, [{**OUTPUT_SET, "later": 1}])).unwrap()
    assert found.created_at == datetime(2026, 11, 29, 10, tzinfo=UTC)
    assert found.job_uid == "j-1"
    assert found.files == ("studentAssessments.jsonl",)


def test_an_output_set_without_a_bundle_is_read() -> None:
    # The server sends "bundle": null for a job made without a bundle template
    # (its code: template?.path ?? null); one such set must not break a listing.
    (found,) = decode_output_sets(response(200, [{**OUTPUT_SET, "bundle": None}])).unwrap()
    assert found.bundle is None


@pytest.mark.parametrize(
    "body", [[{**OUTPUT_SET, "createdAt": "2026-11-29T10:00:00"}], {"sets": []}, [{"uid": "x"}]]
)
def test_output_sets_that_break_the_contract_are_protocol_errors(body: object) -> None:
    assert isinstance(decode_output_sets(response(200, body)).failure(), ProtocolError)


def test_output_sets_errors_keep_the_servers_message() -> None:
    error = decode_output_sets(
        response(404, {"statusCode": 404, "message": "Partner not found: zz"})
    ).failure()
    assert isinstance(error, NotFoundError)
    assert error.server_message == "Partner not found: zz"
    assert error.step == "list_output_sets"


def test_download_links_are_kept_exactly_and_hidden_in_repr() -> None:
    url = "https://b.s3.amazonaws.com/out/studentAssessments.jsonl?X-Amz-Signature=c0ffee%2B"
    links = decode_download_links(
        response(200, {"downloadLinks": {"a.jsonl": url}}), set_uid="s"
    ).unwrap()
    assert links.links == {"a.jsonl": url}
    assert "c0ffee" not in repr(links)
    request = download_links_request(config(), TOKEN, "s/1")
    assert urlsplit(request.url).path == "/api/v1/output-sets/s%2F1/download-links"


def test_a_download_needs_a_content_length_and_maps_s3_errors() -> None:
    assert (
        decode_download(
            response(200, b"", **{"content-length": "12"}), name="a", set_uid="s"
        ).unwrap()
        == 12
    )
    assert isinstance(
        decode_download(response(200), name="a", set_uid="s").failure(), ProtocolError
    )
    expired = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    error = decode_download(response(403, expired), name="a.jsonl", set_uid="s").failure()
    assert isinstance(error, StorageError)
    assert is_forbidden(error)
    assert "ask for fresh links" in error.message


def test_scopes_per_operation() -> None:
    assert load_scopes("ea") == ("create:jobs", "partner:ea")
    assert read_scopes("ea") == ("read:jobs", "partner:ea")
    assert download_scopes("ea") == ("read:jobs:output-files", "partner:ea")


# ---------------------------------------------------------------- answers that break the contract


def test_a_token_with_characters_no_bearer_token_has_is_refused_unseen() -> None:
    body = {
        "access_token": "eyJ.payload.SIGNATURE-part\n",
        "token_type": "Bearer",
        "expires_in": 60,
    }
    error = decode_token(response(200, body), scopes=(), now=0).failure()
    assert isinstance(error, ProtocolError)
    assert "SIGNATURE-part" not in str(error)


@pytest.mark.parametrize(
    ("body", "uid"),
    [
        ({"uid": JOB_UID, "uploadUrls": {"INPUT_FILE": "http://[::1/bucket?x=1"}}, JOB_UID),
        ({"uid": JOB_UID, "uploadUrls": {"INPUT_FILE": "https://h:99999/k"}}, JOB_UID),
        ({"uid": JOB_UID}, JOB_UID),
        ({"uid": JOB_UID, "uploadUrls": "nope"}, JOB_UID),
        ({"uid": "", "uploadUrls": {"INPUT_FILE": "https://h/k"}}, None),
    ],
)
def test_a_broken_created_job_is_a_protocol_error_that_keeps_the_uid(
    body: object, uid: str | None
) -> None:
    error = decode_create_job(response(201, body), SPEC, now=NOW).failure()
    assert isinstance(error, ProtocolError)
    assert error.job_uid == uid


def test_a_storage_error_without_message_shows_nothing_of_the_body() -> None:
    xml = b"<Error><Code>SignatureDoesNotMatch</Code><SignatureProvided>abcdef123456</SignatureProvided><StringToSign>AWS4 x</StringToSign></Error>"
    error = decode_upload(response(403, xml), key="K", file_name="a.csv", job_uid="j").failure()
    assert error.code == "SignatureDoesNotMatch"
    assert "abcdef123456" not in str(error)
    assert "AWS4" not in str(error)


def test_a_rate_limited_api_is_a_rate_limit_error_distinct_from_503() -> None:
    error = api_error(
        response(429, {"statusCode": 429, "message": "ThrottlerException: Too Many Requests"}),
        step="create_job",
    )
    assert isinstance(error, RateLimitError)
    assert not isinstance(error, ServiceUnavailableError)
    assert error.exit_code == 16 != ServiceUnavailableError.exit_code
    unavailable = api_error(response(503, {"message": "External API is disabled."}), step="start")
    assert type(unavailable) is ServiceUnavailableError


def test_s3_request_ids_are_kept_and_shown() -> None:
    xml = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    answer = HttpResponse(
        status=503,
        headers={
            "x-amz-request-id": "4442587FB7D0A2F9",
            "x-amz-id-2": "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo=",
        },
        body=xml,
    )
    error = decode_upload(answer, key="K", file_name="a.csv", job_uid="j").failure()
    assert error.request_id == "4442587FB7D0A2F9"
    assert error.extended_request_id is not None
    assert error.extended_request_id.startswith("vlR7")
    assert "request id 4442587FB7D0A2F9" in str(error)
    assert "x-amz-id-2 vlR7" in str(error)


def test_the_apis_request_id_is_kept_and_shown() -> None:
    answer = HttpResponse(
        status=400,
        headers={"x-amzn-requestid": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"},
        body=b'{"statusCode":400,"message":"Invalid tenant."}',
    )
    error = api_error(answer, step="create_job")
    assert error.request_id == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert str(error).endswith("[request id c6af9ac6-7b61-11e6-9a41-93e8deadbeef]")
    assert api_error(response(400, {"message": "x"}), step="create_job").request_id is None


@pytest.mark.parametrize(
    ("said", "code"),
    [
        ("Job already in progress: j", "job_already_started"),
        ("Some expected files were not found. Expected files: a.csv", "files_missing"),
        ("Something else", None),
    ],
)
def test_a_refused_start_is_classified_once_where_it_is_decoded(
    said: str, code: str | None
) -> None:
    error = decode_start(response(400, {"statusCode": 400, "message": said}), job_uid="j").failure()
    assert isinstance(error, RequestRejectedError)
    assert error.code == code
    assert error.server_message == said
    assert error.job_uid == "j"


def test_a_content_length_of_odd_digits_is_a_protocol_error() -> None:
    error = decode_download(
        response(200, b"", **{"content-length": "\u00b2"}), name="a", set_uid="s"
    ).failure()
    assert isinstance(error, ProtocolError)


def test_created_after_out_of_range_is_refused_locally() -> None:
    from datetime import timedelta, timezone

    moment = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    assert (
        "1970 to 9998"
        in make_output_set_query(partner_code="ea", created_after=moment).failure().message
    )


def test_storage_server_message_is_redacted_too() -> None:
    xml = b"<Error><Code>AccessDenied</Code><Message>bad url https://b/k?X-Amz-Signature=feedface</Message></Error>"
    error = decode_upload(response(403, xml), key="K", file_name="a", job_uid="j").failure()
    assert "feedface" not in str(error.server_message)


# ---------------------------------------------------------------- issue 11: answers outside the contract

DEEP = b"[" * 100_000 + b"]" * 100_000
S3_URL = "https://bucket.s3.amazonaws.com/k.csv?X-Amz-Signature=abc"


@pytest.mark.parametrize("uid", ["..", "u-1", "", "6f1c2a3b4d5e4f608a7b9c0d1e2f3a4b", "../jobs"])
def test_a_created_job_uid_that_is_not_a_uuid_is_refused(uid: str) -> None:
    body = {"uid": uid, "uploadUrls": {"INPUT_FILE": S3_URL}}
    error = decode_create_job(response(201, body), SPEC, now=NOW).failure()
    assert isinstance(error, ProtocolError)
    assert "not a UUID" in error.message or "empty" in error.message
    assert error.job_uid is None  # never a path segment such as ".."


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        b'{"uid": "' + JOB_UID.encode() + b'", "uploadUrls": {}, "x": ' + DEEP + b"}",
        b'{"uid": "' + JOB_UID.encode() + b'", "uploadUrls": ' + DEEP + b"}",
    ],
)
def test_deeply_nested_json_from_create_job_is_a_protocol_error_naming_the_job(
    body: bytes,
) -> None:
    error = decode_create_job(response(201, body), SPEC, now=NOW).failure()
    assert isinstance(error, ProtocolError)
    if JOB_UID.encode() in body:
        assert error.job_uid == JOB_UID


@pytest.mark.parametrize("status", [200, 400, 401, 503])
def test_deeply_nested_json_anywhere_else_is_a_protocol_error_or_the_status_kind(
    status: int,
) -> None:
    deep = b'{"message": ' + DEEP + b', "error": ' + DEEP + b"}"
    token = decode_token(response(status, deep), scopes=(), now=0).failure()
    links = decode_download_links(response(status, deep), set_uid="s").failure()
    sets = decode_output_sets(response(status, b"[" + deep + b"]")).failure()
    for error in (token, links, sets):
        assert isinstance(error, ProtocolError if status == 200 else RunwayError)


def test_start_must_answer_202_a_maintenance_page_is_not_a_start() -> None:
    error = decode_start(response(200, b"<html>maintenance page</html>"), job_uid=JOB_UID).failure()
    assert isinstance(error, ProtocolError)
    assert error.job_uid == JOB_UID
    assert "maintenance page" in error.message
    assert decode_start(response(202), job_uid=JOB_UID).unwrap() is None


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (204, b"", {"etag": '"abc"'}, ProtocolError),
        (200, b"", {}, ProtocolError),
        (
            200,
            b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
            {"etag": '"abc"'},
            StorageError,
        ),
    ],
)
def test_a_put_is_uploaded_only_on_200_with_an_etag(
    status: int, body: bytes, headers: dict[str, str], kind: type
) -> None:
    error = decode_upload(
        response(status, body, **headers), key="INPUT_FILE", file_name="a.csv", job_uid=JOB_UID
    ).failure()
    assert type(error) is kind
    assert error.job_uid == JOB_UID


def test_plain_http_transfer_urls_to_other_hosts_are_refused_before_any_byte() -> None:
    http = {"uid": JOB_UID, "uploadUrls": {"INPUT_FILE": "http://evil.example.com/k.csv?x=1"}}
    error = decode_create_job(response(201, http), SPEC, now=NOW).failure()
    assert isinstance(error, ProtocolError)
    assert error.job_uid == JOB_UID
    assert "https is required" in error.message
    assert decode_create_job(response(201, http), SPEC, now=NOW, allow_http=True).unwrap()
    loopback = {"uid": JOB_UID, "uploadUrls": {"INPUT_FILE": "http://127.0.0.1:9/k.csv"}}
    assert decode_create_job(response(201, loopback), SPEC, now=NOW).unwrap().uid == JOB_UID
    links = {"downloadLinks": {"a.jsonl": "http://evil.example.com/a.jsonl"}}
    refused = decode_download_links(response(200, links), set_uid="s").failure()
    assert isinstance(refused, ProtocolError)
    assert "https is required" in refused.message


def test_server_text_is_redacted_and_capped_in_what_errors_keep() -> None:
    echoed = "bad request client_secret=hunter2-value " + "x" * 10_000_000
    error = api_error(response(400, {"message": echoed}), step="create_job")
    assert "hunter2-value" not in str(error.server_message)
    assert "hunter2-value" not in error.message
    assert len(str(error.server_message)) < 3000
    assert len(error.message) < 3000
    listed = api_error(response(400, {"message": [echoed, "b"]}), step="create_job")
    assert all(len(m) < 3000 and "hunter2" not in m for m in listed.server_message or ())
    oauth = decode_token(
        response(401, {"error": "access_denied", "error_description": echoed}), scopes=(), now=0
    ).failure()
    assert "hunter2-value" not in str(oauth.server_message)
    assert len(str(oauth)) < 3000


def test_a_refused_expires_in_is_named_and_an_absurd_one_is_capped() -> None:
    body = {"access_token": "a", "token_type": "Bearer", "expires_in": -5}
    error = decode_token(response(200, body), scopes=(), now=0).failure()
    assert "-5" in error.message
    huge = {"access_token": "a", "token_type": "Bearer", "expires_in": 1e300}
    token = decode_token(response(200, huge), scopes=(), now=0).unwrap()
    assert token.lifetime == 86400.0
    assert token.is_fresh(now=3600.0)


def test_a_partner_code_ending_in_a_dot_is_read_whole() -> None:
    said = response(201, "Token is valid for partners: ea., b.c.")
    assert decode_verify_token(said).unwrap() == ("ea.", "b.c.")
    assert decode_verify_token(response(201, "Token is valid for partner: x.")).unwrap() == ("x.",)
