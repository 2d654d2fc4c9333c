"""A ``Transport`` for tests that stands in for chosen answers: ``ScriptedTransport``.

>>> from returns.result import Failure
>>> from runway_client._errors import NetworkError
>>> def refuse_first_create(step, n):
...     if step == "create_job" and n == 1:
...         return Failure(NetworkError("could not connect", step=step, request_sent=False))
...     return None
>>> scripted = ScriptedTransport(refuse_first_create)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from returns.result import Result

from runway_client._errors import RunwayError, Step
from runway_client._transport import (
    Body,
    HttpRequest,
    HttpResponse,
    OnSent,
    RequestsTransport,
    Sink,
)

__all__ = ["Script", "ScriptedTransport"]

Script = Callable[[Step, int], Result[HttpResponse, RunwayError] | None]
"""``(step, n)`` -> the answer for the n-th request (1-based) of that step, or ``None``
to let the network answer."""


class ScriptedTransport:
    """Answers as ``script`` says, else sends over ``inner`` (a ``RequestsTransport``
    with 5 s timeouts by default); ``calls`` counts requests per step."""

    def __init__(self, script: Script, inner: RequestsTransport | None = None) -> None:
        self.script = script
        self.inner = inner or RequestsTransport(connect_timeout=5, read_timeout=5)
        self.calls: dict[str, int] = {}

    def _scripted(self, step: Step) -> Result[HttpResponse, RunwayError] | None:
        self.calls[step] = self.calls.get(step, 0) + 1
        return self.script(step, self.calls[step])

    def send(
        self, request: HttpRequest, *, step: Step, deadline: float | None = None
    ) -> Result[HttpResponse, RunwayError]:
        """See ``Transport.send``."""
        return self._scripted(step) or self.inner.send(request, step=step, deadline=deadline)

    def put(
        self,
        url: str,
        body: Body,
        *,
        headers: Mapping[str, str],
        step: Step,
        on_sent: OnSent | None = None,
    ) -> Result[HttpResponse, RunwayError]:
        """See ``Transport.put``."""
        return self._scripted(step) or self.inner.put(
            url, body, headers=headers, step=step, on_sent=on_sent
        )

    def get(self, url: str, sink: Sink, *, step: Step) -> Result[HttpResponse, RunwayError]:
        """See ``Transport.get``."""
        return self._scripted(step) or self.inner.get(url, sink, step=step)
