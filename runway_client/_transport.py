"""The one network edge: send an ``HttpRequest``, get an ``HttpResponse`` or a ``RunwayError``.

Everything above this module builds requests and decodes responses as pure
values; only ``RequestsTransport`` touches the network (via ``requests``). Its
rules:

- every request has a connect and a read timeout (seconds);
- redirects are never followed (a 3xx is an answer, for the caller to judge);
- TLS verification follows ``verify`` as given, even if ``REQUESTS_CA_BUNDLE``
  is set (the environment is not merged in);
- a presigned URL is sent exactly as received: the prepared URL is not
  re-quoted (CONTRACT.md, "Presigned S3 URLs");
- an upload body is streamed with an exact ``Content-Length`` and never with
  ``Transfer-Encoding: chunked``, which S3 refuses on a presigned PUT;
- a request going straight to its server (no proxy configured for it, the
  transport's own session) is sent by this module on ``http.client`` over a
  small pool of kept-alive connections (``_send_direct``): ``requests`` costs
  about 0.2 s to import, more than the rest of a load's start-up, so a load
  that needs no proxy never imports it; through a proxy, a client
  certificate or a session of the caller's, requests sends it;
- a body backed by a file (``FileBody``), going straight to the server (no
  proxy), is sent from its file descriptor: zero-copy ``sendfile(2)`` over
  plain HTTP, large ``pread`` + ``sendall`` blocks over TLS (``_put_direct``,
  on ``http.client``: requests can only feed a socket from Python ``bytes``);
- lower-level exceptions become ``NetworkError``/``RequestTimeoutError`` in one
  function, ``_translate``, whose text is redacted (urllib3 puts the request
  URL, signature included, in its messages);
- ``send`` takes the call's ``deadline`` (a ``time.monotonic()`` instant): the
  attempt's timeouts are cut to what is left of it, and a timeout so cut is a
  ``DeadlineExceededError``;
- ``put`` reports each block handed to the socket through ``on_sent(count)``;
  the hook may raise a ``RunwayError`` (a ``CancelledError``) to end the upload,
  which then comes back as that ``Failure``. The request is the same with or
  without the hook (exact ``Content-Length``, never chunked);
- any other exception that crosses this edge (``KeyboardInterrupt``, an
  orchestrator's timeout raised from a signal handler mid-request) leaves with
  the frames of requests and urllib3 cut off its traceback, and the URL dropped
  from this module's frames: those frames' locals hold the client secret (a
  token request's body), the bearer token and presigned signatures, which an
  error reporter capturing locals would print;
- an answer's body is read at most ``MAX_API_BODY`` bytes (an error answer's at
  most 64 KiB, the rest dropped), decompressed (gzip, deflate) by this module
  under the same cap, so neither a huge error page nor a gzip bomb can fill memory.

``Transport`` is the protocol the steps depend on: tests may pass any object
with these two methods.
"""

from __future__ import annotations

import http.client
import importlib
import logging
import os
import select
import selectors
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from functools import cache, partial
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import msgspec
from returns.result import Failure, Result, Success

from runway_client._defaults import USER_AGENT
from runway_client._errors import (
    DeadlineExceededError,
    NetworkError,
    ProtocolError,
    RequestTimeoutError,
    RunwayError,
    Step,
)
from runway_client._redaction import redact_text, redact_url


class _Lazy(ModuleType):
    """A module imported on first attribute use: ``requests`` (and urllib3) cost
    more than the rest of the package, so ``import runway_client`` and
    ``runway-client --help`` do not pay for them until a request is made."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self.__name__), name)


if TYPE_CHECKING:
    import requests
    import requests.adapters
    import requests.structures
    import urllib3.exceptions
else:
    requests = _Lazy("requests")
    urllib3 = _Lazy("urllib3")

__all__ = [
    "DEFAULT_POOL_SIZE",
    "UPLOAD_BLOCK_BYTES",
    "Body",
    "FileBody",
    "HttpRequest",
    "HttpResponse",
    "OnSent",
    "RequestsTransport",
    "Sink",
    "Transport",
]

logger = logging.getLogger("runway_client")

UPLOAD_BLOCK_BYTES: Final = 1024 * 1024
"""Bytes read from an upload body and handed to the socket at a time."""
SENDFILE_BYTES: Final = 8 * 1024 * 1024
"""Most bytes asked of one ``sendfile(2)`` call in a direct upload over plain HTTP
(each returns with what the socket buffer took; the kernel copies from the page
cache with no Python in between)."""
TLS_WRITE_BYTES: Final = 1024 * 1024
"""Bytes read and handed to the TLS socket per write in a direct upload over TLS."""

DEFAULT_POOL_SIZE: Final = 10
"""Connections per host kept by default (requests' own default)."""

_MAX_ERROR_BODY: Final = 64 * 1024
MAX_API_BODY: Final = 16 * 1024 * 1024
"""Bytes of a successful answer's body (after decompression) read at most; a longer
one is a ``ProtocolError``. Runway's largest answers (an output-set listing) are far
smaller."""
_READ_BLOCK: Final = 64 * 1024
_REQUOTE_SAFE: Final = "!#$%&'()*+,/:;=?@[]~"
"""What requests' ``requote_uri`` leaves as it is in a URL (the rest is percent-encoded)."""
_HIDDEN_HEADERS: Final = frozenset({"authorization", "cookie", "x-amz-security-token"})
_DEFAULT_HEADERS: Final = {
    "User-Agent": USER_AGENT,
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
}
"""Sent with every API request unless it sets its own (requests' defaults, our name)."""


class _RedactingFilter(logging.Filter):
    """Masks secrets in another library's log records (urllib3 logs each request
    line, presigned signature included, at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        shown = redact_text(text)
        if shown != text:
            record.msg, record.args = shown, ()
        return True


for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_RedactingFilter())


LOG_VARIABLE: Final = "RUNWAY_LOG"
"""``RUNWAY_LOG=info`` (milestones: job created, each file uploaded, started) or
``debug`` (each request too) logs the ``runway_client`` logger to stderr, like
``OPENAI_LOG``: for an unattended run whose task log is all there is."""


def _log_from_environment() -> None:
    level = {"debug": logging.DEBUG, "info": logging.INFO}.get(
        os.environ.get(LOG_VARIABLE, "").strip().lower()
    )
    if level is None or logger.level == level:
        return
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(logging.Formatter("[%(asctime)s - %(name)s - %(levelname)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


_log_from_environment()


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An HTTP request as a value: what ``wire`` builds and ``Transport.send`` sends.

    ``repr`` hides the body (a token request's body holds the client secret)
    and the ``Authorization`` header, and redacts the URL.
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def __repr__(self) -> str:
        shown = tuple(
            (k, "REDACTED" if k.lower() in _HIDDEN_HEADERS else v) for k, v in self.headers
        )
        return (
            f"HttpRequest(method={self.method!r}, url={redact_url(self.url)!r}, "
            f"headers={shown!r}, body=<{len(self.body)} bytes>)"
        )


class HttpResponse(msgspec.Struct, frozen=True, kw_only=True):
    """An HTTP response as a value; header names are lower-case."""

    status: int
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: bytes = b""


class Body(Protocol):
    """An upload body: ``read`` up to n bytes (``b""`` at the end) and a length in bytes."""

    def read(self, size: int = -1, /) -> bytes: ...

    def __len__(self) -> int: ...


@runtime_checkable
class FileBody(Protocol):
    """An upload body that is bytes ``[0, len)`` of an open regular file.

    A transport may send them from ``fileno()`` itself; it then tells the body
    each block it sent with ``sent(n)`` (which may raise a ``RunwayError`` to
    stop), and, if the file ends early, returns ``short(n)``'s error.
    """

    def read(self, size: int = -1, /) -> bytes: ...

    def __len__(self) -> int: ...

    def fileno(self) -> int: ...

    def sent(self, count: int, /) -> None: ...

    def short(self, count: int, /) -> RunwayError: ...


class Sink(Protocol):
    """Where a download's bytes go: ``begin`` sees the headers of a 200 and says
    whether to read the body (``False``: skip it); ``write`` takes each block."""

    def begin(self, headers: Mapping[str, str], /) -> bool: ...

    def write(self, data: bytes, /) -> object: ...


OnSent = Callable[[int], None]
"""Told the count of new bytes each time a block of an upload body goes to the socket,
and ``0`` at least every ``POLL_SECONDS`` while a direct upload waits (for room in
the socket, or for the answer): it may raise a ``RunwayError`` to end the upload."""

POLL_SECONDS: Final = 0.2
"""Seconds between ``on_sent(0)`` calls while a direct upload waits: how soon a
cancel is seen once the body sits whole in the kernel's buffers."""


class Transport(Protocol):
    """What the steps need from the network."""

    def send(
        self, request: HttpRequest, *, step: Step, deadline: float | None = None
    ) -> Result[HttpResponse, RunwayError]:
        """Send a request with an in-memory body, over by ``deadline`` (monotonic) if given."""
        ...

    def put(
        self,
        url: str,
        body: Body,
        *,
        headers: Mapping[str, str],
        step: Step,
        on_sent: OnSent | None = None,
    ) -> Result[HttpResponse, RunwayError]:
        """PUT ``body`` to ``url`` (used exactly as given) with ``Content-Length: len(body)``;
        ``on_sent(n)`` after each block of n bytes is handed to the socket."""
        ...

    def get(self, url: str, sink: Sink, *, step: Step) -> Result[HttpResponse, RunwayError]:
        """GET ``url`` (used exactly as given); a 200 body streams into ``sink``, undecoded."""
        ...


@cache
def _block_adapter_class() -> type[requests.adapters.HTTPAdapter]:
    """``_BlockAdapter``, defined on first use (its base class is requests')."""

    class _BlockAdapter(requests.adapters.HTTPAdapter):
        """An adapter whose connections hand the socket ``block`` bytes at a time, keeping
        up to ``pool_size`` connections per host (and opening no more: ``pool_block``)."""

        def __init__(self, block: int, pool_size: int = 10) -> None:
            self._block = block
            super().__init__(
                max_retries=0, pool_connections=16, pool_maxsize=pool_size, pool_block=True
            )

        def init_poolmanager(
            self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: object
        ) -> None:
            pool_kwargs["blocksize"] = self._block
            super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    return _BlockAdapter


class RequestsTransport:
    """``Transport`` over a ``requests.Session``, with timeouts in seconds.

    A request going straight to its server (no proxy for it in the environment,
    this transport's own session) goes over ``http.client`` instead
    (``_send_direct``), with the same headers, timeouts, body caps and errors:
    requests, imported only when needed, would be most of a short load's start-up.

    Args:
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds to wait between bytes of an answer.
        verify: ``True`` to verify TLS against the system/certifi CAs, or a CA bundle path.
        session: a session to reuse (its adapters are replaced; every request then
            goes through it); a new one, made on first need, by default.
        pool_size: connections kept, and at most open, per host: at least the
            threads that use the transport at once (``upload_concurrency`` x loads
            at once); a request beyond that waits for a free connection (the
            per-host limit), none is opened and dropped.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        verify: bool | str = True,
        session: requests.Session | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.verify = verify
        self._context: tuple[bool | str, ssl.SSLContext] | None = None  # for direct requests
        self._given = session is not None
        self._session = session
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str, int | None], _Pool] = {}
        self.pool_size = max(pool_size, DEFAULT_POOL_SIZE)
        self._mounted = 0
        if session is not None:
            self._mount(session)

    @property
    def session(self) -> requests.Session:
        """The requests session (made on first use: through a proxy, a download...)."""
        with self._lock:
            if self._session is None:
                self._session = requests.Session()
            session = self._session
            if self._mounted < self.pool_size:
                self._mount(session)
        return session

    def _mount(self, session: requests.Session) -> None:
        adapter = _block_adapter_class()(UPLOAD_BLOCK_BYTES, self.pool_size)
        for prefix in ("https://", "http://"):
            old = session.adapters.get(prefix)
            session.mount(prefix, adapter)
            if old is not None and old is not adapter:
                old.close()
        self._mounted = self.pool_size

    def grow_pool(self, pool_size: int) -> None:
        """Keep at least ``pool_size`` connections per host (for that many threads at once).

        Call it while no request is in flight (pooled connections are closed)."""
        if pool_size <= self.pool_size:
            return
        with self._lock:
            self.pool_size = pool_size
            pools, self._pools = self._pools, {}
            if self._session is not None:
                self._mount(self._session)
        for pool in pools.values():
            pool.close()

    def close(self) -> None:
        """Close pooled connections."""
        with self._lock:
            pools, self._pools = self._pools, {}
            session = self._session
        for pool in pools.values():
            pool.close()
        if session is not None:
            session.close()

    def send(
        self, request: HttpRequest, *, step: Step, deadline: float | None = None
    ) -> Result[HttpResponse, RunwayError]:
        """Send ``request``; any answer (even 4xx/5xx) is a ``Success(HttpResponse)``.

        The body read is capped (``MAX_API_BODY``; 64 KiB for an error status).
        With ``deadline`` (a ``time.monotonic()`` instant) the connect and read
        timeouts are cut to the time left; a timeout so cut, or no time left at
        all, is ``DeadlineExceededError``.
        """
        try:
            return self._send_request(request, step, deadline)
        except BaseException as exc:  # KeyboardInterrupt, a signal handler's timeout ...
            raise _cut(exc) from None

    def _send_request(
        self, request: HttpRequest, step: Step, deadline: float | None
    ) -> Result[HttpResponse, RunwayError]:
        timeout = self.timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return Failure(
                    DeadlineExceededError(
                        f"no time left for {request.method} {_short(request.url)}: the "
                        "call's deadline (call_timeout) has passed",
                        step=step,
                        request_sent=False,
                    )
                )
            timeout = (min(timeout[0], left), min(timeout[1], left))
        given = {name.lower() for name, _ in request.headers}
        headers = {k: v for k, v in _DEFAULT_HEADERS.items() if k.lower() not in given}
        headers.update(request.headers)
        if not self._given and self._direct(request.url):
            sent = self._send_direct(request, headers, step, timeout)
            return sent.alt(partial(_past_deadline, timeout != self.timeout))
        try:
            prepared = requests.Request(
                request.method, request.url, headers=headers, data=request.body or None
            ).prepare()
        except (requests.RequestException, ValueError) as exc:
            return Failure(
                _translate(
                    exc,
                    step=step,
                    method=request.method,
                    url=_short(request.url),
                    timeout=self.timeout,
                )
            )
        return self._send(prepared, request.url, step, timeout=timeout)

    def _send_direct(
        self,
        request: HttpRequest,
        headers: Mapping[str, str],
        step: Step,
        timeout: tuple[float, float],
    ) -> Result[HttpResponse, RunwayError]:
        """Send ``request`` over a pooled ``http.client`` connection to its origin.

        What requests would send: the request target as written, ``Host``, the
        headers, ``Content-Length`` (also ``0`` for a POST without a body). A
        kept-alive connection the server has closed (or sent anything on) is
        dropped before use, never written to; one whose answer was not read to
        its end is closed.
        """
        url = request.url
        where = _short(url)
        shown = redact_url(url)
        began = time.monotonic()
        found = _origin(request.method, url, step)
        if not isinstance(found, Success):
            return Failure(found.failure())
        pool = self._pool(found.unwrap())
        with pool.turn():
            connection = pool.take()
            if connection is None:
                made = self._connect(request.method, url, found.unwrap(), step, timeout)
                if not isinstance(made, Success):
                    logger.debug("%s %s failed: %s", request.method, shown, made.failure().message)
                    return Failure(made.failure())
                connection = made.unwrap()
            kept = False
            try:
                assert connection.sock is not None  # connected above, or kept open
                connection.sock.settimeout(timeout[1])
                # Characters a request line cannot carry (non-ASCII, spaces)
                # percent-encoded, UTF-8, as requests' requote_uri does.
                target = quote(_request_target(url), safe=_REQUOTE_SAFE)
                try:
                    connection.putrequest(request.method, target, skip_accept_encoding=True)
                    for name, value in headers.items():
                        connection.putheader(name, value)
                except ValueError as exc:  # http.client refused a header or the URL
                    return Failure(_unsendable(request.method, where, exc, step))
                if request.body or request.method not in ("GET", "HEAD"):
                    connection.putheader("Content-Length", str(len(request.body)))
                connection.endheaders(request.body or None)
                answer = connection.getresponse()
                limit = MAX_API_BODY if 200 <= answer.status < 300 else _MAX_ERROR_BODY
                encoding = answer.getheader("content-encoding", "")
                content, more = _read_capped(answer.read, encoding, limit)
                if not more and answer.length:  # http.client's read(n) stops quietly
                    raise http.client.IncompleteRead(b"", answer.length)
                kept = not more and not answer.will_close
                answer_headers = _joined(answer.getheaders())
            except (OSError, http.client.HTTPException, zlib.error) as exc:
                error = _translate(
                    exc, step=step, method=request.method, url=where, timeout=timeout
                )
                logger.debug("%s %s failed: %s", request.method, shown, error.message)
                return Failure(error)
            finally:
                if kept:
                    pool.keep(connection)
                else:
                    connection.close()
        elapsed = time.monotonic() - began
        logger.debug("%s %s -> %d in %.3f s", request.method, shown, answer.status, elapsed)
        if more and limit == MAX_API_BODY:
            return Failure(_too_big(request.method, url, answer.status, step))
        return Success(HttpResponse(status=answer.status, headers=answer_headers, body=content))

    def _pool(self, origin: tuple[str, str, int | None]) -> _Pool:
        with self._lock:
            pool = self._pools.get(origin)
            if pool is None:
                pool = self._pools[origin] = _Pool(self.pool_size)
            return pool

    def _connect(
        self,
        method: str,
        url: str,
        origin: tuple[str, str, int | None],
        step: Step,
        timeout: tuple[float, float],
    ) -> Result[http.client.HTTPConnection, RunwayError]:
        """A new connection to ``origin`` (``url``'s), connected within ``timeout[0]``
        seconds, TLS with ``verify``'s settings; else the error, saying nothing was sent."""
        scheme, host, port = origin
        if port is None:  # given none, http.client would read "::1"'s last group as one
            port = http.client.HTTPS_PORT if scheme == "https" else http.client.HTTP_PORT
        connection = (
            http.client.HTTPSConnection(host, port, timeout=timeout[0], context=self._tls_context())
            if scheme == "https"
            else http.client.HTTPConnection(host, port, timeout=timeout[0])
        )
        try:
            connection.connect()
        except (OSError, ValueError) as exc:  # ValueError: a host name IDNA refuses
            connection.close()
            return Failure(
                _translate(
                    exc,
                    step=step,
                    method=method,
                    url=_short(url),
                    timeout=timeout,
                    connecting=True,
                )
            )
        return Success(connection)

    def put(
        self,
        url: str,
        body: Body,
        *,
        headers: Mapping[str, str],
        step: Step,
        on_sent: OnSent | None = None,
    ) -> Result[HttpResponse, RunwayError]:
        """Stream ``body`` to ``url`` with an exact ``Content-Length`` (never chunked);
        ``on_sent`` hears of each block (and may end the upload by raising a
        ``RunwayError``).

        A ``FileBody`` going to the server directly (no proxy configured for
        ``url``, no client certificate) is sent from its file (``_put_direct``);
        any other body through requests, ``UPLOAD_BLOCK_BYTES`` at a time.
        """
        try:
            return self._put(url, body, headers=headers, step=step, on_sent=on_sent)
        except BaseException as exc:
            del url  # a presigned URL: its signature must not show in traceback locals
            raise _cut(exc) from None

    def _put(
        self,
        url: str,
        body: Body,
        *,
        headers: Mapping[str, str],
        step: Step,
        on_sent: OnSent | None,
    ) -> Result[HttpResponse, RunwayError]:
        length = len(body)
        if length and isinstance(body, FileBody) and self._direct(url):
            return self._put_direct(url, body, headers, step, on_sent)
        if on_sent is not None:
            body = _Reporting(body, on_sent)
        prepared = requests.PreparedRequest()
        prepared.method = "PUT"
        prepared.url = url  # exactly as received: no re-quoting of a signed URL
        prepared.headers = requests.structures.CaseInsensitiveDict(headers)
        prepared.prepare_cookies(None)  # requests reads the jar even when not redirecting
        prepared.headers["Content-Length"] = str(length)
        prepared.headers.pop("Transfer-Encoding", None)
        prepared.body = body if length else b""  # type: ignore[assignment]
        return self._send(prepared, url, step)

    def get(self, url: str, sink: Sink, *, step: Step) -> Result[HttpResponse, RunwayError]:
        """Stream a 200 body into ``sink`` block by block, as stored: ``Content-Encoding``
        is not decoded. Another status comes back with its body (at most 64 KiB) for
        the caller. The returned response of a 200 has an empty ``body``."""
        try:
            return self._get(url, sink, step=step)
        except BaseException as exc:
            del url  # a presigned URL: its signature must not show in traceback locals
            raise _cut(exc) from None

    def _get(self, url: str, sink: Sink, *, step: Step) -> Result[HttpResponse, RunwayError]:
        prepared = requests.PreparedRequest()
        prepared.method = "GET"
        prepared.url = url  # exactly as received: no re-quoting of a signed URL
        prepared.headers = requests.structures.CaseInsensitiveDict({"Accept-Encoding": "identity"})
        prepared.prepare_cookies(None)
        prepared.body = None
        shown = redact_url(url)
        began = time.monotonic()
        try:
            answer = self._dispatch(prepared, stream=True)
            with answer:
                headers = {k.lower(): v for k, v in answer.headers.items()}
                if answer.status_code != 200:
                    read = partial(answer.raw.read, decode_content=False)
                    encoding = headers.get("content-encoding", "")
                    said, _more = _read_capped(read, encoding, _MAX_ERROR_BODY)
                    return Success(
                        HttpResponse(status=answer.status_code, headers=headers, body=said)
                    )
                if sink.begin(headers):
                    for block in answer.raw.stream(UPLOAD_BLOCK_BYTES, decode_content=False):
                        sink.write(block)
        except RunwayError as raised:  # raised by the sink (the disk refused a write)
            return Failure(_detached(raised))
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            zlib.error,
        ) as exc:
            error = _translate(exc, step=step, method="GET", url=_short(url), timeout=self.timeout)
            logger.debug("GET %s failed: %s", shown, error.message)
            return Failure(error)
        logger.debug("GET %s -> 200 in %.3f s", shown, time.monotonic() - began)
        return Success(HttpResponse(status=200, headers=headers))

    def _direct(self, url: str) -> bool:
        """True when requests would connect straight to ``url``'s host with only
        ``verify`` to apply: no proxy for it, no client certificate. Asks requests
        (importing it) only when a proxy is configured somewhere."""
        session = self._session
        if session is not None:
            if session.cert or session.proxies:
                return False
            if not session.trust_env:
                return True
        if not _proxy_configured():
            return True
        return not requests.utils.get_environ_proxies(url)

    def _tls_context(self) -> ssl.SSLContext:
        """The TLS settings requests would use for ``verify``: certifi's CAs for
        ``True``, the given CA bundle file or folder, or no verification for ``False``;
        made once per transport (loading a CA bundle takes milliseconds)."""
        made = self._context
        if made is None or made[0] != self.verify:
            made = (self.verify, self._new_tls_context())
            self._context = made
        return made[1]

    def _new_tls_context(self) -> ssl.SSLContext:
        if self.verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        where = self.verify if isinstance(self.verify, str) else _certifi_bundle()
        if os.path.isdir(where):
            return ssl.create_default_context(capath=where)
        return ssl.create_default_context(cafile=where)

    def _put_direct(
        self,
        url: str,
        body: FileBody,
        headers: Mapping[str, str],
        step: Step,
        on_sent: OnSent | None,
    ) -> Result[HttpResponse, RunwayError]:
        """PUT ``body`` from its file over a connection of its own (closed after).

        The request line carries ``url``'s path and query exactly as received;
        the headers are ``headers``, ``Host`` and ``Content-Length: len(body)``.
        Over plain HTTP the bytes go by ``sendfile(2)`` (the kernel copies
        from the page cache, no Python per block); over TLS by ``pread`` into one
        reused buffer and ``sendall``, ``TLS_WRITE_BYTES`` at a time. A server
        that answers before taking the whole body (a 403, say) and closes is
        still heard: its answer is read before the broken send is reported.
        """
        shown = redact_url(url)
        target = _request_target(url)
        length = len(body)
        began = time.monotonic()
        read = self.timeout[1]
        found = _origin("PUT", url, step)
        if not isinstance(found, Success):
            return Failure(found.failure())
        made = self._connect("PUT", url, found.unwrap(), step, self.timeout)
        if not isinstance(made, Success):
            return Failure(made.failure())
        connection = made.unwrap()
        try:
            sock = connection.sock
            sock.settimeout(read)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.putrequest("PUT", target, skip_accept_encoding=True)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "host"):
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(length))
            connection.endheaders()
            try:
                if isinstance(sock, ssl.SSLSocket):
                    _send_tls(sock, body, length, on_sent)
                else:
                    _send_zero_copy(sock, body, length, on_sent)
            except (BrokenPipeError, ConnectionResetError) as exc:
                # The server may have answered and closed early (as urllib3 allows).
                try:
                    answer = connection.getresponse()
                except (OSError, http.client.HTTPException):
                    raise exc from None
            else:
                if on_sent is not None:
                    _await_answer(sock, read, on_sent)
                answer = connection.getresponse()
            said = answer.read(_MAX_ERROR_BODY)  # S3 answers a PUT with nothing or small XML
            headers_seen = {k.lower(): v for k, v in answer.getheaders()}
        except RunwayError as raised:  # from the body: the file changed, or a stop
            return Failure(_detached(raised))
        except (OSError, http.client.HTTPException) as exc:
            error = _translate(exc, step=step, method="PUT", url=_short(url), timeout=self.timeout)
            logger.debug("PUT %s failed: %s", shown, error.message)
            return Failure(_detached(error))
        finally:
            connection.close()
        elapsed = time.monotonic() - began
        logger.debug("PUT %s -> %d in %.3f s (direct)", shown, answer.status, elapsed)
        return Success(HttpResponse(status=answer.status, headers=headers_seen, body=said))

    def _dispatch(
        self,
        prepared: requests.PreparedRequest,
        *,
        stream: bool,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        """Send with this transport's timeouts (or ``timeout``) and TLS setting; never
        follow a redirect."""
        return self.session.send(
            prepared,
            timeout=timeout or self.timeout,
            verify=self.verify,
            allow_redirects=False,
            stream=stream,
        )

    def _send(
        self,
        prepared: requests.PreparedRequest,
        url: str,
        step: Step,
        *,
        timeout: tuple[float, float] | None = None,
    ) -> Result[HttpResponse, RunwayError]:
        shown = redact_url(url)
        began = time.monotonic()
        used = timeout or self.timeout
        try:
            answer = self._dispatch(prepared, stream=True, timeout=used)
            with answer:
                limit = MAX_API_BODY if 200 <= answer.status_code < 300 else _MAX_ERROR_BODY
                encoding = answer.headers.get("content-encoding", "")
                read = partial(answer.raw.read, decode_content=False)
                content, more = _read_capped(read, encoding, limit)
        except RunwayError as raised:  # raised by an upload body (the file changed, a cancel)
            return Failure(_detached(raised))
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            zlib.error,
        ) as exc:
            error = _translate(
                exc, step=step, method=prepared.method or "?", url=_short(url), timeout=used
            )
            error = _past_deadline(used != self.timeout, error)
            logger.debug("%s %s failed: %s", prepared.method, shown, error.message)
            return Failure(error)
        elapsed = time.monotonic() - began
        logger.debug("%s %s -> %d in %.3f s", prepared.method, shown, answer.status_code, elapsed)
        if more and limit == MAX_API_BODY:
            return Failure(_too_big(prepared.method or "?", url, answer.status_code, step))
        return Success(
            HttpResponse(
                status=answer.status_code,
                headers={k.lower(): v for k, v in answer.headers.items()},
                body=content,
            )
        )


class _Reporting:
    """An upload ``Body`` that tells ``on_sent`` of each block as it is read: ``read``
    is what http.client calls to get the next block for the socket."""

    def __init__(self, body: Body, on_sent: OnSent) -> None:
        self._body = body
        self._on_sent = on_sent

    def __len__(self) -> int:
        return len(self._body)

    def read(self, size: int = -1, /) -> bytes:
        block = self._body.read(size)
        if block:
            self._on_sent(len(block))
        return block


def _request_target(url: str) -> str:
    """The request line's target for ``url``: its path and query exactly as written
    (a presigned URL's signature covers them; nothing is re-quoted), no fragment."""
    after_scheme = url.split("://", 1)[1] if "://" in url else url
    cut = min((i for i in (after_scheme.find("/"), after_scheme.find("?")) if i >= 0), default=-1)
    rest = "" if cut < 0 else after_scheme[cut:]
    rest = rest.split("#", 1)[0]
    if not rest.startswith("/"):
        rest = "/" + rest
    return rest


def _send_zero_copy(
    sock: socket.socket, body: FileBody, length: int, on_sent: OnSent | None
) -> None:
    """Send bytes ``[0, length)`` of ``body``'s file with ``sendfile(2)``.

    The socket is non-blocking underneath (it has a timeout), so each call moves
    what the socket buffer takes (a few MiB on a fast link) and returns; every
    call is reported (``body.sent``, ``on_sent``), so a cancel raised by
    ``on_sent`` lands within one socket buffer, or within ``POLL_SECONDS`` while
    the socket has no room. No progress for the socket's timeout is a
    ``TimeoutError``.
    """
    descriptor, out = body.fileno(), sock.fileno()
    timeout = sock.gettimeout()
    with selectors.DefaultSelector() as selector:
        selector.register(out, selectors.EVENT_WRITE)
        offset = 0
        while offset < length:
            try:
                sent = os.sendfile(out, descriptor, offset, min(SENDFILE_BYTES, length - offset))
            except BlockingIOError:
                if not _ready(selector, timeout, on_sent):
                    raise TimeoutError("timed out") from None
                continue
            if sent <= 0:
                raise body.short(offset)
            offset += sent
            body.sent(sent)
            if on_sent is not None:
                on_sent(sent)


def _ready(selector: selectors.BaseSelector, timeout: float | None, on_sent: OnSent | None) -> bool:
    """Wait up to ``timeout`` seconds (``None``: no limit) for ``selector``'s event;
    ``on_sent(0)`` every ``POLL_SECONDS`` meanwhile (it may raise to stop). False
    when the time ran out."""
    if on_sent is None:
        return bool(selector.select(timeout))
    until = None if timeout is None else time.monotonic() + timeout
    while True:
        left = POLL_SECONDS if until is None else min(POLL_SECONDS, until - time.monotonic())
        if left <= 0:
            return False
        if selector.select(left):
            return True
        on_sent(0)


def _await_answer(sock: socket.socket, timeout: float, on_sent: OnSent) -> None:
    """Wait for the first byte of the answer to a sent upload, calling ``on_sent(0)``
    every ``POLL_SECONDS`` (a cancel may end the wait); ``TimeoutError`` after
    ``timeout`` seconds without a byte, as the socket's own timeout would be."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return
    with selectors.DefaultSelector() as selector:
        selector.register(sock.fileno(), selectors.EVENT_READ)
        if not _ready(selector, timeout, on_sent):
            raise TimeoutError("timed out")


def _send_tls(sock: ssl.SSLSocket, body: FileBody, length: int, on_sent: OnSent | None) -> None:
    """Send bytes ``[0, length)`` of ``body``'s file over TLS in large blocks."""
    descriptor = body.fileno()
    buffer = bytearray(min(TLS_WRITE_BYTES, length))
    with memoryview(buffer) as view:
        offset = 0
        while offset < length:
            want = min(len(buffer), length - offset)
            got = os.preadv(descriptor, [view[:want]], offset)
            if got <= 0:
                raise body.short(offset)
            _send_all_tls(sock, view[:got], on_sent)
            offset += got
            body.sent(got)
            if on_sent is not None:
                on_sent(got)


def _send_all_tls(sock: ssl.SSLSocket, data: memoryview, on_sent: OnSent | None) -> None:
    """``sock.sendall(data)``, calling ``on_sent(0)`` every ``POLL_SECONDS`` while the
    socket has no room (it may raise to stop), as ``_send_zero_copy`` does over plain
    HTTP; a ``TimeoutError`` once a write has waited the socket's own timeout.

    An ``SSLSocket.send`` that times out has written nothing it reports: OpenSSL keeps
    the record it began and the next write, of the same bytes, goes on with it."""
    timeout = sock.gettimeout()
    if on_sent is None:
        sock.sendall(data)
        return
    done = 0
    waited_since = time.monotonic()
    sock.settimeout(POLL_SECONDS if timeout is None else min(POLL_SECONDS, timeout))
    try:
        while done < len(data):
            try:
                done += sock.send(data[done:])
            except TimeoutError:
                if timeout is not None and time.monotonic() - waited_since >= timeout:
                    raise
                on_sent(0)
                continue
            waited_since = time.monotonic()
    finally:
        sock.settimeout(timeout)


def _tls_refused(exc: BaseException, where: str, step: Step) -> RunwayError:
    return NetworkError(
        f"TLS verification failed for {where}: {redact_text(str(exc))}; pass "
        "verify=<CA bundle path> if your network uses its own certificate authority",
        step=step,
        code="tls",
        request_sent=False,
    )


class _Inflater:
    """Decompresses gzip (several members too) or zlib-wrapped deflate, never
    producing more than asked for: the rest stays compressed (``zlib``'s ``max_length``)."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(47)  # 32 + 15: a gzip or a zlib header

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to ``room`` bytes decompressed from ``data`` (and what is left of earlier data)."""
        out = bytearray()
        while data and room > len(out):
            out += self._inflate.decompress(data, room - len(out))
            if self._inflate.eof:  # the next gzip member, if any
                data = self._inflate.unused_data
                self._inflate = zlib.decompressobj(47)
            else:
                data = self._inflate.unconsumed_tail
        return bytes(out)


def _read_capped(read: Callable[[int], bytes], encoding: str, limit: int) -> tuple[bytes, bool]:
    """``(at most limit bytes of a body, decompressed, True if there was more)``.

    ``read(n)`` gives the next (up to) n bytes as received, ``b""`` at the end. The
    body is read in 64 KiB blocks; a compressed body (``encoding``, the
    ``Content-Encoding``: gzip, x-gzip or deflate) is decompressed here, under the
    same cap, so a small gzip "bomb" cannot expand without bound. Another encoding
    is kept as received.
    """
    inflater = _Inflater() if encoding.strip().lower() in ("gzip", "x-gzip", "deflate") else None
    body = bytearray()
    while len(body) <= limit:
        block = read(_READ_BLOCK)
        if not block:
            break
        room = limit + 1 - len(body)
        body += inflater.feed(block, room) if inflater is not None else block[:room]
    return bytes(body[:limit]), len(body) > limit


def _joined(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Header names lower-cased, the values of a repeated one joined with ", " (as
    requests' answer headers have them, RFC 9110 section 5.3), not the last kept."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def _unsendable(method: str, where: str, exc: ValueError, step: Step) -> RunwayError:
    """A request http.client refused to write (nothing was sent); not in ``exc``'s
    words, which quote the header's value (a bearer token, say)."""
    return ProtocolError(
        f"cannot send {method} {where}: {type(exc).__name__}: a header or the URL holds "
        "characters HTTP does not allow (a line break, say)",
        step=step,
        request_sent=False,
    )


def _too_big(method: str, url: str, status: int, step: Step) -> RunwayError:
    return ProtocolError(
        f"{method} {_short(url)} answered HTTP {status} with a body over {MAX_API_BODY} "
        "bytes; it was not read",
        step=step,
        status=status,
    )


def _past_deadline(cut: bool, error: RunwayError) -> RunwayError:
    """``error``, or a ``DeadlineExceededError`` when it is a timeout of an attempt
    whose timeouts were ``cut`` to what was left of the call's deadline."""
    if not cut or type(error) is not RequestTimeoutError:
        return error
    return DeadlineExceededError(
        f"{error.message.split(';')[0]}: the call's deadline (call_timeout) has passed",
        step=error.step,
        request_sent=error.request_sent,
    )


def _cut(exc: BaseException) -> BaseException:
    """``exc`` leaving the transport: its traceback and that of every exception chained
    to it dropped (their frames, inside requests and urllib3, hold the request's URL,
    headers and body in their locals), the chain itself with them."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        following = current.__cause__ or current.__context__
        current.__cause__ = None
        current.__context__ = None
        current = following
    return exc


def _detached(error: RunwayError) -> RunwayError:
    """``error`` without the traceback it gathered inside requests and urllib3: those
    frames hold the presigned URL (signature included) in their locals."""
    error.__traceback__ = None
    error.__context__ = None
    error.__cause__ = None
    return error


def _short(url: str) -> str:
    """``url`` for an error message: scheme, host and path; a query shows as ``?…``
    (a presigned URL's query is all credentials and noise)."""
    shown = redact_url(url)
    return shown.split("?", 1)[0] + ("?…" if "?" in shown else "")


def _origin(method: str, url: str, step: Step) -> Result[tuple[str, str, int | None], RunwayError]:
    """``url``'s ``(scheme, host, port)`` (``None``: the scheme's), or a ``ProtocolError``
    for a port that is not a number in range."""
    parts = urlsplit(url)
    try:
        return Success((parts.scheme, parts.hostname or "", parts.port))
    except ValueError:
        return Failure(
            ProtocolError(f"cannot send {method} {_short(url)}: the port is not valid", step=step)
        )


def _libraries_loaded() -> bool:
    """True once requests (and with it urllib3) is imported. Until then no exception
    can be one of theirs, and asking ``isinstance`` of their classes would import
    them (about 0.2 s) for nothing."""
    return "requests" in sys.modules


def _proxy_configured() -> bool:
    """True when any proxy is configured: a ``*_proxy`` environment variable
    (``no_proxy`` aside, any case), or on macOS and Windows the system's proxy
    settings. Only then is requests asked which URLs go through one (it honours
    ``no_proxy``); otherwise every request goes straight to its host, as requests
    would send it."""
    for name, value in os.environ.items():
        lowered = name.lower()
        if value and lowered.endswith("_proxy") and lowered != "no_proxy":
            return True
    if sys.platform in ("darwin", "win32"):
        import urllib.request

        return bool(urllib.request.getproxies())
    return False


def _certifi_bundle() -> str:
    """The CA bundle requests verifies against by default (certifi's)."""
    import certifi

    return str(certifi.where())


class _Pool:
    """Kept-alive connections to one origin, at most ``size`` in use at once (a
    request beyond waits for a turn, as requests' ``pool_block`` does)."""

    def __init__(self, size: int) -> None:
        self._turns = threading.BoundedSemaphore(size)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def turn(self) -> threading.BoundedSemaphore:
        """A context manager: hold one of the ``size`` turns."""
        return self._turns

    def take(self) -> http.client.HTTPConnection | None:
        """An idle connection still open and quiet, or ``None`` (then make one)."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if not _dropped(connection):
                return connection
            connection.close()

    def keep(self, connection: http.client.HTTPConnection) -> None:
        """Keep ``connection`` (its answer read to the end) for the next request."""
        with self._lock:
            self._idle.append(connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """True when a kept-alive connection must not be reused: it is closed, or the
    server has closed it or sent something unasked (readable while idle)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):  # no FD_SETSIZE limit, unlike select()
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _never_connected(exc: BaseException) -> bool:
    """True when no connection was made (refused, DNS): the request never left."""
    return _libraries_loaded() and _in_chain(exc, urllib3.exceptions.NewConnectionError)


def _in_chain(
    exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> bool:
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        pending.extend([current.__cause__, current.__context__, *current.args])
        pending.append(getattr(current, "reason", None))
    return False


def _caused_by_timeout(exc: BaseException) -> bool:
    """True when a timeout is anywhere in ``exc``'s chain (requests wraps a timeout
    while reading a body, or sending one, in a ``ConnectionError``)."""
    if not _libraries_loaded():
        return _in_chain(exc, TimeoutError)
    return _in_chain(exc, (TimeoutError, urllib3.exceptions.TimeoutError, requests.Timeout))


def _translate(
    exc: BaseException,
    *,
    step: Step,
    method: str,
    url: str,
    timeout: tuple[float, float],
    connecting: bool = False,
) -> RunwayError:
    """The one place a lower-level exception becomes a ``RunwayError`` (redacted text).

    ``connecting``: ``exc`` was raised while connecting (a direct upload's own
    ``connect``), so nothing was sent."""
    detail = redact_text(str(exc))
    target = f"{method} {url}"
    if connecting and isinstance(exc, ssl.SSLCertVerificationError):
        return _tls_refused(exc, target, step)
    loaded = _libraries_loaded()  # else no exception can be one of theirs
    if (loaded and isinstance(exc, requests.ConnectTimeout)) or (
        connecting and isinstance(exc, TimeoutError)
    ):
        return RequestTimeoutError(
            f"could not connect within {timeout[0]:g} s for {target}; check the address "
            "and your network, or raise connect_timeout",
            step=step,
            request_sent=False,
        )
    if connecting or _never_connected(exc):
        return NetworkError(
            f"could not connect for {target}: {detail}", step=step, request_sent=False
        )
    if isinstance(exc, TimeoutError) or (
        loaded and isinstance(exc, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError)
    ):
        return RequestTimeoutError(
            f"no answer within {timeout[1]:g} s for {target}; raise read_timeout if the "
            "service is slow",
            step=step,
        )
    if _caused_by_timeout(exc):
        return RequestTimeoutError(
            f"no progress within {timeout[1]:g} s during {target}; raise read_timeout if the "
            "service or the network is slow",
            step=step,
        )
    if loaded and isinstance(
        exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidHeader
    ):
        return ProtocolError(f"cannot send {target}: {detail}", step=step)
    if loaded and isinstance(exc, requests.exceptions.SSLError):
        return NetworkError(
            f"TLS verification failed for {target}: {detail}; pass verify=<CA bundle path> "
            "if your network uses its own certificate authority",
            step=step,
            code="tls",
            request_sent=False,
        )
    if _in_chain(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        return NetworkError(
            f"the other side closed the connection during {target} ({detail})", step=step
        )
    if loaded and isinstance(exc, requests.ConnectionError):
        return NetworkError(f"connection failed for {target}: {detail}", step=step)
    if isinstance(exc, http.client.IncompleteRead) or (
        loaded
        and isinstance(
            exc, urllib3.exceptions.ProtocolError | requests.exceptions.ChunkedEncodingError
        )
    ):
        return NetworkError(f"the connection broke off during {target}: {detail}", step=step)
    return NetworkError(f"{type(exc).__name__} during {target}: {detail}", step=step)
