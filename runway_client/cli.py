"""``runway-client``: load assessment files into Runway from the command line.

::

    runway-client load --tenant T --bundle B --school-year Y --file KEY=PATH [--file ...]
                       [--param KEY=VALUE ...] [--json] [--sandbox]
    runway-client sandbox [--port N] [--registry PATH]

Connection settings come from flags or the environment (``RUNWAY_BASE_URL``,
``RUNWAY_AUTH_BASE_URL`` or ``RUNWAY_TOKEN_URL``, ``RUNWAY_CLIENT_ID``,
``RUNWAY_CLIENT_SECRET``, ``RUNWAY_PARTNER``). A failure prints one line on
stderr and exits with the code of its kind (``EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TextIO

from returns.result import Failure

from runway_client.client import RunwayClient
from runway_client.config import ENVIRONMENT_VARIABLES, config_from_env
from runway_client.errors import (
    AuthenticationError,
    InputError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RequestRejectedError,
    RunwayError,
    ServerError,
    ServiceUnavailableError,
    StorageError,
)
from runway_client.models import LoadReceipt

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES: Final = {
    0: "success",
    1: "unexpected error (a bug: please report it)",
    2: "usage error (bad flags)",
    **{
        cls.exit_code: cls.__doc__.splitlines()[0] if cls.__doc__ else cls.__name__
        for cls in (
            InputError,
            AuthenticationError,
            PermissionDeniedError,
            RequestRejectedError,
            NotFoundError,
            ServerError,
            ServiceUnavailableError,
            StorageError,
            NetworkError,
            ProtocolError,
        )
    },
    130: "interrupted (Ctrl-C)",
}
"""Exit status -> meaning; printed by ``runway-client --help``."""


def _key_value(what: str) -> Callable[[str], tuple[str, str]]:
    """An argparse ``type`` that splits ``KEY=VALUE`` at the first ``=``."""

    def parse(text: str) -> tuple[str, str]:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"{what} must look like KEY=VALUE, got {text!r}")
        return key, value

    return parse


def _parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in sorted(EXIT_CODES.items()))
    parser = argparse.ArgumentParser(
        prog="runway-client",
        description="Load assessment files into Runway (Education Analytics).",
        epilog=f"exit status:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each HTTP request")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    load = commands.add_parser(
        "load",
        help="create a job, upload its files and start it",
        description="Create a Runway job, upload its files and start it.",
        epilog="Settings not given as flags are read from the environment: "
        + ", ".join(ENVIRONMENT_VARIABLES.values())
        + ".",
    )
    load.add_argument("--tenant", required=True, help="tenant code, e.g. ea")
    load.add_argument("--bundle", required=True, help="bundle, e.g. assessments/PSAT_SAT")
    load.add_argument(
        "--school-year",
        required=True,
        help='school year: "2526", "2025-2026", "2025-26" or "2026" (sent as 2026)',
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
    load.add_argument("--json", action="store_true", help="print the load receipt as JSON")
    load.add_argument(
        "--sandbox",
        action="store_true",
        help="load into an embedded local sandbox instead of a real Runway (needs the "
        "'sandbox' extra)",
    )
    load.add_argument(
        "--base-url", help="Runway base URL, e.g. https://api.x-prod.runwayloader.org/api/v1"
    )
    load.add_argument("--auth-base-url", help="Auth0 base URL (token at /oauth/token)")
    load.add_argument("--token-url", help="an OIDC token endpoint, instead of --auth-base-url")
    load.add_argument("--client-id", help="OAuth2 client id")
    load.add_argument("--partner", help="partner code, e.g. ea")
    load.add_argument("--connect-timeout", type=float, help="seconds (default 10)")
    load.add_argument("--read-timeout", type=float, help="seconds (default 120)")
    load.add_argument("--ca-bundle", help="CA bundle path for TLS verification")

    sandbox = commands.add_parser(
        "sandbox",
        help="run a local Runway sandbox and print its connection settings",
        description="Run a local Runway sandbox (token endpoint, External API v1, S3-like "
        "storage) until Ctrl-C.",
    )
    sandbox.add_argument("--port", type=int, default=0, help="API port (default: a free port)")
    sandbox.add_argument(
        "--registry", help="a bundle registry.json to use instead of the built-in catalog"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see ``EXIT_CODES``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:
        if args.command == "sandbox":
            return _serve_sandbox(args)
        return _load(parser, args, sys.stdout)
    except RunwayError as error:
        print(f"runway-client: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("runway-client: interrupted", file=sys.stderr)
        return 130


def _load(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    files = dict(args.files)
    if len(files) != len(args.files):
        parser.error("each --file KEY must be given once")
    params = dict(args.params)
    if len(params) != len(args.params):
        parser.error("each --param KEY must be given once")
    with _connection(args) as client:
        receipt = client.load_files(
            tenant_code=args.tenant,
            bundle_name=args.bundle,
            input_files=files,
            bundle_params=params,
            school_year=args.school_year,
        )
    if args.json:
        out.write(receipt.to_json().decode() + "\n")
    else:
        out.write(_summary(receipt, sandbox=args.sandbox))
    return 0


@contextlib.contextmanager
def _connection(args: argparse.Namespace) -> Iterator[RunwayClient]:
    if args.sandbox:
        sandbox_type = _sandbox_class()
        with sandbox_type() as sb:
            yield RunwayClient(
                runway_base_url=sb.runway_base_url,
                auth_base_url=sb.auth_base_url,
                client_id=sb.client_id,
                client_secret=sb.client_secret,
                partner_code=sb.partner_code,
            )
        return
    config = config_from_env(
        runway_base_url=args.base_url,
        auth_base_url=args.auth_base_url,
        token_url=args.token_url,
        client_id=args.client_id,
        partner_code=args.partner,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        verify=args.ca_bundle,
    )
    if isinstance(config, Failure):
        raise config.failure()
    cfg = config.unwrap()
    with RunwayClient(
        runway_base_url=cfg.runway_base_url,
        token_url=cfg.token_url,
        audience=cfg.audience,
        client_id=cfg.client_id,
        client_secret=cfg.client_secret.reveal(),
        partner_code=cfg.partner_code,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        verify=cfg.verify,
    ) as client:
        yield client


def _sandbox_class() -> type:
    try:
        from runway_client.sandbox import Sandbox
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError(
            f"--sandbox needs the sandbox extra ({exc.name} is missing): "
            "pip install 'runway-client[sandbox]'",
            step="input",
        ) from None
    return Sandbox


def _serve_sandbox(args: argparse.Namespace) -> int:
    try:
        from runway_client.sandbox import serve
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError(
            f"the sandbox needs the sandbox extra ({exc.name} is missing): "
            "pip install 'runway-client[sandbox]'",
            step="input",
        ) from None
    argv = ["--port", str(args.port)] + (["--registry", args.registry] if args.registry else [])
    return serve(argv)


def _summary(receipt: LoadReceipt, *, sandbox: bool) -> str:
    lines = [
        f"Started job {receipt.job_uid}",
        f"  partner {receipt.partner}, tenant {receipt.tenant}, bundle {receipt.bundle}, "
        f"school year {receipt.school_year}",
    ]
    for item in receipt.files:
        lines.append(
            f"  {item.key}: {item.file_name}  {item.bytes:,} bytes  sha256 {item.sha256[:16]}…"
        )
    count = len(receipt.files)
    lines.append(
        f"Uploaded {count} file{'s' if count != 1 else ''}, {receipt.total_bytes:,} bytes."
    )
    if sandbox:
        lines.append("This ran against the embedded local sandbox: nothing was sent to Runway.")
    else:
        lines.append("The run's status is seen in the Runway UI.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
