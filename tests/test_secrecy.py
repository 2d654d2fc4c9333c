"""Secrets never show: not the client secret, not an access token, not the signature or
credential of a presigned URL; in no repr, log record (any level, DEBUG on, urllib3's
included), exception message, traceback, traceback locals of our frames, or CLI output.

Each example runs a fresh sandbox whose client secret hypothesis draws (16-64 characters,
``+&=%/`` and friends included), drives a load that fails one way, and looks for every
secret that crossed the wire in everything a user could see. What crossed the wire is
recorded by wrapping ``RequestsTransport``'s three methods (the bytes sent and answers
received are unchanged): the client secret of each token request, each access token
issued or presented, each presigned URL handed out or used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from returns.result import Failure, Result, Success

import runway_client
from runway_client import RunwayClient
from runway_client._errors import (
    AuthenticationError,
    InputChangedError,
    InputError,
    NetworkError,
    OutcomeUnknownError,
    RateLimitError,
    RequestRejectedError,
    RequestTimeoutError,
    RunwayError,
    ServerError,
    ServiceUnavailableError,
    StorageError,
    UploadExpiredError,
)
from runway_client._pipeline import prepare_job
from runway_client._retry import RetryPolicy
from runway_client._steps import authorize, create_job, upload
from runway_client._transport import Body, HttpRequest, HttpResponse, RequestsTransport, Sink
from runway_client.cli import main
from runway_client.sandbox import Sandbox
from runway_client.testing.strategies import secrets
from runway_client.wire import load_scopes
from tests.conftest import EXAMPLE_SAT

FAST = RetryPolicy(backoff_base=0.001)
BUNDLE = "assessments/PSAT_SAT"
PACKAGE = Path(runway_client.__file__).resolve().parent
SANDBOX_CODE = PACKAGE / "sandbox"
_URL_SECRET_KEYS = frozenset({"x-amz-signature", "x-amz-credential", "x-amz-security-token"})

client_secrets = secrets.map(lambda drawn: f"rk-{drawn}")
"""Client secrets (``+&=%/``, spaces ... included). The prefix keeps one from being, by
chance, a word the output holds anyway: hypothesis also tries strings it finds in the code
under test ("too_many_requests", "assessments/PSAT_SAT" ...)."""

EXAMPLES = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ---------------------------------------------------------------- what crossed the wire


@dataclass
class Wire:
    """Secrets seen on the wire (needle -> what it is), and a hook run before a PUT."""

    needles: dict[str, str] = field(default_factory=dict)
    kinds: set[str] = field(default_factory=set)
    before_put: Callable[[], None] | None = None
    wrap_sink: Callable[[Sink], Sink] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, value: str, what: str) -> None:
        if len(value) >= 8:
            with self.lock:
                self.needles.setdefault(value, what)
                self.kinds.add(what)

    def client_secret(self, value: str) -> None:
        for form in (value, quote_plus(value), quote(value, safe="")):
            self._add(form, "client secret")

    def token(self, value: str) -> None:
        self._add(value, "access token")
        head, dot, signature = value.rpartition(".")
        if dot and head:
            self._add(signature, "access token signature")

    def url(self, url: str) -> None:
        query = url.partition("?")[2].partition("#")[0]
        for pair in query.split("&"):
            name, _, value = pair.partition("=")
            if name.lower() in _URL_SECRET_KEYS and value:
                what = f"presigned URL {name}"
                self._add(value, what)
                self._add(unquote(value), what)

    def request(self, request: HttpRequest) -> None:
        authorization = request.header("Authorization")
        if authorization:
            self.token(authorization.partition(" ")[2])
        if request.header("Content-Type") == "application/x-www-form-urlencoded":
            for name, value in parse_qsl(request.body.decode("ascii")):
                if name == "client_secret":
                    self.client_secret(value)

    def response(self, response: HttpResponse) -> None:
        try:
            body = json.loads(response.body)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if isinstance(body.get("access_token"), str):
            self.token(body["access_token"])
        for links in (body.get("uploadUrls"), body.get("downloadLinks")):
            if isinstance(links, dict):
                for url in links.values():
                    if isinstance(url, str):
                        self.url(url)


@contextlib.contextmanager
def recording() -> Iterator[Wire]:
    """Wrap ``RequestsTransport.send/put/get`` to record every secret that passes."""
    wire = Wire()
    send, put, get = RequestsTransport.send, RequestsTransport.put, RequestsTransport.get

    def recording_send(
        self: RequestsTransport,
        request: HttpRequest,
        *,
        step: runway_client._errors.Step,
        deadline: float | None = None,
    ) -> Result[HttpResponse, RunwayError]:
        wire.request(request)
        outcome = send(self, request, step=step, deadline=deadline)
        if isinstance(outcome, Success):
            wire.response(outcome.unwrap())
        return outcome

    def recording_put(
        self: RequestsTransport,
        url: str,
        body: Body,
        *,
        headers: Mapping[str, str],
        step: runway_client._errors.Step,
        on_sent: Callable[[int], None] | None = None,
    ) -> Result[HttpResponse, RunwayError]:
        wire.url(url)
        if wire.before_put is not None:
            wire.before_put()
        return put(self, url, body, headers=headers, step=step, on_sent=on_sent)

    def recording_get(
        self: RequestsTransport, url: str, sink: Sink, *, step: runway_client._errors.Step
    ) -> Result[HttpResponse, RunwayError]:
        wire.url(url)
        if wire.wrap_sink is not None:
            sink = wire.wrap_sink(sink)
        return get(self, url, sink, step=step)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RequestsTransport, "send", recording_send)
        patch.setattr(RequestsTransport, "put", recording_put)
        patch.setattr(RequestsTransport, "get", recording_get)
        yield wire


# ---------------------------------------------------------------- what a user can see


def _our_frame(filename: str) -> bool:
    path = Path(filename).resolve()
    return path.is_relative_to(PACKAGE) and not path.is_relative_to(SANDBOX_CODE)


def _locals_of_our_frames(error: BaseException) -> str:
    """``name=repr(value)`` of every local of every runway_client frame in the traceback
    (and those of chained exceptions), as a crash reporter capturing locals shows them."""
    shown: list[str] = []
    pending = [traceback.TracebackException.from_exception(error, capture_locals=True)]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for frame in current.stack:
            if _our_frame(frame.filename):
                for name, value in (frame.locals or {}).items():
                    shown.append(f"{Path(frame.filename).name}:{frame.name}: {name}={value}")
        pending.extend(x for x in (current.__cause__, current.__context__) if x is not None)
    return "\n".join(shown)


def error_texts(error: BaseException) -> dict[str, str]:
    texts = {
        "str(error)": str(error),
        "repr(error)": repr(error),
        "error.args": repr(error.args),
        "traceback.format_exception(error)": "".join(traceback.format_exception(error)),
        "traceback locals of runway_client frames": _locals_of_our_frames(error),
    }
    if isinstance(error, RunwayError):
        texts["error.server_message"] = repr(error.server_message)
        texts["error.problems"] = repr(error.problems)
        if error.pending is not None:
            texts["repr(error.pending)"] = repr(error.pending)
            texts["str(error.pending)"] = str(error.pending)
    return texts


def log_texts(records: list[logging.LogRecord]) -> dict[str, str]:
    """The client's log records (the sandbox's own are not the client's output)."""
    formatter = logging.Formatter()
    texts: dict[str, str] = {}
    for number, record in enumerate(records):
        if record.name.startswith(("werkzeug", "runway_client.sandbox")):
            continue
        parts = [record.getMessage(), repr(record.args)]
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        texts[f"log record #{number} ({record.name}, {record.levelname})"] = "\n".join(parts)
    return texts


def leaks(texts: Mapping[str, str], needles: Mapping[str, str]) -> list[str]:
    found = []
    for where, text in texts.items():
        for needle, what in needles.items():
            at = text.find(needle)
            if at >= 0:
                context = text[max(0, at - 100) : at + len(needle) + 30]
                found.append(f"{what} in {where}: ...{context!r}...")
    return found


# ---------------------------------------------------------------- sandboxes, quickly

_stopping: list[threading.Thread] = []


@pytest.fixture(autouse=True, scope="module")
def _sandboxes_stopped() -> Iterator[None]:
    yield
    for thread in _stopping:
        thread.join(timeout=10)
    _stopping.clear()


@contextlib.contextmanager
def running(secret: str, **options: object) -> Iterator[Sandbox]:
    """A started sandbox whose client secret is ``secret``; stopped in the background
    (its servers take a few poll intervals to notice), joined at the module's end."""
    sb = Sandbox(client_secret=secret, run_delay=0.01, **options)  # type: ignore[arg-type]
    sb.start()
    try:
        yield sb
    finally:
        stopper = threading.Thread(target=sb.stop, name="sandbox-stop", daemon=True)
        stopper.start()
        _stopping.append(stopper)


# ---------------------------------------------------------------- the failures


@dataclass
class Run:
    """One example: its sandbox, secrets, a private copy of the input and a folder."""

    sb: Sandbox
    wire: Wire
    secret: str
    other_secret: str
    folder: Path
    shown: list[object] = field(default_factory=list)

    @property
    def input_file(self) -> Path:
        return self.folder / "in" / "sat.csv"

    def client(
        self,
        *,
        secret: str | None = None,
        read_timeout: float = 10.0,
        retry: RetryPolicy = FAST,
    ) -> RunwayClient:
        made = RunwayClient(
            runway_base_url=self.sb.runway_base_url,
            auth_base_url=self.sb.auth_base_url,
            client_id=self.sb.client_id,
            client_secret=self.secret if secret is None else secret,
            partner_code=self.sb.partner_code,
            connect_timeout=5.0,
            read_timeout=read_timeout,
            retry=retry,
        )
        self.shown.extend([made, made.config])
        return made

    def load(self, client: RunwayClient, *, test_type: str = "SAT", **options: Any) -> object:
        return client.load_files(
            tenant_code="ea",
            bundle_name=BUNDLE,
            input_files={"INPUT_FILE": str(self.input_file)},
            bundle_params={"TEST_TYPE": test_type},
            school_year="2526",
            **options,
        )

    def failed_load(self, client: RunwayClient, **options: Any) -> RunwayError:
        with client:
            try:
                self.load(client, **options)
            except RunwayError as error:
                return error
        raise AssertionError("the load did not fail")


def wrong_client_secret(run: Run) -> RunwayError:
    return run.failed_load(run.client(secret=run.other_secret))


def token_500(run: Run) -> RunwayError:
    run.sb.inject("token", "status", status=500, times=10)
    return run.failed_load(run.client())


def token_429(run: Run) -> RunwayError:
    run.sb.inject("token", "status", status=429, times=10, retry_after=0)
    return run.failed_load(run.client())


def token_reset(run: Run) -> RunwayError:
    run.sb.inject("token", "reset_before_answer", times=10)
    return run.failed_load(run.client())


def api_401_expired_token(run: Run) -> RunwayError:
    run.sb.inject("token", "expire", times=10)
    return run.failed_load(run.client())


def create_job_400(run: Run) -> RunwayError:
    return run.failed_load(run.client(), test_type="NOT-A-TEST-TYPE")


def create_job_503(run: Run) -> RunwayError:
    run.sb.inject("create_job", "status", status=503, times=10)
    return run.failed_load(run.client())


def create_job_reset(run: Run) -> RunwayError:
    run.sb.inject("create_job", "reset_before_answer", times=10)
    return run.failed_load(run.client())


def upload_expired(run: Run) -> RunwayError:
    run.sb.inject("upload", "expire", times=10)
    return run.failed_load(run.client())


def upload_tampered(run: Run) -> RunwayError:
    """A presigned URL altered in transit: the steps, with a signature changed."""
    config = run.client().config
    transport = RequestsTransport(connect_timeout=5.0, read_timeout=10.0)
    try:
        token = authorize(transport, config, load_scopes("ea")).unwrap()
        spec = prepare_job(
            partner_code="ea",
            tenant_code="ea",
            bundle_name=BUNDLE,
            school_year="2526",
            input_files={"INPUT_FILE": str(run.input_file)},
            bundle_params={"TEST_TYPE": "SAT"},
        ).unwrap()
        job = create_job(transport, config, token, spec).unwrap()
        url = job.upload_urls["INPUT_FILE"]
        match = re.search(r"X-Amz-Signature=([0-9a-fA-F])", url)
        assert match is not None, "no signature to alter"
        flipped = "1" if match.group(1) == "0" else "0"
        altered = url[: match.start(1)] + flipped + url[match.end(1) :]
        tampered = msgspec.structs.replace(job, upload_urls={"INPUT_FILE": altered})
        run.shown.extend([token, job, tampered, spec])
        outcome = upload(transport, tampered, policy=FAST)
    finally:
        transport.close()
    assert isinstance(outcome, Failure)
    error: RunwayError = outcome.failure()
    assert error.code == "SignatureDoesNotMatch", error
    return error


def upload_reset_mid_body(run: Run) -> RunwayError:
    run.sb.inject("upload", "reset_mid_body", times=10)
    return run.failed_load(run.client())


def upload_slow_down(run: Run) -> RunwayError:
    run.sb.inject("upload", "slow_down", times=10)
    return run.failed_load(run.client())


def upload_read_timeout(run: Run) -> RunwayError:
    run.sb.inject("upload", "stall", seconds=1.0)
    return run.failed_load(run.client(read_timeout=0.25, retry=RetryPolicy(attempts=1)))


def upload_file_truncated(run: Run) -> RunwayError:
    """Another process empties the file after it was checked, while it is being sent."""

    def empty_the_file() -> None:
        run.input_file.write_bytes(b"")

    run.wire.before_put = empty_the_file
    return run.failed_load(run.client())


class _FullDisk:
    """A download sink whose disk is full: ``write`` raises the ``InputError`` that
    ``DownloadFile`` raises then (the ``Sink`` protocol lets a sink raise one)."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def begin(self, headers: Mapping[str, str], /) -> bool:
        return self._sink.begin(headers)

    def write(self, data: bytes, /) -> object:
        raise InputError(
            "cannot write the output file (No space left on device); free space or choose "
            "another dest_dir",
            step="download",
        )


def download_disk_full(run: Run) -> RunwayError:
    """The disk refuses the download's first write."""
    run.wire.wrap_sink = _FullDisk
    return run.failed_load(
        run.client(), wait=10.0, poll_interval=0.02, download_to=run.folder / "out"
    )


def start_500(run: Run) -> RunwayError:
    run.sb.inject("start", "status", status=500, times=10)
    return run.failed_load(run.client())


def start_reset(run: Run) -> RunwayError:
    run.sb.inject("start", "reset_before_answer", times=10)
    run.sb.inject("output_sets", "reset_before_answer", times=40)  # the run cannot be looked for
    return run.failed_load(run.client())


def download_expired(run: Run) -> RunwayError:
    run.sb.inject("download", "expire", times=10)
    return run.failed_load(
        run.client(), wait=10.0, poll_interval=0.02, download_to=run.folder / "out"
    )


def download_reset_mid_body(run: Run) -> RunwayError:
    run.sb.inject("download", "reset_mid_body", times=10)
    return run.failed_load(
        run.client(), wait=10.0, poll_interval=0.02, download_to=run.folder / "out"
    )


@dataclass(frozen=True)
class Kind:
    drive: Callable[[Run], RunwayError]
    error: type[RunwayError]
    step: str
    wire: frozenset[str]  # what must have crossed the wire, so the check is not vacuous


_TOKEN = frozenset({"client secret", "access token"})
_URLS = _TOKEN | {"presigned URL X-Amz-Signature", "presigned URL X-Amz-Credential"}

KINDS: dict[str, Kind] = {
    "wrong client secret (401)": Kind(
        wrong_client_secret, AuthenticationError, "authorize", frozenset({"client secret"})
    ),
    "token endpoint 500": Kind(token_500, ServerError, "authorize", frozenset({"client secret"})),
    "token endpoint 429": Kind(
        token_429, RateLimitError, "authorize", frozenset({"client secret"})
    ),
    "token endpoint reset": Kind(
        token_reset, NetworkError, "authorize", frozenset({"client secret"})
    ),
    "expired token: API 401": Kind(
        api_401_expired_token, AuthenticationError, "create_job", _TOKEN
    ),
    "create_job 400 (bad param)": Kind(create_job_400, RequestRejectedError, "create_job", _TOKEN),
    "create_job 503": Kind(create_job_503, ServiceUnavailableError, "create_job", _TOKEN),
    "create_job reset before answer": Kind(
        create_job_reset, OutcomeUnknownError, "create_job", _TOKEN
    ),
    "upload URL expired (403)": Kind(upload_expired, UploadExpiredError, "upload", _URLS),
    "upload SignatureDoesNotMatch": Kind(upload_tampered, StorageError, "upload", _URLS),
    "upload reset mid-body": Kind(upload_reset_mid_body, NetworkError, "upload", _URLS),
    "upload 503 SlowDown exhausted": Kind(upload_slow_down, StorageError, "upload", _URLS),
    "upload read timeout": Kind(upload_read_timeout, RequestTimeoutError, "upload", _URLS),
    "start 500 exhausted": Kind(start_500, ServerError, "start", _URLS),
    "start reset": Kind(start_reset, NetworkError, "start", _URLS),
    "download link expired": Kind(download_expired, StorageError, "download", _URLS),
    "download reset mid-body": Kind(download_reset_mid_body, NetworkError, "download", _URLS),
}

LEAKY_KINDS: dict[str, Kind] = {
    "upload file truncated while sent": Kind(
        upload_file_truncated, InputChangedError, "upload", _URLS
    ),
    "download disk full": Kind(download_disk_full, InputError, "download", _URLS),
}


def _check_kind(
    kind: Kind,
    secret: str,
    other_secret: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.clear()
    with (
        tempfile.TemporaryDirectory(prefix="runway-secrecy-") as scratch,
        recording() as wire,
        running(secret) as sb,
    ):
        run = Run(sb=sb, wire=wire, secret=secret, other_secret=other_secret, folder=Path(scratch))
        run.input_file.parent.mkdir()
        run.input_file.write_bytes(EXAMPLE_SAT.read_bytes())
        error = kind.drive(run)
    assert type(error) is kind.error, repr(error)
    assert error.step == kind.step, repr(error)
    assert kind.wire <= wire.kinds, (kind.wire - wire.kinds, wire.kinds)
    records = list(caplog.records)
    # DEBUG was on: each request logged (by runway_client; by urllib3 too when requests
    # sends it, which no kind here needs: without a proxy, API calls go by http.client)
    assert any(r.levelno == logging.DEBUG and r.name == "runway_client" for r in records)
    assert any(r.name == "runway_client" for r in records)

    texts = error_texts(error)
    texts.update(log_texts(records))
    for number, shown in enumerate(run.shown):
        texts[f"repr #{number} ({type(shown).__name__})"] = repr(shown)
        texts[f"str #{number} ({type(shown).__name__})"] = str(shown)
    needles = dict(wire.needles)
    for form in (secret, other_secret):
        needles.setdefault(form, "client secret")
    found = leaks(texts, needles)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name", list(KINDS))
@EXAMPLES
@given(secret=client_secrets, other_secret=client_secrets)
def test_no_secret_shows_whatever_fails(
    name: str, secret: str, other_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    assume(secret != other_secret)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="runway_client")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    _check_kind(KINDS[name], secret, other_secret, caplog)


# Once a leak: a RunwayError raised inside requests kept the traceback whose frames
# held the presigned URL in their locals; transport._detached now drops it.
@pytest.mark.parametrize("name", list(LEAKY_KINDS))
@settings(EXAMPLES, max_examples=3, phases=[Phase.generate])  # no shrinking
@given(secret=client_secrets, other_secret=client_secrets)
def test_no_secret_shows_when_a_runway_error_is_raised_inside_requests(
    name: str, secret: str, other_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    assume(secret != other_secret)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="runway_client")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    _check_kind(LEAKY_KINDS[name], secret, other_secret, caplog)


# ---------------------------------------------------------------- the command line


def _no_backoff(
    attempt: int, policy: RetryPolicy, draw: Callable[[], float] = random.random
) -> float:
    """The CLI uses the default retry policy; its waits are not what is tested here."""
    return 0.001


_CLI_LOAD = ["load", "--tenant", "ea", "--bundle", BUNDLE, "--school-year", "2526", "-v"]


def _cli_load(run: Run, *extra: str, test_type: str = "SAT") -> list[str]:
    return [
        *_CLI_LOAD,
        "--file",
        f"INPUT_FILE={run.input_file}",
        "--param",
        f"TEST_TYPE={test_type}",
        *extra,
    ]


def _loaded_set(run: Run, calls: list[tuple[list[str], int]]) -> str:
    """Load and wait through the CLI (checked like the rest); the output set's uid."""
    argv = _cli_load(run, "--wait", "10", "--poll-interval", "0.02")
    calls.append((argv, main(argv)))
    [output_set] = run.sb.output_sets()
    return output_set.uid


@dataclass(frozen=True)
class CliCase:
    """Runs ``main`` (the last call's exit status is checked); earlier calls must exit 0."""

    drive: Callable[[Run, list[tuple[list[str], int]]], list[str]]
    exit_code: int
    wrong_secret: bool = False


def _cli_outputs_download_expired(run: Run, calls: list[tuple[list[str], int]]) -> list[str]:
    set_uid = _loaded_set(run, calls)
    run.sb.inject("download", "expire", times=10)
    return ["outputs", "download", set_uid, "--dest", str(run.folder / "out"), "-v"]


def _cli_outputs(run: Run, calls: list[tuple[list[str], int]]) -> list[str]:
    set_uid = _loaded_set(run, calls)
    argv = ["outputs", "download", set_uid, "--dest", str(run.folder / "out"), "-v", "--json"]
    calls.append((argv, main(argv)))
    return ["outputs", "list", "--tenant", "ea", "--json", "-v"]


def _inject(route: str, fault: str, **options: object) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        run.sb.inject(route, fault, times=10, **options)  # type: ignore[arg-type]

    return inject


def _load_with(
    before: Callable[[Run], None] | None = None, *extra: str, test_type: str = "SAT"
) -> Callable[[Run, list[tuple[list[str], int]]], list[str]]:
    def drive(run: Run, calls: list[tuple[list[str], int]]) -> list[str]:
        if before is not None:
            before(run)
        return _cli_load(run, *extra, test_type=test_type)

    return drive


CLI_CASES: dict[str, CliCase] = {
    "load": CliCase(_load_with(), 0),
    "load --json --wait --download": CliCase(
        _load_with(None, "--json", "--wait", "10", "--poll-interval", "0.02", "--download", "o"),
        0,
    ),
    "verify": CliCase(lambda run, calls: ["verify", "-v"], 0),
    "outputs download and list": CliCase(_cli_outputs, 0),
    "wrong client secret": CliCase(_load_with(), 4, wrong_secret=True),
    "create_job 400": CliCase(_load_with(None, test_type="NOT-A-TEST-TYPE"), 6),
    "create_job 503": CliCase(_load_with(_inject("create_job", "status", status=503)), 9),
    "create_job reset": CliCase(_load_with(_inject("create_job", "reset_before_answer")), 14),
    "upload expired": CliCase(_load_with(_inject("upload", "expire")), 15),
    "upload reset mid-body": CliCase(_load_with(_inject("upload", "reset_mid_body")), 11),
    "start 500": CliCase(_load_with(_inject("start", "status", status=500)), 8),
    "outputs download, links expired": CliCase(_cli_outputs_download_expired, 10),
}


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """``-v`` adds a handler (bound to the captured stderr) to the ``runway_client``
    logger; take it off again after the test."""
    logger = logging.getLogger("runway_client")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers = handlers
    logger.setLevel(level)


@pytest.mark.usefixtures("cli_logging")
@pytest.mark.parametrize("name", list(CLI_CASES))
@settings(EXAMPLES, max_examples=8)
@given(secret=client_secrets, other_secret=client_secrets)
def test_the_cli_prints_no_secret(
    name: str,
    secret: str,
    other_secret: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assume(secret != other_secret)
    case = CLI_CASES[name]
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="runway_client")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.clear()
    capsys.readouterr()
    calls: list[tuple[list[str], int]] = []
    with (
        tempfile.TemporaryDirectory(prefix="runway-secrecy-") as scratch,
        recording() as wire,
        running(secret) as sb,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr("runway_client._retry.backoff", _no_backoff)
        patch.chdir(scratch)
        patch.delenv("RUNWAY_TOKEN_URL", raising=False)
        patch.setenv("RUNWAY_BASE_URL", sb.runway_base_url)
        patch.setenv("RUNWAY_AUTH_BASE_URL", sb.auth_base_url)
        patch.setenv("RUNWAY_CLIENT_ID", sb.client_id)
        patch.setenv("RUNWAY_CLIENT_SECRET", other_secret if case.wrong_secret else secret)
        patch.setenv("RUNWAY_PARTNER", sb.partner_code)
        run = Run(sb=sb, wire=wire, secret=secret, other_secret=other_secret, folder=Path(scratch))
        run.input_file.parent.mkdir()
        run.input_file.write_bytes(EXAMPLE_SAT.read_bytes())
        argv = case.drive(run, calls)
        calls.append((argv, main(argv)))
    out, err = capsys.readouterr()
    *earlier, (_, last) = calls
    assert [code for _, code in earlier] == [0] * len(earlier), (calls, err)
    assert last == case.exit_code, (calls, err)
    assert "runway_client: " in err  # -v logged the requests
    if case.exit_code:
        assert "runway-client: error: " in err
    assert {"client secret"} <= wire.kinds

    texts = {"stdout": out, "stderr": err, **log_texts(list(caplog.records))}
    needles = dict(wire.needles)
    for form in (secret, other_secret):
        needles.setdefault(form, "client secret")
    found = leaks(texts, needles)
    assert not found, "\n".join(found)
