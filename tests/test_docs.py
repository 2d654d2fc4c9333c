"""The docs tell the truth: README and usage examples run, and the error table matches."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from returns.result import Failure, Result

from runway_client import RunwayClient, RunwayError, prepare_job
from runway_client._errors import NetworkError, Step
from runway_client._retry import RetryPolicy
from runway_client._steps import create_job, start, upload
from runway_client._transport import HttpResponse
from runway_client.sandbox import Sandbox
from runway_client.testing.transports import ScriptedTransport
from tests.conftest import REPO, use_sandbox_env

PLACEHOLDER = re.compile(r"<[a-z ]+>")


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def runnable(path: Path) -> list[str]:
    """Blocks that are whole programs: no ``<placeholder>``s to fill in."""
    return [b for b in python_blocks(path) if not PLACEHOLDER.search(b)]


def test_readme_examples_run_against_the_sandbox(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    monkeypatch.chdir(REPO)
    blocks = runnable(REPO / "README.md")
    assert len(blocks) == 2  # the custom flow and the property test
    for block in blocks:
        exec(compile(block, "<README.md example>", "exec"), {})  # noqa: S102 - our own documentation
    (job,) = sandbox.jobs()
    assert job.started
    assert f"started job {job.uid}" in capsys.readouterr().out


def test_usage_sandbox_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    (block,) = [b for b in python_blocks(REPO / "docs" / "usage.md") if "with Sandbox()" in b]
    exec(compile(block, "<docs/usage.md example>", "exec"), {})  # noqa: S102 - our own documentation


def documented_errors() -> dict[str, str]:
    table = (REPO / "docs" / "usage.md").read_text().split("### What a user sees", 1)[1]
    rows = re.findall(r"^\| (.+?) \| `(.+?)` \|$", table, flags=re.MULTILINE)
    return dict(rows)


def as_pattern(documented: str) -> re.Pattern[str]:
    escaped = re.escape(documented).replace("…", ".*").replace(re.escape("<uid>"), "[0-9a-f-]{36}")
    return re.compile(escaped + ".*", flags=re.DOTALL)


def fail(call: Callable[[], object]) -> RunwayError:
    with pytest.raises(RunwayError) as caught:
        call()
    return caught.value


def client_of(
    sb: Sandbox,
    *,
    transport: ScriptedTransport | None = None,
    read_timeout: float = 5.0,
    **changes: str,
) -> RunwayClient:
    client = RunwayClient(
        runway_base_url=sb.runway_base_url,
        auth_base_url=sb.auth_base_url,
        client_id=sb.client_id,
        client_secret=changes.get("client_secret", sb.client_secret),
        partner_code=changes.get("partner_code", sb.partner_code),
        retry=RetryPolicy(backoff_base=0.01),
    )
    if transport is None:  # a given transport brings its own timeouts
        return client.with_options(read_timeout=read_timeout)
    return RunwayClient.from_config(client.config, transport=transport)


def test_the_error_table_shows_what_users_really_see(sat_csv: Path, tmp_path: Path) -> None:
    rows = documented_errors()
    seen: dict[str, RunwayError] = {}

    def load(client: RunwayClient, **changes: object) -> None:
        args: dict[str, object] = {
            "tenant_code": "ea",
            "bundle_name": "assessments/PSAT_SAT",
            "input_files": {"INPUT_FILE": sat_csv},
            "bundle_params": {"TEST_TYPE": "SAT"},
            "school_year": "2526",
            **changes,
        }
        client.load_files(**args)  # type: ignore[arg-type]

    with Sandbox(upload_url_lifetime=0.3) as sb:
        good = client_of(sb)
        seen["a file path that does not exist"] = fail(
            lambda: load(good, input_files={"INPUT_FILE": "/x/sat.csv"})
        )
        seen['`school_year="2527"`'] = fail(lambda: load(good, school_year="2527"))
        seen["wrong client secret"] = fail(
            lambda: load(client_of(sb, client_secret="wrong-secret-1"))
        )
        seen["a partner the client was not granted"] = fail(
            lambda: load(client_of(sb, partner_code="zz"))
        )
        seen["unknown tenant"] = fail(lambda: load(good, tenant_code="nope"))
        seen["a param value not allowed"] = fail(
            lambda: load(good, bundle_params={"TEST_TYPE": "GRE"})
        )
        token = good.token_cache(("create:jobs", "partner:ea")).unwrap()
        spec = prepare_job(
            partner_code="ea",
            tenant_code="ea",
            bundle_name="assessments/PSAT_SAT",
            school_year="2526",
            input_files={"INPUT_FILE": sat_csv},
            bundle_params={"TEST_TYPE": "SAT"},
        ).unwrap()
        job = create_job(good.transport, good.config, token, spec).unwrap()
        time.sleep(0.5)
        seen["upload URL expired"] = upload(good.transport, job).failure()
        tampered_job = create_job(good.transport, good.config, token, spec).unwrap()
        from msgspec.structs import replace

        url = tampered_job.upload_urls["INPUT_FILE"]
        seen["presigned URL altered"] = upload(
            good.transport,
            replace(
                tampered_job, upload_urls={"INPUT_FILE": url.replace("X-Amz-Date=", "X-Amz-Date=1")}
            ),
        ).failure()
    with Sandbox() as sb:
        good = client_of(sb)
        token = good.token_cache(("create:jobs", "partner:ea")).unwrap()
        job = create_job(good.transport, good.config, token, spec).unwrap()
        uploaded = upload(good.transport, job).unwrap()
        start(good.transport, good.config, token, uploaded).unwrap()
        seen["starting twice"] = start(good.transport, good.config, token, uploaded).failure()
    # the sandbox has stopped: nothing listens there now (the client still holds a token)
    seen["Runway unreachable"] = fail(lambda: load(good))

    def under(route: str, fault: str, **extra: float) -> RunwayError:
        with Sandbox() as faulty:
            faulty.inject(route, fault, times=10, **extra)  # type: ignore[arg-type]
            return fail(lambda: load(client_of(faulty, read_timeout=0.3)))

    seen["the identity provider stays busy (503 on every retry)"] = under(
        "token", "status", status=503
    )
    seen["`POST /jobs` gets no answer (connection reset, or read timeout)"] = under(
        "create_job", "reset_before_answer"
    )
    seen["storage keeps throttling (503 `SlowDown` on every retry)"] = under("upload", "slow_down")
    seen["storage drops the connection mid-upload on every retry"] = under(
        "upload", "reset_mid_body"
    )
    seen["start fails with 500 on every retry"] = under("start", "status", status=500)

    def grow_on_first_put(step: Step, n: int) -> Result[HttpResponse, RunwayError] | None:
        if step == "upload" and n == 1:
            sat_csv.write_bytes(sat_csv.read_bytes() + b"x")
            return Failure(NetworkError("reset", step=step))
        return None

    with Sandbox() as sb:
        seen["the input file changes during the load"] = fail(
            lambda: load(client_of(sb, transport=ScriptedTransport(grow_on_first_put)))
        )
    original = sat_csv.read_bytes()[:-1]
    sat_csv.write_bytes(original)
    with Sandbox(failing_file_names={"sat.csv"}) as sb:
        seen["a wait ends and the run has no output set"] = fail(
            lambda: load(client_of(sb), wait=0.3, poll_interval=0.05)
        )
    with Sandbox() as sb:
        good = client_of(sb)
        receipt = good.load_files(
            tenant_code="ea",
            bundle_name="assessments/MAP_Growth",
            input_files={"INPUT_FILE": sat_csv},
            school_year="2026",
            wait=5,
            poll_interval=0.05,
        )
        assert receipt.output_set is not None
        sb.inject("download", "reset_mid_body", times=10)
        done = receipt.output_set
        seen["a download is cut off on every try"] = fail(
            lambda: good.download(done, tmp_path / "out")
        )

    assert set(seen) == set(rows)
    for what, error in seen.items():
        shown = f"{type(error).__name__}: {error}"
        assert as_pattern(rows[what]).fullmatch(shown), (
            f"{what}: docs say {rows[what]!r}, users see {shown!r}"
        )
