"""Deterministic fault injection: the next requests on a route fail in a chosen way.

A ``FaultPlan`` holds, per route, a FIFO of injected faults; each fault answers the next
``times`` requests on its route, then the next fault (if any) takes over. Every request
on a route is counted (``received``), faulted or not. The apps call ``take(route)`` once
per request and act on what it returns.

Routes: ``token`` (``POST /oauth/token``), ``verify`` (``POST /token/verify``),
``create_job`` (``POST /jobs``), ``start`` (``POST /jobs/<uid>/start``), ``output_sets``
(``GET /output-sets``), ``download_links`` (``POST /output-sets/<uid>/download-links``),
``upload`` (storage ``PUT``), ``download`` (storage ``GET``).

Kinds:

- ``status``: answer ``status`` in the route's own error format (API JSON, OAuth JSON, S3
  XML), with ``Retry-After`` when ``retry_after`` is given; nothing is done (no job
  created, no start recorded, no object stored, no token issued).
- ``slow_down`` (storage only): 503 ``SlowDown``, nothing stored.
- ``stall``: the request is handled in full (job created, start recorded, object stored,
  token issued, ...), then the answer is held back ``seconds``.
- ``reset_before_answer``: the request is handled in full as for ``stall`` (so the action
  *is* performed on every route), then the connection is reset (RST) without an answer.
- ``reset_mid_body`` (storage only): upload: about half the body is read, then the
  connection is reset, nothing stored; download: the headers and about half the body are
  sent, then the connection is reset.
- ``executor_fails`` (``start`` only): a start that passes every check gets a run that is
  recorded ``failed`` at once (its executor could not be started) and the answer 500
  ``Failed to start job <uid>``; a later start runs the job (CONTRACT.md, start). A start
  refused before that (404, 400) uses the fault up all the same.
- ``expire`` (``token``, ``upload``, ``download``): token: the token issued is already
  expired (``exp`` in the past; ``expires_in`` still says the usual lifetime); storage: the
  request is answered 403 ``AccessDenied`` "Request has expired" (nothing stored).

A reset is requested by raising ``AbortConnection`` from the WSGI app; the sandbox's
request handler then closes the socket with ``SO_LINGER`` 0 so the peer gets an RST.

>>> plan = FaultPlan()
>>> plan.inject("upload", Fault("slow_down"), times=2)
>>> [getattr(plan.take("upload"), "kind", None) for _ in range(3)], plan.received("upload")
(['slow_down', 'slow_down', None], 3)
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

API_ROUTES: Final = ("verify", "create_job", "start", "output_sets", "download_links")
STORAGE_ROUTES: Final = ("upload", "download")
ROUTES: Final = ("token", *API_ROUTES, *STORAGE_ROUTES)
KINDS: Final = (
    "status",
    "slow_down",
    "stall",
    "reset_before_answer",
    "reset_mid_body",
    "expire",
    "executor_fails",
)
_ROUTES_OF_KIND: Final[dict[str, tuple[str, ...]]] = {
    "status": ROUTES,
    "slow_down": STORAGE_ROUTES,
    "stall": ROUTES,
    "reset_before_answer": ROUTES,
    "reset_mid_body": STORAGE_ROUTES,
    "expire": ("token", *STORAGE_ROUTES),
    "executor_fails": ("start",),
}


class AbortConnection(ConnectionResetError):
    """Raised by an app so that the request handler resets the connection without answering."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault: its ``kind`` and the parameters that kind uses."""

    kind: str
    status: int | None = None
    retry_after: float | None = None
    seconds: float | None = None

    def retry_after_headers(self) -> dict[str, str]:
        """``{"Retry-After": "<seconds>"}`` when ``retry_after`` is set (``2.0`` -> ``"2"``).

        >>> Fault("status", 503, 2.0).retry_after_headers(), Fault("status", 500).retry_after_headers()
        ({'Retry-After': '2'}, {})
        """
        if self.retry_after is None:
            return {}
        return {"Retry-After": f"{self.retry_after:g}"}


def _check(route: str, fault: Fault, times: int) -> None:
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; one of: {', '.join(ROUTES)}")
    if fault.kind not in KINDS:
        raise ValueError(f"unknown fault {fault.kind!r}; one of: {', '.join(KINDS)}")
    if route not in _ROUTES_OF_KIND[fault.kind]:
        allowed = ", ".join(_ROUTES_OF_KIND[fault.kind])
        raise ValueError(f"fault {fault.kind!r} applies only to: {allowed}")
    if times < 1:
        raise ValueError("times must be at least 1")
    if (fault.status is not None) != (fault.kind == "status"):
        raise ValueError("status is required for, and only for, the 'status' fault")
    if fault.status is not None and not 400 <= fault.status <= 599:
        raise ValueError("status must be an HTTP error status (400-599)")
    if fault.retry_after is not None and fault.kind not in ("status", "slow_down"):
        raise ValueError("retry_after applies only to the 'status' and 'slow_down' faults")
    if fault.retry_after is not None and fault.retry_after < 0:
        raise ValueError("retry_after must not be negative")
    if (fault.seconds is not None) != (fault.kind == "stall"):
        raise ValueError("seconds is required for, and only for, the 'stall' fault")
    if fault.seconds is not None and fault.seconds < 0:
        raise ValueError("seconds must not be negative")


@dataclass(slots=True)
class _Pending:
    """A queued fault and how many more requests it answers (changed under the plan's lock)."""

    fault: Fault
    remaining: int


class FaultPlan:
    """Faults waiting per route, and how many requests each route has received (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[_Pending]] = {route: deque() for route in ROUTES}
        self._received: dict[str, int] = dict.fromkeys(ROUTES, 0)

    def inject(self, route: str, fault: Fault, *, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests on ``route`` (after earlier faults)."""
        _check(route, fault, times)
        with self._lock:
            self._queues[route].append(_Pending(fault, times))

    def clear(self) -> None:
        """Drop every waiting fault (the counts stay)."""
        with self._lock:
            for queue in self._queues.values():
                queue.clear()

    def take(self, route: str) -> Fault | None:
        """Count one request on ``route`` and return the fault that answers it, if any."""
        with self._lock:
            self._received[route] += 1
            queue = self._queues[route]
            if not queue:
                return None
            pending = queue[0]
            pending.remaining -= 1
            if pending.remaining <= 0:
                queue.popleft()
            return pending.fault

    def received(self, route: str) -> int:
        """Requests received on ``route`` so far, including those a fault answered."""
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of: {', '.join(ROUTES)}")
        with self._lock:
            return self._received[route]


def after_handling(fault: Fault | None) -> None:
    """Apply a fault that acts once the request was handled: sleep (``stall``) or reset.

    Raises ``AbortConnection`` for ``reset_before_answer``; other kinds do nothing here.
    """
    if fault is None:
        return
    if fault.kind == "stall" and fault.seconds:
        time.sleep(fault.seconds)
    elif fault.kind == "reset_before_answer":
        raise AbortConnection("connection reset before the answer (injected fault)")


def _unsent_bytes(sock: socket.socket) -> int | None:
    """Bytes written to ``sock`` its peer has not yet acknowledged (Linux), else ``None``."""
    if sys.platform != "linux":
        return None
    import fcntl
    import termios

    try:
        answer = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return None
    return int(struct.unpack("i", answer)[0])


def reset_socket(sock: socket.socket, *, flush_timeout: float = 1.0) -> None:
    """Close ``sock`` so that the peer gets an RST: ``SO_LINGER`` on with a zero timeout.

    An RST discards what is still queued for sending, so the bytes already written are
    first given up to ``flush_timeout`` seconds to reach the peer (on Linux, until the
    send queue is empty; elsewhere a short pause): a download cut "after half the body"
    delivers that half. Every other reference to the socket's file (e.g. a ``makefile``
    reader) must be closed first, or the close is deferred and only a FIN goes out later.
    """
    deadline = time.monotonic() + flush_timeout
    unsent = _unsent_bytes(sock)
    if unsent is None:
        time.sleep(min(0.05, flush_timeout))
    while unsent and time.monotonic() < deadline:
        time.sleep(0.005)
        unsent = _unsent_bytes(sock)
    with contextlib.suppress(OSError):  # where refused, a plain close (FIN) will do
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
