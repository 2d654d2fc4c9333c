"""``runway-client``: load assessment files into Runway, and read what runs produced.

::

    runway-client load --tenant T --bundle B --school-year Y --file KEY=PATH [--file ...]
                       [--param KEY=VALUE ...] [--json] [--sandbox [--registry PATH]]
                       [--wait [SECONDS]] [--download DIR] [--quiet | --progress MODE]
    runway-client resume JOB.json [--json] [--quiet | --progress MODE]
    runway-client verify
    runway-client outputs list [--tenant T] [--school-year Y] [--sent-to-ods true|false]
                               [--created-after ISO-8601] [--bundle B] [--json]
    runway-client outputs download SET_UID --dest DIR [--overwrite] [--json]
    runway-client batch MANIFEST.yaml [--journal PATH] [--concurrency N] [--json]
                        [--dry-run] [--results-file PATH] [--skip-invalid]
    runway-client sandbox [--port N] [--registry PATH] ...

Connection settings come from flags, a settings file (``-c runway.yml``), or the
environment (``RUNWAY_BASE_URL``, ``RUNWAY_AUTH_BASE_URL`` or ``RUNWAY_TOKEN_URL``,
``RUNWAY_CLIENT_ID``, ``RUNWAY_CLIENT_SECRET``, ``RUNWAY_PARTNER``), in that order
of precedence. A failure prints one line on stderr and exits with the code of its
kind (``EXIT_CODES``).

``load`` and ``resume`` stop cleanly on SIGINT (Ctrl-C) and SIGTERM: no job is
created after the signal, uploads under way are ended, a job that exists but
is not started is saved for ``resume`` and named with the command that finishes
it; the exit status is 130 (SIGINT) or 143 (SIGTERM). A second signal exits at
once. Progress goes to stderr: bars on a terminal, ``--progress json`` for one
JSON event per line, nothing but the job's uid with ``--quiet``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from runway_client._defaults import (
    DEFAULT_POLL_SECONDS,
    DEFAULT_WAIT_SECONDS,
    ENVIRONMENT_VARIABLES,
    MAX_BATCH_CONCURRENCY,
    SETTINGS,
    VERSION,
)
from runway_client._errors import CancelledError, InputError, RunwayError

if TYPE_CHECKING:  # imported by _import_commands once the flags are parsed
    import msgspec
    from returns.result import Failure, Success

    from runway_client._batch import (
        BatchPlan,
        BatchReport,
        BatchResults,
        EntryOutcome,
        default_journal_path,
        invalid_outcomes,
        plan_batch,
        read_manifest,
    )
    from runway_client._client import RunwayClient
    from runway_client._config import RunwayConfig, config_from_env
    from runway_client._console import (
        Interrupts,
        ProgressView,
        interrupts,
        progress_mode,
        started_line,
    )
    from runway_client._files import read_small, write_private, write_replacing
    from runway_client._journal import Journal, Resume, Skip
    from runway_client._manifest import parse_settings
    from runway_client._models import DownloadReceipt, LoadReceipt, OutputSet
    from runway_client._retry import RetryPolicy

__all__ = ["EXIT_CODES", "main"]

BATCH_NOT_ALL_STARTED: Final = 20
"""``runway-client batch``: some entries are not started."""
BATCH_NOTHING_TO_DO: Final = 99
"""``runway-client batch``: a rerun found every entry started already (earthmover and
lightbeam's "skipped" code, which Airflow's Bash tasks map to a skipped task)."""

EXIT_CODES: Final = {
    0: "success",
    1: "unexpected error (a bug: please report it)",
    2: "usage error (bad flags)",
    3: "bad local input or settings, found before any request (InputError)",
    4: "credentials refused, or the API said 401 (AuthenticationError)",
    5: "403: scopes, audience, or a partner the client may not act for (PermissionDeniedError)",
    6: "400: Runway rejected the request, with its message (RequestRejectedError)",
    7: "404: unknown job or output set (NotFoundError)",
    8: "5xx from Runway or the identity provider (ServerError)",
    9: "503: the service is disabled or down (ServiceUnavailableError)",
    10: "S3 refused an upload or download (StorageError)",
    11: "connection refused, reset, or timed out (NetworkError)",
    12: "an answer that does not match Runway's API (ProtocolError)",
    13: "waited, and the run produced no output set yet (OutputsNotReadyError)",
    14: "POST /jobs may have reached Runway; check the UI before loading again (OutcomeUnknownError)",
    15: "the job's upload URLs expired: it cannot be completed, load again (UploadExpiredError)",
    16: "429: rate-limited by Runway, the identity provider or storage; slow down (RateLimitError)",
    17: "S3 stored other bytes than the file's: ETag is not its MD5 (IntegrityError)",
    20: "batch: some entries are not started (failed, invalid or not reached); rerun to retry",
    21: "an input file changed after its job was created; the job is not started "
    "(InputChangedError)",
    99: "batch: nothing left to do (every entry was started by an earlier run)",
    130: "interrupted by SIGINT (Ctrl-C); a job not started is saved for resume (CancelledError)",
    143: "stopped by SIGTERM; a job not started is saved for resume (CancelledError)",
}
"""Exit status -> meaning; printed by ``runway-client --help``."""

_FLAGS: Final = {s.variable: s.flag for s in SETTINGS if s.variable and s.flag}
"""Environment variable -> the flag that can stand in for it."""
_DEST: Final = {"verify": "ca_bundle", "runway_base_url": "base_url", "partner_code": "partner"}
"""Setting name -> argparse ``dest`` where the flag's name differs."""


def _key_value(what: str) -> Callable[[str], tuple[str, str]]:
    """An argparse ``type`` that splits ``KEY=VALUE`` at the first ``=``."""

    def parse(text: str) -> tuple[str, str]:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"{what} must look like KEY={what[2:].upper()}")
        return key, value

    return parse


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _moment(text: str) -> datetime:
    """An aware moment: an ISO-8601 time with a zone, or a date alone (``2026-01-01``),
    read as midnight UTC, as the server reads a date-only ``createdAfter`` (CONTRACT.md
    "Output sets", observed). A time without a zone is refused: it is ambiguous."""
    if len(text) == 10:
        try:
            return datetime.combine(date.fromisoformat(text), clock_time(), tzinfo=UTC)
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time with a zone, e.g. 2026-01-01T00:00:00Z, got {text!r}"
        ) from None
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z or +HH:MM")
    return moment


def _connection_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group(
        "connection",
        "Settings not given here are read from the environment: "
        + ", ".join(ENVIRONMENT_VARIABLES.values())
        + ". The client secret is read only from RUNWAY_CLIENT_SECRET, so it never "
        "shows in a process list.",
    )
    for setting in SETTINGS:
        if setting.flag is not None:
            group.add_argument(
                setting.flag,
                type=float if setting.name.endswith("_timeout") else str,
                help=setting.help,
            )
    group.add_argument(
        "--call-timeout",
        type=float,
        help="total seconds for one API call, all attempts and waits included (default 60)",
    )
    group.add_argument(
        "--upload-concurrency",
        type=int,
        help="files of one job uploaded at once (default 4)",
    )
    group.add_argument(
        "--retries", type=int, help="attempts per request that may be repeated (default 4)"
    )
    group.add_argument(
        "-c",
        "--config-file",
        metavar="runway.yml",
        help="a YAML settings file: base_url, auth_base_url or token_url, client_id, "
        "client_secret (write ${VARIABLE} to read it from the environment), partner, "
        "connect_timeout, read_timeout, call_timeout, retries, concurrency, upload_concurrency, "
        "ca_bundle. Flags win over "
        "the file, the file over the environment",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the effective settings (secret masked) and log each HTTP request",
    )
    return flags


def _parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in sorted(EXIT_CODES.items()))
    parser = argparse.ArgumentParser(
        prog="runway-client",
        description="Load assessment files into Runway (Education Analytics), and read "
        "what the runs produced.",
        epilog=f"exit status:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"runway-client {VERSION}",  # = the installed metadata (tested)
        help="print the version and exit (-v stays --verbose)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    connection = _connection_flags()

    load = commands.add_parser(
        "load",
        parents=[connection],
        help="create a job, upload its files and start it",
        description="Create a Runway job, upload its files and start it.",
    )
    load.add_argument(
        "--tenant", "--tenant-code", dest="tenant", required=True, help="tenant code, e.g. ea"
    )
    load.add_argument(
        "--bundle",
        "--bundle-name",
        dest="bundle",
        required=True,
        help="bundle name, e.g. assessments/PSAT_SAT",
    )
    load.add_argument(
        "--school-year",
        required=True,
        help='"2526", "2025-2026", "2025-26" or "2026" (all sent as 2026)',
    )
    load.add_argument(
        "--file",
        "--input-file",
        dest="files",
        action="append",
        required=True,
        type=_key_value("--file"),
        metavar="KEY=PATH",
        help="an input file by its bundle file key, e.g. INPUT_FILE=/data/sat.csv (repeatable)",
    )
    load.add_argument(
        "--param",
        "--bundle-param",
        dest="params",
        action="append",
        default=[],
        type=_key_value("--param"),
        metavar="KEY=VALUE",
        help="a bundle param, e.g. TEST_TYPE=SAT (repeatable)",
    )
    _follow_up_flags(load)
    load.add_argument("--json", action="store_true", help="print the load receipt as JSON")
    _progress_flags(load)
    load.add_argument(
        "--sandbox",
        action="store_true",
        help="load into an embedded local sandbox instead of a real Runway (needs the "
        "'sandbox' extra); it knows tenant ea and four bundles unless --registry is given",
    )
    load.add_argument(
        "--registry", metavar="PATH", help="with --sandbox: a registry.json of bundles to enable"
    )
    load.add_argument(
        "--resume-file",
        metavar="PATH",
        help="if the job is created but cannot be started, save it here for "
        "'runway-client resume' (default: ./runway-job-<uid>.json)",
    )

    resuming = commands.add_parser(
        "resume",
        parents=[connection],
        help="finish a job that was created but not started",
        description="Upload the files still missing from a job that a failed load created, "
        "then start it. Upload URLs live one hour from the job's creation.",
    )
    resuming.add_argument("job_file", metavar="JOB.json", help="the file a failed load saved")
    _follow_up_flags(resuming)
    resuming.add_argument("--json", action="store_true", help="print the load receipt as JSON")
    _progress_flags(resuming)

    commands.add_parser(
        "verify",
        parents=[connection],
        help="print the partners the client's token is valid for",
        description="Ask Runway which partners the client's token is valid for.",
    )

    outputs = commands.add_parser(
        "outputs", help="list output sets, or download one", description="Output sets."
    )
    what = outputs.add_subparsers(dest="outputs_command", required=True, metavar="ACTION")
    listing = what.add_parser(
        "list",
        parents=[connection],
        help="list the output sets of successful runs, oldest first",
        description="List the output sets of successful runs, oldest first.",
    )
    listing.add_argument("--tenant", "--tenant-code", dest="tenant", help="tenant code")
    listing.add_argument("--school-year", help='any spelling, e.g. "2025-26"')
    listing.add_argument(
        "--sent-to-ods",
        type=_boolean,
        metavar="true|false",
        help="only sets sent (or not) to the ODS",
    )
    listing.add_argument(
        "--created-after",
        type=_moment,
        metavar="ISO-8601",
        help="only sets created after this moment: a date (2026-01-01, midnight UTC) or a time with a zone, e.g. 2026-01-01T08:00:00Z",
    )
    listing.add_argument(
        "--bundle", "--bundle-name", dest="bundle", help="bundle name, e.g. assessments/PSAT_SAT"
    )
    listing.add_argument("--json", action="store_true", help="print the output sets as JSON")
    waiting = what.add_parser(
        "wait",
        parents=[connection],
        help="wait until a started job's run has an output set",
        description="Wait until the run of a started job has an output set (a failed run "
        "never gets one), then print it, and download its files with --download.",
    )
    waiting.add_argument("job_uid", metavar="JOB_UID", help="the job's uid")
    waiting.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"give up after this long (default {DEFAULT_WAIT_SECONDS:g})",
    )
    _poll_flag(waiting)
    waiting.add_argument("--download", metavar="DIR", help="then download its files to DIR")
    waiting.add_argument("--json", action="store_true", help="print the output set as JSON")
    fetching = what.add_parser(
        "download",
        parents=[connection],
        help="download an output set's files",
        description="Download every file of an output set; each is written to a temporary "
        "name and renamed when complete.",
    )
    fetching.add_argument("set_uid", metavar="SET_UID", help="the output set's uid")
    fetching.add_argument(
        "--dest", required=True, metavar="DIR", help="folder (created if missing)"
    )
    fetching.add_argument("--overwrite", action="store_true", help="replace files already there")
    fetching.add_argument("--json", action="store_true", help="print the receipts as JSON")

    batch = commands.add_parser(
        "batch",
        parents=[connection],
        help="run many loads from a YAML manifest; running it again is always safe",
        description="Run the loads of a YAML manifest. Every entry is checked before the "
        "first job is created. A journal beside the manifest records each step, so the "
        "same command can be run again after any failure or kill: started entries are "
        "skipped, created ones finished, the rest retried. See docs/unattended.md.",
    )
    batch.add_argument("manifest", metavar="MANIFEST.yaml", help="the manifest")
    batch.add_argument(
        "--journal", metavar="PATH", help="the journal (default: MANIFEST.yaml.journal)"
    )
    batch.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help=f"loads at once, 1-{MAX_BATCH_CONCURRENCY} (default 1, or the settings file's)",
    )
    batch.add_argument("--json", action="store_true", help="print the report as JSON")
    batch.add_argument(
        "--dry-run",
        action="store_true",
        help="check the manifest, the files and the token, say what would be done; create nothing",
    )
    batch.add_argument(
        "--results-file",
        metavar="PATH",
        help="write one JSON record per entry here on every run (failed ones included)",
    )
    batch.add_argument(
        "--skip-invalid",
        action="store_true",
        help="run the valid entries even when some are invalid (those are reported)",
    )
    _progress_flags(batch)

    commands.add_parser(
        "sandbox",
        add_help=False,
        help="run a local Runway sandbox and print its settings (see: sandbox --help)",
        description="Run a local Runway sandbox until Ctrl-C.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see ``EXIT_CODES``)."""
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["sandbox"]:
        return _serve_sandbox(given[1:])
    parser = _parser()
    args = parser.parse_args(given)
    with _request_log(enabled=getattr(args, "verbose", False)):
        return _run(parser, args)


def _import_commands() -> None:
    """Import what the commands need, once the flags are parsed: ``--help`` and a usage
    error stay fast (no ``requests``, ``msgspec``, ``returns``; issue 7, fast start)."""
    global msgspec, Failure, Success, BatchPlan, BatchReport, EntryOutcome, default_journal_path
    global plan_batch, read_manifest, invalid_outcomes, RunwayClient, RunwayConfig, config_from_env
    global \
        make_config, \
        Interrupts, \
        ProgressView, \
        interrupts, \
        progress_mode, \
        read_small, \
        started_line
    global write_private, write_replacing, Journal, Resume, Skip, parse_settings
    global DownloadReceipt, LoadReceipt, OutputSet, RetryPolicy, BatchResults
    import msgspec
    from returns.result import Failure, Success

    from runway_client._batch import (
        BatchPlan,
        BatchReport,
        BatchResults,
        EntryOutcome,
        default_journal_path,
        invalid_outcomes,
        plan_batch,
        read_manifest,
    )
    from runway_client._client import RunwayClient
    from runway_client._config import RunwayConfig, config_from_env, make_config
    from runway_client._console import (
        Interrupts,
        ProgressView,
        interrupts,
        progress_mode,
        started_line,
    )
    from runway_client._files import read_small, write_private, write_replacing
    from runway_client._journal import Journal, Resume, Skip
    from runway_client._manifest import parse_settings
    from runway_client._models import DownloadReceipt, LoadReceipt, OutputSet
    from runway_client._retry import RetryPolicy


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    _import_commands()
    out = sys.stdout
    stop: Interrupts | None = None
    try:
        if args.command in ("load", "resume", "batch"):
            with interrupts() as stop:
                if args.command == "load":
                    return _load(parser, args, out, stop)
                if args.command == "batch":
                    return _batch(args, out, stop)
                return _resume(args, out, stop)
        if args.command == "verify":
            with _connection(args) as client:
                partners = client.verify_token()
            out.write(
                "The token is valid for "
                + (f"partners: {', '.join(partners)}" if partners else "no partners")
                + "\n"
            )
            return 0
        return _outputs(args, out)
    except RunwayError as error:
        shown = " ".join(str(error).split())  # one line, whatever the server said
        if args.command == "resume":
            shown += _resume_again(error, args.job_file)
        elif not getattr(args, "sandbox", False):  # an embedded sandbox is gone with its jobs
            shown += _saved_for_resume(error, getattr(args, "resume_file", None))
        if isinstance(error, CancelledError) and stop is not None:
            print(f"runway-client: {stop.signal_name}: {shown}", file=sys.stderr)
            return stop.exit_code
        print(f"runway-client: error: {type(error).__name__}: {shown}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("runway-client: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _request_log(*, enabled: bool) -> Iterator[None]:
    """With ``-v``: log each request of ``runway_client`` to stderr while the command runs."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("runway_client")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _progress_flags(parser: argparse.ArgumentParser) -> None:
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        choices=("auto", "bars", "json", "none"),
        default="auto",
        help="on stderr: bars (with the 'cli' extra), one JSON event per line, or none; "
        "auto (default): bars when stderr is a terminal",
    )
    shown.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no heartbeat on stderr"
    )


def _view(args: argparse.Namespace, out: TextIO, stop: Interrupts) -> ProgressView:
    mode = progress_mode(args.progress, quiet=args.quiet, stream=sys.stderr)
    return ProgressView(mode, out=out, err=sys.stderr, interrupts=stop, started_to_err=args.json)


def _wait_of(args: argparse.Namespace) -> bool | float:
    """``--wait`` as the client takes it; ``--wait 0`` without ``--download`` is no wait
    (one look at once would only turn a successful load into exit 13)."""
    if args.wait is None or (args.wait == 0 and not args.download):
        return False
    return float(args.wait)


def _load(
    parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO, stop: Interrupts
) -> int:
    files = dict(args.files)
    if len(files) != len(args.files):
        parser.error("load: each --file KEY may be given once")
    params = dict(args.params)
    if len(params) != len(args.params):
        parser.error("load: each --param KEY may be given once")
    if args.registry and not args.sandbox:
        parser.error("load: --registry goes with --sandbox")
    if args.sandbox:
        given = [
            flag
            for flag in (
                "base_url",
                "auth_base_url",
                "token_url",
                "client_id",
                "partner",
                "ca_bundle",
            )
            if getattr(args, flag) is not None
        ]
        if given:
            parser.error(
                "load: --sandbox brings its own connection; drop "
                + ", ".join("--" + flag.replace("_", "-") for flag in given)
            )
    view = _view(args, out, stop)
    try:
        with _connection(args) as client:
            receipt = client.load_files(
                tenant_code=args.tenant,
                bundle_name=args.bundle,
                input_files=files,
                bundle_params=params,
                school_year=args.school_year,
                wait=_wait_of(args),
                download_to=args.download,
                poll_interval=args.poll_interval,
                cancel=stop.cancel,
                on_progress=view,
            )
    finally:
        view.close()
    if args.json:
        out.write(receipt.to_json().decode() + "\n")
    else:
        out.write(
            _summary(receipt, sandbox=args.sandbox, said_started=receipt.job_uid in view.started)
        )
    return 0


def _saved_for_resume(error: RunwayError, chosen: str | None) -> str:
    """Save a failed load's pending job (0600) and say how to finish it; ``""`` if none."""
    if error.pending is None:
        return ""
    uid = error.pending.job.uid
    wanted = Path(chosen or f"runway-job-{uid}.json")
    # A file already there may be another job's resume data: it is kept, and this
    # job's goes beside it under its own uid instead of being dropped.
    candidates = [wanted, wanted.with_name(f"runway-job-{uid}.json")]
    candidates += [wanted.with_name(f"runway-job-{uid}-{n}.json") for n in range(1, 4)]
    note, problem = "", ""
    for path in dict.fromkeys(candidates):
        saved = write_private(path, error.pending.to_json())
        if isinstance(saved, Success):
            if path != wanted:
                note = f" ({str(wanted)!r} already exists and was left as it was)"
            return (
                f". The job was created but is not known to be started: to finish it (or "
                f"learn that it started) within an hour of its creation, run: runway-client "
                f"resume {shlex.quote(str(path))}{note}"
            )
        problem = saved.failure().message
    return f". The job was created but not started; it could not be saved: {problem}"


def _follow_up_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        nargs="?",
        type=float,
        const=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"wait for the run's output set (default {DEFAULT_WAIT_SECONDS:g} s)",
    )
    parser.add_argument(
        "--download", metavar="DIR", help="wait, then download the output set's files to DIR"
    )
    _poll_flag(parser)


def _poll_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_SECONDS,
        metavar="SECONDS",
        help=f"longest pause between looks while waiting (default {DEFAULT_POLL_SECONDS:g}; "
        "the first looks come sooner)",
    )


def _resume_again(error: RunwayError, job_file: str) -> str:
    """What to do after a failed resume: try again, or load again."""
    if error.pending is not None:
        return (
            f". The job is still not started; try again within an hour of its creation: "
            f"runway-client resume {shlex.quote(job_file)}"
        )
    if error.status in (403, 404) and error.step in ("upload", "start"):
        return ". This job cannot be finished any more: load the files again to make a new job"
    return ""


def _resume(args: argparse.Namespace, out: TextIO, stop: Interrupts) -> int:
    view = _view(args, out, stop)
    try:
        with _connection(args) as client:
            receipt = client.resume(
                args.job_file,
                wait=_wait_of(args),
                download_to=args.download,
                poll_interval=args.poll_interval,
                cancel=stop.cancel,
                on_progress=view,
            )
    finally:
        view.close()
    Path(args.job_file).unlink(missing_ok=True)  # its upload URLs are secrets; job done
    if args.json:
        out.write(receipt.to_json().decode() + "\n")
    else:
        out.write(_summary(receipt, sandbox=False, said_started=receipt.job_uid in view.started))
    return 0


def _batch(args: argparse.Namespace, out: TextIO, stop: Interrupts) -> int:
    """``runway-client batch``: check, run (or --dry-run), report, exit 0/99/20/3, or
    130/143 after SIGINT/SIGTERM (no job is created after the signal; the jobs created
    and not started are named, with the command that finishes them)."""
    began = time.time()
    journal_path = Path(args.journal) if args.journal else default_journal_path(args.manifest)
    concurrency = args.concurrency
    if concurrency is None:
        concurrency = _settings(args).get("concurrency", 1)
    if (
        isinstance(concurrency, float) and not concurrency.is_integer()
    ) or not 1 <= concurrency <= MAX_BATCH_CONCURRENCY:
        raise InputError.of(
            [f"concurrency must be a whole number from 1 to {MAX_BATCH_CONCURRENCY}"]
        )

    def finish(report: BatchReport, code: int, problems: tuple[str, ...] = ()) -> int:
        if args.results_file:
            results = BatchResults(
                manifest=str(args.manifest),
                journal=str(journal_path),
                started_at=_iso(began),
                completed_at=_iso(time.time()),
                runtime_sec=round(time.time() - began, 3),
                dry_run=args.dry_run,
                exit_code=code,
                summary=_counts(report),
                entries=report.outcomes,
                possible_orphans=report.possible_orphans,
                problems=problems,
            )
            written = write_replacing(
                args.results_file, msgspec.json.format(msgspec.json.encode(results))
            )
            if isinstance(written, Failure):
                print(f"runway-client: warning: {written.failure().message}", file=sys.stderr)
        return code

    manifest = read_manifest(args.manifest)
    if isinstance(manifest, Failure):
        error = manifest.failure()
        _print_problems(error)
        return finish(BatchReport(outcomes=()), error.exit_code, error.problems)
    try:
        with _connection(args) as client:
            plan = plan_batch(client.config, manifest.unwrap())
            report_invalid = BatchReport(outcomes=invalid_outcomes(plan))
            if plan.invalid and not args.skip_invalid:
                error = InputError.of(plan.problems)
                _print_problems(error, also="nothing was sent (--skip-invalid runs the valid ones)")
                return finish(report_invalid, error.exit_code, plan.problems)
            if args.dry_run:
                client.verify_token()  # raises if the credentials or the partner are refused
                report = _dry_run(plan, journal_path)
                _report(report, args, out, dry_run=True)
                code = 0 if not plan.invalid else BATCH_NOT_ALL_STARTED
                return finish(report, code, plan.problems)
            view = ProgressView(
                progress_mode(args.progress, quiet=args.quiet),
                out=out,
                err=sys.stderr,
                interrupts=stop,
                started_to_err=True,  # stdout holds the report (or its JSON) only
            )
            try:
                report = client.load_many(
                    plan,
                    journal=journal_path,
                    concurrency=int(concurrency),
                    skip_invalid=args.skip_invalid,
                    cancel=stop.cancel,
                    on_progress=view,
                )
            finally:
                view.close()
    except RunwayError as error:  # the run could not begin (settings, token, journal)
        finish(BatchReport(outcomes=()), error.exit_code, (" ".join(str(error).split()),))
        raise
    _report(report, args, out, dry_run=False)
    if stop.cancel.is_set():
        _interrupted(report, args, stop)
        return finish(report, stop.exit_code)
    if report.nothing_to_do:
        code = BATCH_NOTHING_TO_DO
    elif report.all_started:
        code = 0
    else:
        code = BATCH_NOT_ALL_STARTED
    return finish(report, code, plan.problems)


def _interrupted(report: BatchReport, args: argparse.Namespace, stop: Interrupts) -> None:
    """After a signal: which jobs exist but are not started, and the command that
    finishes them (the same batch again: the journal resumes them, no new job)."""
    waiting = [o for o in report.outcomes if o.state == "cancelled" and o.job_uid]
    lines = [f"runway-client: {stop.signal_name}: the batch stopped; no job was created after it."]
    for outcome in waiting:
        lines.append(f"  {outcome.label}: job {outcome.job_uid} is created but not started")
    lines.append(
        ("To finish them and the rest" if waiting else "To run the rest")
        + f" (no entry is loaded twice), run: {_again(args)}"
    )
    print("\n".join(lines), file=sys.stderr)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def _counts(report: BatchReport) -> dict[str, int]:
    states = ("started", "skipped", "failed", "cancelled", "invalid", "not_run")
    counts = {state: report.count(state) for state in states}  # type: ignore[arg-type]
    counts["total"] = len(report.outcomes)
    counts["possible_orphans"] = len(report.possible_orphans)
    return counts


def _print_problems(error: RunwayError, *, also: str = "") -> None:
    problems = error.problems or (error.message,)
    print(
        f"runway-client: error: {type(error).__name__}: {len(problems)} problem(s)"
        + (f"; {also}" if also else "")
        + ":",
        file=sys.stderr,
    )
    for problem in problems:
        print(f"  {_shown(problem)}", file=sys.stderr)


def _dry_run(plan: BatchPlan, journal_path: Path) -> BatchReport:
    """What a run would do per entry, from the journal if there is one; sends nothing."""
    journal = Journal.open(journal_path) if journal_path.exists() else None
    if isinstance(journal, Failure):
        raise journal.failure()
    outcomes: list[EntryOutcome] = list(invalid_outcomes(plan))
    try:
        for entry in plan.entries:
            action = journal.unwrap().next_action(entry.entry_id) if journal else None
            if isinstance(action, Skip):
                would, uid = "would skip (started)", action.job_uid
            elif isinstance(action, Resume):
                would, uid = "would resume", action.pending.job.uid
            else:
                would, uid = "would create", None
            outcomes.append(
                EntryOutcome(
                    index=entry.index,
                    label=entry.label,
                    entry_id=entry.entry_id,
                    tenant=entry.spec.tenant,
                    bundle=entry.spec.bundle,
                    school_year=entry.spec.school_year.wire,
                    state="not_run",
                    job_uid=uid,
                    error=would,
                    files=entry.files,
                )
            )
    finally:
        if journal is not None:
            journal.unwrap().close()
    return BatchReport(outcomes=tuple(sorted(outcomes, key=lambda o: o.index)))


def _report(report: BatchReport, args: argparse.Namespace, out: TextIO, *, dry_run: bool) -> None:
    closing = _closing_line(report, dry_run=dry_run)
    if args.json:
        data = {
            **msgspec.to_builtins(report),
            "nothing_to_do": not dry_run and report.nothing_to_do,
            "message": closing,
        }
        out.write(msgspec.json.encode(data).decode() + "\n")
        return
    header = ("ENTRY", "TENANT", "BUNDLE", "JOB UID", "STATE", "ERROR")
    rows = [
        (
            o.label,
            o.tenant,
            o.bundle,
            o.job_uid or "-",
            ("plan" if dry_run and o.state != "invalid" else o.state),
            o.error or "",
        )
        for o in report.outcomes
    ]
    widths = [max(len(_shown(r[i])) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        cells = [_shown(cell).ljust(widths[i]) for i, cell in enumerate(row[:5])]
        out.write("  ".join(cells) + ("  " + _shown(row[5]) if row[5] else "") + "\n")
    out.write(closing + "\n")
    if dry_run:
        return
    if report.possible_orphans:
        out.write(
            f"{len(report.possible_orphans)} job(s) may exist on Runway that this batch will "
            "never start (they load nothing; check the Runway UI):\n"
        )
        for orphan in report.possible_orphans:
            out.write(
                f"  {orphan.label}: job {orphan.job_uid or '(uid unknown: no answer was recorded)'}"
                f" [{orphan.why}]\n"
            )
    if not report.all_started and not any(o.state == "cancelled" for o in report.outcomes):
        out.write(f"Run the same command again to retry: {_again(args)}\n")


def _closing_line(report: BatchReport, *, dry_run: bool) -> str:
    """The report's last line (and its ``message`` in ``--json``): the counts, or, on a
    rerun that found every entry started (exit 99), that nothing is left to do."""
    counts = _counts(report)
    if dry_run:
        invalid = (
            f" ({counts['invalid']} invalid, left out by --skip-invalid)"
            if counts["invalid"]
            else ""
        )
        return (
            f"Dry run: {len(report.outcomes)} entries checked{invalid}, token valid; nothing sent."
        )
    if report.nothing_to_do:
        entries = (
            "the 1 entry was" if counts["total"] == 1 else f"all {counts['total']} entries were"
        )
        return f"Nothing left to do: {entries} already started by an earlier run."
    return (
        f"{counts['started']} started, {counts['skipped']} already started (skipped), "
        f"{counts['failed']} failed, {counts['cancelled']} cancelled, {counts['invalid']} "
        f"invalid, {counts['not_run']} not run."
    )


def _again(args: argparse.Namespace) -> str:
    words = ["runway-client", "batch", str(args.manifest)]
    if args.journal:
        words += ["--journal", str(args.journal)]
    if args.config_file:
        words += ["-c", str(args.config_file)]
    return shlex.join(words)


def _outputs(args: argparse.Namespace, out: TextIO) -> int:
    with _connection(args) as client:
        if args.outputs_command == "list":
            sets = client.list_output_sets(
                tenant_code=args.tenant,
                school_year=args.school_year,
                sent_to_ods=args.sent_to_ods,
                created_after=args.created_after,
                bundle_name=args.bundle,
            )
            out.write(msgspec.json.encode(sets).decode() + "\n" if args.json else _sets_table(sets))
            return 0
        if args.outputs_command == "wait":
            found = client.wait_for_outputs(
                args.job_uid, timeout=args.timeout, poll_interval=args.poll_interval
            )
            fetched = client.download(found, args.download) if args.download else ()
            if args.json:
                out.write(msgspec.json.encode(found).decode() + "\n")
            else:
                out.write(_sets_table((found,)) + (_downloads(fetched) if fetched else ""))
            return 0
        receipts = client.download(args.set_uid, args.dest, overwrite=args.overwrite)
    if args.json:
        out.write(msgspec.json.encode(receipts).decode() + "\n")
    else:
        out.write(_downloads(receipts))
    return 0


def _settings(args: argparse.Namespace) -> dict[str, str | float | int]:
    """The settings file's values (``-c``), ``{}`` without one; raises ``InputError``."""
    path = getattr(args, "config_file", None)
    if path is None:
        return {}
    read = read_small(path)
    if isinstance(read, Failure):
        raise read.failure()
    try:
        text = read.unwrap().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError.of([f"settings file {path!r}: not UTF-8 text"]) from None
    parsed = parse_settings(text, environ=os.environ, what=f"settings file {path}")
    if isinstance(parsed, Failure):
        raise parsed.failure()
    return parsed.unwrap()


_SETTINGS_TO_CONFIG: Final = {
    _DEST.get(s.name, s.name): s.name for s in SETTINGS if s.flag or s.variable
}
"""Flag (and settings-file key) -> ``make_config`` argument, from ``SETTINGS``."""


def _effective_config(args: argparse.Namespace) -> RunwayConfig:
    """The connection settings: flags, then the settings file, then ``RUNWAY_*``.

    With ``-v`` they are shown on stderr, each with where it came from (secret masked).
    """
    from_file = _settings(args)
    chosen: dict[str, object] = {}
    source: dict[str, str] = {}
    for setting, name in _SETTINGS_TO_CONFIG.items():
        flag = getattr(args, setting, None) if setting != "client_secret" else None
        if flag is not None:
            chosen[name], source[name] = flag, "flag"
        elif setting in from_file:
            chosen[name], source[name] = from_file[setting], "settings file"
    retries = args.retries if args.retries is not None else from_file.get("retries")
    if retries is not None:
        if isinstance(retries, float) and not retries.is_integer():
            raise InputError.of([f"retries must be a whole number, got {retries!r}"])
        chosen["retry"] = RetryPolicy(attempts=int(retries))
    call_timeout = (
        args.call_timeout if args.call_timeout is not None else from_file.get("call_timeout")
    )
    if call_timeout is not None:
        policy = chosen.get("retry", RetryPolicy())
        assert isinstance(policy, RetryPolicy)
        chosen["retry"] = msgspec.structs.replace(policy, call_timeout=call_timeout)
    concurrency = (
        args.upload_concurrency
        if args.upload_concurrency is not None
        else from_file.get("upload_concurrency")
    )
    if concurrency is not None:
        chosen["upload_concurrency"] = concurrency
    environ = dict(os.environ)
    if "auth_base_url" in chosen or "token_url" in chosen:  # one of the pair beats both below
        environ.pop("RUNWAY_AUTH_BASE_URL", None)
        environ.pop("RUNWAY_TOKEN_URL", None)
    config = config_from_env(environ, **chosen)  # type: ignore[arg-type]
    if isinstance(config, Failure):
        raise _with_flags(config.failure())
    made = config.unwrap()
    if getattr(args, "verbose", False):
        for name, variable in ENVIRONMENT_VARIABLES.items():
            if name == "auth_base_url":
                continue  # shown as the token URL it makes
            where = source.get(name, "environment" if environ.get(variable) else "")
            if name == "token_url" and not where:
                where = source.get(
                    "auth_base_url",
                    "environment" if environ.get("RUNWAY_AUTH_BASE_URL") else "default",
                )
                where = f"from auth_base_url, {where}"
            value = "****** (set)" if name == "client_secret" else getattr(made, name)
            print(
                f"runway-client: setting {name} = {value} ({where or 'default'})", file=sys.stderr
            )
        for name in ("connect_timeout", "read_timeout"):
            where = source.get(name, "default")
            print(
                f"runway-client: setting {name} = {getattr(made, name):g} s ({where})",
                file=sys.stderr,
            )
        print(f"runway-client: setting retries = {made.retry.attempts} attempts", file=sys.stderr)
        print(
            f"runway-client: setting call_timeout = {made.retry.call_timeout:g} s",
            file=sys.stderr,
        )
        print(
            f"runway-client: setting upload_concurrency = {made.upload_concurrency}",
            file=sys.stderr,
        )
    return made


@contextlib.contextmanager
def _connection(args: argparse.Namespace) -> Iterator[RunwayClient]:
    if getattr(args, "sandbox", False):
        sandbox_type = _sandbox_class()
        with sandbox_type(
            registry_path=args.registry,
            school_years=[str(year) for year in range(2000, 2100)],
        ) as sb:
            yield RunwayClient(
                runway_base_url=sb.runway_base_url,
                auth_base_url=sb.auth_base_url,
                client_id=sb.client_id,
                client_secret=sb.client_secret,
                partner_code=sb.partner_code,
                **_tuning(args, RetryPolicy()),
            )
        return
    cfg = _effective_config(args)
    with RunwayClient.from_config(cfg) as client:
        yield client


def _with_flags(error: RunwayError) -> RunwayError:
    """``error`` (a copy) where each variable it names also names its flag."""

    def told(text: str) -> str:
        for variable, flag in _FLAGS.items():
            text = text.replace(f"{variable} ", f"{variable} (or {flag}, or the settings file) ")
        return text

    return error.replace(message=told(error.message), problems=tuple(map(told, error.problems)))


def _tuning(args: argparse.Namespace, retry: RetryPolicy) -> dict[str, Any]:
    """``--call-timeout`` and ``--upload-concurrency`` as ``RunwayClient`` arguments for
    the embedded sandbox (checked there, with every other setting); ``retry`` is the
    policy they refine. Otherwise ``_effective_config`` reads them (flag or file)."""
    given: dict[str, Any] = {"retry": retry}
    if getattr(args, "call_timeout", None) is not None:
        given["retry"] = msgspec.structs.replace(retry, call_timeout=args.call_timeout)
    if getattr(args, "upload_concurrency", None) is not None:
        given["upload_concurrency"] = args.upload_concurrency
    return given


def _sandbox_class() -> type:
    try:
        from runway_client.sandbox import Sandbox
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError(
            f"--sandbox needs the sandbox extra ({exc.name} is missing): "
            "pip install -e '.[sandbox]'",
            step="input",
        ) from None
    return Sandbox


def _serve_sandbox(argv: list[str]) -> int:
    try:
        from runway_client.sandbox import serve
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(
            f"runway-client: error: the sandbox needs the sandbox extra ({exc.name} is "
            "missing): pip install -e '.[sandbox]'",
            file=sys.stderr,
        )
        return InputError.exit_code
    return serve(argv)


def _summary(receipt: LoadReceipt, *, sandbox: bool, said_started: bool = False) -> str:
    """The text receipt; its first line, ``Started job <uid>``, is left out when it was
    printed already, the moment the job started (``said_started``)."""
    lines = [
        *(() if said_started else (started_line(receipt),)),
        f"  partner {receipt.partner}, tenant {receipt.tenant}, bundle {receipt.bundle}, "
        f"school year {receipt.school_year}",
    ]
    for item in receipt.files:
        lines.append(f"  {item.key}: {item.file_name}  {item.bytes:,} bytes  sha256 {item.sha256}")
    count = len(receipt.files)
    lines.append(
        f"Uploaded {count} file{'s' if count != 1 else ''}, {receipt.total_bytes:,} bytes."
    )
    if receipt.output_set is not None:
        found = receipt.output_set
        lines.append(
            f"The run succeeded: output set {found.uid} with {len(found.files)} file(s), "
            f"sent to ODS: {'yes' if found.sent_to_ods else 'no'}."
        )
    if receipt.downloads:
        lines.append(_downloads(receipt.downloads).rstrip("\n"))
    if sandbox:
        lines.append("This ran against the embedded local sandbox: nothing was sent to Runway.")
    elif receipt.output_set is None:
        lines.append("The run's status is seen in the Runway UI.")
    return "\n".join(lines) + "\n"


def _shown(text: str) -> str:
    """Server-given text for a terminal: control characters escaped, so a name cannot
    fake output lines or send terminal escape codes."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def _sets_table(sets: tuple[OutputSet, ...]) -> str:
    if not sets:
        return "No output sets match.\n"
    lines = [
        _shown(
            f"{s.uid}  {s.created_at.isoformat()}  {s.tenant}  {s.bundle or '-'}  {s.school_year}  "
            f"job {s.job_uid}  ods:{'yes' if s.sent_to_ods else 'no'}  files: {', '.join(s.files)}"
        )
        for s in sets
    ]
    return "\n".join(lines) + "\n"


def _downloads(receipts: tuple[DownloadReceipt, ...]) -> str:
    lines = [
        _shown(f"  {r.name}: {Path(r.path)}  {r.bytes:,} bytes  sha256 {r.sha256}")
        + ("  (already there, kept)" if r.skipped else "")
        for r in receipts
    ]
    kept = sum(r.skipped for r in receipts)
    head = (
        f"{len(receipts)} file(s): {len(receipts) - kept} downloaded, {kept} already there (kept)"
    )
    return head + ":\n" + "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
