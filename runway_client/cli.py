"""``runway-client``: load assessment files into Runway, and read what runs produced.

::

    runway-client load --tenant T --bundle B --school-year Y --file KEY=PATH [--file ...]
                       [--param KEY=VALUE ...] [--json] [--sandbox [--registry PATH]]
                       [--wait [SECONDS]] [--download DIR]
    runway-client resume JOB.json [--json]
    runway-client verify
    runway-client outputs list [--tenant T] [--school-year Y] [--sent-to-ods true|false]
                               [--created-after ISO-8601] [--bundle B] [--json]
    runway-client outputs download SET_UID --dest DIR [--overwrite] [--json]
    runway-client sandbox [--port N] [--registry PATH] ...

Connection settings come from flags or the environment (``RUNWAY_BASE_URL``,
``RUNWAY_AUTH_BASE_URL`` or ``RUNWAY_TOKEN_URL``, ``RUNWAY_CLIENT_ID``,
``RUNWAY_CLIENT_SECRET``, ``RUNWAY_PARTNER``). A failure prints one line on
stderr and exits with the code of its kind (``EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final, TextIO

import msgspec
from returns.result import Failure

from runway_client._client import RunwayClient
from runway_client._config import ENVIRONMENT_VARIABLES, SETTINGS, config_from_env
from runway_client._defaults import DEFAULT_POLL_SECONDS, DEFAULT_WAIT_SECONDS
from runway_client._errors import InputError, RunwayError
from runway_client._files import write_private
from runway_client._models import DownloadReceipt, LoadReceipt, OutputSet

__all__ = ["EXIT_CODES", "main"]

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
    130: "interrupted (Ctrl-C)",
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
    group.add_argument("-v", "--verbose", action="store_true", help="log each HTTP request")
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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    connection = _connection_flags()

    load = commands.add_parser(
        "load",
        parents=[connection],
        help="create a job, upload its files and start it",
        description="Create a Runway job, upload its files and start it.",
    )
    load.add_argument("--tenant", required=True, help="tenant code, e.g. ea")
    load.add_argument("--bundle", required=True, help="bundle, e.g. assessments/PSAT_SAT")
    load.add_argument(
        "--school-year",
        required=True,
        help='"2526", "2025-2026", "2025-26" or "2026" (all sent as 2026)',
    )
    load.add_argument(
        "--file",
        dest="files",
        action="append",
        required=True,
        type=_key_value("--file"),
        metavar="KEY=PATH",
        help="an input file by its bundle file key, e.g. INPUT_FILE=/data/sat.csv (repeatable)",
    )
    load.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        type=_key_value("--param"),
        metavar="KEY=VALUE",
        help="a bundle param, e.g. TEST_TYPE=SAT (repeatable)",
    )
    _follow_up_flags(load)
    load.add_argument("--json", action="store_true", help="print the load receipt as JSON")
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
    listing.add_argument("--tenant", help="tenant code")
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
        help="only sets created after this moment; give a zone, e.g. 2026-01-01T00:00:00Z",
    )
    listing.add_argument("--bundle", help="bundle, e.g. assessments/PSAT_SAT")
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


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        if args.command == "load":
            return _load(parser, args, out)
        if args.command == "resume":
            return _resume(args, out)
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


def _load(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
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
    wait: bool | float = args.wait if args.wait is not None else False
    with _connection(args) as client:
        receipt = client.load_files(
            tenant_code=args.tenant,
            bundle_name=args.bundle,
            input_files=files,
            bundle_params=params,
            school_year=args.school_year,
            wait=wait,
            download_to=args.download,
            poll_interval=args.poll_interval,
        )
    if args.json:
        out.write(receipt.to_json().decode() + "\n")
    else:
        out.write(_summary(receipt, sandbox=args.sandbox))
    return 0


def _saved_for_resume(error: RunwayError, chosen: str | None) -> str:
    """Save a failed load's pending job (0600) and say how to finish it; ``""`` if none."""
    if error.pending is None:
        return ""
    path = Path(chosen or f"runway-job-{error.pending.job.uid}.json")
    saved = write_private(path, error.pending.to_json())
    if isinstance(saved, Failure):
        return f". The job was created but not started; it could not be saved: {saved.failure().message}"
    return (
        f". The job was created but is not known to be started: to finish it (or learn "
        f"that it started) within an hour of its creation, run: runway-client resume "
        f"{shlex.quote(str(path))}"
    )


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


def _resume(args: argparse.Namespace, out: TextIO) -> int:
    with _connection(args) as client:
        receipt = client.resume(
            args.job_file,
            wait=args.wait if args.wait is not None else False,
            download_to=args.download,
            poll_interval=args.poll_interval,
        )
    Path(args.job_file).unlink(missing_ok=True)  # its upload URLs are secrets; job done
    if args.json:
        out.write(receipt.to_json().decode() + "\n")
    else:
        out.write(_summary(receipt, sandbox=False))
    return 0


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
            )
        return
    given = {
        s.name: getattr(args, _DEST.get(s.name, s.name)) for s in SETTINGS if s.flag is not None
    }
    config = config_from_env(**given)
    if isinstance(config, Failure):
        raise _with_flags(config.failure())
    with RunwayClient.from_config(config.unwrap()) as client:
        yield client


def _with_flags(error: RunwayError) -> RunwayError:
    """``error`` (a copy) where each variable it names also names its flag."""

    def told(text: str) -> str:
        for variable, flag in _FLAGS.items():
            text = text.replace(f"{variable} ", f"{variable} (or {flag}) ")
        return text

    return error.replace(message=told(error.message), problems=tuple(map(told, error.problems)))


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


def _summary(receipt: LoadReceipt, *, sandbox: bool) -> str:
    lines = [
        f"Started job {receipt.job_uid}",
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
            f"{s.uid}  {s.created_at.isoformat()}  {s.tenant}  {s.bundle}  {s.school_year}  "
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
