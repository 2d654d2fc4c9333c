"""What every API route shares: the caller, the JSON answers and the error body.

Errors are ``{"statusCode", "error", "message"}`` (CONTRACT.md "Error body"), ``message``
a string or, for class-validator failures, a list of strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

UUID_PATTERN: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
#: NestJS' wording for the statuses an injected ``status`` fault may answer.
_FAULT_MESSAGES: Final = {
    429: "ThrottlerException: Too Many Requests",
    500: "Internal server error",
}


def json_response(status: int, body: object) -> Response:
    """``body`` as JSON with ``status``."""
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")


def api_error(status: int, message: str | list[str]) -> Response:
    """An API error: ``{"statusCode": status, "error": <reason phrase>, "message": message}``.

    >>> json.loads(api_error(404, "Job not found: x").get_data())["error"]
    'Not Found'
    """
    reason = HTTP_STATUS_CODES.get(status, "Unknown Error")
    return json_response(status, {"statusCode": status, "error": reason, "message": message})


def fault_message(status: int) -> str:
    """The ``message`` of an injected ``status`` fault's answer.

    >>> fault_message(500), fault_message(503)
    ('Internal server error', 'Service Unavailable')
    """
    return _FAULT_MESSAGES.get(status, HTTP_STATUS_CODES.get(status, "Unknown Error"))


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the verified token's claims, scopes and partner codes."""

    claims: Mapping[str, object]
    scopes: tuple[str, ...]
    partners: tuple[str, ...]
