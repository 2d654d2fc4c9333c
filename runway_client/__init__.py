"""runway_client: load assessment files into Runway (Education Analytics) from Python.

The simple path::

    from runway_client import RunwayClient

    client = RunwayClient(runway_base_url=..., auth_base_url=..., client_id=...,
                          client_secret=..., partner_code="ea")
    receipt = client.load_files(tenant_code="ea", bundle_name="assessments/PSAT_SAT",
                                input_files={"INPUT_FILE": "/path/to/sat.csv"},
                                bundle_params={"TEST_TYPE": "SAT"}, school_year="2526")

The steps (``authorize``, ``create_job``, ``upload``, ``start``; ``verify_token``,
``list_output_sets``, ``get_download_links``, ``download``) return
``returns.result.Result`` values and compose into custom flows; see
``runway_client._steps`` and ``runway_client._pipeline``.
"""

from runway_client._client import RunwayClient
from runway_client._compat import RunwayJob, RunwayResponseError, TokenResponse
from runway_client._config import RunwayConfig, config_from_env, make_config
from runway_client._errors import (
    AuthenticationError,
    InputChangedError,
    InputError,
    IntegrityError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    OutputsNotReadyError,
    PermissionDeniedError,
    ProtocolError,
    RequestRejectedError,
    RequestTimeoutError,
    RunwayError,
    ServerError,
    ServiceUnavailableError,
    StorageError,
    UploadExpiredError,
)
from runway_client._models import (
    DownloadLinks,
    DownloadReceipt,
    InputFile,
    Job,
    JobRequest,
    JobSpec,
    LoadReceipt,
    OutputSet,
    OutputSetQuery,
    PendingJob,
    SchoolYear,
    Token,
    UploadedJob,
    UploadReceipt,
    make_output_set_query,
    parse_school_year,
)
from runway_client._pipeline import (
    fetch_outputs,
    follow_up,
    load_and_wait,
    load_files,
    prepare_job,
    resume,
    wait_for_outputs,
)
from runway_client._redaction import Secret
from runway_client._retry import RetryPolicy
from runway_client._steps import (
    authorize,
    create_job,
    download,
    get_download_links,
    list_output_sets,
    start,
    upload,
    verify_token,
)
from runway_client._token_file import FileTokenCache
from runway_client._transport import RequestsTransport, Transport

__all__ = [
    "AuthenticationError",
    "DownloadLinks",
    "DownloadReceipt",
    "FileTokenCache",
    "InputChangedError",
    "InputError",
    "InputFile",
    "IntegrityError",
    "Job",
    "JobRequest",
    "JobSpec",
    "LoadReceipt",
    "NetworkError",
    "NotFoundError",
    "OutcomeUnknownError",
    "OutputSet",
    "OutputSetQuery",
    "OutputsNotReadyError",
    "PendingJob",
    "PermissionDeniedError",
    "ProtocolError",
    "RequestRejectedError",
    "RequestTimeoutError",
    "RequestsTransport",
    "RetryPolicy",
    "RunwayClient",
    "RunwayConfig",
    "RunwayError",
    "RunwayJob",
    "RunwayResponseError",
    "SchoolYear",
    "Secret",
    "ServerError",
    "ServiceUnavailableError",
    "StorageError",
    "Token",
    "TokenResponse",
    "Transport",
    "UploadExpiredError",
    "UploadReceipt",
    "UploadedJob",
    "authorize",
    "config_from_env",
    "create_job",
    "download",
    "fetch_outputs",
    "follow_up",
    "get_download_links",
    "list_output_sets",
    "load_and_wait",
    "load_files",
    "make_config",
    "make_output_set_query",
    "parse_school_year",
    "prepare_job",
    "resume",
    "start",
    "upload",
    "verify_token",
    "wait_for_outputs",
]

__version__ = "0.1.0"
