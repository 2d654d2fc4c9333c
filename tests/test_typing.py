"""The package is typed for its users (PEP 561), and the type-state promise holds in
the documented ``partial``/``bind`` style: a flow that skips ``upload`` fails
``mypy --strict``, and at run time a wrong value given to a step is a ``Failure`` or a
``TypeError`` before any request (issue 7 item 6, issue 11 item 12).

mypy runs on a user's script against a copy of the package laid out as installed
(in a folder on ``PYTHONPATH``, which mypy treats as site-packages: it reads a package
there only if it ships ``py.typed``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from returns.curry import partial
from returns.result import Failure

import runway_client
from runway_client import RunwayClient, create_job, prepare_job, start, upload
from runway_client.sandbox import Sandbox
from runway_client.wire import load_scopes

PACKAGE = Path(runway_client.__file__).parent
MYPY_INI = textwrap.dedent(
    """\
    [mypy]
    strict = True
    plugins = returns.contrib.mypy.returns_plugin
    """
)
PREAMBLE = textwrap.dedent(
    """\
    from returns.curry import partial
    from returns.pipeline import flow
    from returns.pointfree import bind

    from runway_client import LoadReceipt, RunwayClient, create_job, prepare_job, start, upload
    from runway_client.wire import load_scopes

    client = RunwayClient.from_env()
    transport, config = client.transport, client.config
    spec = prepare_job(
        partner_code=config.partner_code,
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        school_year="2025-26",
        input_files={"INPUT_FILE": "examples/sat.csv"},
    ).unwrap()
    token = client.token_cache(load_scopes(config.partner_code)).unwrap()
    """
)


def installed_copy(tmp_path: Path, *, typed: bool = True) -> Path:
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "runway_client", ignore=shutil.ignore_patterns("__pycache__"))
    if not typed:
        (site / "runway_client" / "py.typed").unlink()
    return site


def mypy(tmp_path: Path, site: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "user_script.py"
    script.write_text(PREAMBLE + textwrap.dedent(code))
    (tmp_path / "mypy.ini").write_text(MYPY_INI)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(tmp_path / "mypy.ini"),
            "--no-incremental",
            str(script),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        timeout=240,
        check=False,
    )


GOOD = """
uploaded = flow(create_job(transport, config, token, spec), bind(partial(upload, transport)))
receipt = uploaded.bind(partial(start, transport, config, token))
if isinstance(receipt.value_or(None), LoadReceipt):
    print(receipt.unwrap().job_uid)
"""

SKIPS_THE_UPLOAD = """
skipped = create_job(transport, config, token, spec).bind(partial(start, transport, config, token))
"""


def test_py_typed_ships_in_the_package() -> None:
    assert (PACKAGE / "py.typed").is_file()
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert 'runway_client = ["py.typed"]' in pyproject


def test_a_users_script_type_checks_strictly_against_the_package(tmp_path: Path) -> None:
    checked = mypy(tmp_path, installed_copy(tmp_path), GOOD)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_py_typed_the_user_sees_no_types(tmp_path: Path) -> None:
    checked = mypy(tmp_path, installed_copy(tmp_path, typed=False), GOOD)
    assert checked.returncode == 1
    assert "import-not-found" in checked.stdout or "missing library stubs" in checked.stdout


def test_a_flow_that_skips_the_upload_fails_mypy_in_the_documented_style(tmp_path: Path) -> None:
    checked = mypy(tmp_path, installed_copy(tmp_path), SKIPS_THE_UPLOAD)
    assert checked.returncode == 1, checked.stdout
    assert 'incompatible type "Callable[[UploadedJob]' in checked.stdout
    assert 'expected "Callable[[Job]' in checked.stdout


def test_skipping_the_upload_at_run_time_is_a_failure_that_keeps_the_job(
    sandbox: Sandbox, sat_csv: Path
) -> None:
    client = RunwayClient(
        sandbox.runway_base_url,
        sandbox.auth_base_url,
        sandbox.client_id,
        sandbox.client_secret,
        "ea",
    )
    transport, config = client.transport, client.config
    spec = prepare_job(
        partner_code="ea",
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        school_year="2526",
        input_files={"INPUT_FILE": sat_csv},
        bundle_params={"TEST_TYPE": "SAT"},
    ).unwrap()
    token = client.token_cache(load_scopes("ea")).unwrap()
    skipped = create_job(transport, config, token, spec).bind(
        partial(start, transport, config, token)  # type: ignore[arg-type]
    )
    assert isinstance(skipped, Failure)
    error = skipped.failure()
    assert "start takes an UploadedJob" in error.message
    assert error.pending is not None  # not an orphan: it can still be finished
    assert sandbox.received("start") == 0
    (job,) = sandbox.jobs()
    assert error.job_uid == job.uid
    receipt = client.resume(error.pending)
    assert receipt.job_uid == job.uid


@pytest.mark.parametrize(
    "call",
    [
        lambda t, c, token, spec: start(t, c, token, spec),
        lambda t, c, token, spec: upload(t, spec),
        lambda t, c, token, spec: create_job(t, c, token, {"tenant": "ea"}),  # type: ignore[arg-type]
        lambda t, c, token, spec: create_job(t, c, "a-token", spec),  # type: ignore[arg-type]
    ],
    ids=["start-a-spec", "upload-a-spec", "create-a-dict", "create-with-a-str-token"],
)
def test_a_wrong_value_given_to_a_step_is_a_type_error_before_any_request(
    sandbox: Sandbox, sat_csv: Path, call: object
) -> None:
    client = RunwayClient(
        sandbox.runway_base_url,
        sandbox.auth_base_url,
        sandbox.client_id,
        sandbox.client_secret,
        "ea",
    )
    spec = prepare_job(
        partner_code="ea",
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        school_year="2526",
        input_files={"INPUT_FILE": sat_csv},
    ).unwrap()
    token = client.token_cache(load_scopes("ea")).unwrap()
    before = {route: sandbox.received(route) for route in ("create_job", "upload", "start")}
    with pytest.raises(TypeError, match="takes a"):
        call(client.transport, client.config, token, spec)  # type: ignore[operator]
    assert {route: sandbox.received(route) for route in before} == before
    assert sandbox.jobs() == ()
