"""The read side over real HTTP against the sandbox: verify, output sets, waits, downloads."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runway_client import (
    LoadReceipt,
    NetworkError,
    NotFoundError,
    OutputsNotReadyError,
    PermissionDeniedError,
    RequestRejectedError,
    RunwayClient,
    StorageError,
)
from runway_client._models import OutputSetQuery, SchoolYear, Token
from runway_client._redaction import Secret
from runway_client._steps import list_output_sets, verify_token
from runway_client.sandbox import Sandbox
from tests.conftest import runway_data_dir

POLL = 0.05


def connect(sb: Sandbox) -> RunwayClient:
    return RunwayClient(
        runway_base_url=sb.runway_base_url,
        auth_base_url=sb.auth_base_url,
        client_id=sb.client_id,
        client_secret=sb.client_secret,
        partner_code=sb.partner_code,
    )


@pytest.fixture
def outputs_client(sandbox: Sandbox) -> Iterator[RunwayClient]:
    with connect(sandbox) as made:
        yield made


def csv_data_rows(path: Path) -> int:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def load_map(client: RunwayClient, path: Path, **extra: object) -> LoadReceipt:
    return client.load_files(
        tenant_code="ea",
        bundle_name="assessments/MAP_Growth",
        input_files={"INPUT_FILE": path},
        school_year="2025-26",
        poll_interval=POLL,
        **extra,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- verify


def test_verify_token_names_the_partner(outputs_client: RunwayClient) -> None:
    assert outputs_client.verify_token() == ("ea",)


def test_verify_token_with_no_partner_scopes_is_empty(
    sandbox: Sandbox, outputs_client: RunwayClient
) -> None:
    token = Token(
        access_token=Secret(sandbox.issue_token("create:jobs")),
        token_type="Bearer",
        expires_at=1e12,
    )
    assert verify_token(outputs_client.transport, outputs_client.config, token).unwrap() == ()


# ---------------------------------------------------------------- load, wait, download


@pytest.mark.parametrize(
    ("bundle", "sample", "params"),
    [
        ("assessments/MAP_Growth", "MAP_Growth/sample_anonymized_file.csv", {}),
        ("assessments/PSAT_SAT", "PSAT_SAT/sample_anonymized_file_sat.csv", {"TEST_TYPE": "SAT"}),
        ("assessments/ACCESS", "ACCESS/sample_anonymized_file_ACCESS.csv", {"FORMAT": "Standard"}),
        ("assessments/STAR", "STAR/SR_sample_anonymized_file.csv", {}),
    ],
)
def test_load_wait_download_gives_one_json_line_per_csv_row(
    outputs_client: RunwayClient,
    sandbox: Sandbox,
    tmp_path: Path,
    bundle: str,
    sample: str,
    params: dict[str, str],
) -> None:
    data = runway_data_dir()
    if data is None:
        pytest.skip("../shared/runway-data is not beside this checkout")
    source = data / "samples" / sample
    receipt = outputs_client.load_files(
        tenant_code="ea",
        bundle_name=bundle,
        input_files={"INPUT_FILE": source},
        bundle_params=params,
        school_year="2526",
        download_to=tmp_path / "out",
        poll_interval=POLL,
    )
    assert receipt.output_set is not None
    assert receipt.output_set.job_uid == receipt.job_uid
    assert receipt.output_set.school_year == "2026"
    by_name = {d.name: d for d in receipt.downloads}
    jsonl = Path(by_name["studentAssessments.jsonl"].path)
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    assert len(lines) == csv_data_rows(source) > 0
    assert all(isinstance(json.loads(line), dict) for line in lines)
    for item in receipt.downloads:
        stored = sandbox.output_path(receipt.output_set.uid, item.name).read_bytes()
        assert Path(item.path).read_bytes() == stored
        assert item.sha256 == hashlib.sha256(stored).hexdigest()
        assert item.bytes == len(stored)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        by_name
    )  # no temp files left


def test_load_with_wait_returns_the_output_set(outputs_client: RunwayClient, sat_csv: Path) -> None:
    receipt = load_map(outputs_client, sat_csv, wait=10)
    assert receipt.output_set is not None
    assert "studentAssessments.jsonl" in receipt.output_set.files
    assert receipt.downloads == ()


def test_a_failing_run_makes_the_wait_time_out_with_advice(sat_csv: Path) -> None:
    with Sandbox(failing_file_names={"sat.csv"}) as sb, connect(sb) as client:
        began = time.monotonic()
        with pytest.raises(OutputsNotReadyError) as caught:
            load_map(client, sat_csv, wait=0.6)
        assert time.monotonic() - began < 5
        (job,) = sb.jobs()
        assert sb.wait_for_run(job.uid) == "failed"
    error = caught.value
    assert error.job_uid == job.uid
    assert error.step == "wait_for_outputs"
    assert "may still be running, or may have failed" in error.message
    assert "Runway UI" in error.message


def test_wait_for_outputs_finds_a_job_started_earlier(
    outputs_client: RunwayClient, sandbox: Sandbox, sat_csv: Path
) -> None:
    receipt = load_map(outputs_client, sat_csv)
    found = outputs_client.wait_for_outputs(receipt.job_uid, timeout=10, poll_interval=POLL)
    assert found.job_uid == receipt.job_uid
    assert found.uid == sandbox.output_sets()[0].uid


# ---------------------------------------------------------------- listing and filters


def started(client: RunwayClient, sb: Sandbox, path: Path, **changes: str) -> str:
    args = {
        "tenant_code": "ea",
        "bundle_name": "assessments/MAP_Growth",
        "school_year": "2026",
        **changes,
    }
    receipt = client.load_files(input_files={"INPUT_FILE": path}, **args)  # type: ignore[arg-type]
    assert sb.wait_for_run(receipt.job_uid) == "succeeded"
    return receipt.job_uid


def test_every_filter_narrows_the_listing(tmp_path: Path) -> None:
    sample = tmp_path / "scores.csv"
    sample.write_text("id,score\n1,10\n2,20\n")
    with (
        Sandbox(tenants=("ea", "north"), school_years=("2025", "2026")) as sb,
        connect(sb) as client,
    ):
        first = started(client, sb, sample)
        middle = datetime.now(UTC)
        time.sleep(0.01)
        second = started(client, sb, sample, tenant_code="north")
        third = started(client, sb, sample, school_year="2024-25")
        fourth = started(client, sb, sample, bundle_name="assessments/STAR")

        def jobs(**filters: object) -> list[str]:
            return [s.job_uid for s in client.list_output_sets(**filters)]  # type: ignore[arg-type]

        assert jobs() == [first, second, third, fourth]  # ascending createdAt
        assert jobs(tenant_code="north") == [second]
        assert jobs(school_year="2425") == [third]
        assert jobs(school_year=2026, tenant_code="ea") == [first, fourth]
        assert jobs(bundle_name="assessments/STAR") == [fourth]
        assert jobs(created_after=middle) == [second, third, fourth]
        assert jobs(
            created_after=middle.astimezone(__import__("datetime").timezone(timedelta(hours=-5)))
        ) == [
            second,
            third,
            fourth,
        ]
        assert jobs(sent_to_ods=True) == [first, second, third, fourth]
        assert jobs(sent_to_ods=False) == []
        sets = client.list_output_sets()
        assert all(s.created_at.tzinfo is not None for s in sets)


def test_bad_filters_are_refused_before_any_request(outputs_client: RunwayClient) -> None:
    from runway_client import InputError

    with pytest.raises(InputError) as caught:
        outputs_client.list_output_sets(created_after=datetime(2026, 1, 1), school_year="2527")
    assert len(caught.value.problems) == 2


def test_server_side_listing_errors_map_to_kinds(
    sandbox: Sandbox, outputs_client: RunwayClient
) -> None:
    def listing(scopes: str, query: OutputSetQuery) -> object:
        token = Token(
            access_token=Secret(sandbox.issue_token(scopes)), token_type="Bearer", expires_at=1e12
        )
        return list_output_sets(
            outputs_client.transport, outputs_client.config, token, query
        ).failure()

    not_found = listing("read:jobs partner:zz", OutputSetQuery(partner="zz"))
    assert isinstance(not_found, NotFoundError)
    assert not_found.server_message == "Partner not found: zz"
    bad_year = listing(
        "read:jobs partner:ea", OutputSetQuery(partner="ea", school_year=SchoolYear(end_year=2526))
    )
    assert isinstance(bad_year, RequestRejectedError)
    assert bad_year.server_message == "Invalid school year: 2526"
    no_scope = listing("create:jobs partner:ea", OutputSetQuery(partner="ea"))
    assert isinstance(no_scope, PermissionDeniedError)


def test_each_operation_asks_only_for_its_scopes(sat_csv: Path) -> None:
    with Sandbox(granted_scopes="create:jobs partner:ea") as sb, connect(sb) as client:
        load_map(client, sat_csv)  # a load needs only create:jobs
        with pytest.raises(PermissionDeniedError) as caught:
            client.list_output_sets()
        assert caught.value.step == "authorize"
        assert "read:jobs" in caught.value.message


# ---------------------------------------------------------------- downloads


def finished_set(client: RunwayClient, sb: Sandbox, path: Path) -> str:
    job_uid = started(client, sb, path)
    (found,) = [s for s in sb.output_sets() if s.job_uid == job_uid]
    return found.uid


def test_download_by_uid_skips_same_size_files_unless_overwrite(
    outputs_client: RunwayClient, sandbox: Sandbox, sat_csv: Path, tmp_path: Path
) -> None:
    set_uid = finished_set(outputs_client, sandbox, sat_csv)
    first = outputs_client.download(set_uid, tmp_path)
    assert not any(r.skipped for r in first)
    again = outputs_client.download(set_uid, tmp_path)
    assert all(r.skipped for r in again)
    assert [r.sha256 for r in again] == [r.sha256 for r in first]
    forced = outputs_client.download(set_uid, tmp_path, overwrite=True)
    assert not any(r.skipped for r in forced)


def test_an_interrupted_download_leaves_no_file_under_its_name(
    outputs_client: RunwayClient, sandbox: Sandbox, sat_csv: Path, tmp_path: Path
) -> None:
    set_uid = finished_set(outputs_client, sandbox, sat_csv)
    sandbox.inject("download", "reset_mid_body", times=10)  # more than the retries
    with pytest.raises(NetworkError):
        outputs_client.download(set_uid, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # neither a partial file nor a temporary one


@pytest.mark.parametrize(
    ("fault", "status"), [("reset_mid_body", None), ("status", 500), ("slow_down", None)]
)
def test_a_download_cut_off_or_refused_once_is_tried_again(
    outputs_client: RunwayClient,
    sandbox: Sandbox,
    sat_csv: Path,
    tmp_path: Path,
    fault: str,
    status: int | None,
) -> None:
    set_uid = finished_set(outputs_client, sandbox, sat_csv)
    sandbox.inject("download", fault, status=status)
    receipts = outputs_client.download(set_uid, tmp_path)
    for receipt in receipts:
        assert (
            Path(receipt.path).read_bytes()
            == sandbox.output_path(set_uid, receipt.name).read_bytes()
        )


def test_downloaded_files_get_the_usual_permissions(
    outputs_client: RunwayClient, sandbox: Sandbox, sat_csv: Path, tmp_path: Path
) -> None:
    set_uid = finished_set(outputs_client, sandbox, sat_csv)
    mask = os.umask(0o022)
    try:
        receipts = outputs_client.download(set_uid, tmp_path)
    finally:
        os.umask(mask)
    assert {Path(r.path).stat().st_mode & 0o777 for r in receipts} == {0o644}


def test_an_expired_link_is_refreshed_once_and_the_download_goes_on(
    outputs_client: RunwayClient, sandbox: Sandbox, sat_csv: Path, tmp_path: Path
) -> None:
    set_uid = finished_set(outputs_client, sandbox, sat_csv)
    links_before = sandbox.received("download_links")
    sandbox.inject("download", "expire")  # the first file's link has expired
    receipts = outputs_client.download(set_uid, tmp_path)
    assert sandbox.received("download_links") == links_before + 2
    assert len(receipts) == len(sandbox.output_sets()[0].files)
    sandbox.inject("download", "expire", times=2)  # still expired after a refresh: give up
    with pytest.raises(StorageError) as caught:
        outputs_client.download(set_uid, tmp_path / "again")
    assert caught.value.code == "AccessDenied"


def test_links_that_really_expire_mid_way_are_refreshed(sat_csv: Path, tmp_path: Path) -> None:
    with Sandbox(download_url_lifetime=0.4) as sb, connect(sb) as client:
        set_uid = finished_set(client, sb, sat_csv)
        links = client.get_download_links(set_uid)
        time.sleep(0.6)
        from runway_client._models import DownloadLinks
        from runway_client._steps import download_file

        stale = DownloadLinks(set_uid=set_uid, links=links)
        name = next(iter(links))
        error = download_file(client.transport, stale, name, tmp_path).failure()
        assert isinstance(error, StorageError)
        assert error.code == "AccessDenied"
        receipts = client.download(set_uid, tmp_path)  # fresh links
        assert {r.name for r in receipts} == set(links)


def test_compressed_outputs_are_saved_as_stored(sat_csv: Path, tmp_path: Path) -> None:
    with Sandbox(gzip_outputs=True) as sb, connect(sb) as client:
        set_uid = finished_set(client, sb, sat_csv)
        for receipt in client.download(set_uid, tmp_path):
            saved = Path(receipt.path).read_bytes()
            assert saved[:2] == b"\x1f\x8b"  # gzip, not decoded
            assert saved == sb.output_path(set_uid, receipt.name).read_bytes()


def test_an_unknown_output_set_is_not_found(outputs_client: RunwayClient, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        outputs_client.download("00000000-0000-4000-8000-000000000000", tmp_path)


def test_every_download_name_is_checked_before_the_first_file_is_written(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Issue 11 item 16: one bad name refuses the whole set, with nothing written."""
    from returns.result import Success

    from runway_client._errors import InputError, Step
    from runway_client._transport import HttpResponse
    from runway_client.testing.transports import ScriptedTransport

    links = {"a.jsonl": "http://127.0.0.1:9/a", "../../escape.jsonl": "http://127.0.0.1:9/b"}

    def forged(step: Step, n: int) -> object:
        if step == "get_download_links":
            body = json.dumps({"downloadLinks": links}).encode()
            return Success(HttpResponse(status=200, body=body))
        return None

    scripted = ScriptedTransport(forged)  # type: ignore[arg-type]
    client = RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code=sandbox.partner_code,
        transport=scripted,
    )
    dest = tmp_path / "out"
    with pytest.raises(InputError, match="not a plain file name"):
        client.download("3f0e2b1c-0000-4000-8000-000000000001", dest)
    assert scripted.calls.get("download", 0) == 0  # no GET at all
    assert list(dest.iterdir()) == []
