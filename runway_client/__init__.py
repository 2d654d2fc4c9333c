"""runway_client: load assessment files into Runway (Education Analytics) from Python.

The simple path::

    from runway_client import RunwayClient

    client = RunwayClient(runway_base_url=..., auth_base_url=..., client_id=...,
                          client_secret=..., partner_code="ea")
    receipt = client.load_files(tenant_code="ea", bundle_name="assessments/PSAT_SAT",
                                input_files={"INPUT_FILE": "/path/to/sat.csv"},
                                bundle_params={"TEST_TYPE": "SAT"}, school_year="2526")

The steps (``authorize``, ``create_job``, ``upload``, ``start``; ``list_output_sets``,
``download``) return ``returns.result.Result`` values and compose into custom
flows; the flows (``prepare_job``, ``load_files``, ``resume``, ``wait_for_outputs``,
``fetch_outputs``) are those compositions, each with a ``TokenCache``.

Names are imported on first use, so ``import runway_client`` stays fast.
"""

import importlib as _importlib
import os as _os
import typing as _typing

from runway_client._defaults import VERSION as _VERSION

if _os.environ.get("RUNWAY_LOG"):  # RUNWAY_LOG=info|debug logs to stderr from the start
    _importlib.import_module("runway_client._transport")

if _typing.TYPE_CHECKING:
    from runway_client._client import RunwayClient
    from runway_client._compat import RunwayResponseError
    from runway_client._config import RunwayConfig, make_config
    from runway_client._errors import (
        AuthenticationError,
        CancelledError,
        DeadlineExceededError,
        InputChangedError,
        InputError,
        IntegrityError,
        NetworkError,
        NotFoundError,
        OutcomeUnknownError,
        OutputsNotReadyError,
        PermissionDeniedError,
        ProtocolError,
        RateLimitError,
        RequestRejectedError,
        RequestTimeoutError,
        RunwayError,
        ServerError,
        ServiceUnavailableError,
        StorageError,
        UploadExpiredError,
    )
    from runway_client._models import (
        JobSpec,
        LoadReceipt,
        OutputSet,
        PendingJob,
        make_output_set_query,
    )
    from runway_client._pipeline import (
        fetch_outputs,
        load_files,
        prepare_job,
        resume,
        wait_for_outputs,
    )
    from runway_client._retry import RetryPolicy
    from runway_client._steps import (
        authorize,
        create_job,
        download,
        list_output_sets,
        start,
        upload,
    )
    from runway_client._token_file import FileTokenCache
    from runway_client._tokens import TokenCache

_HOMES = {
    "_client": ("RunwayClient",),
    "_compat": ("RunwayResponseError",),
    "_config": ("RunwayConfig", "make_config"),
    "_errors": (
        "AuthenticationError",
        "CancelledError",
        "DeadlineExceededError",
        "InputChangedError",
        "InputError",
        "IntegrityError",
        "NetworkError",
        "NotFoundError",
        "OutcomeUnknownError",
        "OutputsNotReadyError",
        "PermissionDeniedError",
        "ProtocolError",
        "RateLimitError",
        "RequestRejectedError",
        "RequestTimeoutError",
        "RunwayError",
        "ServerError",
        "ServiceUnavailableError",
        "StorageError",
        "UploadExpiredError",
    ),
    "_models": ("JobSpec", "LoadReceipt", "OutputSet", "PendingJob", "make_output_set_query"),
    "_pipeline": ("fetch_outputs", "load_files", "prepare_job", "resume", "wait_for_outputs"),
    "_retry": ("RetryPolicy",),
    "_steps": ("authorize", "create_job", "download", "list_output_sets", "start", "upload"),
    "_token_file": ("FileTokenCache",),
    "_tokens": ("TokenCache",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AuthenticationError",
    "CancelledError",
    "DeadlineExceededError",
    "FileTokenCache",
    "InputChangedError",
    "InputError",
    "IntegrityError",
    "JobSpec",
    "LoadReceipt",
    "NetworkError",
    "NotFoundError",
    "OutcomeUnknownError",
    "OutputSet",
    "OutputsNotReadyError",
    "PendingJob",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "RequestRejectedError",
    "RequestTimeoutError",
    "RetryPolicy",
    "RunwayClient",
    "RunwayConfig",
    "RunwayError",
    "RunwayResponseError",
    "ServerError",
    "ServiceUnavailableError",
    "StorageError",
    "TokenCache",
    "UploadExpiredError",
    "authorize",
    "create_job",
    "download",
    "fetch_outputs",
    "list_output_sets",
    "load_files",
    "make_config",
    "make_output_set_query",
    "prepare_job",
    "resume",
    "start",
    "upload",
    "wait_for_outputs",
]

__version__ = _VERSION


if not _typing.TYPE_CHECKING:  # type checkers see the imports above, and no fallback

    def __getattr__(name: str) -> object:
        """Import a public name from its module on first use (PEP 562)."""
        module = _HOME_OF.get(name)
        if module is None:
            raise AttributeError(f"module 'runway_client' has no attribute {name!r}")
        value = getattr(_importlib.import_module(f"runway_client.{module}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
