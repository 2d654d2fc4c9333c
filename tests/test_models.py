"""School years, job specs and the payload Structs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import given

from runway_client import RunwayClient
from runway_client._errors import InputError
from runway_client._models import (
    InputFile,
    Job,
    JobRequest,
    JobSpec,
    LoadReceipt,
    PendingJob,
    SchoolYear,
    Token,
    UploadReceipt,
    make_job_spec,
    parse_school_year,
)
from runway_client._redaction import Secret
from runway_client.sandbox import Sandbox
from runway_client.testing.strategies import job_specs, school_year_spellings

FILE = InputFile(key="INPUT_FILE", path="/data/sat.csv", name="sat.csv", size=10)


@pytest.mark.parametrize(
    "spelling", ["2526", "2025-2026", "2025-26", "2026", 2026, " 2026 ", "2025/26"]
)
def test_every_accepted_spelling_means_the_end_year(spelling: object) -> None:
    assert parse_school_year(spelling).unwrap() == SchoolYear(end_year=2026)


@pytest.mark.parametrize(
    "spelling",
    [
        "2527",
        "26",
        "20256",
        "2025-2027",
        "2025-27",
        "",
        "abcd",
        "1999",
        "2100",
        "9900",
        "2025-",
        2.5,
        True,
        None,
    ],
)
def test_other_spellings_are_input_errors_naming_the_field(spelling: object) -> None:
    error = parse_school_year(spelling).failure()
    assert isinstance(error, InputError)
    assert error.message.startswith(f"school_year {spelling!r} is not a school year")
    assert "2025-2026" in error.message  # says what to write instead


@given(school_year_spellings())
def test_any_spelling_of_a_year_gives_that_end_year(case: tuple[object, int]) -> None:
    spelling, end = case
    year = parse_school_year(spelling).unwrap()
    assert year.end_year == end
    assert year.wire == str(end)
    assert year.label == f"{end - 1}-{end}"


def test_make_job_spec_reports_every_problem_at_once() -> None:
    error = make_job_spec(
        partner_code="ea",
        tenant_code=" ea",
        bundle_name="",
        school_year="2527",
        files=(FILE,),
        bundle_params={"API_YEAR": "2026", "N": 3},  # type: ignore[dict-item]
    ).failure()
    assert isinstance(error, InputError)
    assert len(error.problems) == 5
    text = error.message
    assert "tenant_code ' ea' has surrounding whitespace" in text
    assert "bundle_name must be a non-empty string" in text
    assert "school_year '2527'" in text
    assert "bundle_params['API_YEAR'] is set by Runway" in text
    assert "bundle_params['N'] must be a string, got int 3" in text


def test_make_job_spec_keeps_user_values_unchanged() -> None:
    params = {"TEST_TYPE": "PSAT 8/9"}
    spec = make_job_spec(
        partner_code="ea",
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        school_year="2526",
        files=(FILE,),
        bundle_params=params,
    ).unwrap()
    params["TEST_TYPE"] = "changed later"
    assert spec.params == {"TEST_TYPE": "PSAT 8/9"}
    assert spec.school_year.wire == "2026"
    assert spec.file("INPUT_FILE") is FILE


def test_job_request_uses_camel_wire_names_and_omits_empty_params() -> None:
    body = json.loads(
        msgspec.json.encode(
            JobRequest(
                partner="ea", tenant="t", bundle="b", school_year="2026", files={"K": "a.csv"}
            )
        )
    )
    assert body == {
        "partner": "ea",
        "tenant": "t",
        "bundle": "b",
        "schoolYear": "2026",
        "files": {"K": "a.csv"},
    }


@given(job_specs())
def test_job_request_from_any_spec_sends_names_and_end_year(spec: JobSpec) -> None:
    body = json.loads(msgspec.json.encode(JobRequest.from_spec(spec)))
    assert set(body) <= {"partner", "tenant", "bundle", "schoolYear", "files", "params"}
    assert body["files"] == {f.key: f.name for f in spec.files}
    assert body["schoolYear"] == spec.school_year.wire
    assert body.get("params", {}) == spec.params


def test_structs_are_frozen() -> None:
    with pytest.raises(AttributeError):
        FILE.name = "other.csv"  # type: ignore[misc]


def test_token_repr_and_str_hide_the_access_token() -> None:
    token = Token(
        access_token=Secret("eyJhbGciOi.payload.signature"), token_type="Bearer", expires_at=10.0
    )
    for text in (repr(token), str(token), repr([token])):
        assert "eyJhbGciOi" not in text
    assert token.authorization == "Bearer eyJhbGciOi.payload.signature"
    assert token.is_fresh(leeway=5, now=4.0)
    assert not token.is_fresh(leeway=5, now=5.0)


def test_job_repr_masks_presigned_signatures() -> None:
    spec = JobSpec(
        partner="ea", tenant="ea", bundle="b", school_year=SchoolYear(end_year=2026), files=(FILE,)
    )
    url = "https://bucket.s3.amazonaws.com/k/sat.csv?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeef"
    job = Job(uid="u1", upload_urls={"INPUT_FILE": url}, spec=spec, created_at=datetime.now(UTC))
    assert "deadbeef" not in repr(job)
    assert "AKIAEXAMPLE" not in repr(job)
    assert "X-Amz-Signature=REDACTED" in repr(job)
    assert job.upload_urls["INPUT_FILE"] == url  # kept exactly as received


def test_load_receipt_round_trips_through_json() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    receipt = LoadReceipt(
        job_uid="u1",
        partner="ea",
        tenant="ea",
        bundle="assessments/PSAT_SAT",
        school_year="2026",
        files=(
            UploadReceipt(
                key="INPUT_FILE",
                path="/p/sat.csv",
                file_name="sat.csv",
                bytes=3,
                sha256="ab",
                etag='"x"',
            ),
        ),
        params={"TEST_TYPE": "SAT"},
        created_at=now,
        started_at=now,
    )
    assert msgspec.json.decode(receipt.to_json(), type=LoadReceipt) == receipt
    assert receipt.total_bytes == 3


@pytest.mark.parametrize(
    "spelling",
    ["2025 - 26", "2025\n-26", 10**5000, -2026],
    ids=["spaces", "newline", "huge", "negative"],
)
def test_loose_or_huge_spellings_are_refused_cleanly(spelling: object) -> None:
    assert isinstance(parse_school_year(spelling).failure(), InputError)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("tenant_code", "e\udcffa", "not valid Unicode"),
        ("tenant_code", "e\na", "control characters"),
        ("bundle_name", "assessments/\x00X", "control characters"),
    ],
)
def test_names_that_could_not_be_sent_are_refused_before_any_request(
    field: str, value: str, says: str
) -> None:
    settings: dict[str, object] = {
        "partner_code": "ea",
        "tenant_code": "ea",
        "bundle_name": "assessments/X",
        **{field: value},
    }
    error = make_job_spec(school_year="2026", files=(FILE,), **settings).failure()  # type: ignore[arg-type]
    assert says in error.message


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({" TEST_TYPE": "SAT"}, "surrounding whitespace"),
        ({"TEST_TYPE": "S\udcffT"}, "not valid Unicode"),
    ],
)
def test_param_keys_and_values_are_checked(params: dict[str, str], says: str) -> None:
    error = make_job_spec(
        partner_code="ea",
        tenant_code="ea",
        bundle_name="b",
        school_year="2026",
        files=(FILE,),
        bundle_params=params,
    ).failure()
    assert says in error.message


def test_receipts_and_pending_jobs_round_trip_through_plain_builtins(
    client: RunwayClient, sandbox: Sandbox, sat_csv: Path
) -> None:
    receipt = client.load_files(
        "ea", "assessments/PSAT_SAT", {"INPUT_FILE": str(sat_csv)}, {"TEST_TYPE": "SAT"}, "2526"
    )
    plain = receipt.to_dict()
    assert json.loads(json.dumps(plain)) == plain  # JSON-serializable as it is (XCom)
    assert plain["jobUid"] == receipt.job_uid
    assert LoadReceipt.from_dict(plain).unwrap() == receipt
    assert isinstance(LoadReceipt.from_dict({"jobUid": 3}).failure(), InputError)

    job = client.request_runway_job(
        "ea", "assessments/PSAT_SAT", {"INPUT_FILE": str(sat_csv)}, {"TEST_TYPE": "SAT"}, "2526"
    )
    pending = PendingJob(job=job.job)
    stored = json.loads(json.dumps(pending.to_dict()))
    assert PendingJob.from_dict(stored).unwrap() == pending
    stored["job"]["upload_urls"] = {}
    assert "do not match" in PendingJob.from_dict(stored).failure().message
    assert isinstance(PendingJob.from_dict("nonsense").failure(), InputError)


def test_a_two_digit_school_year_span_is_read_as_posix_percent_y_does() -> None:
    """Issue 11: "9899" is 1998-99 (refused), never 2098-99."""
    error = parse_school_year("9899").failure()
    assert "1999" in error.message
    assert parse_school_year("2526").unwrap().wire == "2026"
    assert parse_school_year("6869").unwrap().wire == "2069"
