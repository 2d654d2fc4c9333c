"""``FileTokenCache``: one access token shared by every process of one OS user on a machine.

Mapped Airflow tasks, cron jobs and parallel CLI runs are separate processes;
each would ask the identity provider for its own token, and Auth0 rate-limits
and bills per token issued. This ``TokenSource`` keeps the token in a file
(owner-only, ``0600``, in an owner-only directory) guarded by a file lock
(the ``filelock`` library), so one process fetches and the others read::

    from runway_client import FileTokenCache, RunwayClient, make_config

    settings = dict(runway_base_url=..., auth_base_url=..., client_id=...,
                    client_secret=..., partner_code="ea")
    client = RunwayClient(**settings,
                          token_cache=FileTokenCache(make_config(**settings).unwrap()))

A token is reused while it has more than ``leeway`` seconds left (the rule of
the in-process cache), and replaced when the API refused it (``rejected``). The
file holds the access token in clear - that is its purpose - and is never
logged; a file that another user owns or that others may read is ignored and
replaced. Needs the ``shared-tokens`` (or ``airflow``) extra.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
from pathlib import Path
from typing import Final

import msgspec
from returns.result import Result, Success

from runway_client._config import RunwayConfig
from runway_client._errors import RunwayError
from runway_client._models import Token
from runway_client._redaction import Secret
from runway_client._steps import authorize
from runway_client._transport import RequestsTransport, Transport

__all__ = ["FileTokenCache", "default_token_dir"]

LOCK_TIMEOUT_SECONDS: Final = 120.0
"""How long a process waits for another one fetching the token (seconds)."""


def default_token_dir() -> Path:
    """``$XDG_CACHE_HOME/runway_client/tokens`` (``~/.cache/runway_client/tokens`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "runway_client" / "tokens"


class _Stored(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    token_type: str
    expires_at: float
    scope: tuple[str, ...] = ()
    lifetime: float = 0.0


_DECODER: Final = msgspec.json.Decoder(_Stored)


class FileTokenCache:
    """A ``TokenSource`` whose tokens live in files shared by processes (one per scope set).

    Args:
        config: the client's ``RunwayConfig`` (``make_config``): where and as whom
            to ask for tokens. The file name is a SHA-256 of the token URL,
            audience, client credentials and scopes, so clients never share a wrong token.
        directory: where the files go (created ``0700``); default ``default_token_dir()``.
        transport: for the token requests; default HTTP with ``config``'s timeouts.
        leeway: seconds before expiry a token stops being reused (default 60).

    Raises:
        ImportError: ``filelock`` is not installed (``pip install 'runway-client[shared-tokens]'``).

    Calls return ``Result[Token, RunwayError]`` like any ``TokenSource``; file-system
    trouble (a read-only home) falls back to fetching a token without sharing it.
    """

    def __init__(
        self,
        config: RunwayConfig,
        *,
        directory: str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
        leeway: float = 60.0,
    ) -> None:
        try:
            import filelock
        except ImportError as exc:  # pragma: no cover - the extra is in dev
            raise ImportError(
                "FileTokenCache needs the filelock library: "
                "pip install 'runway-client[shared-tokens]'"
            ) from exc
        self._filelock = filelock
        self.config = config
        self.directory = Path(directory) if directory is not None else default_token_dir()
        self.transport: Transport = transport or RequestsTransport(
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            verify=config.verify,
        )
        self.leeway = leeway
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"FileTokenCache(directory={str(self.directory)!r}, client_id={self.config.client_id!r})"

    def path_for(self, scopes: tuple[str, ...]) -> Path:
        """The file that holds the token for ``scopes``."""
        key = "\n".join(
            (
                self.config.token_url,
                self.config.audience,
                self.config.client_id,
                self.config.client_secret.reveal(),  # only hashed: new credentials, new file
                *sorted(set(scopes)),
            )
        )
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def __call__(
        self, scopes: tuple[str, ...], /, *, rejected: Token | None = None
    ) -> Result[Token, RunwayError]:
        key = tuple(sorted(set(scopes)))
        with self._guard:
            local = self._locks.setdefault(key, threading.Lock())
        with local:
            path = self.path_for(key)
            if not _private_dir(self.directory):
                return self._fetch(scopes)
            lock = self._filelock.FileLock(
                str(path) + ".lock", timeout=LOCK_TIMEOUT_SECONDS, mode=0o600
            )
            try:
                lock.acquire()
            except (self._filelock.Timeout, OSError):
                return self._fetch(scopes)
            try:
                stored = _read(path)
                if (
                    stored is not None
                    and stored.is_fresh(leeway=self.leeway)
                    and (rejected is None or stored.access_token != rejected.access_token)
                ):
                    return Success(stored)
                fetched = self._fetch(scopes)
                if isinstance(fetched, Success):
                    _write(path, fetched.unwrap())
                return fetched
            finally:
                lock.release()

    def _fetch(self, scopes: tuple[str, ...]) -> Result[Token, RunwayError]:
        return authorize(self.transport, self.config, scopes)


def _private_dir(directory: Path) -> bool:
    """Make ``directory`` (0700) if missing; True when it is ours and private."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)


def _read(path: Path) -> Token | None:
    """The token in ``path``, if the file is ours, private and well formed."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            return None
        data = handle.read(64 * 1024)
    try:
        stored = _DECODER.decode(data)
    except msgspec.DecodeError:
        return None
    return Token(
        access_token=Secret(stored.access_token),
        token_type=stored.token_type,
        expires_at=stored.expires_at,
        scope=stored.scope,
        lifetime=stored.lifetime,
    )


def _write(path: Path, token: Token) -> None:
    """Replace ``path`` with ``token`` atomically, created ``0600``; errors are ignored
    (the token is still used by this process, just not shared)."""
    data = msgspec.json.encode(
        _Stored(
            access_token=token.access_token.reveal(),
            token_type=token.token_type,
            expires_at=token.expires_at,
            scope=token.scope,
            lifetime=token.lifetime,
        )
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
