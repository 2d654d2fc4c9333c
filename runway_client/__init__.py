"""runway_client: load assessment files into Runway (Education Analytics) from Python.

The simple path::

    from runway_client import RunwayClient

    client = RunwayClient(runway_base_url=..., auth_base_url=..., client_id=...,
                          client_secret=..., partner_code="ea")
    receipt = client.load_files(tenant_code="ea", bundle_name="assessments/PSAT_SAT",
                                input_files={"INPUT_FILE": "/path/to/sat.csv"},
                                bundle_params={"TEST_TYPE": "SAT"}, school_year="2526")

The steps (``authorize``, ``create_job``, ``upload``, ``start``) return
``returns.result.Result`` values and compose into custom flows; see
``runway_client.steps`` and ``runway_client.pipeline``.
"""

from runway_client.client import RunwayClient
from runway_client.config import RunwayConfig, config_from_env, make_config
from runway_client.errors import (
    AuthenticationError,
    InputError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RequestRejectedError,
    RequestTimeoutError,
    RunwayError,
    ServerError,
    ServiceUnavailableError,
    StorageError,
)
from runway_client.models import (
    InputFile,
    Job,
    JobRequest,
    JobSpec,
    LoadReceipt,
    SchoolYear,
    Token,
    UploadedJob,
    UploadReceipt,
    parse_school_year,
)
from runway_client.pipeline import load_files, prepare_job
from runway_client.redaction import Secret
from runway_client.steps import authorize, create_job, start, upload
from runway_client.transport import RequestsTransport, Transport

__all__ = [
    "AuthenticationError",
    "InputError",
    "InputFile",
    "Job",
    "JobRequest",
    "JobSpec",
    "LoadReceipt",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RequestRejectedError",
    "RequestTimeoutError",
    "RequestsTransport",
    "RunwayClient",
    "RunwayConfig",
    "RunwayError",
    "SchoolYear",
    "Secret",
    "ServerError",
    "ServiceUnavailableError",
    "StorageError",
    "Token",
    "Transport",
    "UploadReceipt",
    "UploadedJob",
    "authorize",
    "config_from_env",
    "create_job",
    "load_files",
    "make_config",
    "parse_school_year",
    "prepare_job",
    "start",
    "upload",
]

__version__ = "0.1.0"
