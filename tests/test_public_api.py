"""The public surface is small, deliberate and pinned: the top-level names, the public
modules, and what importing the package costs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import runway_client

TOP_LEVEL = {
    # the shell, its settings and the token cache
    "RunwayClient",
    "RunwayConfig",
    "make_config",
    "RetryPolicy",
    "TokenCache",
    "FileTokenCache",
    # the steps
    "authorize",
    "create_job",
    "upload",
    "start",
    "list_output_sets",
    "download",
    # the flows
    "prepare_job",
    "load_files",
    "resume",
    "wait_for_outputs",
    "fetch_outputs",
    # the values users keep
    "JobSpec",
    "LoadReceipt",
    "PendingJob",
    "OutputSet",
    "make_output_set_query",
    # the error tree
    "RunwayError",
    "InputError",
    "InputChangedError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RequestRejectedError",
    "NotFoundError",
    "ServerError",
    "ServiceUnavailableError",
    "RateLimitError",
    "StorageError",
    "UploadExpiredError",
    "IntegrityError",
    "NetworkError",
    "RequestTimeoutError",
    "DeadlineExceededError",
    "OutcomeUnknownError",
    "ProtocolError",
    "OutputsNotReadyError",
    "CancelledError",
    "RunwayResponseError",  # the original client's name for RunwayError
}
"""About 40 names (issue 7, item 4): 41 at the redesign, then the two error kinds users
catch from the unattended work (``CancelledError``, ``DeadlineExceededError``)."""

PUBLIC_MODULES = {
    "runway_client",
    "runway_client.cli",
    "runway_client.wire",
    "runway_client.airflow",
    "runway_client.sandbox",
    "runway_client.testing",
    "runway_client.testing.strategies",
    "runway_client.testing.transports",
}
"""Modules with no leading underscore, besides the wings' own modules (sandbox, airflow)."""


def test_the_top_level_is_exactly_the_pinned_names() -> None:
    assert set(runway_client.__all__) == TOP_LEVEL
    assert sorted(runway_client.__all__) == runway_client.__all__
    assert len(runway_client.__all__) <= 43
    for name in TOP_LEVEL:
        assert getattr(runway_client, name) is not None
    loaded = {
        name
        for name, value in vars(runway_client).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert loaded <= TOP_LEVEL  # nothing public besides __all__ (and submodules)


def test_every_error_kind_users_can_meet_is_at_the_top_level() -> None:
    # an error raised to users must be catchable without importing a private module
    errors = importlib.import_module("runway_client._errors")
    kinds = {
        name
        for name in errors.__all__
        if isinstance(value := getattr(errors, name), type) and issubclass(value, Exception)
    }
    assert {"CancelledError", "DeadlineExceededError"} <= kinds
    assert kinds <= set(runway_client.__all__)
    for name in kinds:
        assert getattr(runway_client, name) is getattr(errors, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="RequestsTransport"):
        runway_client.RequestsTransport  # type: ignore[attr-defined]  # noqa: B018


def test_the_public_modules_are_pinned() -> None:
    found = {
        module.name
        for module in pkgutil.walk_packages(runway_client.__path__, "runway_client.")
        if not any(part.startswith("_") for part in module.name.split("."))
        and not module.name.startswith(("runway_client.sandbox.", "runway_client.airflow."))
    }
    assert found | {"runway_client"} == PUBLIC_MODULES


def test_wire_keeps_builders_and_decoders_and_hides_helpers() -> None:
    wire = importlib.import_module("runway_client.wire")
    public = set(wire.__all__)
    assert {"create_job_request", "decode_create_job", "decode_start", "token_request"} <= public
    assert not {"iso_utc", "retry_after", "retry_at", "storage_error"} & public
    assert all(
        name.endswith("_request")
        or name.startswith("decode_")
        or name
        in {
            "UPLOAD_CONTENT_TYPE",
            "api_error",
            "download_scopes",
            "is_forbidden",
            "load_scopes",
            "read_scopes",
            "upload_headers",
        }
        for name in public
    )


def test_every_public_name_has_a_docstring() -> None:
    for name in runway_client.__all__:
        obj = getattr(runway_client, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"


def test_the_client_has_no_token_method_of_its_own() -> None:
    # the name belongs to the original client's attribute (compat); tokens come from
    # client.token_cache
    assert "token" not in vars(runway_client.RunwayClient)


def test_importing_the_package_loads_no_dependency() -> None:
    code = (
        "import sys, runway_client; "
        "heavy = {'requests', 'urllib3', 'msgspec', 'returns', 'werkzeug', 'jwt', "
        "'hypothesis', 'pytest'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert shown.strip() == "[]"


def test_the_client_needs_only_the_core_dependencies() -> None:
    code = (
        "import sys; from runway_client import RunwayClient; "
        "extra = {'werkzeug', 'jwt', 'hypothesis', 'pytest'} & {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(extra))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert shown.strip() == "[]"
