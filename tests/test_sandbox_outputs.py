"""Simulated runs, output sets and downloads (CONTRACT.md "Output sets"), over real HTTP."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from runway_client.sandbox import Sandbox, SandboxOutputSet
from runway_client.sandbox.derive import RunInput, records
from tests.test_sandbox import TIMEOUT, expect_error, put, s3_code

ALL_SCOPES = "create:jobs read:jobs read:jobs:output-files partner:ea"
SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "runway-data"
    / "samples"
    / "MAP_Growth"
    / "sample_anonymized_file.csv"
)
SMALL_CSV = b"StudentID,Score,Name\n1,10,Ana\n2,20,Bo\n\n3,30,\xc3\x89lise\n"
FIELDS = {"uid", "files", "sentToOds", "createdAt", "jobUid", "partner", "tenant"}
FIELDS |= {"schoolYear", "bundle"}


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(
        run_delay=0.02, failing_file_names=["broken.csv"], tenants=("ea", "t2")
    ) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def token(sb: Sandbox) -> str:
    return sb.issue_token(ALL_SCOPES)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_job(
    sb: Sandbox,
    token: str,
    files: Mapping[str, tuple[str, bytes]],
    *,
    bundle: str = "assessments/MAP_Growth",
    tenant: str = "ea",
    school_year: str = "2026",
    params: Mapping[str, str] | None = None,
    wait: bool = True,
) -> str:
    body = {
        "partner": "ea",
        "tenant": tenant,
        "bundle": bundle,
        "schoolYear": school_year,
        "files": {key: name for key, (name, _) in files.items()},
        "params": dict(params or {}),
    }
    reply = requests.post(sb.runway_base_url + "/jobs", json=body, headers=auth(token), timeout=10)
    assert reply.status_code == 201, reply.text
    uid = str(reply.json()["uid"])
    for key, url in reply.json()["uploadUrls"].items():
        assert put(url, files[key][1]).status_code == 200
    assert sb.job(uid).run_state == "not_started"
    start = requests.post(f"{sb.runway_base_url}/jobs/{uid}/start", headers=auth(token), timeout=10)
    assert start.status_code == 202
    if wait:
        assert sb.wait_for_run(uid) in ("succeeded", "failed")
    return uid


def list_sets(sb: Sandbox, token: str | None, **query: str) -> requests.Response:
    headers = {} if token is None else auth(token)
    return requests.get(
        sb.runway_base_url + "/output-sets", params=query, headers=headers, timeout=TIMEOUT
    )


def links(sb: Sandbox, token: str, set_uid: str) -> requests.Response:
    url = f"{sb.runway_base_url}/output-sets/{set_uid}/download-links"
    return requests.post(url, headers=auth(token), timeout=TIMEOUT)


def set_of(sb: Sandbox, job_uid: str) -> SandboxOutputSet:
    (found,) = [s for s in sb.output_sets() if s.job_uid == job_uid]
    return found


def data_rows(data: bytes) -> int:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    return sum(1 for row in rows[1:] if row)


# -- runs ------------------------------------------------------------------------------------


def test_run_succeeds_and_records_an_output_set(sb: Sandbox, token: str) -> None:
    uid = run_job(sb, token, {"INPUT_FILE": ("small.csv", SMALL_CSV)}, wait=False)
    assert sb.job(uid).run_state in ("running", "succeeded")
    assert sb.job(uid).started
    assert sb.wait_for_run(uid) == "succeeded"
    output_set = set_of(sb, uid)
    assert isinstance(output_set, SandboxOutputSet)
    assert output_set.files == ("studentAssessments.jsonl", "run_summary.json")
    assert (output_set.partner, output_set.tenant, output_set.school_year) == ("ea", "ea", "2026")
    assert output_set.bundle == "assessments/MAP_Growth"
    assert output_set.sent_to_ods is True
    assert output_set.created_at.tzinfo is not None
    assert output_set.created_at.microsecond % 1000 == 0

    reply = list_sets(sb, token, partner="ea")
    assert reply.status_code == 200
    (listed,) = [s for s in reply.json() if s["jobUid"] == uid]
    assert set(listed) == FIELDS
    assert listed["uid"] == output_set.uid
    assert listed["files"] == ["studentAssessments.jsonl", "run_summary.json"]
    assert listed["sentToOds"] is True
    assert listed["schoolYear"] == "2026"
    created = datetime.strptime(listed["createdAt"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert created == output_set.created_at
    assert listed["createdAt"].endswith("Z")
    assert len(listed["createdAt"]) == len("2026-01-01T00:00:00.000Z")

    lines = sb.output_path(output_set.uid, "studentAssessments.jsonl").read_text("utf-8")
    rows = [json.loads(line) for line in lines.splitlines()]
    assert rows == [
        {"StudentID": "1", "Score": "10", "Name": "Ana"},
        {"StudentID": "2", "Score": "20", "Name": "Bo"},
        {"StudentID": "3", "Score": "30", "Name": "Élise"},
    ]
    summary = json.loads(sb.output_path(output_set.uid, "run_summary.json").read_text("utf-8"))
    assert summary == {"jobUid": uid, "rows": 3, "inputs": {"INPUT_FILE": "small.csv"}}


def test_map_growth_sample_rows(sb: Sandbox, token: str) -> None:
    if not SAMPLE.is_file():
        pytest.skip("../shared/runway-data is not beside this checkout")
    data = SAMPLE.read_bytes()
    uid = run_job(sb, token, {"INPUT_FILE": ("sample_anonymized_file.csv", data)})
    assert sb.job(uid).run_state == "succeeded"
    output_set = set_of(sb, uid)
    lines = sb.output_path(output_set.uid, "studentAssessments.jsonl").read_bytes().splitlines()
    assert len(lines) == data_rows(data) > 0
    header = next(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert list(json.loads(lines[0])) == header


def test_failing_run_has_no_output_set(sb: Sandbox, token: str) -> None:
    files = {"INPUT_FILE": ("ok.csv", b"a\n1\n"), "INPUT_FILE_DS": ("broken.csv", b"b\n2\n")}
    uid = run_job(sb, token, files, bundle="assessments/STAR")
    assert sb.job(uid).run_state == "failed"
    assert not [s for s in sb.output_sets() if s.job_uid == uid]
    assert all(s["jobUid"] != uid for s in list_sets(sb, token, partner="ea").json())


def test_multiple_inputs_are_concatenated_in_file_key_order(sb: Sandbox, token: str) -> None:
    files = {
        "INPUT_FILE_SA": ("skills.tsv", b"skill\tlevel\nread\t2\n"),
        "INPUT_FILE": ("overall.txt", b"id|score\n7|99\n8|98\n"),
        "INPUT_FILE_DS": ("ignored.xlsx", b"PK\x03\x04 not text"),
    }
    uid = run_job(sb, token, files, bundle="assessments/STAR")
    output_set = set_of(sb, uid)
    lines = sb.output_path(output_set.uid, "studentAssessments.jsonl").read_text("utf-8")
    assert [json.loads(line) for line in lines.splitlines()] == [
        {"id": "7", "score": "99"},
        {"id": "8", "score": "98"},
        {"skill": "read", "level": "2"},
    ]
    summary = json.loads(sb.output_path(output_set.uid, "run_summary.json").read_text("utf-8"))
    assert summary["rows"] == 3
    assert list(summary["inputs"]) == ["INPUT_FILE", "INPUT_FILE_DS", "INPUT_FILE_SA"]


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.csv", "\ufeffx,y\n1,2\n".encode(), [{"x": "1", "y": "2"}]),
        ("a.csv", b"x;y\n1;2\n", [{"x;y": "1;2"}]),
        ("a.CSV", b"x,y\r\n\xe9,2\r\n", [{"x": "\xe9", "y": "2"}]),  # Latin-1 fallback
        ("a.txt", b"x\ty\n1\t2\n", [{"x": "1", "y": "2"}]),
        ("a.txt", b"single\nvalue\n", [{"single": "value"}]),
        (
            "a.csv",
            b"x,y\n1\n1,2,3\n",
            [{"x": "1", "y": None}, {"x": "1", "y": "2", "_extra": ["3"]}],
        ),
        ("a.csv", b"", []),
        ("a.json", b'{"x": 1}', []),
    ],
)
def test_records(tmp_path: Path, name: str, data: bytes, expected: list[object]) -> None:
    path = tmp_path / "input"
    path.write_bytes(data)
    assert list(records(RunInput("INPUT_FILE", name, path))) == expected


# -- GET /output-sets ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def variety(sb: Sandbox, token: str) -> list[str]:
    """Three more sets: tenant t2, year 2025, bundle PSAT_SAT."""
    one = {"INPUT_FILE": ("v.csv", b"a\n1\n")}
    uids = [
        run_job(sb, token, one, tenant="t2", wait=False),
        run_job(sb, token, one, school_year="2025", wait=False),
        run_job(
            sb, token, one, bundle="assessments/PSAT_SAT", params={"TEST_TYPE": "SAT"}, wait=False
        ),
    ]
    assert [sb.wait_for_run(uid) for uid in uids] == ["succeeded"] * 3
    return uids


def job_uids(reply: requests.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [s["jobUid"] for s in reply.json()]


def test_list_is_ordered_by_created_at(sb: Sandbox, token: str, variety: list[str]) -> None:
    listed = list_sets(sb, token, partner="ea").json()
    assert [s["createdAt"] for s in listed] == sorted(s["createdAt"] for s in listed)
    assert [s["uid"] for s in listed] == [s.uid for s in sb.output_sets()]
    assert set(variety) <= {s["jobUid"] for s in listed}


def test_list_filters(sb: Sandbox, token: str, variety: list[str]) -> None:
    t2, y2025, psat = variety
    assert job_uids(list_sets(sb, token, partner="ea", tenant="t2")) == [t2]
    assert job_uids(list_sets(sb, token, partner="ea", tenant="nope")) == []
    assert job_uids(list_sets(sb, token, partner="ea", schoolYear="2025")) == [y2025]
    assert job_uids(list_sets(sb, token, partner="ea", schoolYear="2099")) == []
    assert job_uids(list_sets(sb, token, partner="ea", bundle="assessments/PSAT_SAT")) == [psat]
    everything = job_uids(list_sets(sb, token, partner="ea"))
    assert job_uids(list_sets(sb, token, partner="ea", sentToOds="true")) == everything
    assert job_uids(list_sets(sb, token, partner="ea", sentToOds="false")) == []
    both = list_sets(sb, token, partner="ea", tenant="ea", schoolYear="2025")
    assert job_uids(both) == [y2025]


def test_list_created_after(sb: Sandbox, token: str, variety: list[str]) -> None:
    listed = list_sets(sb, token, partner="ea").json()
    first = listed[0]
    after_first = job_uids(list_sets(sb, token, partner="ea", createdAfter=first["createdAt"]))
    assert first["jobUid"] not in after_first
    assert after_first == [s["jobUid"] for s in listed if s["createdAt"] > first["createdAt"]]
    assert after_first  # the later sets
    created = datetime.strptime(first["createdAt"], "%Y-%m-%dT%H:%M:%S.%f%z")
    just_before = created - timedelta(microseconds=1)
    offset = just_before.astimezone(timezone(timedelta(hours=2))).isoformat()  # ...+02:00
    assert first["jobUid"] in job_uids(list_sets(sb, token, partner="ea", createdAfter=offset))
    assert job_uids(list_sets(sb, token, partner="ea", createdAfter="2000-01-01T00:00:00Z")) == [
        s["jobUid"] for s in listed
    ]
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    assert job_uids(list_sets(sb, token, partner="ea", createdAfter=future)) == []


YEAR_FORMAT = "schoolYear must be a 4-digit year"
BOOL_FORMAT = "sentToOds must be a boolean value"
DATE_FORMAT = "createdAfter must be a valid ISO 8601 date string"


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({}, 400, "partner query parameter is required"),
        ({"partner": ""}, 400, "partner query parameter is required"),
        ({"partner": "zz"}, 404, "Partner not found: zz"),
        ({"partner": "ea", "schoolYear": "26"}, 400, [YEAR_FORMAT]),
        ({"partner": "ea", "schoolYear": "2025-2026"}, 400, [YEAR_FORMAT]),
        ({"partner": "ea", "schoolYear": "1999"}, 400, "Invalid school year: 1999"),
        ({"partner": "ea", "schoolYear": "2526"}, 400, "Invalid school year: 2526"),
        ({"partner": "ea", "sentToOds": "1"}, 400, [BOOL_FORMAT]),
        ({"partner": "ea", "sentToOds": "True"}, 400, [BOOL_FORMAT]),
        ({"partner": "ea", "createdAfter": "yesterday"}, 400, [DATE_FORMAT]),
        ({"partner": "ea", "createdAfter": "2026-01-01"}, 400, [DATE_FORMAT]),
        ({"partner": "ea", "createdAfter": "2026-01-01T00:00:00"}, 400, [DATE_FORMAT]),
        ({"partner": "ea", "createdAfter": "2026-02-30T00:00:00Z"}, 400, [DATE_FORMAT]),
        ({"partner": "ea", "createdAfter": "2026-01-01 00:00:00Z"}, 400, [DATE_FORMAT]),
        (
            {"schoolYear": "x", "sentToOds": "no", "createdAfter": "z"},
            400,
            [YEAR_FORMAT, BOOL_FORMAT, DATE_FORMAT],
        ),
    ],
)
def test_list_errors(
    sb: Sandbox, token: str, query: dict[str, str], status: int, message: object
) -> None:
    expect_error(list_sets(sb, token, **query), status, message)


def test_list_guard(sb: Sandbox) -> None:
    expect_error(list_sets(sb, None, partner="ea"), 401, "No token")
    expect_error(list_sets(sb, "junk", partner="ea"), 401, "Invalid token")
    writer = sb.issue_token("create:jobs read:jobs:output-files partner:ea")
    expect_error(list_sets(sb, writer, partner="ea"), 403, "Insufficient scopes")
    other = sb.issue_token("read:jobs partner:zz")
    expect_error(list_sets(sb, other, partner="ea"), 404, "Partner not found: ea")
    reader = sb.issue_token("read:jobs partner:ea")
    assert list_sets(sb, reader, partner="ea").status_code == 200


def test_sent_to_ods_false() -> None:
    with Sandbox(run_delay=0.0, sent_to_ods=False) as quiet:
        token = quiet.issue_token(ALL_SCOPES)
        uid = run_job(quiet, token, {"INPUT_FILE": ("a.csv", b"a\n1\n")})
        assert job_uids(list_sets(quiet, token, partner="ea", sentToOds="false")) == [uid]
        assert job_uids(list_sets(quiet, token, partner="ea", sentToOds="true")) == []
        assert quiet.output_sets()[0].sent_to_ods is False


# -- download links and presigned GETs -------------------------------------------------------


def test_download_links_errors(sb: Sandbox, token: str, variety: list[str]) -> None:
    expect_error(links(sb, token, "nope"), 400, "Validation failed (uuid is expected)")
    unknown = str(uuid.uuid4())
    expect_error(links(sb, token, unknown), 404, f"Output set not found: {unknown}")
    set_uid = set_of(sb, variety[0]).uid
    stranger = sb.issue_token("read:jobs:output-files partner:zz")
    expect_error(links(sb, stranger, set_uid), 404, f"Output set not found: {set_uid}")
    reader = sb.issue_token("read:jobs partner:ea")
    expect_error(links(sb, reader, set_uid), 403, "Insufficient scopes")
    expect_error(
        requests.post(f"{sb.runway_base_url}/output-sets/{set_uid}/download-links", timeout=10),
        401,
        "No token",
    )


def test_download_streams_the_exact_bytes(sb: Sandbox, token: str) -> None:
    rows = b"".join(b"%d,%d,name %d\n" % (i, i * 7, i) for i in range(30_000))
    uid = run_job(sb, token, {"INPUT_FILE": ("big.csv", b"id,score,name\n" + rows)})
    output_set = set_of(sb, uid)
    reply = links(sb, token, output_set.uid)
    assert reply.status_code == 200
    download_links = reply.json()["downloadLinks"]
    assert list(download_links) == list(output_set.files)
    for name, url in download_links.items():
        stored = sb.output_path(output_set.uid, name).read_bytes()
        with requests.get(url, stream=True, timeout=TIMEOUT) as got:
            assert got.status_code == 200
            assert int(got.headers["Content-Length"]) == len(stored)
            assert got.headers["ETag"] == f'"{hashlib.md5(stored).hexdigest()}"'  # noqa: S324
            assert "Content-Encoding" not in got.headers
            body = b"".join(got.iter_content(chunk_size=8192))
        assert body == stored
        expected_type = "application/x-ndjson" if name.endswith(".jsonl") else "application/"
        assert got.headers["Content-Type"].startswith(expected_type)
    jsonl = sb.output_path(output_set.uid, "studentAssessments.jsonl").read_bytes()
    assert jsonl.count(b"\n") == 30_000
    assert len(jsonl) > 1024 * 1024  # more than one chunk


def test_download_signature_checks(sb: Sandbox, token: str, variety: list[str]) -> None:
    set_uid = set_of(sb, variety[1]).uid
    url = links(sb, token, set_uid).json()["downloadLinks"]["run_summary.json"]
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    reply = requests.get(tampered, timeout=TIMEOUT)
    assert reply.status_code == 403
    assert s3_code(reply) == "SignatureDoesNotMatch"
    other_file = url.replace("/run_summary.json?", "/studentAssessments.jsonl?")
    assert s3_code(requests.get(other_file, timeout=TIMEOUT)) == "SignatureDoesNotMatch"
    longer = url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200")
    assert s3_code(requests.get(longer, timeout=TIMEOUT)) == "SignatureDoesNotMatch"
    as_put = put(url, b"x")
    assert as_put.status_code == 403
    assert s3_code(as_put) == "SignatureDoesNotMatch"
    assert requests.get(url, timeout=TIMEOUT).status_code == 200


def test_download_link_expires() -> None:
    with Sandbox(run_delay=0.0, download_url_lifetime=0.3) as short:
        token = short.issue_token(ALL_SCOPES)
        uid = run_job(short, token, {"INPUT_FILE": ("a.csv", b"a\n1\n")})
        set_uid = set_of(short, uid).uid
        url = links(short, token, set_uid).json()["downloadLinks"]["run_summary.json"]
        assert "X-Amz-Expires=1&" in url
        assert requests.get(url, timeout=TIMEOUT).status_code == 200
        time.sleep(0.4)
        expired = requests.get(url, timeout=TIMEOUT)
        assert expired.status_code == 403
        assert s3_code(expired) == "AccessDenied"
        assert "Request has expired" in expired.text
        fresh = links(short, token, set_uid).json()["downloadLinks"]["run_summary.json"]
        assert requests.get(fresh, timeout=TIMEOUT).status_code == 200


def test_gzip_outputs_are_served_as_stored() -> None:
    with Sandbox(run_delay=0.0, gzip_outputs=True) as zipped:
        token = zipped.issue_token(ALL_SCOPES)
        uid = run_job(zipped, token, {"INPUT_FILE": ("a.csv", SMALL_CSV)})
        set_uid = set_of(zipped, uid).uid
        stored = zipped.output_path(set_uid, "studentAssessments.jsonl").read_bytes()
        plain = gzip.decompress(stored)
        assert len(plain.splitlines()) == 3
        url = links(zipped, token, set_uid).json()["downloadLinks"]["studentAssessments.jsonl"]
        with requests.get(url, stream=True, timeout=TIMEOUT) as got:
            assert got.status_code == 200
            assert got.headers["Content-Encoding"] == "gzip"
            assert got.headers["Content-Length"] == str(len(stored))
            assert got.headers["ETag"] == f'"{hashlib.md5(stored).hexdigest()}"'  # noqa: S324
            raw = got.raw.read(decode_content=False)
        assert raw == stored
        summary = gzip.decompress(zipped.output_path(set_uid, "run_summary.json").read_bytes())
        assert json.loads(summary)["rows"] == 3


def test_wait_for_run_unknown_and_not_started(sb: Sandbox, token: str) -> None:
    with pytest.raises(KeyError):
        sb.wait_for_run(str(uuid.uuid4()), timeout=0.01)
    body = {
        "partner": "ea",
        "tenant": "ea",
        "bundle": "assessments/MAP_Growth",
        "schoolYear": "2026",
        "files": {"INPUT_FILE": "x.csv"},
    }
    reply = requests.post(sb.runway_base_url + "/jobs", json=body, headers=auth(token), timeout=10)
    assert sb.wait_for_run(reply.json()["uid"], timeout=0.01) == "not_started"
